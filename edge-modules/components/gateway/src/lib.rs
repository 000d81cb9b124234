//! The livestack edge gateway: one WebAssembly component that exports
//! `wasi:http/incoming-handler` and imports nothing but standard WASI 0.2
//! (`wasi:http/outgoing-handler`, `wasi:cli/environment`, `wasi:clocks`,
//! `wasi:random`). The same artifact runs on the livestack edge host, on
//! `wasmtime serve` and on `jco serve` (Node.js), which the end-to-end test
//! `tests/tests/gateway_on_standard_hosts.rs` proves.
//!
//! It depends directly on the pure job crates (`livestack-tokens`,
//! `livestack-manifest`, `livestack-routing`, `livestack-signaling`), the
//! same code the single-job components wrap.
//!
//! # Routes
//!
//! | request | answer |
//! |---|---|
//! | `GET`/`HEAD /live/NAME/...` | token (`token` query parameter or `CTA-Common-Access-Token` header) verified for this URL and stream (CAT or JWT, play access); the same path fetched from `LIVESTACK_ORIGIN` with the token dropped and every other query parameter (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) kept; playlists (`.m3u8`) rewritten so every URI carries `token=...`; the origin's status, `Content-Type` and `Cache-Control`; media streamed through |
//! | `POST`/`OPTIONS /whip/NAME`, `/whep/NAME`, `/rooms/ROOM/{publish,subscribe}/ID`; `GET`/`POST`/`OPTIONS /wt/NAME` | `livestack-signaling`: 307 to the chosen node with a fresh session token, 401/403/409/503 refusals |
//! | anything else | 404 |
//!
//! Refusals carry `x-livestack-reason` and a one-line text body; tokens and
//! stack traces never appear in answers. Configuration: see [`config`].

pub mod answer;
pub mod auth;
pub mod config;
pub mod live;
pub mod registry;
pub mod signal;

use wstd::http::{Body, Error, Request, Response};

/// The `wasi:http/incoming-handler` export: routes one request. Always
/// answers with a response (refusals included), so the host never sees a
/// guest error.
#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    Ok(route(request).await)
}

async fn route(request: Request<Body>) -> Response<Body> {
    let config = match config::Config::from_env() {
        Ok(config) => config,
        Err(e) => return answer::refuse(&answer::Refusal::Config(e.to_string())),
    };
    let path = request.uri().path();
    if path.starts_with("/live/") {
        live::handle(request, &config).await
    } else if path.starts_with("/whip/")
        || path.starts_with("/whep/")
        || path.starts_with("/wt/")
        || path.starts_with("/rooms/")
    {
        signal::handle(request, &config).await
    } else {
        answer::refuse(&answer::Refusal::NotFound)
    }
}
