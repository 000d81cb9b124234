//! A generic live relay: one producer publishes *tracks*, each a sequence of
//! *groups* (a group starts at a keyframe: a point where decoding can
//! start), each a sequence of *frames*; any number of consumers read them
//! independently. The relay knows no codecs: track information (`I`) and
//! frame payloads (`T`) are opaque, the producer says which frames are
//! keyframes and how many bytes each weighs. (The model is moq-lite's
//! broadcast → track → group → frame, `rs/moq-lite/src/model/`.)
//!
//! # Ordering, slow consumers, late consumers
//!
//! The broadcast is one ordered log shared by every consumer, so a consumer
//! sees the frames of all tracks in the order they were published (a
//! packager that aligns audio to video cuts needs that order).
//!
//! - **The producer never waits.** [`Producer::send`] appends under a
//!   short lock and wakes consumers; it never waits for one.
//! - **Bounded memory.** The log keeps at most
//!   [`RelayConfig::max_entries`] events and [`RelayConfig::max_bytes`]
//!   payload bytes; older ones are evicted. Worst-case memory per
//!   broadcast is therefore `max_bytes` of payload plus `max_entries` event
//!   headers, shared by all consumers (consumers hold only a position).
//! - **A slow consumer drops whole groups.** A consumer whose next event was
//!   evicted skips to the newest group of every track: it resumes at the
//!   earliest of the tracks' latest keyframes, drops each track's frames
//!   until that track's latest keyframe, and learns how many groups it lost
//!   ([`Received::Skipped`]; count it in metrics). Nothing it does slows the
//!   producer or the other consumers.
//! - **A late consumer starts at a keyframe** (GOP cache): it first gets
//!   the current information of every track, then each track's frames from
//!   its latest keyframe on, still in publish order.
//!
//! Only `tokio::sync` is used (no runtime, no clocks), so any driver — the
//! origin's packager task, MoQ or WebRTC egress, an SFU — can consume.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::watch;

/// Bounds of a broadcast's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Most events kept. Default 4096: about 27 s of 25 fps video with
    /// 48 kHz AAC, so a whole group of every track survives for late
    /// consumers.
    pub max_entries: usize,
    /// Most payload bytes kept. Default 64 MiB.
    pub max_bytes: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_entries: 4096,
            max_bytes: 64 << 20,
        }
    }
}

/// One event of a broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<I, T> {
    /// Track `id` has (new) information (for media: its codec parameters).
    Track {
        /// Track id, unique within the broadcast.
        id: u32,
        /// The information, opaque to the relay.
        info: I,
    },
    /// A frame of track `id`.
    Frame {
        /// Track id.
        id: u32,
        /// True when the frame starts a new group (decoding can start here).
        keyframe: bool,
        /// The payload, opaque to the relay.
        payload: T,
    },
    /// Input was lost on track `id`; the next frame may not follow on.
    Loss {
        /// Track id.
        id: u32,
    },
    /// The publisher is gone; no more events follow.
    End,
}

/// What [`Consumer::recv`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received<I, T> {
    /// The next event.
    Event(Event<I, T>),
    /// This consumer fell behind and resumed at the newest group of every
    /// track; `groups` whole groups were never delivered to it (the rest
    /// of the group it was reading is dropped too).
    /// The events that follow start with each track's keyframe.
    Skipped {
        /// Whole groups dropped, summed over tracks.
        groups: u64,
        /// Events of the log this consumer did not read.
        events: u64,
    },
    /// The producer is gone and every event was read.
    Closed,
}

#[derive(Debug)]
struct Entry<I, T> {
    event: Event<I, T>,
    bytes: usize,
    /// For frames: the track's group number (counted from 0).
    group: u64,
}

#[derive(Debug)]
struct TrackMeta<I> {
    info: Option<I>,
    /// Log position of the latest keyframe, while it is still in the log.
    group_start: Option<u64>,
    /// Number of the latest group (keyframes seen − 1), if any.
    group: Option<u64>,
}

impl<I> Default for TrackMeta<I> {
    fn default() -> Self {
        Self {
            info: None,
            group_start: None,
            group: None,
        }
    }
}

#[derive(Debug)]
struct Log<I, T> {
    config: RelayConfig,
    entries: VecDeque<Entry<I, T>>,
    /// Position of `entries[0]`.
    first: u64,
    bytes: usize,
    tracks: BTreeMap<u32, TrackMeta<I>>,
    ended: bool,
}

impl<I, T> Log<I, T> {
    fn next(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    fn get(&self, pos: u64) -> Option<&Entry<I, T>> {
        let i = usize::try_from(pos.checked_sub(self.first)?).ok()?;
        self.entries.get(i)
    }

    fn push(&mut self, event: Event<I, T>, bytes: usize)
    where
        I: Clone,
    {
        let pos = self.next();
        let mut group = 0;
        match &event {
            Event::Track { id, info } => {
                self.tracks.entry(*id).or_default().info = Some(info.clone());
            }
            Event::Frame { id, keyframe, .. } => {
                let t = self.tracks.entry(*id).or_default();
                if *keyframe {
                    let g = t.group.map_or(0, |g| g + 1);
                    t.group = Some(g);
                    t.group_start = Some(pos);
                }
                group = t.group.unwrap_or(0);
            }
            Event::Loss { id } => {
                // The current group is broken: a late consumer waits for
                // the next keyframe of this track.
                if let Some(t) = self.tracks.get_mut(id) {
                    t.group_start = None;
                }
            }
            Event::End => self.ended = true,
        }
        self.entries.push_back(Entry {
            event,
            bytes,
            group,
        });
        self.bytes += bytes;
        while self.entries.len() > self.config.max_entries.max(1)
            || (self.bytes > self.config.max_bytes && self.entries.len() > 1)
        {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            let old_pos = self.first;
            self.first += 1;
            self.bytes -= old.bytes;
            if let Event::Frame { id, .. } = old.event
                && let Some(t) = self.tracks.get_mut(&id)
                && t.group_start == Some(old_pos)
            {
                // The group is no longer whole in the log.
                t.group_start = None;
            }
        }
    }
}

struct Shared<I, T> {
    log: Mutex<Log<I, T>>,
    /// Position after the newest event, for waking consumers.
    published: watch::Sender<u64>,
}

impl<I, T> Shared<I, T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Log<I, T>> {
        // The log stays consistent at every unlock: a panicking holder
        // cannot leave it half-updated in a way readers would trip over.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<I, T> std::fmt::Debug for Shared<I, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("published", &*self.published.borrow())
            .finish_non_exhaustive()
    }
}

/// The writing end of a broadcast. Dropping it ends the broadcast.
#[derive(Debug)]
pub struct Producer<I, T> {
    shared: Arc<Shared<I, T>>,
}

/// A handle from which consumers join; cheap to clone.
#[derive(Debug)]
pub struct Subscriber<I, T> {
    shared: Arc<Shared<I, T>>,
}

impl<I, T> Clone for Subscriber<I, T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// Creates a broadcast with the given bounds: its producer and a
/// subscriber handle.
pub fn broadcast<I, T>(config: RelayConfig) -> (Producer<I, T>, Subscriber<I, T>) {
    let shared = Arc::new(Shared {
        log: Mutex::new(Log {
            config,
            entries: VecDeque::new(),
            first: 0,
            bytes: 0,
            tracks: BTreeMap::new(),
            ended: false,
        }),
        published: watch::channel(0).0,
    });
    (
        Producer {
            shared: shared.clone(),
        },
        Subscriber { shared },
    )
}

impl<I: Clone, T> Producer<I, T> {
    /// Publishes one event; `bytes` is the payload's weight for the memory
    /// bound (0 for events without payload). Never waits for a consumer.
    /// Events after [`Event::End`] are ignored.
    pub fn send(&self, event: Event<I, T>, bytes: usize) {
        let next = {
            let mut log = self.shared.lock();
            if log.ended {
                return;
            }
            log.push(event, bytes);
            log.next()
        };
        self.shared.published.send_replace(next);
    }

    /// A subscriber handle for this broadcast.
    pub fn subscriber(&self) -> Subscriber<I, T> {
        Subscriber {
            shared: self.shared.clone(),
        }
    }
}

impl<I, T> Drop for Producer<I, T> {
    fn drop(&mut self) {
        let next = {
            let mut log = self.shared.lock();
            if log.ended {
                return;
            }
            let pos = log.next();
            log.ended = true;
            log.entries.push_back(Entry {
                event: Event::End,
                bytes: 0,
                group: 0,
            });
            pos + 1
        };
        self.shared.published.send_replace(next);
    }
}

impl<I: Clone, T: Clone> Subscriber<I, T> {
    /// Joins the broadcast at the newest group of every track (see the
    /// crate docs).
    pub fn subscribe(&self) -> Consumer<I, T> {
        let mut c = Consumer {
            shared: self.shared.clone(),
            published: self.shared.published.subscribe(),
            pos: 0,
            backlog: VecDeque::new(),
            resume: BTreeSet::new(),
            delivered: BTreeMap::new(),
            skipped_groups: 0,
        };
        let log = self.shared.lock();
        c.resync(&log);
        drop(log);
        c
    }
}

/// One reader of a broadcast. See the crate docs.
#[derive(Debug)]
pub struct Consumer<I, T> {
    shared: Arc<Shared<I, T>>,
    published: watch::Receiver<u64>,
    /// Next log position to read.
    pos: u64,
    /// Track information to deliver before the log (after a join or skip).
    backlog: VecDeque<Event<I, T>>,
    /// Tracks whose frames are dropped until their next keyframe (after a
    /// join or skip).
    resume: BTreeSet<u32>,
    /// Last group delivered per track, for counting skipped groups.
    delivered: BTreeMap<u32, u64>,
    skipped_groups: u64,
}

impl<I: Clone, T: Clone> Consumer<I, T> {
    /// Groups this consumer dropped because it fell behind, in total.
    pub fn skipped_groups(&self) -> u64 {
        self.skipped_groups
    }

    /// Positions the consumer at the newest group of every track and queues
    /// the tracks' information. Returns the whole groups skipped.
    ///
    /// The log is read from the earliest of the tracks' latest keyframes;
    /// every track then starts at its first keyframe from there (for the
    /// track that set the position, its latest one).
    fn resync(&mut self, log: &Log<I, T>) -> u64 {
        let mut start = log.next();
        self.resume.clear();
        self.backlog.clear();
        for (id, t) in &log.tracks {
            if let Some(info) = &t.info {
                self.backlog.push_back(Event::Track {
                    id: *id,
                    info: info.clone(),
                });
            }
            if let Some(p) = t.group_start {
                start = start.min(p);
            }
            self.resume.insert(*id);
        }
        // The first group each track will deliver, to count what is skipped.
        let mut first_group: BTreeMap<u32, u64> = BTreeMap::new();
        for pos in start..log.next() {
            if let Some(Entry {
                event: Event::Frame {
                    id, keyframe: true, ..
                },
                group,
                ..
            }) = log.get(pos)
            {
                first_group.entry(*id).or_insert(*group);
            }
        }
        let mut skipped = 0;
        for (id, t) in &log.tracks {
            let (Some(latest), Some(&seen)) = (t.group, self.delivered.get(id)) else {
                continue;
            };
            let first = first_group.get(id).copied().unwrap_or(latest + 1);
            skipped += first.saturating_sub(seen);
        }
        if log.ended && start == log.next() {
            // Nothing to resume: deliver the end.
            start = log.next().saturating_sub(1).max(log.first);
        }
        self.pos = start;
        skipped
    }

    /// The next event; waits for one. Never slows the producer.
    pub async fn recv(&mut self) -> Received<I, T> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                return Received::Event(e);
            }
            self.published.borrow_and_update();
            {
                let shared = self.shared.clone();
                let log = shared.lock();
                if self.pos < log.first {
                    let from = self.pos;
                    let groups = self.resync(&log);
                    self.skipped_groups += groups;
                    return Received::Skipped {
                        groups,
                        events: self.pos.saturating_sub(from),
                    };
                }
                while let Some(entry) = log.get(self.pos) {
                    self.pos += 1;
                    if let Some(e) = self.filter(entry) {
                        return Received::Event(e);
                    }
                }
                if log.ended {
                    return Received::Closed;
                }
            }
            // The sender lives in `shared`, which this consumer keeps
            // alive: `changed` cannot fail.
            let _ = self.published.changed().await;
        }
    }

    /// The event at `pos` for this consumer, or `None` when it must be
    /// skipped (frames before a track's resume point).
    fn filter(&mut self, entry: &Entry<I, T>) -> Option<Event<I, T>> {
        if let Event::Frame { id, keyframe, .. } = &entry.event {
            if self.resume.contains(id) {
                if !keyframe {
                    return None;
                }
                self.resume.remove(id);
            }
            self.delivered.insert(*id, entry.group + 1);
        }
        Some(entry.event.clone())
    }
}

#[cfg(test)]
mod tests;
