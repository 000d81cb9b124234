//! The Redis control plane behind Sentinel follows a failover: kill the
//! primary, Sentinel promotes the replica, and the same client writes
//! again within a bounded wait.

use std::time::{Duration, Instant};

use livestack_control::testing::Sentinel;
use livestack_control::{
    ControlError, ControlPlane, Placement, RedisControlPlane, RedisOptions, RedisTarget, Role,
    Scope, Session, StreamKey,
};

const TTL: Duration = Duration::from_secs(600);
/// Sentinel notices after 300 ms and promotes within a few seconds; this
/// leaves room for a loaded machine.
const FAILOVER: Duration = Duration::from_secs(30);

fn key() -> StreamKey {
    StreamKey {
        id: "k1".into(),
        stream: "cam1".into(),
        secret: "s3cret".into(),
        scope: Scope::Publish,
        expires_at: None,
        created_at: 1,
    }
}

fn session(id: &str) -> Session {
    Session {
        id: id.into(),
        node_id: "n1".into(),
        role: Role::Viewer,
        protocol: "hls".into(),
        stream: "cam1".into(),
        room: None,
        started_at: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_is_followed_by_the_same_client() {
    let mut sentinel = tokio::task::block_in_place(Sentinel::start);
    let primary_port = sentinel.primary().port();
    let replica_port = sentinel.replica().port();

    let target = RedisTarget::parse(&sentinel.url()).unwrap();
    assert!(matches!(target, RedisTarget::Sentinel(_)));
    let cp = RedisControlPlane::connect(target, RedisOptions::default())
        .await
        .unwrap();

    // The first lookup runs in the background.
    let start = Instant::now();
    while let Err(e) = cp.ping().await {
        assert!(start.elapsed() < Duration::from_secs(10), "no primary: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cp.primary(), Some(format!("127.0.0.1:{primary_port}")));

    cp.create_key(&key()).await.unwrap();
    let held = Placement {
        stream: "cam1".into(),
        node_id: "n1".into(),
        session_id: "n1-1".into(),
        since: 1,
        bitrate_bps: 1,
        viewers: 0,
    };
    cp.claim_stream(&held, TTL).await.unwrap();
    // Replication is asynchronous: make sure the replica has it before the
    // primary dies.
    tokio::task::block_in_place(|| sentinel.wait_for_replication(FAILOVER));

    tokio::task::block_in_place(|| sentinel.primary().kill());
    let killed = Instant::now();
    let mut failures = 0;
    loop {
        let t = Instant::now();
        match cp.put_session(&session("s1"), TTL).await {
            Ok(()) => break,
            Err(ControlError::Unavailable(e)) => {
                // 750 ms by default; the bound is looser for a loaded
                // shared machine, but a hang would fail it.
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "a call took {:?} during the failover: {e}",
                    t.elapsed()
                );
                assert!(
                    killed.elapsed() < FAILOVER,
                    "no write succeeded {FAILOVER:?} after the primary died: {e}"
                );
                failures += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("unexpected error during the failover: {e}"),
        }
    }
    eprintln!(
        "writes resumed {:?} after the primary died ({failures} failed calls)",
        killed.elapsed()
    );
    tokio::task::block_in_place(|| sentinel.wait_for_master(replica_port, FAILOVER));
    assert_eq!(cp.primary(), Some(format!("127.0.0.1:{replica_port}")));

    // What was written before the failover is there; the lease still holds.
    let keys = cp.keys().await.unwrap();
    if keys != vec![key()] {
        panic!(
            "keys after the failover: {keys:?}\n--- sentinel ---\n{}\n--- replica ---\n{}\n--- primary ---\n{}",
            sentinel.sentinel().log(),
            sentinel.replica().log(),
            sentinel.primary().log()
        );
    }
    assert_eq!(cp.placement("cam1").await.unwrap(), Some(held.clone()));
    let mut other = held.clone();
    other.session_id = "n2-1".into();
    other.node_id = "n2".into();
    assert_eq!(
        cp.claim_stream(&other, TTL).await,
        Err(ControlError::AlreadyLive {
            stream: "cam1".into(),
            node: "n1".into()
        })
    );
    assert_eq!(cp.sessions().await.unwrap(), vec![session("s1")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_is_followed_by_the_same_client() {
    let mut sentinel = tokio::task::block_in_place(Sentinel::start);
    let primary_port = sentinel.primary().port();
    let replica_port = sentinel.replica().port();
    let cp = RedisControlPlane::connect(
        RedisTarget::parse(&sentinel.url()).unwrap(),
        RedisOptions::default(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    while let Err(e) = cp.ping().await {
        assert!(start.elapsed() < Duration::from_secs(10), "no primary: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cp.primary(), Some(format!("127.0.0.1:{primary_port}")));
    cp.create_key(&key()).await.unwrap();
    tokio::task::block_in_place(|| sentinel.wait_for_replication(FAILOVER));

    // The old primary stays up: no connection error tells the client;
    // the periodic check (or READONLY once it is demoted) does.
    tokio::task::block_in_place(|| {
        sentinel.failover();
        sentinel.wait_for_master(replica_port, FAILOVER);
    });
    let promoted = Instant::now();
    let new_primary = format!("127.0.0.1:{replica_port}");
    while cp.primary().as_ref() != Some(&new_primary) {
        assert!(
            promoted.elapsed() < Duration::from_secs(10),
            "still on {:?} {:?} after the failover",
            cp.primary(),
            promoted.elapsed()
        );
        let _ = cp.ping().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("followed {:?} after the promotion", promoted.elapsed());
    cp.put_session(&session("s1"), TTL).await.unwrap();
    // The write went to the new primary.
    let stored: Option<String> = tokio::task::block_in_place(|| {
        sentinel
            .replica()
            .query(redis::cmd("GET").arg("livestack:session:s1"))
            .unwrap()
    });
    assert!(stored.is_some(), "the session is not on the new primary");
    let keys = cp.keys().await.unwrap();
    if keys != vec![key()] {
        panic!(
            "keys after the failover: {keys:?}\n--- sentinel ---\n{}\n--- replica ---\n{}\n--- primary ---\n{}",
            sentinel.sentinel().log(),
            sentinel.replica().log(),
            sentinel.primary().log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_sentinel_is_unavailable_not_a_hang() {
    // Nothing listens on the port: the background lookup fails and calls
    // say so quickly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target =
        RedisTarget::parse(&format!("redis+sentinel://127.0.0.1:{port}/livestack")).unwrap();
    let cp = RedisControlPlane::connect(target, RedisOptions::default())
        .await
        .unwrap();
    for _ in 0..5 {
        let t = Instant::now();
        let r = cp.keys().await;
        assert!(matches!(r, Err(ControlError::Unavailable(_))), "{r:?}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "took {:?}",
            t.elapsed()
        );
    }
    assert_eq!(cp.primary(), None);
}
