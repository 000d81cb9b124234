//! Fan-out of a broadcast's media model to independent consumers.
//!
//! The ingest side owns a [`BroadcastProducer`]; every consumer (the LL-HLS
//! packager today; MoQ, WHEP and the recorder later) holds a
//! [`BroadcastConsumer`]. Writing never waits for a consumer: the channel is
//! bounded and a consumer that falls more than [`CHANNEL_EVENTS`] events
//! behind loses the oldest ones, learns how many (`Lagged`), and resumes at
//! the next keyframe. Nothing a consumer does can back-pressure the
//! publisher.
//!
//! The producer also keeps a bounded GOP cache — the track parameters and
//! every frame of each track's current group — so that a consumer joining
//! mid-stream starts at a keyframe instead of waiting for the next one.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use livestack_media::model::{Frame, TrackParams};
use tokio::sync::broadcast;

/// Events in channel capacity per consumer (about 13 s of 30 fps video plus
/// AAC audio). Worst-case memory is this many events per broadcast, shared
/// by all consumers (frames are reference-counted).
pub const CHANNEL_EVENTS: usize = 1024;
/// Upper bound of the GOP cache per track, in frames.
pub const GOP_CACHE_FRAMES: usize = 1200;
/// Upper bound of the GOP cache per track, in payload bytes (32 MiB).
pub const GOP_CACHE_BYTES: usize = 32 << 20;

/// One event of a broadcast.
#[derive(Debug, Clone)]
pub enum MediaEvent {
    /// Track `id` has (new) parameters.
    Track {
        /// Track id (the MPEG-TS PID for SRT ingest).
        id: u32,
        /// The parameters.
        params: TrackParams,
    },
    /// A frame of track `id`.
    Frame {
        /// Track id.
        id: u32,
        /// The frame.
        frame: Frame,
    },
    /// Input was lost on track `id`; the next frame may not follow on.
    Loss {
        /// Track id.
        id: u32,
    },
    /// The publisher is gone; no more events follow.
    End,
}

#[derive(Debug, Default)]
struct TrackCache {
    params: Option<TrackParams>,
    group: Vec<Frame>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Cache {
    tracks: BTreeMap<u32, TrackCache>,
    ended: bool,
}

/// The writing end of a broadcast. Cheap to call; never blocks.
#[derive(Debug)]
pub struct BroadcastProducer {
    tx: broadcast::Sender<MediaEvent>,
    cache: Arc<Mutex<Cache>>,
}

/// A handle from which consumers subscribe.
#[derive(Debug, Clone)]
pub struct BroadcastSubscriber {
    tx: broadcast::Sender<MediaEvent>,
    cache: Arc<Mutex<Cache>>,
}

/// A consumer: the GOP-cache snapshot it joined with, then live events.
#[derive(Debug)]
pub struct BroadcastConsumer {
    backlog: std::collections::VecDeque<MediaEvent>,
    rx: broadcast::Receiver<MediaEvent>,
}

/// Result of [`BroadcastConsumer::recv`].
#[derive(Debug)]
pub enum Received {
    /// The next event.
    Event(MediaEvent),
    /// This consumer fell behind and `n` events were dropped for it.
    Lagged(u64),
    /// The producer is gone.
    Closed,
}

/// Creates a broadcast: the producer and a subscriber handle.
pub fn broadcast() -> (BroadcastProducer, BroadcastSubscriber) {
    let (tx, _) = broadcast::channel(CHANNEL_EVENTS);
    let cache = Arc::new(Mutex::new(Cache::default()));
    (
        BroadcastProducer {
            tx: tx.clone(),
            cache: cache.clone(),
        },
        BroadcastSubscriber { tx, cache },
    )
}

impl BroadcastProducer {
    /// Publishes one event to every consumer and updates the GOP cache.
    pub fn send(&self, event: MediaEvent) {
        {
            let mut cache = self.cache.lock().expect("gop cache poisoned");
            match &event {
                MediaEvent::Track { id, params } => {
                    let t = cache.tracks.entry(*id).or_default();
                    t.params = Some(params.clone());
                    t.group.clear();
                    t.bytes = 0;
                }
                MediaEvent::Frame { id, frame } => {
                    let t = cache.tracks.entry(*id).or_default();
                    if frame.keyframe {
                        t.group.clear();
                        t.bytes = 0;
                    }
                    if t.group.len() < GOP_CACHE_FRAMES
                        && t.bytes + frame.data.len() <= GOP_CACHE_BYTES
                        && (frame.keyframe || !t.group.is_empty())
                    {
                        t.bytes += frame.data.len();
                        t.group.push(frame.clone());
                    }
                }
                MediaEvent::Loss { id } => {
                    if let Some(t) = cache.tracks.get_mut(id) {
                        t.group.clear();
                        t.bytes = 0;
                    }
                }
                MediaEvent::End => cache.ended = true,
            }
            // Sending under the cache lock keeps snapshot + live stream
            // gap-free for a subscriber that joins concurrently.
            let _ = self.tx.send(event);
        }
    }

    /// A subscriber handle for this broadcast.
    pub fn subscriber(&self) -> BroadcastSubscriber {
        BroadcastSubscriber {
            tx: self.tx.clone(),
            cache: self.cache.clone(),
        }
    }
}

impl Drop for BroadcastProducer {
    fn drop(&mut self) {
        let ended = self.cache.lock().map(|c| c.ended).unwrap_or(true);
        if !ended {
            self.send(MediaEvent::End);
        }
    }
}

impl BroadcastSubscriber {
    /// Joins the broadcast: the consumer first replays the GOP cache (track
    /// parameters, then the current group of each track), then live events.
    pub fn subscribe(&self) -> BroadcastConsumer {
        let cache = self.cache.lock().expect("gop cache poisoned");
        let mut backlog = std::collections::VecDeque::new();
        for (id, t) in &cache.tracks {
            if let Some(params) = &t.params {
                backlog.push_back(MediaEvent::Track {
                    id: *id,
                    params: params.clone(),
                });
            }
        }
        // Interleave the cached groups by decode time across tracks.
        let mut frames: Vec<(u32, &Frame)> = cache
            .tracks
            .iter()
            .flat_map(|(id, t)| t.group.iter().map(move |f| (*id, f)))
            .collect();
        frames.sort_by_key(|(id, f)| {
            let ts = cache.tracks[id]
                .params
                .as_ref()
                .map(|p| p.timescale())
                .unwrap_or(livestack_media::model::Timescale::MPEG_TS);
            ts.convert(f.dts, livestack_media::model::Timescale::MPEG_TS)
        });
        for (id, f) in frames {
            backlog.push_back(MediaEvent::Frame {
                id,
                frame: f.clone(),
            });
        }
        if cache.ended {
            backlog.push_back(MediaEvent::End);
        }
        let rx = self.tx.subscribe();
        drop(cache);
        BroadcastConsumer { backlog, rx }
    }
}

impl BroadcastConsumer {
    /// The next event; waits for one. Never slows the producer.
    pub async fn recv(&mut self) -> Received {
        if let Some(e) = self.backlog.pop_front() {
            return Received::Event(e);
        }
        match self.rx.recv().await {
            Ok(e) => Received::Event(e),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(dts: i64, key: bool) -> Frame {
        Frame {
            pts: dts,
            dts,
            duration: None,
            keyframe: key,
            data: Bytes::from_static(b"x"),
        }
    }

    #[tokio::test]
    async fn late_joiner_starts_at_keyframe() {
        let (p, s) = broadcast();
        p.send(MediaEvent::Frame {
            id: 1,
            frame: frame(0, true),
        });
        p.send(MediaEvent::Frame {
            id: 1,
            frame: frame(1, false),
        });
        p.send(MediaEvent::Frame {
            id: 1,
            frame: frame(2, true),
        });
        p.send(MediaEvent::Frame {
            id: 1,
            frame: frame(3, false),
        });
        let mut c = s.subscribe();
        let mut seen = vec![];
        p.send(MediaEvent::End);
        while let Received::Event(e) = c.recv().await {
            match e {
                MediaEvent::Frame { frame, .. } => seen.push(frame.dts),
                MediaEvent::End => break,
                _ => {}
            }
        }
        assert_eq!(seen, vec![2, 3]);
    }

    #[tokio::test]
    async fn slow_consumer_lags_and_never_blocks() {
        let (p, s) = broadcast();
        let mut c = s.subscribe();
        for i in 0..(CHANNEL_EVENTS as i64 * 3) {
            p.send(MediaEvent::Frame {
                id: 1,
                frame: frame(i, i % 30 == 0),
            });
        }
        match c.recv().await {
            Received::Lagged(n) => assert_eq!(n, CHANNEL_EVENTS as u64 * 2),
            other => panic!("expected lag, got {other:?}"),
        }
    }
}
