//! Opus for WHEP viewers of AAC broadcasts (SRT publishers, MoQ
//! publishers with AAC): one [`AacToOpus`] transcoder per broadcast,
//! shared by all its WHEP viewers.
//!
//! The first WHEP viewer of a broadcast whose audio is AAC starts a task
//! that reads the broadcast from its own relay consumer and transcodes its
//! first AAC track; every later viewer of the same publisher session gets
//! a receiver of the same packets. The task ends when the last viewer's
//! [`TranscodedAudio`] is dropped or the broadcast ends. So 100 viewers
//! cost one decoder, one resampler and one encoder (under 1 % of a core
//! for a stereo 44.1 kHz source in a release build, see the README), not
//! 100. The work runs on the task itself: about 0.2 ms per 23 ms AAC frame.
//!
//! Packets reach viewers through a bounded `tokio::sync::broadcast`
//! channel of [`PACKET_QUEUE`] packets: a viewer that falls behind misses
//! the oldest ones (its jitter buffer conceals them), it never slows the
//! transcoder or the other viewers.
//!
//! Counted in the origin's metrics: `webrtc_audio_frames_transcoded` (AAC
//! frames turned into Opus) and `webrtc_audio_frames_refused` (frames
//! the decoder refused, or whose track could not be transcoded).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use livestack_media::model::{AudioCodec, TrackParams};
use livestack_transcode::{AacToOpus, OpusPacket};
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, info, warn};

use crate::{
    fanout::{BroadcastConsumer, BroadcastSubscriber, MediaEvent, Received},
    metrics::Metrics,
};

/// Opus packets (20 ms each: about 1.3 s) queued per viewer at most.
pub const PACKET_QUEUE: usize = 64;

/// The running transcoders, by broadcast name.
#[derive(Debug)]
pub struct AudioTranscodes {
    running: Mutex<HashMap<String, Running>>,
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct Running {
    /// The publisher session it transcodes.
    session: u64,
    share: Weak<Share>,
}

/// What every viewer's [`TranscodedAudio`] holds: when the last one goes,
/// `stop` is dropped and the task ends.
#[derive(Debug)]
struct Share {
    packets: broadcast::Sender<OpusPacket>,
    _stop: oneshot::Sender<()>,
}

/// A viewer's part of a broadcast's transcoded audio.
#[derive(Debug)]
pub struct TranscodedAudio {
    packets: broadcast::Receiver<OpusPacket>,
    _share: Arc<Share>,
}

impl TranscodedAudio {
    /// The next Opus packet; `None` once the transcoder is gone. Packets
    /// a slow viewer missed are skipped.
    pub async fn recv(&mut self) -> Option<OpusPacket> {
        loop {
            match self.packets.recv().await {
                Ok(p) => return Some(p),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    debug!(missed = n, "WHEP viewer behind the audio transcoder");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl AudioTranscodes {
    /// No transcoder running yet; counts into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            running: Mutex::default(),
            metrics,
        }
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Transcoders running now.
    pub fn running(&self) -> usize {
        self.lock()
            .values()
            .filter(|r| r.share.strong_count() > 0)
            .count()
    }

    /// The transcoded audio of publisher session `session` of broadcast
    /// `name`, read from `media`: the running transcoder's, or a new one.
    /// Must be called within a tokio runtime (a new transcoder is a task).
    pub fn join(&self, name: &str, session: u64, media: &BroadcastSubscriber) -> TranscodedAudio {
        let mut running = self.lock();
        if let Some(r) = running.get(name)
            && r.session == session
            && let Some(share) = r.share.upgrade()
        {
            return TranscodedAudio {
                packets: share.packets.subscribe(),
                _share: share,
            };
        }
        running.retain(|_, r| r.share.strong_count() > 0);
        let (packets, receiver) = broadcast::channel(PACKET_QUEUE);
        let (stop, stopped) = oneshot::channel();
        let share = Arc::new(Share {
            packets: packets.clone(),
            _stop: stop,
        });
        running.insert(
            name.to_owned(),
            Running {
                session,
                share: Arc::downgrade(&share),
            },
        );
        info!(stream = %name, session, "AAC to Opus transcoder started");
        tokio::spawn(transcode(
            name.to_owned(),
            media.subscribe(),
            packets,
            stopped,
            self.metrics.clone(),
        ));
        TranscodedAudio {
            packets: receiver,
            _share: share,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The task of one broadcast's transcoder: its first AAC track, frame by
/// frame, until the broadcast ends or `stopped` (no viewer left).
async fn transcode(
    name: String,
    mut media: BroadcastConsumer,
    packets: broadcast::Sender<OpusPacket>,
    mut stopped: oneshot::Receiver<()>,
    metrics: Arc<Metrics>,
) {
    let mut track: Option<(u32, Option<AacToOpus>)> = None;
    let mut out = Vec::new();
    let reason = loop {
        let received = tokio::select! {
            r = media.recv() => r,
            _ = &mut stopped => break "no viewer left",
        };
        match received {
            Received::Event(MediaEvent::Track {
                id,
                params: TrackParams::Audio(a),
            }) if a.codec == AudioCodec::Aac && track.as_ref().is_none_or(|(t, _)| *t == id) => {
                let transcoder = match AacToOpus::new(&a) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        warn!(stream = %name, track = id, error = %e, "AAC track not transcoded");
                        None
                    }
                };
                track = Some((id, transcoder));
            }
            Received::Event(MediaEvent::Frame { id, frame }) => {
                let Some((t, transcoder)) = &mut track else {
                    continue;
                };
                if *t != id {
                    continue;
                }
                let Some(transcoder) = transcoder else {
                    metrics.webrtc_audio_frames_refused.inc();
                    continue;
                };
                match transcoder.push(&frame, &mut out) {
                    Ok(()) => {
                        metrics.webrtc_audio_frames_transcoded.inc();
                    }
                    Err(e) => {
                        metrics.webrtc_audio_frames_refused.inc();
                        debug!(stream = %name, error = %e, "AAC frame refused");
                    }
                }
                for p in out.drain(..) {
                    // No receiver for a moment is not an end: `stopped` is.
                    let _ = packets.send(p);
                }
            }
            Received::Event(MediaEvent::Loss { id }) => {
                if let Some((t, Some(transcoder))) = &mut track
                    && *t == id
                {
                    transcoder.discontinuity();
                }
            }
            Received::Skipped { .. } => {
                if let Some((_, Some(transcoder))) = &mut track {
                    transcoder.discontinuity();
                }
            }
            Received::Event(MediaEvent::End) | Received::Closed => break "broadcast ended",
            Received::Event(MediaEvent::Track { .. }) => {}
        }
    };
    info!(stream = %name, reason, "AAC to Opus transcoder stopped");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use livestack_media::{
        adts,
        model::{Frame, MediaTime},
    };

    use super::*;
    use crate::fanout;

    const AAC: &[u8] = include_bytes!("../../../transcode/tests/data/sine440-44k1-stereo.aac");

    /// Sends the fixture's AAC frames into `producer` as track 257.
    fn send_frames(producer: &fanout::BroadcastProducer, range: std::ops::Range<usize>) {
        for (i, f) in adts::frames(AAC)
            .enumerate()
            .skip(range.start)
            .take(range.len())
        {
            let f = f.expect("good ADTS");
            let params = f.header.audio_params().expect("AAC");
            if i == range.start {
                producer.send(MediaEvent::Track {
                    id: 257,
                    params: TrackParams::Audio(params.clone()),
                });
            }
            let pts = MediaTime::new(i as i64 * 1024, params.sample_rate);
            producer.send(MediaEvent::Frame {
                id: 257,
                frame: Frame {
                    pts,
                    dts: pts,
                    duration: None,
                    keyframe: true,
                    data: Bytes::copy_from_slice(f.payload),
                },
            });
        }
    }

    async fn next(audio: &mut TranscodedAudio) -> OpusPacket {
        tokio::time::timeout(Duration::from_secs(10), audio.recv())
            .await
            .expect("a packet in time")
            .expect("the transcoder runs")
    }

    #[tokio::test]
    async fn viewers_of_one_broadcast_share_one_transcoder_until_the_last_leaves() {
        let metrics = Arc::new(Metrics::new());
        let transcodes = AudioTranscodes::new(metrics.clone());
        let (producer, subscriber) = fanout::broadcast();
        let mut first = transcodes.join("show", 7, &subscriber);
        let mut second = transcodes.join("show", 7, &subscriber);
        assert_eq!(transcodes.running(), 1, "one transcoder for two viewers");

        send_frames(&producer, 0..50);
        let a = next(&mut first).await;
        let b = next(&mut second).await;
        assert_eq!(a, b, "both viewers get the same packets");

        // A new publisher session of the name is a new transcoder.
        let (_other, other_media) = fanout::broadcast();
        let third = transcodes.join("show", 8, &other_media);
        drop(third);

        drop(first);
        drop(second);
        // The task notices its last viewer left.
        for _ in 0..100 {
            if transcodes.running() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(transcodes.running(), 0);
        let transcoded = metrics.webrtc_audio_frames_transcoded.get();
        assert!(
            transcoded > 0 && transcoded <= 50,
            "{transcoded} frames, once each"
        );
    }

    #[tokio::test]
    async fn corrupt_frames_are_counted_and_the_stream_goes_on() {
        let metrics = Arc::new(Metrics::new());
        let transcodes = AudioTranscodes::new(metrics.clone());
        let (producer, subscriber) = fanout::broadcast();
        let mut viewer = transcodes.join("show", 1, &subscriber);
        send_frames(&producer, 0..10);
        // Real frames cut to a third: the decoder runs out of bits.
        let cut: Vec<Bytes> = adts::frames(AAC)
            .skip(10)
            .take(4)
            .map(|f| {
                let p = f.expect("good ADTS").payload;
                Bytes::copy_from_slice(&p[..p.len() / 3])
            })
            .collect();
        for (i, data) in (10..14).zip(cut) {
            let pts = MediaTime::new(
                i * 1024,
                livestack_media::model::Timescale::new(44_100).expect("rate"),
            );
            producer.send(MediaEvent::Frame {
                id: 257,
                frame: Frame {
                    pts,
                    dts: pts,
                    duration: None,
                    keyframe: true,
                    data,
                },
            });
        }
        send_frames(&producer, 14..40);
        // Packets from after the cut frames come (48 kHz ticks; frame 20
        // starts at 20 × 1024 / 44 100 s).
        while next(&mut viewer).await.pts.ticks() < 20 * 1024 * 48_000 / 44_100 {}
        assert!(metrics.webrtc_audio_frames_refused.get() >= 1);
        assert!(metrics.webrtc_audio_frames_transcoded.get() >= 16);
    }
}
