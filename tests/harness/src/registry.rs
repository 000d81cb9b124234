//! The origin registry for edge tests: in-process origins entered into a
//! control plane by the test itself (their `NodeInfo` and the streams'
//! placements), and viewer tokens for the edge.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use livestack_control::{ControlPlane, NodeInfo, NodeLoad, Placement, now_millis};
use livestack_tokens::{Access, KeySet, MintRequest, mint_cat};
use tokio::task::JoinHandle;

use crate::EDGE_TEST_KEYS;

/// Paris, WGS 84 degrees: the `eu-west` region of the tests.
pub const PARIS: (f64, f64) = (48.86, 2.35);
/// Washington, WGS 84 degrees: the `us-east` region of the tests.
pub const WASHINGTON: (f64, f64) = (38.90, -77.04);
/// Registry TTL of the records the tests write.
pub const NODE_TTL: Duration = Duration::from_secs(10);

/// The registry record of an origin node serving HTTP on `http`.
pub fn node(id: &str, region: &str, location: (f64, f64), http: SocketAddr) -> NodeInfo {
    let now = now_millis();
    NodeInfo {
        certificate_sha256: Vec::new(),
        id: id.to_owned(),
        region: region.to_owned(),
        location: Some(location),
        urls: BTreeMap::from([("http".to_owned(), format!("http://{http}"))]),
        load: NodeLoad {
            load: 0.1,
            ..NodeLoad::default()
        },
        draining: false,
        started_at: now,
        heartbeat_at: now,
    }
}

/// Writes each record with a fresh heartbeat (one heartbeat).
///
/// # Panics
/// If the control plane refuses.
pub async fn heartbeat(control: &dyn ControlPlane, nodes: &[NodeInfo]) {
    for n in nodes {
        let record = NodeInfo {
            heartbeat_at: now_millis(),
            ..n.clone()
        };
        control
            .register_node(&record, NODE_TTL)
            .await
            .expect("register node");
    }
}

/// Heartbeats every second in the background, as each node's agent would
/// (failures, e.g. the control plane being down, are ignored). Abort the
/// handle to stop.
pub fn spawn_heartbeats(control: Arc<dyn ControlPlane>, nodes: Vec<NodeInfo>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            for n in &nodes {
                let record = NodeInfo {
                    heartbeat_at: now_millis(),
                    ..n.clone()
                };
                let _ = control.register_node(&record, NODE_TTL).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// The placement of `stream` on `node_id` (session `<node_id>/<stream>`).
pub fn placement(stream: &str, node_id: &str) -> Placement {
    Placement {
        stream: stream.to_owned(),
        node_id: node_id.to_owned(),
        session_id: format!("{node_id}/{stream}"),
        since: now_millis(),
        bitrate_bps: 0,
        viewers: 0,
    }
}

/// Claims `stream` for `node_id` for a minute.
///
/// # Panics
/// If another session holds it.
pub async fn place(control: &dyn ControlPlane, stream: &str, node_id: &str) {
    control
        .claim_stream(&placement(stream, node_id), Duration::from_secs(60))
        .await
        .expect("claim stream");
}

/// Moves `stream` from `from` to `to` (release, then claim), as a
/// publisher moving between origins does.
///
/// # Panics
/// If the control plane refuses.
pub async fn move_placement(control: &dyn ControlPlane, stream: &str, from: &str, to: &str) {
    control
        .release_stream(stream, &placement(stream, from).session_id)
        .await
        .expect("release stream");
    place(control, stream, to).await;
}

/// A CTA-5007 play token for `stream`, valid ten minutes, signed with
/// [`EDGE_TEST_KEYS`].
pub fn play_token(stream: &str) -> String {
    token(stream, Access::Play)
}

/// A viewer token (CAT, [`EDGE_TEST_KEYS`]) for `stream` and `access`,
/// valid 10 minutes.
pub fn token(stream: &str, access: Access) -> String {
    let keys: KeySet = EDGE_TEST_KEYS.parse().expect("keys");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let req = MintRequest::for_stream(stream, access, now, 600, b"e2e-registry".to_vec())
        .expect("mint request");
    mint_cat(&req, &keys).expect("mint")
}

/// A loopback address nothing listens on (bound, then closed).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Sum of the samples of the metric lines starting with `prefix` in a
/// Prometheus text exposition.
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}
