//! The Redis control plane when Redis dies, hangs, or is not there yet:
//! calls fail fast with `Unavailable`, never hang, and succeed again by
//! themselves once Redis is back, through the same client.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livestack_control::testing::RedisServer;
use livestack_control::{
    ControlError, ControlPlane, NodeCommand, NodeInfo, NodeLoad, Placement, RedisControlPlane,
    RedisOptions, RedisTarget, Role, Scope, Session, StreamKey, now_millis,
};

/// "About a second": the default bound of a call is 750 ms. The median
/// call must stay under this.
const FAIL_FAST: Duration = Duration::from_secs(1);
/// No single call may take this long: that would be a hang. (On a shared,
/// loaded 2-core machine a stalled thread can make one call seconds late,
/// so single calls are held to this looser bound.)
const NO_HANG: Duration = Duration::from_secs(5);
/// How long a client may take to notice that Redis is back.
const RECOVERY: Duration = Duration::from_secs(10);
const TTL: Duration = Duration::from_secs(600);

async fn connect(url: &str) -> Arc<RedisControlPlane> {
    let target = RedisTarget::parse(url).unwrap();
    RedisControlPlane::connect(target, RedisOptions::default())
        .await
        .unwrap()
}

fn key(id: &str) -> StreamKey {
    StreamKey {
        id: id.into(),
        stream: "cam1".into(),
        secret: "s3cret".into(),
        scope: Scope::Both,
        expires_at: None,
        created_at: 1,
    }
}

fn placement() -> Placement {
    Placement {
        stream: "cam1".into(),
        node_id: "n1".into(),
        session_id: "n1-1".into(),
        since: 1,
        bitrate_bps: 2,
        viewers: 3,
    }
}

fn node() -> NodeInfo {
    NodeInfo {
        certificate_sha256: Vec::new(),
        id: "n1".into(),
        region: "eu".into(),
        location: None,
        urls: BTreeMap::new(),
        load: NodeLoad::default(),
        draining: false,
        started_at: 1,
        heartbeat_at: now_millis(),
    }
}

fn session() -> Session {
    Session {
        id: "s1".into(),
        node_id: "n1".into(),
        role: Role::Publisher,
        protocol: "srt".into(),
        stream: "cam1".into(),
        room: None,
        started_at: 1,
    }
}

/// Every method of the trait once, with how long it took.
async fn every_call(
    cp: &dyn ControlPlane,
) -> Vec<(&'static str, Duration, Result<(), ControlError>)> {
    let mut out = Vec::new();
    macro_rules! call {
        ($name:literal, $e:expr) => {{
            let t = Instant::now();
            let r = $e.await.map(drop);
            out.push(($name, t.elapsed(), r));
        }};
    }
    call!("create_key", cp.create_key(&key("k-other")));
    call!("revoke_key", cp.revoke_key("k-none"));
    call!("keys", cp.keys());
    call!("keys_for_stream", cp.keys_for_stream("cam1"));
    call!("register_node", cp.register_node(&node(), TTL));
    call!("nodes", cp.nodes());
    call!("deregister_node", cp.deregister_node("n9"));
    call!("claim_stream", cp.claim_stream(&placement(), TTL));
    call!("release_stream", cp.release_stream("cam9", "x"));
    call!("placement", cp.placement("cam1"));
    call!("placements", cp.placements());
    call!("put_session", cp.put_session(&session(), TTL));
    call!("remove_session", cp.remove_session("s9"));
    call!("sessions", cp.sessions());
    call!(
        "send_command",
        cp.send_command("n9", &NodeCommand::Drain { draining: true })
    );
    call!("take_commands", cp.take_commands("n9"));
    out
}

async fn assert_all_unavailable_fast(cp: &dyn ControlPlane) {
    let mut times = Vec::new();
    for (name, took, r) in every_call(cp).await {
        assert!(
            matches!(r, Err(ControlError::Unavailable(_))),
            "{name} while Redis is down: {r:?}"
        );
        assert!(took < NO_HANG, "{name} took {took:?} while Redis is down");
        times.push(took);
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(median < FAIL_FAST, "median call {median:?}: {times:?}");
}

/// Polls `ping` until it answers, within [`RECOVERY`].
async fn wait_until_up(cp: &RedisControlPlane) -> Duration {
    let start = Instant::now();
    loop {
        match cp.ping().await {
            Ok(()) => return start.elapsed(),
            Err(ControlError::Unavailable(e)) if start.elapsed() < RECOVERY => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("not back after {:?}: {e}", start.elapsed()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_fails_fast_then_same_client_recovers_with_its_data() {
    let mut server = RedisServer::start();
    let cp = connect(&server.url()).await;
    cp.create_key(&key("k1")).await.unwrap();
    cp.claim_stream(&placement(), TTL).await.unwrap();

    tokio::task::block_in_place(|| server.kill());
    // Several rounds: the first sees the connection drop, the next ones
    // find nobody to reconnect to.
    for _ in 0..3 {
        assert_all_unavailable_fast(&*cp).await;
    }

    tokio::task::block_in_place(|| server.restart());
    let took = wait_until_up(&cp).await;
    eprintln!("back after {took:?}");
    // The append-only file kept what was acknowledged before SIGKILL.
    assert_eq!(cp.keys().await.unwrap(), vec![key("k1")]);
    assert_eq!(cp.placement("cam1").await.unwrap(), Some(placement()));
    for (name, _, r) in every_call(&*cp).await {
        assert!(
            !matches!(r, Err(ControlError::Unavailable(_))),
            "{name} after restart: {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_redis_is_down_and_converges_when_it_comes_up() {
    let mut server = RedisServer::start();
    tokio::task::block_in_place(|| server.stop());
    // Building the control plane does not need Redis.
    let cp = connect(&server.url()).await;
    assert_eq!(cp.backend(), "redis");
    assert_all_unavailable_fast(&*cp).await;

    tokio::task::block_in_place(|| server.restart());
    wait_until_up(&cp).await;
    cp.create_key(&key("k1")).await.unwrap();
    assert_eq!(cp.keys_for_stream("cam1").await.unwrap(), vec![key("k1")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_redis_keeps_state_across_a_clean_restart() {
    let mut server = RedisServer::start();
    let cp = connect(&server.url()).await;
    cp.create_key(&key("k1")).await.unwrap();
    cp.send_command(
        "n1",
        &NodeCommand::Kick {
            stream: "cam1".into(),
        },
    )
    .await
    .unwrap();
    tokio::task::block_in_place(|| server.stop());
    assert!(matches!(cp.keys().await, Err(ControlError::Unavailable(_))));
    tokio::task::block_in_place(|| server.restart());
    wait_until_up(&cp).await;
    assert_eq!(cp.keys().await.unwrap(), vec![key("k1")]);
    assert_eq!(
        cp.take_commands("n1").await.unwrap(),
        vec![NodeCommand::Kick {
            stream: "cam1".into()
        }]
    );
}

fn signal(server: &RedisServer, sig: &str) {
    let pid = server.pid().expect("server runs").to_string();
    let status = Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_redis_times_out_instead_of_hanging() {
    let server = RedisServer::start();
    // Shorter bounds than the defaults: every call below waits for the
    // whole of them.
    let options = RedisOptions::default()
        .with_timeouts(Duration::from_millis(100), Duration::from_millis(150));
    let cp = RedisControlPlane::connect(RedisTarget::parse(&server.url()).unwrap(), options)
        .await
        .unwrap();
    cp.create_key(&key("k1")).await.unwrap();

    // SIGSTOP: the socket stays open, nothing answers. Only the deadlines
    // can end the calls.
    signal(&server, "-STOP");
    let result = std::panic::AssertUnwindSafe(async {
        for _ in 0..2 {
            assert_all_unavailable_fast(&*cp).await;
        }
    });
    let outcome = futures::FutureExt::catch_unwind(result).await;
    signal(&server, "-CONT");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }

    wait_until_up(&cp).await;
    // The calls that timed out were sent: the server may still apply them
    // once it runs again (a timed-out write has an unknown outcome).
    let ids: Vec<String> = cp.keys().await.unwrap().into_iter().map(|k| k.id).collect();
    assert!(ids.contains(&"k1".to_owned()), "{ids:?}");
}
