//! The origin speaks HTTP/1.1 and HTTP/2: cleartext h2 by prior knowledge,
//! and h2 over TLS negotiated by ALPN with the self-signed certificate the
//! origin generates when none is configured. Checked with curl, an
//! independent client.

use std::{process::Command, time::Duration};

use livestack_test_harness::{require, start_origin};

fn curl(args: &[&str]) -> (String, String) {
    require("curl");
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (body.to_owned(), status.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_over_h1_h2c_and_h2_over_tls() {
    let mut origin = start_origin(|c| c.https = Some("127.0.0.1:0".parse().unwrap())).await;
    origin.spawn(livestack_origin::demo::run(
        origin.streams.clone(),
        "demo".into(),
    ));
    let http = origin.http_addr;
    let https = origin.https_addr.expect("https bound");
    // Wait for the first segment (the multivariant answers once media exists).
    let url = format!("http://{http}/live/demo/index.m3u8");
    let (body, status) = tokio::task::spawn_blocking(move || curl(&["--http1.1", &url]))
        .await
        .unwrap();
    assert_eq!(status, "1.1 200", "{body}");
    assert!(body.starts_with("#EXTM3U"));

    let url = format!("http://{http}/live/demo/video.m3u8");
    let (body, status) =
        tokio::task::spawn_blocking(move || curl(&["--http2-prior-knowledge", &url]))
            .await
            .unwrap();
    assert_eq!(status, "2 200", "cleartext HTTP/2: {body}");
    assert!(body.contains("#EXT-X-PART-INF"));

    let url = format!("https://localhost:{}/live/demo/video.m3u8", https.port());
    let resolve = format!("localhost:{}:127.0.0.1", https.port());
    let (body, status) =
        tokio::task::spawn_blocking(move || curl(&["--http2", "-k", "--resolve", &resolve, &url]))
            .await
            .unwrap();
    assert_eq!(status, "2 200", "HTTP/2 over TLS (ALPN h2): {body}");
    assert!(body.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"));

    // CORS for browsers and CDN-friendly caching on parts.
    // The newest part the playlist lists (its URI names the publisher
    // session: `video/SESSION/partM.I.m4s`).
    let part_uri = body
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|attrs| attrs.split("URI=\"").nth(1)?.split('"').next())
        .next_back()
        .expect("the playlist lists parts")
        .to_owned();
    assert!(
        part_uri.starts_with("video/") && part_uri.matches('/').count() == 2,
        "{part_uri}"
    );
    let part_url = format!("http://{http}/live/demo/{part_uri}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args([
                "-s",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "--max-time",
                "10",
                &part_url,
            ])
            .output()
            .expect("curl")
    })
    .await
    .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        headers.contains("access-control-allow-origin: *"),
        "{headers}"
    );
    assert!(headers.contains("immutable"), "{headers}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}
