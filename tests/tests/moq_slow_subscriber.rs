//! A slow Media over QUIC subscriber loses whole groups and nobody else
//! notices (issue 10): two moq-net subscribers of the same SRT-published
//! stream over raw QUIC; one stops reading for several seconds (its QUIC
//! flow control fills up), the other reads on. The reader keeps receiving
//! every group in order without a gap while the other is stalled; when the
//! stalled one reads again, it resumes at a later group: the groups it
//! missed were dropped whole, not delivered late or in pieces. (moq-net
//! drops them at the subscriber's end here, by its live-edge budget: the
//! origin's `livestack_origin_moq_subscriber_groups_dropped`, moq-net's
//! publisher-side count of groups skipped before sending, stays 0 in this
//! case; the test prints it.)

use std::time::Duration;

use livestack_test_harness::{
    VideoCodec, encode_source, hls::HttpClient, publish, quic, registry::metric, start_origin,
    wait_live, workdir,
};

/// How long the slow subscriber does not read.
const STALL: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_skips_whole_groups_and_the_others_play_on() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 60);
    let origin =
        start_origin(|c| c.webtransport = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let wt = origin.webtransport_addr.expect("MoQ listener");
    let hash = origin.certificate_sha256.clone().expect("certificate");
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/slow,m=publish", &source);
    wait_live(origin.http_addr, "slow").await;
    let client = HttpClient::new();

    // The slow one: reads its first group's first frame, stalls, reads on.
    let slow = tokio::spawn(quic::moq_subscribe_stalling(
        wt,
        moq_net::ALPNS,
        hash.clone(),
        "slow",
        STALL,
    ));
    // The reader: 25 fps, 2 s groups: as many frames as the stall lasts.
    let report = tokio::time::timeout(
        Duration::from_secs(40),
        quic::moq_subscribe(wt, moq_net::ALPNS, &hash, "slow", 250),
    )
    .await
    .expect("the reader did not get its frames in time")
    .expect("reader");
    let groups: Vec<u64> = {
        let mut g: Vec<u64> = report.frames.iter().map(|f| f.group).collect();
        g.dedup();
        g
    };
    assert!(
        groups.windows(2).all(|w| w[1] == w[0] + 1),
        "the reader missed groups while the other stalled: {groups:?}"
    );

    let (first, resumed) = slow.await.expect("slow task").expect("slow subscriber");
    assert!(
        resumed > first + 1,
        "the stalled subscriber resumed at group {resumed} after {first}: nothing was dropped"
    );
    // The counter is copied from moq-net once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = String::from_utf8(
        client
            .get(&format!("http://{}/metrics", origin.http_addr))
            .await
            .body
            .to_vec(),
    )
    .expect("utf-8");
    println!(
        "stalled subscriber: group {first} then {resumed}; origin-side dropped-group count {}",
        metric(&metrics, "livestack_origin_moq_subscriber_groups_dropped")
    );
    ffmpeg.kill().expect("kill ffmpeg");
    let _ = ffmpeg.wait();
}
