//! An SFU room of three in headless Chromium, on an origin whose control
//! plane is a real Redis: alice, bob and carol join from the origin's room
//! page (camera + microphone + data channel each) and every one receives
//! the other two (video decoded, audio packets); the room's membership is
//! listed from the control plane; alice's chat message reaches bob and
//! carol; a participant's publication is a broadcast (plain WHEP and
//! LL-HLS play it); bob leaves: alice and carol are told (`closed`), their
//! subscriptions to him end, a WHEP viewer of him stops receiving, and
//! alice and carol keep receiving each other; carol's page then crashes
//! and alice is told (`disconnected`); an active speaker was announced
//! (the fake microphones beep). Screenshot kept in
//! `tests/artifacts/room-alice.png`.

use std::{sync::Arc, time::Duration};

use livestack_control::{ControlPlane, RedisControlPlane, RedisOptions, RedisTarget};
use livestack_test_harness::{
    artifacts_dir, browser::room, hls::HttpClient, start_origin_in, wait_live,
};

const ROOM: &str = "standup";

/// The participants `GET /rooms/ROOM` lists.
async fn members(client: &HttpClient, base: &str) -> Vec<String> {
    let got = client.get(&format!("{base}/rooms/{ROOM}")).await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
    let v: serde_json::Value = serde_json::from_slice(&got.body).expect("room JSON");
    let mut names: Vec<String> = v["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["participant"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_see_and_hear_each_other_and_leaves_are_told() {
    let redis = tokio::task::block_in_place(livestack_control::testing::RedisServer::start);
    let target = RedisTarget::parse(&redis.url()).expect("redis url");
    let control: Arc<dyn ControlPlane> =
        RedisControlPlane::connect(target, RedisOptions::default())
            .await
            .expect("redis control plane");
    let origin = start_origin_in(control, |c| {
        c.webrtc = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let base = format!("http://{}", origin.http_addr);
    let client = HttpClient::new();

    // Not a room path, a bad name, an unknown participant: refused.
    for (path, status) in [
        (format!("{base}/rooms/{ROOM}/nothing"), 404),
        (format!("{base}/rooms/a.b"), 404),
    ] {
        assert_eq!(client.get(&path).await.status, status, "{path}");
    }
    assert!(members(&client, &base).await.is_empty());

    let shot = artifacts_dir().join("room-alice.png");
    let script = tokio::spawn(room(base.clone(), ROOM.into(), shot.clone()));

    // Membership, from the control plane, while they are in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = members(&client, &base).await;
        if now == ["alice", "bob", "carol"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline && !script.is_finished(),
            "the three never listed together (last: {now:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A participant's publication is a broadcast: it plays over LL-HLS.
    wait_live(origin.http_addr, &format!("{ROOM}.alice")).await;

    let (status, report) = script.await.expect("room script");
    assert!(status.success(), "room: {report}");
    for (who, others) in [
        ("alice", ["bob", "carol"]),
        ("bob", ["alice", "carol"]),
        ("carol", ["alice", "bob"]),
    ] {
        for other in others {
            let s = &report["joined"][who][other];
            assert!(
                s["framesDecoded"].as_u64().unwrap_or(0) >= 25
                    && s["audioPackets"].as_u64().unwrap_or(0) > 0,
                "{who} receives {other}: {report}"
            );
        }
    }
    assert_eq!(report["chat"]["bob"], true, "{report}");
    assert_eq!(report["chat"]["carol"], true, "{report}");
    assert_eq!(report["left"]["alice"], "closed", "{report}");
    assert_eq!(report["left"]["carol"], "closed", "{report}");
    assert_eq!(report["afterLeave"]["alice"], serde_json::json!(["carol"]));
    assert_eq!(report["afterLeave"]["carol"], serde_json::json!(["alice"]));
    let at_leave = report["watcher"]["framesAtLeave"].as_u64().unwrap_or(0);
    let later = report["watcher"]["framesLater"].as_u64().unwrap_or(0);
    assert!(
        at_leave >= 10 && later <= at_leave + 5,
        "bob's WHEP viewer stops receiving when he leaves: {report}"
    );
    for (who, other) in [("alice", "carol"), ("carol", "alice")] {
        let flow = &report["stillFlowing"][who][other];
        assert!(
            flow["after"].as_u64() > flow["before"].as_u64(),
            "{who} keeps receiving {other}: {report}"
        );
    }
    assert_eq!(report["crash"]["reason"], "disconnected", "{report}");
    // Chromium's fake microphone beeps: someone is the active speaker.
    assert!(
        report["speakers"]
            .as_array()
            .is_some_and(|s| s.iter().any(|p| p.as_str().is_some())),
        "an active speaker was announced: {report}"
    );
    assert!(shot.is_file(), "screenshot kept");
    // Bob and carol are gone from the control plane's membership.
    let left = members(&client, &base).await;
    assert!(!left.iter().any(|n| n == "bob" || n == "carol"), "{left:?}");
}
