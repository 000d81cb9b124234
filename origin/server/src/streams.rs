//! Live streams: the registry of broadcasts the origin serves, and the one
//! task per stream that owns its packager.
//!
//! Ownership: the stream's task owns its [`Broadcast`] (`&mut`, no lock)
//! and publishes immutable snapshots after every change: one
//! [`watch`] of an [`Arc<StreamSnapshot>`] per stream (renditions,
//! readiness, the rendered multivariant playlist) and one of an
//! [`Arc<RenditionSnapshot>`] per rendition (its playlist, parts and
//! segments). HTTP handlers read the newest snapshot and wait on the watch
//! of the one rendition they serve, so a request held for a video part is
//! not woken by audio parts; they never take a lock the packager holds
//! while it works (a watch only locks to swap the `Arc`). Playlist text is
//! rendered at most once per snapshot.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use bytes::Bytes;
use livestack_packager::{
    Broadcast, BroadcastConfig, BroadcastEvent, Continuation, PackagerConfig, Rendition,
    RenditionSnapshot,
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::{
    config::HlsConfig,
    fanout::{BroadcastConsumer, BroadcastSubscriber, MediaEvent, Received},
    metrics::{Metrics, RenditionLabel, RenditionLabels},
};

/// What readers see of a stream, replaced (never mutated) on each change of
/// its renditions, readiness or end.
#[derive(Debug, Default)]
pub struct StreamSnapshot {
    /// Every rendition, each with the watch of its own snapshots.
    pub renditions: BTreeMap<Rendition, watch::Receiver<Arc<RenditionSnapshot>>>,
    /// True when a client can start: every rendition has a part (see
    /// [`Broadcast::ready`]).
    pub ready: bool,
    /// The publisher is gone; playlists carry EXT-X-ENDLIST.
    pub ended: bool,
    /// The multivariant playlist, rendered when ready or ended (`None`
    /// before, or when the stream ended before any media).
    pub multivariant: Option<Bytes>,
}

impl StreamSnapshot {
    /// The newest snapshot of rendition `r`, if it exists.
    pub fn rendition(&self, r: Rendition) -> Option<Arc<RenditionSnapshot>> {
        self.renditions.get(&r).map(|rx| rx.borrow().clone())
    }
}

/// One live (or recently ended) stream: its name and its snapshots.
#[derive(Debug)]
pub struct Stream {
    /// The broadcast NAME.
    pub name: String,
    /// This publisher session's id: the `SESSION` path component of every
    /// init, part and segment URI (`/live/NAME/R/SESSION/…`, lower-case
    /// hex). The start time in Unix milliseconds, moved past the previous
    /// session of the same name if the clock says otherwise, so a URI
    /// served `immutable` is never reused for other bytes after a
    /// reconnect.
    pub session: u64,
    /// Where the broadcast comes from.
    pub source: Source,
    snapshot: watch::Sender<Arc<StreamSnapshot>>,
    /// Where a successor continues, kept current by the owner after every
    /// change (cheaper than a new snapshot per part): next MSN and
    /// discontinuity sequence.
    next_msn: std::sync::atomic::AtomicU64,
    next_discontinuity_sequence: std::sync::atomic::AtomicU64,
    /// Woken when a new session of the name replaces this one.
    superseded: tokio::sync::Notify,
}

impl Stream {
    /// The newest stream snapshot.
    pub fn snapshot(&self) -> Arc<StreamSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that changes whenever the stream snapshot changes (a
    /// rendition appears, readiness, bit rates at segment ends, the end).
    pub fn watch(&self) -> watch::Receiver<Arc<StreamSnapshot>> {
        self.snapshot.subscribe()
    }

    /// True once the publisher is gone.
    pub fn ended(&self) -> bool {
        self.snapshot.borrow().ended
    }

    /// Where a session that continues this one starts (see
    /// [`Broadcast::continuation`]), as of the owner's last change.
    pub fn continuation(&self) -> Continuation {
        use std::sync::atomic::Ordering::Acquire;
        Continuation {
            next_msn: self.next_msn.load(Acquire),
            discontinuity_sequence: self.next_discontinuity_sequence.load(Acquire),
        }
    }

    fn set_continuation(&self, c: Continuation) {
        use std::sync::atomic::Ordering::Release;
        self.next_msn.fetch_max(c.next_msn, Release);
        self.next_discontinuity_sequence
            .fetch_max(c.discontinuity_sequence, Release);
    }
}

/// Ended streams kept at most (each is served with `EXT-X-ENDLIST` for the
/// linger time, holding its playlist window): beyond this, the oldest ended
/// ones are forgotten early, so publishers cycling through names cannot
/// grow the registry without bound. Live streams are capped by
/// [`SrtConfig::max_publishers`](crate::config::SrtConfig::max_publishers).
pub const MAX_ENDED_STREAMS: usize = 1024;

/// Every stream this origin serves. The map is read-mostly (a lookup per
/// request, a write per publish and per forgotten stream): readers load the
/// current map without a lock ([`ArcSwap`]); a writer copies it and swaps
/// the copy in.
#[derive(Debug)]
pub struct Streams {
    map: ArcSwap<HashMap<String, Arc<Stream>>>,
    hls: HlsConfig,
    metrics: Arc<Metrics>,
    /// Egresses besides LL-HLS, told of every broadcast that starts.
    egresses: ArcSwap<Vec<Arc<dyn Egress>>>,
}

/// An egress besides LL-HLS (Media over QUIC; WebRTC next) that serves
/// every broadcast the origin ingests, each from its own consumer of the
/// broadcast's generic relay ([`crate::fanout`]).
pub trait Egress: Send + Sync + std::fmt::Debug {
    /// Publisher session `session` of broadcast `name` started, from
    /// `source`: subscribe to `media` (a late consumer starts at each
    /// track's latest keyframe) and serve it until its `End`. Called on the
    /// ingest's task: must return at once (spawn the work).
    fn broadcast_started(
        &self,
        name: &str,
        session: u64,
        source: &Source,
        media: &BroadcastSubscriber,
    );
}

/// Where a broadcast this origin serves comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A publisher of this node (SRT, the built-in test source).
    Ingest,
    /// Pulled from the origin node `node` that holds its publisher
    /// ([`crate::relay`]). Never offered to other origins' relay sessions,
    /// so a relay chain is one hop long by construction.
    Relay {
        /// The holding node's id.
        node: String,
    },
}

impl Streams {
    /// An empty registry.
    pub fn new(hls: HlsConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            map: ArcSwap::default(),
            hls,
            metrics,
            egresses: ArcSwap::default(),
        })
    }

    /// Adds an egress: it is told of every broadcast that starts from now
    /// on.
    pub fn add_egress(&self, egress: Arc<dyn Egress>) {
        self.egresses.rcu(|list| {
            let mut list = Vec::clone(list);
            list.push(egress.clone());
            list
        });
    }

    /// The stream called `name`, if live or lingering after its end.
    pub fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.map.load().get(name).cloned()
    }

    /// Names of the streams that are live now.
    pub fn live_names(&self) -> Vec<String> {
        let map = self.map.load();
        let mut names: Vec<String> = map
            .values()
            .filter(|s| !s.ended())
            .map(|s| s.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Forgets session `session` of `name` at once instead of after the
    /// linger time (a relayed stream nobody watches: the next viewer pulls
    /// it afresh). Its readers see it end.
    pub fn forget(&self, name: &str, session: u64) {
        self.map.rcu(|map| {
            let mut map = HashMap::clone(map);
            if map.get(name).is_some_and(|s| s.session == session) {
                map.remove(name);
            }
            map
        });
    }

    /// The HLS settings.
    pub fn hls_config(&self) -> &HlsConfig {
        &self.hls
    }

    /// Starts serving `name` from the broadcast `media` (replacing an ended
    /// stream of the same name): spawns the task that owns its packager
    /// until the broadcast ends, and tells every other [`Egress`].
    ///
    /// A stream that replaces one of the same name (a reconnecting
    /// publisher within the linger time) continues its playlists: the Media
    /// Sequence Numbers go on past the old ones and the first new segment
    /// carries `EXT-X-DISCONTINUITY` (RFC 8216bis §6.2.1), and its media URIs
    /// name a new session, so neither an `immutable` cache entry nor a
    /// player that stayed mixes the two sessions' bytes.
    pub fn start(self: &Arc<Self>, name: &str, media: &BroadcastSubscriber) -> Arc<Stream> {
        self.start_from(name, Source::Ingest, media)
    }

    /// [`start`](Self::start) for a broadcast from `source`.
    pub fn start_from(
        self: &Arc<Self>,
        name: &str,
        source: Source,
        media: &BroadcastSubscriber,
    ) -> Arc<Stream> {
        // Subscribed before anything is published: the packager sees every
        // frame.
        let consumer = media.subscribe();
        let previous = self.get(name);
        let now_ms = u64::try_from(unix_ms(SystemTime::now())).unwrap_or(0);
        let session = match &previous {
            Some(p) => now_ms.max(p.session.saturating_add(1)),
            None => now_ms,
        };
        let continues = previous.as_ref().map(|p| p.continuation());
        // A first session starts at MSN 0 and discontinuity sequence 0.
        let start = continues.unwrap_or_default();
        let stream = Arc::new(Stream {
            name: name.to_owned(),
            session,
            source: source.clone(),
            snapshot: watch::channel(Arc::new(StreamSnapshot::default())).0,
            next_msn: start.next_msn.into(),
            next_discontinuity_sequence: start.discontinuity_sequence.into(),
            superseded: tokio::sync::Notify::new(),
        });
        if let Some(p) = &previous {
            // Its owner, waiting out the reconnect grace, stops without
            // ending the playlists: this session continues them.
            p.superseded.notify_one();
        }
        self.map.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(name.to_owned(), stream.clone());
            let mut ended: Vec<(u64, String)> = map
                .values()
                .filter(|s| s.ended())
                .map(|s| (s.session, s.name.clone()))
                .collect();
            if ended.len() > MAX_ENDED_STREAMS {
                ended.sort_unstable();
                for (_, name) in &ended[..ended.len() - MAX_ENDED_STREAMS] {
                    map.remove(name);
                }
            }
            map
        });
        for egress in self.egresses.load().iter() {
            egress.broadcast_started(name, session, &source, media);
        }
        let this = self.clone();
        let s = stream.clone();
        let config = self.broadcast_config(session, continues);
        tokio::spawn(async move {
            let owner = Owner {
                broadcast: Broadcast::new(config),
                renditions: BTreeMap::new(),
                metrics: this.metrics.clone(),
                ready: false,
                grace: this.hls.reconnect_grace,
            };
            owner.run(&s, consumer).await;
            tokio::time::sleep(this.hls.linger).await;
            let mut forgotten = false;
            this.map.rcu(|map| {
                let mut map = HashMap::clone(map);
                forgotten = map.get(&s.name).is_some_and(|cur| Arc::ptr_eq(cur, &s));
                if forgotten {
                    map.remove(&s.name);
                }
                map
            });
            if forgotten {
                debug!(stream = %s.name, "forgotten after linger");
            }
        });
        stream
    }

    fn broadcast_config(&self, session: u64, continues: Option<Continuation>) -> BroadcastConfig {
        BroadcastConfig {
            packager: PackagerConfig {
                part_target: self.hls.part_target,
                segment_target: self.hls.segment_target,
                max_segment: self.target_duration(),
            },
            target_duration: self.target_duration(),
            window_segments: self.hls.window_segments,
            session,
            continues,
        }
    }

    /// EXT-X-TARGETDURATION: twice the segment target, whole seconds.
    pub fn target_duration(&self) -> Duration {
        Duration::from_secs((self.hls.segment_target * 2).as_secs_f64().ceil() as u64)
    }
}

/// The task-local owner of one stream's packager.
struct Owner {
    broadcast: Broadcast,
    renditions: BTreeMap<Rendition, watch::Sender<Arc<RenditionSnapshot>>>,
    metrics: Arc<Metrics>,
    ready: bool,
    /// [`HlsConfig::reconnect_grace`].
    grace: Duration,
}

impl Owner {
    async fn run(mut self, stream: &Stream, mut consumer: BroadcastConsumer) {
        loop {
            let event = match consumer.recv().await {
                Received::Event(e) => e,
                Received::Skipped { groups, events } => {
                    warn!(stream = %stream.name, groups, events, "packager fell behind; resumed at the newest group");
                    self.metrics.consumer_lagged_events.inc_by(events);
                    self.metrics.consumer_skipped_groups.inc_by(groups);
                    self.broadcast.handle_loss_all(Instant::now());
                    self.publish(stream);
                    continue;
                }
                Received::Closed => MediaEvent::End,
            };
            let now = Instant::now();
            match event {
                MediaEvent::Track { id, params } => self.broadcast.handle_track(id, params, now),
                MediaEvent::Frame { id, frame } => {
                    self.broadcast
                        .handle_frame(id, frame, unix_ms(SystemTime::now()), now)
                }
                MediaEvent::Loss { id } => self.broadcast.handle_loss(id, now),
                MediaEvent::End => {
                    stream.set_continuation(self.broadcast.continuation());
                    if !self.grace.is_zero() {
                        let superseded = tokio::select! {
                            () = stream.superseded.notified() => true,
                            () = tokio::time::sleep(self.grace) => false,
                        };
                        if superseded {
                            // The new session continues these playlists;
                            // readers held on this one are released (their
                            // watch closes) and reload the new one.
                            info!(stream = %stream.name, "publisher came back: continued by its new session");
                            return;
                        }
                    }
                    self.broadcast.finish(Instant::now());
                    self.publish(stream);
                    info!(stream = %stream.name, "stream ended");
                    return;
                }
            }
            self.publish(stream);
        }
    }

    /// Drains the broadcast's events and publishes new snapshots: every
    /// rendition's (its rendition reports may have changed), waking only
    /// the waiters of the renditions that changed themselves.
    fn publish(&mut self, stream: &Stream) {
        let mut changed: Vec<Rendition> = Vec::new();
        let mut stream_changed = false;
        while let Some(event) = self.broadcast.poll_event() {
            match event {
                BroadcastEvent::RenditionAdded { .. } => stream_changed = true,
                BroadcastEvent::Part { rendition, .. } => {
                    self.metrics
                        .parts
                        .get_or_create(&RenditionLabels {
                            rendition: RenditionLabel(rendition),
                        })
                        .inc();
                }
                BroadcastEvent::Segment { rendition } => {
                    // New bit rates for the multivariant playlist.
                    stream_changed = true;
                    self.metrics
                        .segments
                        .get_or_create(&RenditionLabels {
                            rendition: RenditionLabel(rendition),
                        })
                        .inc();
                }
                BroadcastEvent::PlaylistChanged { rendition } if !changed.contains(&rendition) => {
                    changed.push(rendition);
                }
                _ => {}
            }
        }
        let ready = self.broadcast.ready();
        let ended = self.broadcast.ended();
        stream_changed |= ready != self.ready || ended;
        self.ready = ready;
        if changed.is_empty() && !stream_changed {
            return;
        }
        let renditions: Vec<Rendition> = self.broadcast.renditions().map(|(r, _)| r).collect();
        for r in renditions {
            let Some(snapshot) = self.broadcast.snapshot(r) else {
                continue;
            };
            let snapshot = Arc::new(snapshot);
            match self.renditions.get(&r) {
                Some(tx) if changed.contains(&r) => {
                    tx.send_replace(snapshot);
                }
                // Only the rendition reports changed: readers asking from
                // now on get them, held requests stay asleep.
                Some(tx) => {
                    tx.send_if_modified(|cur| {
                        *cur = snapshot;
                        false
                    });
                }
                None => {
                    self.renditions.insert(r, watch::channel(snapshot).0);
                    stream_changed = true;
                }
            }
        }
        if stream_changed {
            let multivariant = (ready || ended)
                .then(|| self.broadcast.multivariant())
                .flatten()
                .map(Bytes::from);
            stream.snapshot.send_replace(Arc::new(StreamSnapshot {
                renditions: self
                    .renditions
                    .iter()
                    .map(|(r, tx)| (*r, tx.subscribe()))
                    .collect(),
                ready,
                ended,
                multivariant,
            }));
        }
        if !changed.is_empty() {
            stream.set_continuation(self.broadcast.continuation());
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
