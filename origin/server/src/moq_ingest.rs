//! Media over QUIC ingest: broadcasts a MoQ session publishes become
//! streams of this origin, served on every egress (LL-HLS, MoQ, relay)
//! like an SRT publish.
//!
//! A client (the `moq` CLI, a browser with `@moq/publish`, any moq-lite or
//! MoQ Transport publisher) announces broadcast `NAME` on a session of the
//! `--webtransport` port. The origin then admits it exactly as an SRT
//! publish of `live/NAME`: the publisher cap
//! ([`SrtConfig::max_publishers`](crate::config::SrtConfig), shared with
//! SRT), authorization through the control plane with the session's
//! `?token=` (WebTransport URL; raw QUIC sessions carry none, so they
//! publish only where publishing is open), and the placement claim (a name
//! live elsewhere is refused). Outcomes are counted in
//! `livestack_origin_moq_publishes_total{outcome}`.
//!
//! # Media format
//!
//! `hang` 0.21: the `catalog.json` track, then each video and audio
//! rendition's track in the legacy container (a varint timestamp in
//! microseconds, then the codec payload):
//!
//! - H.264 as `avc1` (length-prefixed NAL units, the `avcC` record as the
//!   catalog `description`) or `avc3` (Annex B with in-band parameter
//!   sets); H.265 as `hev1` (Annex B). Parameter sets, access unit
//!   delimiters and keyframes are handled as for MPEG-TS
//!   ([`AccessUnitIngest`]).
//! - AAC with its AudioSpecificConfig as `description`; frame times are
//!   kept on a 1,024-sample grid (the container rounds them to
//!   microseconds).
//!
//! hang carries presentation times only, so decoding time = presentation
//! time: a video frame whose time is not after the previous one's (a
//! B-frame) is dropped and counted in
//! `livestack_origin_moq_ingest_frames_refused_total` — publish without
//! B-frames (`-bf 0`; browsers' encoders use none). Other codecs and
//! containers (CMAF, LOC) are refused with a reason in the log.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hang::catalog::{AudioCodec, Container, VideoCodec as HangVideoCodec};
use livestack_media::{
    ingest::{AccessUnitIngest, IngestEvent},
    model::{
        AudioCodec as OurAudioCodec, AudioParams, Frame, MediaTime, Timescale, TrackParams,
        VideoCodec,
    },
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::{
    cluster::{Publish, Refusal},
    control::ControlError,
    fanout::{self, MediaEvent},
    moq::MICROS,
    srt::{IngestContext, PublisherSlot},
};

/// How long an announced broadcast has to deliver its catalog.
pub const CATALOG_TIMEOUT: Duration = Duration::from_secs(10);

/// How far behind its newest group an ingest subscription starts: what a
/// publisher sent before the origin subscribed (its first groups) is
/// ingested too.
pub const PUBLISHER_BACKLOG: Duration = Duration::from_secs(10);

/// Broadcasts one session may publish at once.
pub const MAX_BROADCASTS_PER_SESSION: usize = 4;

/// Events buffered between a publish's track readers and its broadcast.
const TRACK_EVENTS: usize = 1024;

/// Samples per AAC frame.
const AAC_FRAME: i64 = 1024;

/// Watches what the session behind `announced` publishes and ingests each
/// broadcast it announces, authorized with `token`, until the session
/// ends (the caller drops this future).
pub(crate) async fn run(
    announced: moq_net::origin::Producer,
    token: Option<String>,
    ctx: Arc<IngestContext>,
) {
    let consumer = announced.consume();
    let mut updates = consumer.announced();
    let mut publishing = tokio::task::JoinSet::new();
    while let Some(update) = updates.next().await {
        while publishing.try_join_next().is_some() {}
        if update.kind != moq_net::announce::Kind::Announced {
            continue;
        }
        let name = update.prefix.as_str().to_owned();
        if !valid_name(&name) {
            count(&ctx, "bad_name");
            warn!(stream = %name, "MoQ publish refused: not a stream name");
            continue;
        }
        if publishing.len() >= MAX_BROADCASTS_PER_SESSION {
            count(&ctx, "over_capacity");
            warn!(stream = %name, "MoQ publish refused: the session publishes as many broadcasts as it may");
            continue;
        }
        publishing.spawn(publish(consumer.clone(), name, token.clone(), ctx.clone()));
    }
}

/// A stream name: one path segment of at most 128 bytes of letters,
/// digits, `-`, `_` and `.` (not only dots).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.bytes().all(|b| b == b'.')
}

fn count(ctx: &IngestContext, outcome: &str) {
    ctx.metrics
        .moq_publishes
        .get_or_create(&vec![("outcome", outcome.to_owned())])
        .inc();
}

/// Admits and ingests broadcast `name` of the session.
async fn publish(
    session: moq_net::origin::Consumer,
    name: String,
    token: Option<String>,
    ctx: Arc<IngestContext>,
) {
    let Some(_slot) = PublisherSlot::take(&ctx.publishing, ctx.limits.max_publishers) else {
        count(&ctx, "over_capacity");
        warn!(stream = %name, "MoQ publish refused: this node has as many publishers as it takes");
        return;
    };
    let ticket = match ctx
        .node
        .begin_publish(&name, token.as_deref(), Publish::over("moq"))
        .await
    {
        Ok(t) => t,
        Err(e) => {
            let outcome = match e {
                Refusal::Control(ControlError::Unauthorized { .. }) => "unauthorized",
                Refusal::Control(ControlError::Forbidden { .. }) => "forbidden",
                Refusal::Control(ControlError::AlreadyLive { .. }) => "conflict",
                _ => "unavailable",
            };
            count(&ctx, outcome);
            warn!(stream = %name, reason = %e, "MoQ publish refused");
            return;
        }
    };
    let reason = match ingest(&session, &name, &ticket, &ctx).await {
        Ok(reason) => reason,
        Err(e) => {
            count(&ctx, "bad_catalog");
            warn!(stream = %name, error = %e, "MoQ publish refused");
            "refused"
        }
    };
    ctx.node.end_publish(&ticket).await;
    info!(stream = %name, reason, "MoQ publisher gone");
}

/// Why a MoQ publish was not ingested.
#[derive(Debug, thiserror::Error)]
enum IngestError {
    #[error("timed out waiting for the {0}")]
    Timeout(&'static str),
    #[error("moq: {0}")]
    Moq(moq_net::Error),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("no video or audio rendition this origin can package")]
    NothingUsable,
}

/// Reads the broadcast into a stream until it ends; returns why it ended.
async fn ingest(
    session: &moq_net::origin::Consumer,
    name: &str,
    ticket: &crate::cluster::PublishTicket,
    ctx: &IngestContext,
) -> Result<&'static str, IngestError> {
    let broadcast = tokio::time::timeout(CATALOG_TIMEOUT, session.routed_broadcast(name))
        .await
        .map_err(|_| IngestError::Timeout("broadcast"))?
        .map_err(IngestError::Moq)?;
    let mut catalog = hang::Catalog::<()>::subscribe(&broadcast)
        .await
        .map_err(|e| IngestError::Catalog(e.to_string()))?;
    let described = tokio::time::timeout(CATALOG_TIMEOUT, catalog.next())
        .await
        .map_err(|_| IngestError::Timeout("catalog"))?
        .map_err(|e| IngestError::Catalog(e.to_string()))?
        .ok_or_else(|| IngestError::Catalog("the catalog track ended".into()))?;

    let (events, mut received) = mpsc::channel(TRACK_EVENTS);
    let mut readers = tokio::task::JoinSet::new();
    let mut id = 0u32;
    for (track, config) in &described.video.renditions {
        id += 1;
        match video_codec(config) {
            Ok(codec) => {
                readers.spawn(read_video(
                    broadcast.clone(),
                    track.clone(),
                    id,
                    codec,
                    config.description.clone(),
                    events.clone(),
                    ctx.metrics.clone(),
                ));
            }
            Err(why) => warn!(stream = %name, %track, why, "MoQ video rendition not ingested"),
        }
    }
    for (track, config) in &described.audio.renditions {
        id += 1;
        match audio_params(config) {
            Ok(params) => {
                readers.spawn(read_audio(
                    broadcast.clone(),
                    track.clone(),
                    id,
                    params,
                    events.clone(),
                    ctx.metrics.clone(),
                ));
            }
            Err(why) => warn!(stream = %name, %track, why, "MoQ audio rendition not ingested"),
        }
    }
    drop(events);
    if readers.is_empty() {
        return Err(IngestError::NothingUsable);
    }
    count(ctx, "accepted");
    info!(stream = %name, source = ?ticket.source, "MoQ publisher connected");
    let (producer, subscriber) = fanout::broadcast();
    ctx.streams.start(name, &subscriber);
    drop(subscriber);
    ctx.metrics.publishers.inc();
    // Until every track reader is done (the broadcast ended or the
    // session went: what was received is delivered first) or a kick.
    let reason = loop {
        tokio::select! {
            ev = received.recv() => match ev {
                Some(ev) => producer.send(ev),
                None => break "closed",
            },
            () = ticket.kick.notified() => break "kicked",
        }
    };
    readers.abort_all();
    producer.send(MediaEvent::End);
    ctx.metrics.publishers.dec();
    ctx.metrics
        .sessions_ended
        .get_or_create(&vec![("reason", reason.to_owned())])
        .inc();
    Ok(reason)
}

/// The codec of a video rendition this origin packages.
fn video_codec(config: &hang::catalog::VideoConfig) -> Result<VideoCodec, &'static str> {
    if config.container != Container::Legacy {
        return Err("only the legacy hang container is ingested");
    }
    match &config.codec {
        HangVideoCodec::H264(_) => Ok(VideoCodec::H264),
        HangVideoCodec::H265(_) if config.description.is_none() => Ok(VideoCodec::H265),
        HangVideoCodec::H265(_) => Err("H.265 is ingested as hev1 (in-band parameter sets) only"),
        _ => Err("codec not packaged (H.264 and H.265 are)"),
    }
}

/// The parameters of an audio rendition this origin packages.
fn audio_params(config: &hang::catalog::AudioConfig) -> Result<AudioParams, &'static str> {
    if config.container != Container::Legacy {
        return Err("only the legacy hang container is ingested");
    }
    let AudioCodec::AAC(_) = &config.codec else {
        return Err("codec not packaged (AAC is)");
    };
    let decoder_config = config
        .description
        .clone()
        .ok_or("AAC without its AudioSpecificConfig")?;
    Ok(AudioParams {
        codec: OurAudioCodec::Aac,
        sample_rate: Timescale::new(config.sample_rate).ok_or("zero sample rate")?,
        channels: u8::try_from(config.channel_count).map_err(|_| "too many channels")?,
        samples_per_frame: AAC_FRAME as u32,
        codec_string: config.codec.to_string(),
        decoder_config: Bytes::clone(&decoder_config),
        language: None,
    })
}

/// Subscribes to `track` of `broadcast`; `None` (logged) if refused.
async fn subscribe(
    broadcast: &moq_net::broadcast::Consumer,
    track: &str,
) -> Option<moq_net::track::Ordered> {
    let consumer = match broadcast.track(track) {
        Ok(t) => t,
        Err(e) => {
            warn!(%track, error = %e, "MoQ publisher's track unavailable");
            return None;
        }
    };
    // Every group the publisher still holds, not only its newest: the
    // groups it sent between its announce and this subscription are part
    // of the stream.
    let subscription = moq_net::track::Subscription::default()
        .with_max_age(PUBLISHER_BACKLOG)
        .with_start(moq_net::track::Position::group(0));
    match consumer.subscribe(subscription).await {
        Ok(s) => Some(s.ordered()),
        Err(e) => {
            warn!(%track, error = %e, "MoQ publisher's track refused");
            None
        }
    }
}

/// The hang frame's presentation time on `timescale`.
fn frame_time(payload: Bytes, timescale: Timescale) -> Option<(MediaTime, Bytes)> {
    let frame = hang::container::Frame::decode(payload).ok()?;
    let micros = i64::try_from(frame.timestamp.as_micros()).ok()?;
    let pts = MediaTime::new(micros, MICROS).rebase(timescale).ok()?;
    Some((pts, frame.payload))
}

/// Sends `ev`; false once the broadcast is gone.
async fn send(events: &mpsc::Sender<MediaEvent>, ev: MediaEvent) -> bool {
    events.send(ev).await.is_ok()
}

/// Reads one video track: each hang frame is one access unit.
async fn read_video(
    broadcast: moq_net::broadcast::Consumer,
    track: String,
    id: u32,
    codec: VideoCodec,
    description: Option<Bytes>,
    events: mpsc::Sender<MediaEvent>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut units = AccessUnitIngest::new(id, codec);
    let length_prefixed = description.is_some();
    if let Some(record) = &description {
        match units.set_avc_config(record) {
            Ok(evs) => {
                for ev in evs {
                    if let IngestEvent::Track { id, params } = ev
                        && !send(&events, MediaEvent::Track { id, params }).await
                    {
                        return;
                    }
                }
            }
            Err(e) => {
                warn!(%track, error = %e, "MoQ video rendition refused: bad avcC description");
                return;
            }
        }
    }
    let Some(mut groups) = subscribe(&broadcast, &track).await else {
        return;
    };
    let mut last: Option<u64> = None;
    let mut last_pts: Option<MediaTime> = None;
    let mut refused_logged = false;
    while let Ok(Some(mut group)) = groups.next_group().await {
        if last.is_some_and(|l| group.sequence != l + 1)
            && !send(&events, MediaEvent::Loss { id }).await
        {
            return;
        }
        last = Some(group.sequence);
        while let Ok(Some(frame)) = group.read_frame().await {
            let Some((pts, payload)) = frame_time(frame.payload, Timescale::MPEG_TS) else {
                metrics.moq_ingest_frames_refused.inc();
                continue;
            };
            // moq-mux ends a group with an empty frame at the next
            // group's time: no access unit.
            if payload.is_empty() {
                continue;
            }
            if last_pts.is_some_and(|p| pts.ticks() <= p.ticks()) {
                metrics.moq_ingest_frames_refused.inc();
                if !refused_logged {
                    warn!(%track, "MoQ video frame refused: its time is not after the previous frame's (B-frames are not ingested over MoQ)");
                    refused_logged = true;
                }
                continue;
            }
            last_pts = Some(pts);
            let evs = if length_prefixed {
                units.push_length_prefixed(&payload, pts, pts)
            } else {
                units.push_annexb(&payload, pts, pts)
            };
            for ev in evs {
                let ev = match ev {
                    IngestEvent::Track { id, params } => MediaEvent::Track { id, params },
                    IngestEvent::Frame { id, frame } => MediaEvent::Frame { id, frame },
                    _ => continue,
                };
                if !send(&events, ev).await {
                    return;
                }
            }
        }
    }
    debug!(%track, "MoQ video track ended");
}

/// Reads one AAC track: each hang frame is one raw AAC frame of 1,024
/// samples.
async fn read_audio(
    broadcast: moq_net::broadcast::Consumer,
    track: String,
    id: u32,
    params: AudioParams,
    events: mpsc::Sender<MediaEvent>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let timescale = params.sample_rate;
    if !send(
        &events,
        MediaEvent::Track {
            id,
            params: TrackParams::Audio(params),
        },
    )
    .await
    {
        return;
    }
    let Some(mut groups) = subscribe(&broadcast, &track).await else {
        return;
    };
    let mut last: Option<u64> = None;
    let mut next: Option<MediaTime> = None;
    let duration = MediaTime::new(AAC_FRAME, timescale);
    while let Ok(Some(mut group)) = groups.next_group().await {
        if last.is_some_and(|l| group.sequence != l + 1) {
            next = None;
            if !send(&events, MediaEvent::Loss { id }).await {
                return;
            }
        }
        last = Some(group.sequence);
        while let Ok(Some(frame)) = group.read_frame().await {
            let Some((pts, data)) = frame_time(frame.payload, timescale) else {
                metrics.moq_ingest_frames_refused.inc();
                continue;
            };
            if data.is_empty() {
                continue;
            }
            // Back on the 1,024-sample grid the microsecond rounding left.
            let pts = match next {
                Some(n) if (pts.ticks() - n.ticks()).abs() <= AAC_FRAME / 2 => n,
                _ => pts,
            };
            next = pts.checked_add(duration).ok();
            let frame = Frame {
                pts,
                dts: pts,
                duration: Some(duration),
                keyframe: true,
                data,
            };
            if !send(&events, MediaEvent::Frame { id, frame }).await {
                return;
            }
        }
    }
    debug!(%track, "MoQ audio track ended");
}
