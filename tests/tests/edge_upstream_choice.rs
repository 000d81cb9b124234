//! How the edge picks the origin node for `/live/NAME/...` from the
//! control plane's registry, without media: by the client's location
//! headers when the stream has no placement; past an unreachable node to
//! the next-ranked one; `503` with `Retry-After` when no node can serve;
//! the configured origin when the registry lists no node. Real origins and
//! a real (in-memory) control plane; the unreachable nodes are closed
//! loopback ports.

use std::{sync::Arc, time::Duration};

use livestack_control::{ControlPlane, MemoryControlPlane};
use livestack_edge::{OriginNode, RegistryView};
use livestack_edge_server::{Edge, ORIGIN_NODE_HEADER};
use livestack_test_harness::{
    hls::HttpClient,
    registry::{PARIS, WASHINGTON, dead_addr, heartbeat, metric, node, place, play_token},
    start_edge_with, start_origin,
};

const REFRESH: Duration = Duration::from_millis(100);

async fn edge_with(default_origin: std::net::SocketAddr, control: Arc<dyn ControlPlane>) -> Edge {
    start_edge_with(default_origin, |c| {
        c.control = Some(control);
        c.registry_refresh = REFRESH;
    })
    .await
}

fn served_by(r: &livestack_test_harness::hls::Fetched) -> Option<&str> {
    r.headers
        .get(ORIGIN_NODE_HEADER)
        .map(|v| v.to_str().expect("ascii node id"))
}

/// Waits (at most 10 s) until the edge's registry snapshot shows `what`
/// (`ready`): the edge rereads the control plane every [`REFRESH`], and the
/// test waits for the state it needs, not for a number of periods.
async fn until_the_edge_sees(edge: &Edge, what: &str, ready: impl Fn(&[OriginNode]) -> bool) {
    let registry = edge
        .registry
        .as_ref()
        .expect("the edge has a control plane");
    let mut refreshed = registry.subscribe();
    tokio::time::timeout(
        Duration::from_secs(10),
        refreshed.wait_for(|_| ready(&registry.nodes())),
    )
    .await
    .unwrap_or_else(|_| panic!("the edge's registry never showed {what}"))
    .expect("the registry refresh task runs");
}

async fn metrics(client: &HttpClient, edge: &Edge) -> String {
    let r = client
        .get(&format!("http://{}/metrics", edge.http_addr))
        .await;
    String::from_utf8(r.body.to_vec()).expect("utf-8 metrics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplaced_stream_goes_to_the_region_nearest_the_client() {
    let a = start_origin(|_| {}).await;
    let b = start_origin(|_| {}).await;
    let control = MemoryControlPlane::new();
    heartbeat(
        &*control,
        &[
            node("origin-a", "eu-west", PARIS, a.http_addr),
            node("origin-b", "us-east", WASHINGTON, b.http_addr),
        ],
    )
    .await;
    let edge = edge_with(a.http_addr, control.clone()).await;
    let url = format!(
        "http://{}/live/nowhere/index.m3u8?token={}",
        edge.http_addr,
        play_token("nowhere")
    );
    let client = HttpClient::new();
    for (header, value, want) in [
        ("x-client-location", "48.1,11.6", "origin-a"),
        ("x-client-location", "40.7,-74.0", "origin-b"),
        ("cloudfront-viewer-country", "US", "origin-b"),
        ("cf-ipcountry", "FR", "origin-a"),
        ("x-client-country", "CA", "origin-b"),
    ] {
        let r = client.with_header(header, value).get(&url).await;
        // Neither origin has the stream: its own 404, from the node routed to.
        assert_eq!(r.status, 404, "{header}: {value}");
        assert_eq!(served_by(&r), Some(want), "{header}: {value}");
    }
    let text = metrics(&client, &edge).await;
    assert!(
        metric(&text, "livestack_edge_routes_total{reason=\"rendezvous\"}") >= 1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_node_falls_back_to_the_next_ranked_one() {
    let a = start_origin(|_| {}).await;
    let control = MemoryControlPlane::new();
    heartbeat(
        &*control,
        &[
            node("origin-dead", "eu-west", PARIS, dead_addr()),
            node("origin-a", "eu-west", PARIS, a.http_addr),
        ],
    )
    .await;
    // The registry says the stream is on the dead node.
    place(&*control, "cam", "origin-dead").await;
    let edge = edge_with(a.http_addr, control.clone()).await;
    let client = HttpClient::new().with_header("x-client-location", "51.5,-0.1");
    let url = format!(
        "http://{}/live/cam/index.m3u8?token={}",
        edge.http_addr,
        play_token("cam")
    );
    let r = client.get(&url).await;
    assert_eq!(r.status, 404, "origin-a's answer: it does not hold cam");
    assert_eq!(served_by(&r), Some("origin-a"));
    let text = metrics(&client, &edge).await;
    assert_eq!(
        metric(
            &text,
            "livestack_edge_upstream_fallbacks_total{node=\"origin-dead\"}"
        ),
        1.0,
        "{text}"
    );
    // Held down: the next requests go straight to origin-a.
    for _ in 0..3 {
        let r = client.get(&url).await;
        assert_eq!(served_by(&r), Some("origin-a"));
    }
    let text = metrics(&client, &edge).await;
    assert_eq!(
        metric(&text, "livestack_edge_upstream_fallbacks_total"),
        1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_node_that_can_serve_is_a_503_with_retry_after() {
    let a = start_origin(|_| {}).await;
    let control = MemoryControlPlane::new();
    heartbeat(
        &*control,
        &[
            node("origin-dead-1", "eu-west", PARIS, dead_addr()),
            node("origin-dead-2", "us-east", WASHINGTON, dead_addr()),
        ],
    )
    .await;
    let edge = edge_with(a.http_addr, control.clone()).await;
    let client = HttpClient::new();
    let url = format!(
        "http://{}/live/cam/index.m3u8?token={}",
        edge.http_addr,
        play_token("cam")
    );
    let r = client.get(&url).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "2");
    let reason = r.headers["x-livestack-reason"].to_str().unwrap();
    assert!(reason.contains("no origin node reachable"), "{reason}");
    assert!(reason.contains("origin-dead-1") && reason.contains("origin-dead-2"));

    // Every node draining: routing finds no healthy node.
    let mut draining = node("origin-a", "eu-west", PARIS, a.http_addr);
    draining.draining = true;
    control.deregister_node("origin-dead-1").await.unwrap();
    control.deregister_node("origin-dead-2").await.unwrap();
    heartbeat(&*control, &[draining]).await;
    until_the_edge_sees(
        &edge,
        "origin-a alone, draining",
        |nodes| matches!(nodes, [a] if a.id == "origin-a" && !a.healthy),
    )
    .await;
    let r = client.get(&url).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "2");
    assert_eq!(r.headers["x-livestack-reason"], "no healthy origin node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_registry_means_the_configured_origin() {
    let a = start_origin(|_| {}).await;
    let control = MemoryControlPlane::new();
    let edge = edge_with(a.http_addr, control.clone()).await;
    let client = HttpClient::new();
    let url = format!(
        "http://{}/live/cam/index.m3u8?token={}",
        edge.http_addr,
        play_token("cam")
    );
    let r = client.get(&url).await;
    assert_eq!(r.status, 404, "the configured origin's answer");
    assert_eq!(served_by(&r), None, "not routed");
    let text = metrics(&client, &edge).await;
    assert!(
        metric(
            &text,
            "livestack_edge_registry_refresh_total{result=\"ok\"}"
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(metric(&text, "livestack_edge_registry_nodes"), 0.0);
}
