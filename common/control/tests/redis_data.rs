//! What the Redis control plane stores and reads: the documented key
//! layout, prefixes that keep deployments apart, the Unix socket form, and
//! hostile stored data (garbage, wrong Redis types) that must come back as
//! `Corrupt`, never as a panic.

use std::sync::Arc;
use std::time::Duration;

use livestack_control::testing::RedisServer;
use livestack_control::{
    ControlError, ControlPlane, NodeCommand, NodeInfo, NodeLoad, Placement, RedisControlPlane,
    RedisOptions, RedisTarget, Scope, StreamKey,
};
use redis::cmd;

const TTL: Duration = Duration::from_secs(600);

async fn connect(url: &str, prefix: &str) -> Arc<RedisControlPlane> {
    let options = RedisOptions::default()
        .with_key_prefix(prefix)
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(2));
    RedisControlPlane::connect(RedisTarget::parse(url).unwrap(), options)
        .await
        .unwrap()
}

fn key(id: &str, stream: &str) -> StreamKey {
    StreamKey {
        id: id.into(),
        stream: stream.into(),
        secret: "s3cret".into(),
        scope: Scope::Play,
        expires_at: Some(u64::MAX / 2),
        created_at: 1,
    }
}

fn placement(stream: &str, session: &str) -> Placement {
    Placement {
        stream: stream.into(),
        node_id: "n1".into(),
        session_id: session.into(),
        since: 1,
        bitrate_bps: 1,
        viewers: 1,
    }
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        certificate_sha256: Vec::new(),
        id: id.into(),
        region: "eu".into(),
        location: None,
        urls: Default::default(),
        load: NodeLoad::default(),
        draining: false,
        started_at: 1,
        heartbeat_at: 1,
    }
}

fn raw<T: redis::FromRedisValue>(server: &RedisServer, c: &mut redis::Cmd) -> T {
    server.query(c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_layout_is_as_documented() {
    let server = RedisServer::start();
    let cp = connect(&server.url(), "livestack:").await;
    cp.create_key(&key("k1", "cam1")).await.unwrap();
    cp.create_key(&key("k2", "*")).await.unwrap();
    cp.register_node(&node("n1"), TTL).await.unwrap();
    cp.claim_stream(&placement("cam1", "n1-1"), Duration::from_secs(60))
        .await
        .unwrap();
    cp.send_command("n1", &NodeCommand::Drain { draining: true })
        .await
        .unwrap();

    let stored: Vec<u8> = raw(&server, cmd("HGET").arg("livestack:keys:cam1").arg("k1"));
    let stored: StreamKey = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored, key("k1", "cam1"));
    let wild: Option<String> = raw(&server, cmd("HGET").arg("livestack:keys:*").arg("k2"));
    assert!(wild.is_some());
    let index: Vec<(String, String)> = raw(&server, cmd("HGETALL").arg("livestack:key-streams"));
    assert_eq!(index.len(), 2);
    assert!(index.contains(&("k1".into(), "cam1".into())));
    assert!(index.contains(&("k2".into(), "*".into())));

    let ttl: i64 = raw(&server, cmd("PTTL").arg("livestack:node:n1"));
    assert!(ttl > 500_000 && ttl <= 600_000, "{ttl}");
    let nodes: Vec<String> = raw(&server, cmd("SMEMBERS").arg("livestack:nodes"));
    assert_eq!(nodes, ["n1"]);

    let lease: i64 = raw(&server, cmd("PTTL").arg("livestack:placement:cam1"));
    assert!(lease > 50_000 && lease <= 60_000, "{lease}");
    let streams: Vec<String> = raw(&server, cmd("SMEMBERS").arg("livestack:placements"));
    assert_eq!(streams, ["cam1"]);

    let queue: Vec<String> = raw(
        &server,
        cmd("LRANGE").arg("livestack:commands:n1").arg(0).arg(-1),
    );
    assert_eq!(queue, [r#"{"command":"drain","draining":true}"#]);

    // Listing drops index entries whose record expired.
    cp.register_node(&node("n2"), Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(cp.nodes().await.unwrap(), vec![node("n1")]);
    let nodes: Vec<String> = raw(&server, cmd("SMEMBERS").arg("livestack:nodes"));
    assert_eq!(nodes, ["n1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_deployments_apart() {
    let server = RedisServer::start();
    let a = connect(&server.url(), "a:").await;
    let b = connect(&server.url(), "b:").await;
    a.create_key(&key("k1", "cam1")).await.unwrap();
    b.create_key(&key("k1", "cam1")).await.unwrap();
    a.claim_stream(&placement("cam1", "a-1"), TTL)
        .await
        .unwrap();
    b.claim_stream(&placement("cam1", "b-1"), TTL)
        .await
        .unwrap();
    a.revoke_key("k1").await.unwrap();
    assert_eq!(a.keys().await.unwrap(), vec![]);
    assert_eq!(b.keys().await.unwrap(), vec![key("k1", "cam1")]);
    assert_eq!(
        b.placement("cam1").await.unwrap(),
        Some(placement("cam1", "b-1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_url_works() {
    let server = RedisServer::start();
    let cp = connect(&server.unix_url(), "livestack:").await;
    cp.ping().await.unwrap();
    cp.create_key(&key("k1", "cam1")).await.unwrap();
    assert_eq!(
        cp.primary(),
        Some(server.socket_path().display().to_string())
    );
    // The TCP side sees the same data.
    let tcp = connect(&server.url(), "livestack:").await;
    assert_eq!(
        tcp.keys_for_stream("cam1").await.unwrap(),
        vec![key("k1", "cam1")]
    );
}

fn corrupt<T: std::fmt::Debug>(what: &str, r: Result<T, ControlError>) {
    assert!(matches!(r, Err(ControlError::Corrupt(_))), "{what}: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_records_are_corrupt_errors() {
    let server = RedisServer::start();
    let cp = connect(&server.url(), "livestack:").await;

    // A key that is not JSON, filed under cam1.
    let _: () = raw(
        &server,
        cmd("HSET")
            .arg("livestack:keys:cam1")
            .arg("k1")
            .arg("{not json"),
    );
    let _: () = raw(
        &server,
        cmd("HSET")
            .arg("livestack:key-streams")
            .arg("k1")
            .arg("cam1"),
    );
    corrupt("keys", cp.keys().await);
    corrupt("keys_for_stream", cp.keys_for_stream("cam1").await);
    // An unreadable key is never taken for an expired one.
    assert_eq!(
        cp.create_key(&key("k1", "cam2")).await,
        Err(ControlError::Exists("k1".into()))
    );
    // It can be revoked, which clears it.
    cp.revoke_key("k1").await.unwrap();
    assert_eq!(cp.keys().await.unwrap(), vec![]);

    // A placement of invalid UTF-8: unreadable, never claimable by others,
    // never released by a stranger.
    let _: () = raw(
        &server,
        cmd("SET")
            .arg("livestack:placement:cam1")
            .arg(&b"\xff\xfe{"[..]),
    );
    let _: () = raw(&server, cmd("SADD").arg("livestack:placements").arg("cam1"));
    corrupt("placement", cp.placement("cam1").await);
    corrupt("placements", cp.placements().await);
    corrupt("claim", cp.claim_stream(&placement("cam1", "x"), TTL).await);
    cp.release_stream("cam1", "x").await.unwrap();
    let still: Option<Vec<u8>> = raw(&server, cmd("GET").arg("livestack:placement:cam1"));
    assert!(still.is_some());

    // JSON of the wrong shape.
    let _: () = raw(
        &server,
        cmd("SET").arg("livestack:node:n1").arg(r#"{"id":"n1"}"#),
    );
    let _: () = raw(&server, cmd("SADD").arg("livestack:nodes").arg("n1"));
    corrupt("nodes", cp.nodes().await);
    let _: () = raw(&server, cmd("SET").arg("livestack:session:s1").arg("[]"));
    let _: () = raw(&server, cmd("SADD").arg("livestack:sessions").arg("s1"));
    corrupt("sessions", cp.sessions().await);
    let _: () = raw(
        &server,
        cmd("RPUSH")
            .arg("livestack:commands:n1")
            .arg(r#"{"command":"explode"}"#),
    );
    corrupt("take_commands", cp.take_commands("n1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_redis_types_are_corrupt_errors() {
    let server = RedisServer::start();
    let cp = connect(&server.url(), "livestack:").await;
    let _: () = raw(&server, cmd("RPUSH").arg("livestack:key-streams").arg("x"));
    let _: () = raw(&server, cmd("RPUSH").arg("livestack:keys:cam1").arg("x"));
    let _: () = raw(
        &server,
        cmd("HSET").arg("livestack:nodes").arg("a").arg("b"),
    );
    let _: () = raw(
        &server,
        cmd("RPUSH").arg("livestack:placement:cam1").arg("x"),
    );
    let _: () = raw(&server, cmd("SET").arg("livestack:commands:n1").arg("x"));
    let _: () = raw(&server, cmd("SET").arg("livestack:sessions").arg("x"));
    corrupt("keys", cp.keys().await);
    corrupt("keys_for_stream", cp.keys_for_stream("cam1").await);
    corrupt("create_key", cp.create_key(&key("k1", "cam2")).await);
    corrupt("revoke_key", cp.revoke_key("k1").await);
    corrupt("nodes", cp.nodes().await);
    corrupt("register_node", cp.register_node(&node("n1"), TTL).await);
    corrupt("placement", cp.placement("cam1").await);
    corrupt("claim", cp.claim_stream(&placement("cam1", "s"), TTL).await);
    corrupt("release", cp.release_stream("cam1", "s").await);
    corrupt("sessions", cp.sessions().await);
    corrupt(
        "send_command",
        cp.send_command("n1", &NodeCommand::Drain { draining: false })
            .await,
    );
    corrupt("take_commands", cp.take_commands("n1").await);
}

/// Random bytes in every record the control plane reads: every read
/// returns `Ok` or `Corrupt`; nothing panics; the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_stored_bytes_never_panic() {
    let server = RedisServer::start();
    let cp = connect(&server.url(), "livestack:").await;
    let valid = serde_json::to_vec(&key("k1", "cam1")).unwrap();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut conn = server.client().get_connection().unwrap();
    for round in 0..200 {
        let mut bytes = valid.clone();
        match next() % 3 {
            0 => bytes.truncate(usize::try_from(next() % 80).unwrap()),
            1 => {
                for _ in 0..1 + next() % 4 {
                    let i = usize::try_from(next()).unwrap() % bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(i) {
                        *b = u8::try_from(next() & 0xff).unwrap();
                    }
                }
            }
            _ => {
                bytes = (0..next() % 64)
                    .map(|_| u8::try_from(next() & 0xff).unwrap())
                    .collect();
            }
        }
        redis::pipe()
            .cmd("FLUSHDB")
            .cmd("HSET")
            .arg("livestack:keys:cam1")
            .arg("k1")
            .arg(&bytes)
            .cmd("HSET")
            .arg("livestack:key-streams")
            .arg("k1")
            .arg("cam1")
            .cmd("SET")
            .arg("livestack:node:n1")
            .arg(&bytes)
            .cmd("SADD")
            .arg("livestack:nodes")
            .arg("n1")
            .cmd("SET")
            .arg("livestack:placement:cam1")
            .arg(&bytes)
            .cmd("SADD")
            .arg("livestack:placements")
            .arg("cam1")
            .cmd("SET")
            .arg("livestack:session:s1")
            .arg(&bytes)
            .cmd("SADD")
            .arg("livestack:sessions")
            .arg("s1")
            .cmd("RPUSH")
            .arg("livestack:commands:n1")
            .arg(&bytes)
            .exec(&mut conn)
            .unwrap();
        let results = [
            ("keys", cp.keys().await.map(drop)),
            (
                "keys_for_stream",
                cp.keys_for_stream("cam1").await.map(drop),
            ),
            ("nodes", cp.nodes().await.map(drop)),
            ("placement", cp.placement("cam1").await.map(drop)),
            ("placements", cp.placements().await.map(drop)),
            ("sessions", cp.sessions().await.map(drop)),
            ("take_commands", cp.take_commands("n1").await.map(drop)),
            (
                "claim",
                match cp.claim_stream(&placement("cam1", "other"), TTL).await {
                    Err(ControlError::AlreadyLive { .. }) => Ok(()),
                    r => r,
                },
            ),
            (
                "create_key",
                match cp.create_key(&key("k1", "cam2")).await {
                    Err(ControlError::Exists(_)) => Ok(()),
                    r => r,
                },
            ),
        ];
        for (what, r) in results {
            assert!(
                matches!(r, Ok(()) | Err(ControlError::Corrupt(_))),
                "round {round}, {what} on {bytes:?}: {r:?}"
            );
        }
    }
    cp.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_url_works() {
    let server = tokio::task::block_in_place(RedisServer::start_tls);
    assert!(server.url().starts_with("rediss://"));
    let options = RedisOptions::default().with_tls_ca_pem(server.tls_ca_pem().unwrap());
    let cp = RedisControlPlane::connect(RedisTarget::parse(&server.url()).unwrap(), options)
        .await
        .unwrap();
    cp.ping().await.unwrap();
    cp.create_key(&key("k1", "cam1")).await.unwrap();
    // Without the CA the certificate is not trusted: Unavailable, fast.
    let untrusted = connect(&server.url(), "livestack:").await;
    let r = untrusted.keys().await;
    assert!(matches!(r, Err(ControlError::Unavailable(_))), "{r:?}");
    assert_eq!(
        cp.keys_for_stream("cam1").await.unwrap(),
        vec![key("k1", "cam1")]
    );
    // Plain RESP to the TLS port fails (quickly), it does not hang.
    let plain = RedisControlPlane::connect(
        RedisTarget::parse(&format!("redis://127.0.0.1:{}", server.port())).unwrap(),
        RedisOptions::default(),
    )
    .await
    .unwrap();
    let t = std::time::Instant::now();
    let r = plain.keys().await;
    assert!(matches!(r, Err(ControlError::Unavailable(_))), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
