//! A userspace UDP impairment relay: what `tc netem` would do, for a kernel
//! without the `netem` qdisc (this one) and without privileges.
//!
//! The relay listens on a loopback port; the latest peer that sent to it
//! is its client (one at a time: a reconnecting publisher replaces the
//! previous one), and every datagram is forwarded to the upstream address
//! (client → upstream) or back to the client (upstream → client), each
//! independently lost with probability `loss` and delayed by `delay` plus
//! a uniform `0..=jitter` (jitter larger than the packet spacing reorders
//! packets, as on a real path). Both directions are impaired, so SRT's
//! ACKs and NAKs are lost too. Decisions come from a seeded generator
//! (SplitMix64, fixed here rather than taken from a crate whose generators
//! may change between versions), one per direction: the same seed loses
//! the same packets of the same sequence.
//!
//! The upstream → client direction can also be capped to a bit rate
//! ([`Relay::set_downstream_rate`], changeable while it runs): a shaper
//! like `tc tbf`, whose queue holds at most [`SHAPER_QUEUE`] of delay
//! (datagrams beyond are dropped), so a congestion controller sees both
//! the queueing delay and the losses a real bottleneck gives.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{net::UdpSocket, task::JoinHandle};

/// Most delay the downstream shaper queues before it drops.
pub const SHAPER_QUEUE: Duration = Duration::from_millis(250);

/// The impairment of each direction.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability in `0.0..=1.0` that a datagram is dropped.
    pub loss: f64,
    /// One-way delay added to every datagram.
    pub delay: Duration,
    /// Upper bound of a uniform extra delay per datagram.
    pub jitter: Duration,
    /// Seed of the loss and jitter decisions.
    pub seed: u64,
}

impl Impairment {
    /// No loss, no delay: a relay only there to be capped.
    pub const NONE: Self = Self {
        loss: 0.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        seed: 0,
    };
}

/// Datagrams of one direction.
#[derive(Debug, Default)]
pub struct DirectionStats {
    /// Forwarded (after their delay).
    pub forwarded: AtomicU64,
    /// Dropped by the loss decision.
    pub dropped: AtomicU64,
}

/// A running relay; dropping it stops it.
#[derive(Debug)]
pub struct Relay {
    /// Where the client sends (instead of the upstream address).
    pub addr: SocketAddr,
    /// Client → upstream.
    pub upstream: Arc<DirectionStats>,
    /// Upstream → client.
    pub downstream: Arc<DirectionStats>,
    /// The downstream cap, bits per second (0: none).
    downstream_rate: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0.0..1.0`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Relay {
    /// Caps the upstream → client direction at `bps` bits per second (0
    /// lifts the cap).
    pub fn set_downstream_rate(&self, bps: u64) {
        self.downstream_rate.store(bps, Ordering::Relaxed);
    }

    /// Starts a relay in front of `upstream` (a UDP address on loopback).
    ///
    /// # Panics
    /// When it cannot bind loopback sockets (tests).
    pub async fn start(upstream: SocketAddr, imp: Impairment) -> Self {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind relay"));
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind relay"));
        back.connect(upstream).await.expect("connect upstream");
        let addr = front.local_addr().expect("relay address");
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let up = Arc::new(DirectionStats::default());
        let down = Arc::new(DirectionStats::default());
        let downstream_rate = Arc::new(AtomicU64::new(0));

        let to_upstream = {
            let (front, back, client, stats) =
                (front.clone(), back.clone(), client.clone(), up.clone());
            tokio::spawn(async move {
                let mut rng = Rng(imp.seed);
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    *client.lock().expect("client") = Some(from);
                    let Some(delay) = decide(&mut rng, &imp, &stats) else {
                        continue;
                    };
                    let (back, stats, data) = (back.clone(), stats.clone(), buf[..n].to_vec());
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        if back.send(&data).await.is_ok() {
                            stats.forwarded.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            })
        };
        let to_client = {
            let (front, back, client, stats, rate) = (
                front.clone(),
                back.clone(),
                client.clone(),
                down.clone(),
                downstream_rate.clone(),
            );
            tokio::spawn(async move {
                let mut rng = Rng(imp.seed ^ 0x5555_5555_5555_5555);
                let mut buf = vec![0u8; 65_536];
                // When the shaped link is free again.
                let mut free = tokio::time::Instant::now();
                while let Ok(n) = back.recv(&mut buf).await {
                    let Some(to) = *client.lock().expect("client") else {
                        continue;
                    };
                    let Some(mut delay) = decide(&mut rng, &imp, &stats) else {
                        continue;
                    };
                    let bps = rate.load(Ordering::Relaxed);
                    if bps > 0 {
                        let now = tokio::time::Instant::now();
                        let start = free.max(now);
                        if start - now > SHAPER_QUEUE {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        free = start + Duration::from_secs_f64(n as f64 * 8.0 / bps as f64);
                        delay += free - now;
                    }
                    let (front, stats, data) = (front.clone(), stats.clone(), buf[..n].to_vec());
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        if front.send_to(&data, to).await.is_ok() {
                            stats.forwarded.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            })
        };
        Self {
            addr,
            upstream: up,
            downstream: down,
            downstream_rate,
            tasks: vec![to_upstream, to_client],
        }
    }
}

/// The delay of the next datagram, or `None` when it is lost.
fn decide(rng: &mut Rng, imp: &Impairment, stats: &DirectionStats) -> Option<Duration> {
    // Two draws per datagram whatever the outcome, so the loss pattern of a
    // seed does not depend on the jitter and vice versa.
    let lost = rng.unit() < imp.loss;
    let extra = imp.jitter.mul_f64(rng.unit());
    if lost {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    Some(imp.delay + extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loses_about_the_asked_share_and_delays_the_rest() {
        let echo = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let echo_addr = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                let _ = echo.send_to(&buf[..n], from).await;
            }
        });
        let relay = Relay::start(
            echo_addr,
            Impairment {
                loss: 0.1,
                delay: Duration::from_millis(5),
                jitter: Duration::ZERO,
                seed: 1,
            },
        )
        .await;
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let sent = 2_000u64;
        for i in 0..sent {
            client
                .send_to(&i.to_be_bytes(), relay.addr)
                .await
                .expect("send");
            // Paced, so that no socket buffer on loopback overflows.
            if i % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Wait for the state: every datagram forwarded or dropped upstream.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while relay.upstream.forwarded.load(Ordering::Relaxed)
            + relay.upstream.dropped.load(Ordering::Relaxed)
            < sent
        {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let dropped = relay.upstream.dropped.load(Ordering::Relaxed);
        // 10 % of 2,000 is 200; a binomial's 4 standard deviations are 54,
        // and the seed makes the count the same on every run.
        assert!((146..=254).contains(&dropped), "dropped {dropped}");
    }
}
