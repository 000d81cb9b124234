//! Hostile clients at the origin's HTTP listener (issue 9): 2,000
//! slowloris connections — half of them sending one byte of a request head
//! per second, half connecting and sending nothing (hyper-util's protocol
//! detection runs no timer of its own) — do not stop a normal viewer from
//! playing every frame, and each of them is disconnected at the
//! header-read timeout instead of holding its connection for as long as it
//! likes.
//!
//! The clients connect one after the other (2,000 at once would overflow
//! the listen backlog, and the kernel would keep some half-open, which is
//! a test of the kernel), and the timeout is 20 s, so that they are all
//! connected for the whole of the viewer's 10 s of playback.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use livestack_test_harness::{
    VideoCodec, count_frames, encode_source,
    hls::{HttpClient, follow},
    publish_with_latency,
    registry::metric,
    start_origin, workdir,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpSocket,
};

const SLOW_CLIENTS: usize = 2_000;
/// The slow clients come from another loopback address than the viewer
/// (127.0.0.1), as they would from another host.
const SLOW_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Two descriptors per connection live in this process (client and
/// server side): raise the soft limit (to the hard one at most).
fn raise_descriptor_limit(needed: u64) {
    let got = rlimit::increase_nofile_limit(needed).expect("RLIMIT_NOFILE");
    assert!(
        got >= needed,
        "this test needs {needed} file descriptors; the hard limit allows {got}"
    );
}

/// Opens one slow client: it writes a request head one byte per second
/// (or, `silent`, nothing) and counts itself in `closed` when the server
/// closes the connection.
async fn slow_client(origin: SocketAddr, silent: bool, closed: Arc<AtomicUsize>) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((SLOW_FROM, 0)))
        .expect("bind 127.0.0.2");
    let tcp = socket.connect(origin).await.expect("connect");
    let (mut rx, mut tx) = tcp.into_split();
    tokio::spawn(async move {
        let head = b"GET /live/e2e/video.m3u8 HTTP/1.1\r\nHost: origin\r\nX-Slow: 1\r\n\r\n";
        if silent {
            // Holds the write half open without a byte.
            std::future::pending::<()>().await;
        }
        for byte in head.iter().cycle() {
            if tx.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                // An answer (e.g. 408) before the close is fine.
                Ok(_) => continue,
            }
        }
        closed.fetch_add(1, Ordering::Relaxed);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_slow_clients_do_not_stop_a_viewer() {
    raise_descriptor_limit(2 * SLOW_CLIENTS as u64 + 1_000);
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 10);
    let published = count_frames(&source, "v");
    let origin = start_origin(|c| {
        c.limits.header_read_timeout = Duration::from_secs(20);
    })
    .await;

    let closed = Arc::new(AtomicUsize::new(0));
    for i in 0..SLOW_CLIENTS {
        slow_client(origin.http_addr, i % 2 == 1, closed.clone()).await;
    }

    // The origin shares this process and its two cores with the 2,000
    // clients (in a deployment they are other hosts): an SRT latency of
    // 1 s gives its ingest room for the scheduling stalls that causes.
    let mut ffmpeg = publish_with_latency(
        origin.srt_addr,
        "#!::r=live/e2e,m=publish",
        &source,
        Duration::from_secs(1),
    );
    let client = HttpClient::new();
    let video_url = format!("http://{}/live/e2e/video.m3u8", origin.http_addr);
    // The viewer starts once the stream is there (the publisher just
    // connected), and then follows it to its end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client.get(&video_url).await.status != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let video = follow(&client, &video_url, Duration::from_secs(60)).await;
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    let file = dir.path().join("viewer.mp4");
    let mut bytes = video.inits.values().next().expect("an init").to_vec();
    for (_, seg) in video.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).expect("write");
    let metrics = client
        .get(&format!("http://{}/metrics", origin.http_addr))
        .await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert_eq!(
        count_frames(&file, "v"),
        published,
        "the viewer got every frame while {SLOW_CLIENTS} slow clients were connected \
         (ingest: {} TS continuity errors, {} frames dropped; packager skipped {} groups)",
        metric(&metrics, "livestack_origin_ts_cc_errors"),
        metric(&metrics, "livestack_origin_frames_dropped"),
        metric(&metrics, "livestack_origin_consumer_skipped_groups"),
    );

    // Every slow client is cut at the header-read timeout (a whole head
    // takes them a minute to send); the wait is for state, bounded only so
    // that a regression fails instead of hanging.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while closed.load(Ordering::Relaxed) < SLOW_CLIENTS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {SLOW_CLIENTS} slow clients still connected",
            SLOW_CLIENTS - closed.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
