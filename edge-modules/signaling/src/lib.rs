//! Edge signaling: WHIP/WHEP/WebTransport session set-up answered with a
//! redirect and a fresh session token.
//!
//! The edge never carries media and never parses SDP. For each set-up
//! request it decides, purely:
//!
//! 1. is the request well-formed (path, method, `Content-Type`, size);
//! 2. is the bearer token valid for this stream and access
//!    (`livestack-tokens`: CTA-5007 CAT or JWT; RFC 6750 challenges);
//! 3. which node takes the session (`livestack-routing`: placement,
//!    nearest healthy region, rendezvous hashing with bounded load);
//! 4. the answer: `307 Temporary Redirect` to that node with a freshly
//!    minted, short-lived session token, or a refusal.
//!
//! No IO, no clocks, no randomness: the caller passes the current time, the
//! client's location, the registry view and a random session id in
//! [`Context`] (the quinn-proto split: this crate is the protocol core, the
//! gateway component and the edge host are its drivers).
//!
//! # Endpoints
//!
//! | request | success | refusals |
//! |---|---|---|
//! | `POST /whip/NAME`, `Content-Type: application/sdp`, `Authorization: Bearer T` (publish) | 307, `Location: <node>/whip/NAME?token=S` | 400, 401, 403, 405, 413, 415, 503 |
//! | `POST /whep/NAME` (same headers, play) | 307, `Location: <node>/whep/NAME?token=S` | as WHIP, plus 409 when the stream is not live |
//! | `POST /wt/NAME` or `GET /wt/NAME?token=T` (`access=publish` for publishers, play by default) | 200 JSON `{"url", "token", "certificateHashes"?}` | as WHEP |
//! | `POST /rooms/ROOM/publish/ID` (publish token for the room `ROOM`) and `POST /rooms/ROOM/subscribe/ID` (play token for it) | 307, `Location: <node>/rooms/ROOM/publish/ID?token=S` (resp. `subscribe`): the room's node, by rendezvous hashing of `ROOM` over every healthy node whatever the client's location (a room lives on one node) | as WHIP |
//! | `OPTIONS` on any of them | 204 with CORS and `Accept-Post: application/sdp` | |
//!
//! # Why the session token is in the `Location` URL
//!
//! A 307 keeps the method and body (RFC 9110 §15.4.8), so the client
//! re-sends its SDP offer to the node, which RFC 9725 (section "Load
//! Balancing and Redirections") allows WHIP endpoints to do. Browsers drop
//! the `Authorization` header when `fetch` follows a redirect to another
//! origin (the Fetch standard's "CORS-non-wildcard request-header name"
//! rule), and a node is another origin than the edge. The token the node
//! needs therefore travels in the query of the `Location` URL. It is scoped
//! to one stream and one access, bound to the node (its `aud` is the node
//! id) and lives [`SESSION_TOKEN_TTL_S`] seconds, so a leaked URL is worth
//! little.
//!
//! # Example
//!
//! ```
//! use livestack_signaling::{Context, Request, handle};
//! # fn demo(ctx: &Context<'_>, token: &str) {
//! let answer = handle(
//!     &Request {
//!         method: "POST".into(),
//!         path: "/whep/cam1".into(),
//!         headers: vec![
//!             ("content-type".into(), "application/sdp".into()),
//!             ("authorization".into(), format!("Bearer {token}")),
//!         ],
//!         body_len: 1200,
//!     },
//!     ctx,
//! );
//! // 307 with a Location on the node, or a refusal (401, 409, 503, ...).
//! # let _ = answer;
//! # }
//! ```

mod context;
mod http;
mod refusal;
mod session;

pub use context::{Context, NodeEndpoint, SessionConfig};
pub use http::{REALM, REASON_HEADER, Request, Response};
pub use refusal::{NOT_LIVE_RETRY_AFTER_S, Refusal, UNAVAILABLE_RETRY_AFTER_S};
pub use session::{Endpoint, handle};

/// Largest SDP offer accepted, in bytes. A browser offer with three
/// simulcast layers, audio and a data channel is about 6–10 KiB; 64 KiB
/// leaves room for many candidates while bounding what a client can make
/// the edge accept.
pub const MAX_OFFER_BYTES: u64 = 64 * 1024;

/// Default lifetime of a minted session token, in seconds: long enough to
/// follow the redirect and finish ICE/DTLS (or the WebTransport handshake),
/// short enough that a leaked `Location` URL is useless soon after.
pub const SESSION_TOKEN_TTL_S: u64 = 60;

#[cfg(test)]
mod tests;
