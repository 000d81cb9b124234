//! Ingest faults stay contained: a publisher sending garbage does not
//! disturb a good one; access control refuses at the SRT handshake; a
//! second publisher on a live name is refused.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use livestack_origin::config::StreamKeyConfig;
use livestack_test_harness::{
    VideoCodec, count_frames, encode_source,
    hls::{HttpClient, follow},
    publish, require, srt_url, start_origin, workdir,
};

async fn wait_status(client: &HttpClient, url: &str, want: u16) {
    for _ in 0..150 {
        if client.get(url).await.status == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered {want}");
}

/// `livestack_origin_ts_resync_bytes_total`: bytes the demuxer skipped
/// looking for TS sync.
async fn resync_bytes(client: &HttpClient, metrics_url: &str) -> f64 {
    let body = client.get(metrics_url).await.body;
    std::str::from_utf8(&body)
        .expect("utf-8 metrics")
        .lines()
        .find(|l| l.starts_with("livestack_origin_ts_resync_bytes_total"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .expect("resync metric")
}

/// ffmpeg sending raw PCM noise (not MPEG-TS) over SRT.
fn publish_noise(srt: std::net::SocketAddr, streamid: &str, seconds: u32) -> std::process::Child {
    require("ffmpeg");
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "quiet",
            "-re",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("anoisesrc=r=48000:a=1")
        .args(["-t", &seconds.to_string(), "-f", "s16le"])
        .arg(srt_url(srt, streamid))
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_publisher_does_not_disturb_a_good_one() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 8);
    let published = count_frames(&source, "v");
    let origin = start_origin(|_| {}).await;
    let mut noise = publish_noise(origin.srt_addr, "#!::r=live/noise,m=publish", 12);
    let client = HttpClient::new();
    let metrics_url = format!("http://{}/metrics", origin.http_addr);
    // The good publisher starts while garbage is arriving.
    for _ in 0..150 {
        if resync_bytes(&client, &metrics_url).await > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        resync_bytes(&client, &metrics_url).await > 0.0,
        "the noise publisher's garbage never arrived"
    );
    let mut good = publish(origin.srt_addr, "#!::r=live/good,m=publish", &source);

    let base = format!("http://{}/live/good", origin.http_addr);
    wait_status(&client, &format!("{base}/index.m3u8"), 200).await;
    let video = follow(
        &client,
        &format!("{base}/video.m3u8"),
        Duration::from_secs(60),
    )
    .await;
    assert!(good.wait().unwrap().success());
    let frames: usize = video.segments.len();
    assert!(frames >= 3, "good stream was packaged");

    // The garbage stream never produced a playable stream...
    let r = client
        .get(&format!(
            "http://{}/live/noise/video.m3u8",
            origin.http_addr
        ))
        .await;
    assert_ne!(r.status, 200, "noise must not be playable");
    // ...and was counted as resync garbage.
    let resync = resync_bytes(&client, &metrics_url).await;
    assert!(resync > 100_000.0, "garbage counted: {resync}");

    // The good stream is complete.
    let file = dir.path().join("good.mp4");
    let mut bytes = video.inits.values().next().unwrap().to_vec();
    for (_, seg) in video.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(count_frames(&file, "v"), published);
    let _ = noise.kill();
    let _ = noise.wait();
}

/// Runs ffmpeg for a short publish and returns its stderr (the SRT
/// rejection reason shows there).
fn try_publish(
    srt: std::net::SocketAddr,
    streamid: &str,
    source: &std::path::Path,
) -> (bool, String) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(source)
        .args(["-t", "1", "-c", "copy", "-f", "mpegts"])
        .arg(srt_url(srt, streamid))
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_control_and_one_publisher_per_name() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 6);
    let origin = start_origin(|c| {
        c.auth.keys.push(StreamKeyConfig {
            stream: "cam".into(),
            key: "s3cret-key-1".into(),
        })
    })
    .await;
    let srt = origin.srt_addr;
    let client = HttpClient::new();
    let metrics_url = format!("http://{}/metrics", origin.http_addr);

    let s = source.clone();
    let (ok, _) =
        tokio::task::spawn_blocking(move || try_publish(srt, "#!::r=live/cam,m=publish", &s))
            .await
            .unwrap();
    assert!(!ok, "no key: refused");
    let s = source.clone();
    let (ok, _) = tokio::task::spawn_blocking(move || {
        try_publish(srt, "#!::r=live/cam,m=publish,t=wrong-key-00", &s)
    })
    .await
    .unwrap();
    assert!(!ok, "wrong key: refused");
    let s = source.clone();
    let (ok, _) =
        tokio::task::spawn_blocking(move || try_publish(srt, "#!::r=live/../etc,m=publish", &s))
            .await
            .unwrap();
    assert!(!ok, "malformed resource: refused");

    let metrics = String::from_utf8(client.get(&metrics_url).await.body.to_vec()).unwrap();
    for result in ["unauthorized", "forbidden", "bad_request"] {
        assert!(
            metrics.contains(&format!(
                "livestack_origin_srt_connections_total{{result=\"{result}\"}}"
            )),
            "{result} counted:\n{metrics}"
        );
    }

    // The right key publishes; a second publisher on the same name is refused.
    let mut first = publish(srt, "#!::r=live/cam,m=publish,t=s3cret-key-1", &source);
    wait_status(
        &client,
        &format!("http://{}/live/cam/index.m3u8", origin.http_addr),
        200,
    )
    .await;
    let s = source.clone();
    let (ok, _) = tokio::task::spawn_blocking(move || {
        try_publish(srt, "#!::r=live/cam,m=publish,t=s3cret-key-1", &s)
    })
    .await
    .unwrap();
    assert!(!ok, "second publisher refused");
    let metrics = String::from_utf8(client.get(&metrics_url).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("livestack_origin_srt_connections_total{result=\"conflict\"}"),
        "{metrics}"
    );
    assert!(
        first.wait().unwrap().success(),
        "first publisher unaffected"
    );
}
