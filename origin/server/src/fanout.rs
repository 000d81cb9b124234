//! Fan-out of a broadcast's media to independent consumers, over the
//! generic relay ([`livestack_relay`]).
//!
//! The ingest side owns a [`BroadcastProducer`]; every consumer (the LL-HLS
//! packager task today; MoQ, WHEP and the recorder later) holds a
//! [`BroadcastConsumer`]. This module only binds the relay to the media
//! model: track information is [`TrackParams`], payloads are [`Frame`]s
//! weighing their data length, and a group starts at a frame with
//! `keyframe` set. Everything else is the relay's: the publisher never
//! waits; a consumer that falls behind skips to the newest group of every
//! track and is told how much it lost; a late consumer starts at each
//! track's latest keyframe (GOP cache). Memory per broadcast is bounded by
//! [`relay_config`]: at most [`LOG_EVENTS`] events and [`LOG_BYTES`] bytes
//! of payload, shared by all consumers.

use livestack_media::model::{Frame, TrackParams};
use livestack_relay::{Consumer, Event, Producer, RelayConfig, Subscriber};

/// Events kept per broadcast (about 27 s of 25 fps video plus AAC audio).
pub const LOG_EVENTS: usize = 4096;
/// Payload bytes kept per broadcast (64 MiB).
pub const LOG_BYTES: usize = 64 << 20;

/// The bounds of every broadcast's relay log.
pub fn relay_config() -> RelayConfig {
    RelayConfig {
        max_entries: LOG_EVENTS,
        max_bytes: LOG_BYTES,
    }
}

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

impl From<Event<TrackParams, Frame>> for MediaEvent {
    fn from(e: Event<TrackParams, Frame>) -> Self {
        match e {
            Event::Track { id, info } => MediaEvent::Track { id, params: info },
            Event::Frame { id, payload, .. } => MediaEvent::Frame { id, frame: payload },
            Event::Loss { id } => MediaEvent::Loss { id },
            Event::End => MediaEvent::End,
        }
    }
}

/// The writing end of a broadcast. Cheap to call; never blocks. Dropping it
/// ends the broadcast.
#[derive(Debug)]
pub struct BroadcastProducer(Producer<TrackParams, Frame>);

/// A handle from which consumers subscribe.
#[derive(Debug, Clone)]
pub struct BroadcastSubscriber(Subscriber<TrackParams, Frame>);

/// A consumer of a broadcast.
#[derive(Debug)]
pub struct BroadcastConsumer(Consumer<TrackParams, Frame>);

/// Result of [`BroadcastConsumer::recv`].
#[derive(Debug)]
pub enum Received {
    /// The next event.
    Event(MediaEvent),
    /// This consumer fell behind and resumed at the newest group of every
    /// track (each track's next frame is a keyframe).
    Skipped {
        /// Whole groups it never got.
        groups: u64,
        /// Events it never got.
        events: u64,
    },
    /// The producer is gone.
    Closed,
}

/// Creates a broadcast: the producer and a subscriber handle.
pub fn broadcast() -> (BroadcastProducer, BroadcastSubscriber) {
    let (p, s) = livestack_relay::broadcast(relay_config());
    (BroadcastProducer(p), BroadcastSubscriber(s))
}

impl BroadcastProducer {
    /// Publishes one event to every consumer.
    pub fn send(&self, event: MediaEvent) {
        let (event, bytes) = match event {
            MediaEvent::Track { id, params } => (Event::Track { id, info: params }, 0),
            MediaEvent::Frame { id, frame } => {
                let bytes = frame.data.len();
                (
                    Event::Frame {
                        id,
                        keyframe: frame.keyframe,
                        payload: frame,
                    },
                    bytes,
                )
            }
            MediaEvent::Loss { id } => (Event::Loss { id }, 0),
            MediaEvent::End => (Event::End, 0),
        };
        self.0.send(event, bytes);
    }

    /// A subscriber handle for this broadcast.
    pub fn subscriber(&self) -> BroadcastSubscriber {
        BroadcastSubscriber(self.0.subscriber())
    }
}

impl BroadcastSubscriber {
    /// Joins the broadcast: track parameters first, then every track from
    /// its latest keyframe on, then live events.
    pub fn subscribe(&self) -> BroadcastConsumer {
        BroadcastConsumer(self.0.subscribe())
    }
}

impl BroadcastConsumer {
    /// The next event; waits for one. Never slows the producer.
    pub async fn recv(&mut self) -> Received {
        match self.0.recv().await {
            livestack_relay::Received::Event(e) => Received::Event(e.into()),
            livestack_relay::Received::Skipped { groups, events } => {
                Received::Skipped { groups, events }
            }
            livestack_relay::Received::Closed => Received::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use livestack_media::model::MediaTime;

    fn frame(dts: i64, key: bool) -> Frame {
        let dts = MediaTime::from_90khz(dts);
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
        for (dts, key) in [(0, true), (1, false), (2, true), (3, false)] {
            p.send(MediaEvent::Frame {
                id: 1,
                frame: frame(dts, key),
            });
        }
        let mut c = s.subscribe();
        let mut seen = vec![];
        p.send(MediaEvent::End);
        while let Received::Event(e) = c.recv().await {
            match e {
                MediaEvent::Frame { frame, .. } => seen.push(frame.dts.ticks()),
                MediaEvent::End => break,
                _ => {}
            }
        }
        assert_eq!(seen, vec![2, 3]);
    }

    #[tokio::test]
    async fn slow_consumer_skips_groups_and_never_blocks() {
        let (p, s) = broadcast();
        let mut c = s.subscribe();
        for i in 0..(LOG_EVENTS as i64 * 3) {
            p.send(MediaEvent::Frame {
                id: 1,
                frame: frame(i, i % 30 == 0),
            });
        }
        match c.recv().await {
            Received::Skipped { events, .. } => assert!(events > LOG_EVENTS as u64),
            other => panic!("expected a skip, got {other:?}"),
        }
        match c.recv().await {
            Received::Event(MediaEvent::Frame { frame, .. }) => assert!(frame.keyframe),
            other => panic!("expected a keyframe, got {other:?}"),
        }
    }
}
