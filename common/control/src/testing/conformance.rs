//! The behaviour every [`ControlPlane`] must show, written once and run
//! against each implementation (see
//! [`control_plane_conformance!`](crate::control_plane_conformance)).
//!
//! Each case takes a fresh [`Backend`] and panics on a deviation. Timing
//! never depends on the machine's speed: a record meant to expire gets
//! [`SHORT_TTL`] and is checked after [`Backend::advance`] let
//! [`EXPIRY_WAIT`] pass (on the memory store a manual clock moves at once;
//! Redis waits real time, and a slow machine only makes more of it pass);
//! a record meant to be present gets [`LONG_TTL`]. Timestamps come from
//! [`Backend::clock`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use super::Backend;
use crate::{
    ControlError, ControlPlane, NodeCommand, NodeInfo, NodeLoad, Placement, Role, Scope, Session,
    StreamKey, now_millis,
};

/// A TTL meant to run out during the test.
pub const SHORT_TTL: Duration = Duration::from_millis(300);
/// How much time to let pass for a [`SHORT_TTL`] to run out: more than it
/// (Redis expires at millisecond granularity).
pub const EXPIRY_WAIT: Duration = Duration::from_millis(400);
/// A TTL that does not run out during the test.
pub const LONG_TTL: Duration = Duration::from_secs(600);

/// How many clients race for one stream in
/// [`concurrent_claimers_exactly_one_wins`].
pub const CLAIMERS: usize = 16;

fn key(id: &str, stream: &str, expires_at: Option<u64>) -> StreamKey {
    StreamKey {
        id: id.into(),
        stream: stream.into(),
        secret: format!("secret-{id}"),
        scope: Scope::Publish,
        expires_at,
        created_at: 1_700_000_000_000,
    }
}

fn node(id: &str, streams: u64) -> NodeInfo {
    NodeInfo {
        certificate_sha256: Vec::new(),
        id: id.into(),
        region: "eu-west".into(),
        location: Some((53.35, -6.26)),
        urls: BTreeMap::from([
            ("http".into(), format!("http://{id}.example:8080")),
            ("srt".into(), format!("srt://{id}.example:9000")),
        ]),
        load: NodeLoad {
            streams,
            viewers: 1234,
            egress_bps: 5_000_000_000,
            cpu: 0.37,
            load: 0.1 + 0.2,
        },
        draining: false,
        started_at: 1_700_000_000_000,
        heartbeat_at: now_millis(),
    }
}

fn placement(stream: &str, node: &str, session: &str, bitrate_bps: u64) -> Placement {
    Placement {
        stream: stream.into(),
        node_id: node.into(),
        session_id: session.into(),
        since: now_millis(),
        bitrate_bps,
        viewers: 0,
    }
}

fn session(id: &str, stream: &str, room: Option<&str>) -> Session {
    Session {
        id: id.into(),
        node_id: "n1".into(),
        role: Role::Viewer,
        protocol: "whep".into(),
        stream: stream.into(),
        room: room.map(Into::into),
        started_at: now_millis(),
    }
}

fn ids(keys: &[StreamKey]) -> Vec<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}

fn ok<T>(what: &str, r: Result<T, ControlError>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// `create_key`, `keys`, `revoke_key`: listing is by id, a taken id is
/// `Exists`, revoking an unknown or revoked id is `NotFound`.
pub async fn keys_create_list_revoke(backend: &dyn Backend) {
    let cp = backend.client().await;
    assert_eq!(ok("keys", cp.keys().await), vec![]);
    let b = key("k-b", "cam1", None);
    let a = key("k-a", "cam2", Some(backend.clock().unix_millis() + 600_000));
    ok("create b", cp.create_key(&b).await);
    ok("create a", cp.create_key(&a).await);
    assert_eq!(ok("keys", cp.keys().await), vec![a.clone(), b.clone()]);

    let dup = key("k-a", "other", None);
    assert_eq!(
        cp.create_key(&dup).await,
        Err(ControlError::Exists("k-a".into()))
    );
    // The refused duplicate changed nothing.
    assert_eq!(ok("keys", cp.keys().await), vec![a.clone(), b.clone()]);
    assert_eq!(ok("other", cp.keys_for_stream("other").await), vec![]);

    ok("revoke a", cp.revoke_key("k-a").await);
    assert_eq!(ok("keys", cp.keys().await), vec![b.clone()]);
    assert_eq!(ok("cam2", cp.keys_for_stream("cam2").await), vec![]);
    assert_eq!(
        cp.revoke_key("k-a").await,
        Err(ControlError::NotFound("k-a".into()))
    );
    assert_eq!(
        cp.revoke_key("never").await,
        Err(ControlError::NotFound("never".into()))
    );
    // A revoked id can be created again.
    ok("create a again", cp.create_key(&a).await);
    assert_eq!(ids(&ok("keys", cp.keys().await)), ["k-a", "k-b"]);
}

/// `keys_for_stream` returns the stream's own keys and the `"*"` keys,
/// ordered by id, and nothing of other streams.
pub async fn keys_for_stream_returns_own_and_wildcard_keys(backend: &dyn Backend) {
    let cp = backend.client().await;
    for k in [
        key("k3", "cam1", None),
        key("k1", "cam1", None),
        key("k2", "*", None),
        key("k4", "cam2", None),
        key("k0", "*", None),
    ] {
        ok("create", cp.create_key(&k).await);
    }
    let cam1 = ok("cam1", cp.keys_for_stream("cam1").await);
    assert_eq!(ids(&cam1), ["k0", "k1", "k2", "k3"]);
    assert_eq!(cam1[1], key("k1", "cam1", None));
    let cam2 = ok("cam2", cp.keys_for_stream("cam2").await);
    assert_eq!(ids(&cam2), ["k0", "k2", "k4"]);
    let none = ok("cam9", cp.keys_for_stream("cam9").await);
    assert_eq!(ids(&none), ["k0", "k2"]);
    let wildcard = ok("*", cp.keys_for_stream("*").await);
    assert_eq!(ids(&wildcard), ["k0", "k2"]);
    // The secret and scope come back as stored.
    assert!(
        cam1.iter()
            .all(|k| k.secret == format!("secret-{}", k.id) && k.scope == Scope::Publish)
    );
}

/// A key whose `expires_at` has passed opens nothing: it is absent from
/// `keys` and `keys_for_stream` and revoking it is `NotFound`; a key that
/// expires while stored disappears the same way.
pub async fn keys_expiry_is_honoured_on_read(backend: &dyn Backend) {
    let cp = backend.client().await;
    let now = backend.clock().unix_millis();
    ok(
        "past",
        cp.create_key(&key("k-past", "cam1", Some(now - 1))).await,
    );
    ok(
        "wild past",
        cp.create_key(&key("k-wpast", "*", Some(now - 1))).await,
    );
    ok(
        "future",
        cp.create_key(&key("k-future", "cam1", Some(now + 600_000)))
            .await,
    );
    let soon_ms = u64::try_from(SHORT_TTL.as_millis()).unwrap_or(u64::MAX);
    ok(
        "soon",
        cp.create_key(&key(
            "k-soon",
            "cam1",
            Some(backend.clock().unix_millis() + soon_ms),
        ))
        .await,
    );
    backend.advance(EXPIRY_WAIT).await;
    assert_eq!(ids(&ok("keys", cp.keys().await)), ["k-future"]);
    assert_eq!(
        ids(&ok("cam1", cp.keys_for_stream("cam1").await)),
        ["k-future"]
    );
    assert_eq!(
        cp.revoke_key("k-soon").await,
        Err(ControlError::NotFound("k-soon".into()))
    );
    assert_eq!(
        cp.revoke_key("k-past").await,
        Err(ControlError::NotFound("k-past".into()))
    );
    ok("revoke future", cp.revoke_key("k-future").await);
}

/// An expired key's id is free: creating a key with it succeeds (even for
/// another stream), and the old key opens nothing.
pub async fn expired_key_id_can_be_reused(backend: &dyn Backend) {
    let cp = backend.client().await;
    ok(
        "old",
        cp.create_key(&key("k1", "cam1", Some(backend.clock().unix_millis() - 1)))
            .await,
    );
    let new = key("k1", "cam2", None);
    ok("reuse", cp.create_key(&new).await);
    assert_eq!(ok("cam1", cp.keys_for_stream("cam1").await), vec![]);
    assert_eq!(ids(&ok("cam2", cp.keys_for_stream("cam2").await)), ["k1"]);
    assert_eq!(ok("keys", cp.keys().await), vec![new]);
}

/// A node vanishes from `nodes` once its TTL passes without a heartbeat;
/// registering again brings it back; a heartbeat replaces the record;
/// `deregister_node` removes it at once (and is a no-op for an unknown id).
pub async fn registry_ttl_and_reregistration(backend: &dyn Backend) {
    let cp = backend.client().await;
    ok("n1", cp.register_node(&node("n1", 1), LONG_TTL).await);
    ok("n2", cp.register_node(&node("n2", 2), SHORT_TTL).await);
    backend.advance(EXPIRY_WAIT).await;
    let nodes = ok("nodes", cp.nodes().await);
    assert_eq!(
        nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["n1"]
    );

    let n2 = node("n2", 7);
    ok("n2 again", cp.register_node(&n2, LONG_TTL).await);
    let n1 = node("n1", 3);
    ok("n1 heartbeat", cp.register_node(&n1, LONG_TTL).await);
    assert_eq!(ok("nodes", cp.nodes().await), vec![n1, n2.clone()]);

    ok("deregister n1", cp.deregister_node("n1").await);
    ok("deregister unknown", cp.deregister_node("n9").await);
    assert_eq!(ok("nodes", cp.nodes().await), vec![n2]);
}

/// Every field of a registry record comes back as written (floats, maps,
/// options), and `nodes` is ordered by id.
pub async fn registry_record_round_trips(backend: &dyn Backend) {
    let cp = backend.client().await;
    let mut b = node("origin-b", 1);
    b.location = None;
    b.draining = true;
    b.urls.clear();
    b.load = NodeLoad::default();
    let a = node("origin-a", u64::MAX);
    ok("b", cp.register_node(&b, LONG_TTL).await);
    ok("a", cp.register_node(&a, LONG_TTL).await);
    assert_eq!(ok("nodes", cp.nodes().await), vec![a, b]);
}

/// `claim_stream`: the first claim wins; the same session renews and
/// replaces the record; another session gets `AlreadyLive` naming the
/// holder's node; after the holder releases, another session can claim.
pub async fn claim_renew_release(backend: &dyn Backend) {
    let cp = backend.client().await;
    assert_eq!(ok("none", cp.placement("cam1").await), None);
    let first = placement("cam1", "n1", "n1-1", 1_000);
    ok("claim", cp.claim_stream(&first, LONG_TTL).await);
    assert_eq!(ok("placement", cp.placement("cam1").await), Some(first));

    let mut renewed = placement("cam1", "n1", "n1-1", 2_500_000);
    renewed.viewers = 42;
    ok("renew", cp.claim_stream(&renewed, LONG_TTL).await);
    assert_eq!(
        ok("placement", cp.placement("cam1").await),
        Some(renewed.clone())
    );

    let other = placement("cam1", "n2", "n2-7", 1);
    assert_eq!(
        cp.claim_stream(&other, LONG_TTL).await,
        Err(ControlError::AlreadyLive {
            stream: "cam1".into(),
            node: "n1".into()
        })
    );
    assert_eq!(ok("placement", cp.placement("cam1").await), Some(renewed));

    ok("release", cp.release_stream("cam1", "n1-1").await);
    assert_eq!(ok("released", cp.placement("cam1").await), None);
    assert_eq!(ok("placements", cp.placements().await), vec![]);
    ok("claim by other", cp.claim_stream(&other, LONG_TTL).await);
    assert_eq!(ok("placement", cp.placement("cam1").await), Some(other));
}

/// A lease that ran out without renewal frees the stream: it is not
/// listed, and another session claims it.
pub async fn expired_lease_can_be_claimed_by_another(backend: &dyn Backend) {
    let cp = backend.client().await;
    let first = placement("cam1", "n1", "n1-1", 1);
    ok("claim", cp.claim_stream(&first, SHORT_TTL).await);
    backend.advance(EXPIRY_WAIT).await;
    assert_eq!(ok("expired", cp.placement("cam1").await), None);
    assert_eq!(ok("placements", cp.placements().await), vec![]);
    let second = placement("cam1", "n2", "n2-1", 1);
    ok("claim by other", cp.claim_stream(&second, LONG_TTL).await);
    assert_eq!(
        ok("placement", cp.placement("cam1").await),
        Some(second.clone())
    );
    // The old holder's release does not touch the new holder's lease.
    ok("stale release", cp.release_stream("cam1", "n1-1").await);
    assert_eq!(ok("placement", cp.placement("cam1").await), Some(second));
}

/// `release_stream` by a session that does not hold the stream is a no-op,
/// as is releasing a stream nobody holds.
pub async fn release_only_by_holder(backend: &dyn Backend) {
    let cp = backend.client().await;
    let held = placement("cam1", "n1", "n1-1", 1);
    ok("claim", cp.claim_stream(&held, LONG_TTL).await);
    ok("other release", cp.release_stream("cam1", "n2-1").await);
    ok("unheld release", cp.release_stream("cam9", "n1-1").await);
    assert_eq!(
        ok("placement", cp.placement("cam1").await),
        Some(held.clone())
    );
    assert_eq!(ok("placements", cp.placements().await), vec![held]);
    ok("holder release", cp.release_stream("cam1", "n1-1").await);
    assert_eq!(ok("placement", cp.placement("cam1").await), None);
}

/// `placements` lists every live placement ordered by stream.
pub async fn placements_listed_by_stream(backend: &dyn Backend) {
    let cp = backend.client().await;
    let c = placement("c", "n1", "s-c", 3);
    let a = placement("a", "n2", "s-a", 1);
    let b = placement("b", "n1", "s-b", 2);
    let gone = placement("d", "n1", "s-d", 4);
    for p in [&c, &a, &b] {
        ok("claim", cp.claim_stream(p, LONG_TTL).await);
    }
    ok("claim short", cp.claim_stream(&gone, SHORT_TTL).await);
    backend.advance(EXPIRY_WAIT).await;
    assert_eq!(ok("placements", cp.placements().await), vec![a, b, c]);
}

/// [`CLAIMERS`] clients (on Redis: separate connections) claim one stream
/// at the same moment with different sessions: exactly one wins, every
/// other gets `AlreadyLive` naming the winner's node, and the stored
/// placement is the winner's.
pub async fn concurrent_claimers_exactly_one_wins(backend: &dyn Backend) {
    let mut clients: Vec<Arc<dyn ControlPlane>> = Vec::new();
    for _ in 0..CLAIMERS {
        let cp = backend.client().await;
        // Connect before the race so that the claims really overlap.
        ok("warm up", cp.placement("warm-up").await);
        clients.push(cp);
    }
    let barrier = Arc::new(Barrier::new(CLAIMERS));
    let mut tasks = Vec::new();
    for (i, cp) in clients.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let p = placement(
                "contested",
                &format!("node-{i}"),
                &format!("session-{i}"),
                1,
            );
            barrier.wait().await;
            (p.clone(), cp.claim_stream(&p, LONG_TTL).await)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap_or_else(|e| panic!("claimer task: {e}")));
    }
    let winners: Vec<&Placement> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(p, _)| p)
        .collect();
    assert_eq!(winners.len(), 1, "{} winners: {results:?}", winners.len());
    let winner = winners[0];
    for (_, r) in &results {
        match r {
            Ok(()) => {}
            Err(ControlError::AlreadyLive { stream, node }) => {
                assert_eq!(stream, "contested");
                assert_eq!(node, &winner.node_id);
            }
            Err(e) => panic!("a losing claimer got {e}"),
        }
    }
    let cp = backend.client().await;
    assert_eq!(
        ok("placement", cp.placement("contested").await).as_ref(),
        Some(winner)
    );
}

/// Sessions live for their TTL unless written again; `put_session`
/// replaces; `remove_session` removes (a no-op for an unknown id);
/// `sessions` is ordered by id.
pub async fn sessions_ttl_replace_remove(backend: &dyn Backend) {
    let cp = backend.client().await;
    let s2 = session("s2", "cam1", None);
    let s1 = session("s1", "cam1", Some("room-1"));
    ok("s2", cp.put_session(&s2, LONG_TTL).await);
    ok("s1", cp.put_session(&s1, LONG_TTL).await);
    ok(
        "s3",
        cp.put_session(&session("s3", "cam2", None), SHORT_TTL)
            .await,
    );
    backend.advance(EXPIRY_WAIT).await;
    assert_eq!(
        ok("sessions", cp.sessions().await),
        vec![s1.clone(), s2.clone()]
    );

    let mut s1b = s1.clone();
    s1b.role = Role::Publisher;
    s1b.protocol = "whip".into();
    s1b.room = None;
    ok("replace s1", cp.put_session(&s1b, LONG_TTL).await);
    assert_eq!(ok("sessions", cp.sessions().await), vec![s1b, s2.clone()]);

    ok("remove s1", cp.remove_session("s1").await);
    ok("remove unknown", cp.remove_session("s9").await);
    assert_eq!(ok("sessions", cp.sessions().await), vec![s2]);
}

/// Commands come out in the order sent, per node; taking removes them.
pub async fn command_queue_order_and_take_removes(backend: &dyn Backend) {
    let cp = backend.client().await;
    let sent = [
        NodeCommand::Kick {
            stream: "cam1".into(),
        },
        NodeCommand::Drain { draining: true },
        NodeCommand::Kick {
            stream: "cam2".into(),
        },
        NodeCommand::Drain { draining: false },
    ];
    for c in &sent {
        ok("send n1", cp.send_command("n1", c).await);
    }
    ok("send n2", cp.send_command("n2", &sent[1]).await);
    assert_eq!(ok("take n1", cp.take_commands("n1").await), sent);
    assert_eq!(ok("take n1 again", cp.take_commands("n1").await), vec![]);
    assert_eq!(
        ok("take n2", cp.take_commands("n2").await),
        vec![sent[1].clone()]
    );
    assert_eq!(ok("take unknown", cp.take_commands("n9").await), vec![]);
    // A queue emptied by take fills again.
    ok("send n1 again", cp.send_command("n1", &sent[0]).await);
    assert_eq!(
        ok("take n1", cp.take_commands("n1").await),
        vec![sent[0].clone()]
    );
}
