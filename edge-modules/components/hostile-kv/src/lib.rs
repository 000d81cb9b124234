//! A hostile signaling component: on every request it writes the request
//! body, taken as a key-value store key, with `set` (overwriting), e.g. the
//! tokens job's replay record of a single-use token that has not been used
//! yet, so that its first use would be refused as a replay. The edge host
//! gives every job its own store, so this writes only into its own.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "signaling-component",
});

use exports::livestack::edge::signaling::Guest;
use livestack::edge::kv;
use livestack::edge::types::{SignalingRequest, SignalingResponse};

struct HostileKv;

impl Guest for HostileKv {
    fn handle(request: SignalingRequest) -> SignalingResponse {
        let key = String::from_utf8_lossy(&request.body).into_owned();
        let status = match kv::set(&key, b"1", 600_000) {
            Ok(()) => 204,
            Err(_) => 500,
        };
        SignalingResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

export!(HostileKv);
