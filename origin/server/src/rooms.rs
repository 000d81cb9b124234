//! SFU rooms: participants publish to and subscribe to each other over
//! WebRTC, talk over a data channel, and are told who joins, leaves and
//! speaks.
//!
//! A participant's publication is a broadcast of the media model named
//! `ROOM.PARTICIPANT`, admitted like a WHIP publish, so it also plays over
//! LL-HLS, MoQ and WHEP. The signaling is WHIP/WHEP-shaped (RFC 9725:
//! SDP offer in, `201 Created` with the answer, `Location`, `DELETE` to
//! end):
//!
//! | request | answer |
//! |---|---|
//! | `POST /rooms/ROOM/publish/ID` (offer with audio/video and a data channel; `Authorization: Bearer T`) | `201`, answer, `Location: /rooms/ROOM/publish/ID/SID`; the others are told `joined` |
//! | `POST /rooms/ROOM/subscribe/ID` (receive-only offer) | `201`, answer, `Location: /rooms/ROOM/subscribe/ID/SID`: participant `ID`'s media |
//! | `DELETE` either `Location`, with the same token | `200`; a publication's end tells the others `left` and ends their subscriptions to it |
//! | `GET /rooms/ROOM` | `200`, JSON: the room's participants on every node (the control plane's sessions) |
//!
//! Permissions are the control plane's stream keys **of the room's name**:
//! publishing needs a key that allows publishing `ROOM` (scope `publish`
//! or `both`, or the edge's publish session token for `ROOM`), subscribing
//! and listing one that allows playing it (`play` or `both`); a room without
//! keys is open like a stream without keys (never on a closed origin).
//! Membership is in the control plane: each publication is a publisher
//! session with `room = ROOM`, renewed by the node's heartbeat, so a
//! crashed node's participants expire with its TTL.
//!
//! Events go to every publishing participant on its data channel, as JSON
//! text messages (kept until the channel opens):
//!
//! - `{"event":"participants","you":ID,"participants":[…]}`, once, first;
//! - `{"event":"joined","participant":ID}`;
//! - `{"event":"left","participant":ID,"reason":R}` (`closed`: DELETE;
//!   `disconnected`: the peer went away or crashed and ICE timed out);
//! - `{"event":"message","from":ID,"text":T}`: a text message a
//!   participant sent on its data channel (at most [`MESSAGES_PER_SECOND`]
//!   per participant, [`livestack_sfu::MAX_MESSAGE_BYTES`] each);
//! - `{"event":"speaking","participant":ID}` (or `null`): the active
//!   speaker, the loudest participant above [`SPEAKING_DBOV`] by its RFC
//!   6464 audio levels, re-evaluated every [`SPEAKER_INTERVAL`].
//!
//! A room lives on one node: its participants must reach the same origin
//! (the edge's signaling sends `/rooms/ROOM/…` by the room's name).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use http::{Method, StatusCode};
use hyper::body::Incoming;
use livestack_sfu::{SessionId, WebRtc};
use serde_json::json;
use tracing::{debug, info};

use crate::{
    cluster::Publish,
    webrtc::{Body, Credentials, Whip, created, plain, read_offer},
};

/// Participants one room holds at most (each subscribes to every other:
/// the sessions grow with the square).
pub const MAX_PARTICIPANTS: usize = 32;

/// Rooms one node holds at most.
pub const MAX_ROOMS: usize = 1024;

/// Data-channel messages one participant may send per second; beyond,
/// they are dropped.
pub const MESSAGES_PER_SECOND: u32 = 20;

/// How often the active speaker is re-evaluated.
pub const SPEAKER_INTERVAL: Duration = Duration::from_millis(500);

/// Mean audio level over a [`SPEAKER_INTERVAL`] (dBov, the mean of the
/// packets' linear powers) above which a participant counts as speaking.
pub const SPEAKING_DBOV: f32 = -50.0;

/// The rooms held on this node.
#[derive(Debug)]
pub struct Rooms {
    webrtc: WebRtc,
    rooms: Mutex<HashMap<String, Room>>,
}

#[derive(Debug, Default)]
struct Room {
    /// Participant id → its publisher session (`None` while it is being
    /// admitted).
    members: BTreeMap<String, Option<SessionId>>,
    /// Per participant, over the current [`SPEAKER_INTERVAL`]: the sum of
    /// its packets' linear powers and their count.
    levels: HashMap<String, (f64, u32)>,
    speaker: Option<String>,
    evaluated: Option<Instant>,
}

impl Rooms {
    /// No rooms yet; events go out through `webrtc`.
    pub fn new(webrtc: WebRtc) -> Self {
        Self {
            webrtc,
            rooms: Mutex::default(),
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds participant `id`'s place in `room` while it is admitted;
    /// else the status (409, or 503 when full) and the reason.
    fn reserve(&self, room: &str, id: &str) -> Result<(), (StatusCode, &'static str)> {
        let mut rooms = self.rooms();
        if !rooms.contains_key(room) && rooms.len() >= MAX_ROOMS {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "this node holds as many rooms as it may",
            ));
        }
        let r = rooms.entry(room.to_owned()).or_default();
        if r.members.contains_key(id) {
            return Err((
                StatusCode::CONFLICT,
                "this participant is publishing in the room already",
            ));
        }
        if r.members.len() >= MAX_PARTICIPANTS {
            return Err((StatusCode::SERVICE_UNAVAILABLE, "the room is full"));
        }
        r.members.insert(id.to_owned(), None);
        Ok(())
    }

    /// Admission failed: forgets the place.
    fn release(&self, room: &str, id: &str) {
        let mut rooms = self.rooms();
        if let Some(r) = rooms.get_mut(room) {
            if r.members.get(id) == Some(&None) {
                r.members.remove(id);
            }
            if r.members.is_empty() {
                rooms.remove(room);
            }
        }
    }

    /// Participant `id` publishes as `session`: it is told who is there,
    /// the others that it joined.
    fn activate(&self, room: &str, id: &str, session: SessionId) {
        let others = {
            let mut rooms = self.rooms();
            let Some(r) = rooms.get_mut(room) else {
                return;
            };
            // Gone already (its session ended before it was activated).
            let Some(slot) = r.members.get_mut(id) else {
                return;
            };
            *slot = Some(session);
            sessions_except(r, id)
        };
        let names: Vec<&str> = others.iter().map(|(name, _)| name.as_str()).collect();
        self.send(
            session,
            json!({"event": "participants", "you": id, "participants": names}),
        );
        let joined = json!({"event": "joined", "participant": id});
        for (_, s) in &others {
            self.send(*s, joined.clone());
        }
        info!(room, participant = id, "room participant joined");
    }

    /// Participant `id` left (`reason`): the others are told.
    fn leave(&self, room: &str, id: &str, reason: &str) {
        let others = {
            let mut rooms = self.rooms();
            let Some(r) = rooms.get_mut(room) else {
                return;
            };
            if r.members.remove(id).is_none() {
                return;
            }
            r.levels.remove(id);
            if r.speaker.as_deref() == Some(id) {
                r.speaker = None;
            }
            let others = sessions_except(r, id);
            if r.members.is_empty() {
                rooms.remove(room);
            }
            others
        };
        let left = json!({"event": "left", "participant": id, "reason": reason});
        for (_, s) in &others {
            self.send(*s, left.clone());
        }
        info!(room, participant = id, reason, "room participant left");
    }

    /// True when `id` publishes in `room` now.
    fn has(&self, room: &str, id: &str) -> bool {
        self.rooms()
            .get(room)
            .is_some_and(|r| matches!(r.members.get(id), Some(Some(_))))
    }

    /// A chat message from `from` to the others.
    fn message(&self, room: &str, from: &str, text: &str) {
        let others = match self.rooms().get(room) {
            Some(r) => sessions_except(r, from),
            None => return,
        };
        let message = json!({"event": "message", "from": from, "text": text});
        for (_, s) in &others {
            self.send(*s, message.clone());
        }
    }

    /// An audio level of `id`; every [`SPEAKER_INTERVAL`] the loudest
    /// participant above [`SPEAKING_DBOV`] becomes the active speaker,
    /// announced to all when it changes.
    fn audio_level(&self, room: &str, id: &str, dbov: i8) {
        let (speaker, everyone) = {
            let mut rooms = self.rooms();
            let Some(r) = rooms.get_mut(room) else {
                return;
            };
            // Mean power over the interval: a voice's short bursts count
            // by their energy, silence (-127 dBov) weighs nothing.
            let (power, packets) = r.levels.entry(id.to_owned()).or_insert((0.0, 0));
            *power += 10f64.powf(f64::from(dbov) / 10.0);
            *packets += 1;
            let now = Instant::now();
            if r.evaluated
                .is_some_and(|t| now.duration_since(t) < SPEAKER_INTERVAL)
            {
                return;
            }
            r.evaluated = Some(now);
            let loudest = r
                .levels
                .drain()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(name, (power, n))| (name, 10.0 * (power / f64::from(n)).log10()))
                .filter(|(_, db)| *db > f64::from(SPEAKING_DBOV))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(name, _)| name);
            if loudest == r.speaker {
                return;
            }
            r.speaker.clone_from(&loudest);
            (loudest, sessions_except(r, ""))
        };
        let speaking = json!({"event": "speaking", "participant": speaker});
        for (_, s) in &everyone {
            self.send(*s, speaking.clone());
        }
    }

    fn send(&self, session: SessionId, event: serde_json::Value) {
        if !self.webrtc.send_text(session, event.to_string()) {
            debug!(session, "room event dropped: the WebRTC task is busy");
        }
    }
}

/// The active members of `r` other than `id`, with their sessions.
fn sessions_except(r: &Room, id: &str) -> Vec<(String, SessionId)> {
    r.members
        .iter()
        .filter(|(name, _)| name.as_str() != id)
        .filter_map(|(name, s)| s.map(|s| (name.clone(), s)))
        .collect()
}

/// A room participant's publication, as its WebRTC sink sees the room.
#[derive(Debug)]
pub struct Member {
    rooms: Arc<Rooms>,
    room: String,
    id: String,
    /// The start of the current one-second message window and the
    /// messages sent in it.
    window: (Instant, u32),
}

impl Member {
    /// A text message the participant sent on its data channel.
    pub fn message(&mut self, text: &str) {
        let now = Instant::now();
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        self.window.1 += 1;
        if self.window.1 > MESSAGES_PER_SECOND {
            debug!(room = %self.room, participant = %self.id, "room message dropped: rate");
            return;
        }
        self.rooms.message(&self.room, &self.id, text);
    }

    /// An RFC 6464 audio level of the participant's audio (dBov).
    pub fn audio_level(&mut self, dbov: i8) {
        self.rooms.audio_level(&self.room, &self.id, dbov);
    }

    /// The participant's publication ended.
    pub fn left(self, reason: &str) {
        self.rooms.leave(&self.room, &self.id, reason);
    }
}

/// Room and participant names: one path segment of at most 63 bytes of
/// letters, digits, `-` and `_` (the broadcast `ROOM.ID` is then a valid
/// stream name).
fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The broadcast a participant's publication is.
pub fn broadcast_name(room: &str, participant: &str) -> String {
    format!("{room}.{participant}")
}

/// Answers a request under `/rooms/` (`rest` is the path after it).
pub async fn handle(
    whip: &Whip,
    rest: &str,
    head: &http::request::Parts,
    body: Incoming,
) -> http::Response<Body> {
    let parts: Vec<&str> = rest.split('/').collect();
    let creds = Credentials::of(head);
    let token = creds.admitting();
    match (&head.method, parts.as_slice()) {
        (&Method::GET, [room]) if valid(room) => list(whip, room, token).await,
        (&Method::POST, [room, kind @ ("publish" | "subscribe"), id])
            if valid(room) && valid(id) =>
        {
            let offer = match read_offer(head, body).await {
                Ok(o) => o,
                Err(r) => return r,
            };
            if *kind == "publish" {
                join(whip, room, id, &offer, &creds).await
            } else {
                subscribe(whip, room, id, &offer, &creds).await
            }
        }
        (&Method::DELETE, [room, "publish" | "subscribe", id, session])
            if valid(room) && valid(id) =>
        {
            whip.delete(&broadcast_name(room, id), session, &creds)
                .await
        }
        (&Method::PATCH, [room, "publish" | "subscribe", id, session])
            if valid(room) && valid(id) =>
        {
            whip.patch(&broadcast_name(room, id), session, head, body, &creds)
                .await
        }
        _ => plain(StatusCode::NOT_FOUND, "not a room endpoint"),
    }
}

async fn join(
    whip: &Whip,
    room: &str,
    id: &str,
    offer: &str,
    creds: &Credentials,
) -> http::Response<Body> {
    let token = creds.admitting();
    let rooms = &whip.rooms;
    match rooms.reserve(room, id) {
        Ok(()) => {}
        Err((StatusCode::SERVICE_UNAVAILABLE, why)) => return crate::webrtc::busy(why),
        Err((status, why)) => return plain(status, why),
    }
    let member = Member {
        rooms: rooms.clone(),
        room: room.to_owned(),
        id: id.to_owned(),
        window: (Instant::now(), 0),
    };
    let publish = Publish {
        room: Some(room),
        ..Publish::over("room")
    };
    let name = broadcast_name(room, id);
    match whip
        .publish(&name, offer, token, publish, Some(member))
        .await
    {
        Ok((session, answer)) => {
            rooms.activate(room, id, session);
            let sid = format!("{session:x}");
            let location = creds.location(&format!("/rooms/{room}/publish/{id}/{sid}"));
            created(&location, &sid, answer)
        }
        Err(r) => {
            rooms.release(room, id);
            r
        }
    }
}

async fn subscribe(
    whip: &Whip,
    room: &str,
    id: &str,
    offer: &str,
    creds: &Credentials,
) -> http::Response<Body> {
    let token = creds.admitting();
    if let Err(r) = whip.authorize_play(room, token.as_deref()).await {
        return r;
    }
    if !whip.rooms.has(room, id) {
        return plain(StatusCode::NOT_FOUND, "no such participant in the room");
    }
    match whip
        .play_authorized(&broadcast_name(room, id), offer, token)
        .await
    {
        Ok((sid, answer)) => {
            let location = creds.location(&format!("/rooms/{room}/subscribe/{id}/{sid}"));
            created(&location, &sid, answer)
        }
        Err(r) => r,
    }
}

async fn list(whip: &Whip, room: &str, token: Option<String>) -> http::Response<Body> {
    if let Err(r) = whip.authorize_play(room, token.as_deref()).await {
        return r;
    }
    let sessions = match whip.node().room_sessions(room).await {
        Ok(s) => s,
        Err(e) => return crate::webrtc::busy(&e.to_string()),
    };
    let prefix = format!("{room}.");
    let participants: Vec<_> = sessions
        .iter()
        .filter_map(|s| {
            let id = s.stream.strip_prefix(&prefix)?;
            Some(json!({"participant": id, "node": s.node_id, "since": s.started_at}))
        })
        .collect();
    let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(
        json!({"room": room, "participants": participants}).to_string(),
    )));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid("standup-1") && valid("alice_2"));
        for bad in ["", "a.b", "a/b", "a b", &"x".repeat(64), "é"] {
            assert!(!valid(bad), "{bad:?}");
        }
        assert_eq!(broadcast_name("standup", "alice"), "standup.alice");
    }
}
