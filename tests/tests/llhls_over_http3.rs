//! LL-HLS over HTTP/3 (issue 10): `--https ADDR` serves HTTP/1.1 and
//! HTTP/2 on TCP and HTTP/3 on UDP at the same port, and the TCP side
//! advertises it with `Alt-Svc: h3=":PORT"`. An independent HTTP/3 client
//! (Python aioquic, `tests/h3_get.py`) fetches, over QUIC, a stream that
//! ffmpeg publishes over SRT:
//!
//! - the multivariant and media playlists (200, LL-HLS tags present);
//! - a listed part, byte-identical to the one the HTTP/1.1 listener serves;
//! - a blocking playlist reload for the next segment (`_HLS_msn`, RFC
//!   8216bis §6.2.5.2), answered with a playlist holding that segment;
//! - the preload-hinted part (§4.4.5.3), answered when it exists.
//!
//! - `/certificate.sha256`, equal to the hash of the certificate the
//!   client received in the QUIC handshake (what a browser's WebTransport
//!   `serverCertificateHashes` pins), an ECDSA P-256 certificate valid at
//!   most 14 days.
//!
//! curl checks the TCP listener's `Alt-Svc` (curl here has no HTTP/3).

use std::{net::SocketAddr, process::Command, time::Duration};

use base64::Engine as _;
use livestack_test_harness::{
    VideoCodec, encode_source,
    hls::{HttpClient, MediaPlaylist},
    publish, require, start_origin, workdir,
};

/// One response as `tests/h3_get.py` prints it.
#[derive(Debug)]
struct H3Response {
    status: u16,
    peer_certificate_sha256: String,
    peer_certificate_days: f64,
    peer_certificate_key: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl H3Response {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GETs `paths` in order over one HTTP/3 connection to `addr` with aioquic.
fn h3_get(addr: SocketAddr, paths: &[&str]) -> Vec<H3Response> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/h3_get.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .args(paths)
        .output()
        .expect("run python3 tests/h3_get.py");
    assert!(
        out.status.success(),
        "h3_get.py failed ({}): {} (python3 needs aioquic: run the README test command, which installs tests/requirements.txt)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let responses: Vec<H3Response> = String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            H3Response {
                status: v["status"].as_u64().expect("status") as u16,
                peer_certificate_sha256: v["peer_certificate_sha256"]
                    .as_str()
                    .expect("certificate hash")
                    .to_owned(),
                peer_certificate_days: v["peer_certificate_days"].as_f64().expect("days"),
                peer_certificate_key: v["peer_certificate_key"]
                    .as_str()
                    .expect("key type")
                    .to_owned(),
                headers: v["headers"]
                    .as_array()
                    .expect("headers")
                    .iter()
                    .map(|h| {
                        (
                            h[0].as_str().expect("name").to_owned(),
                            h[1].as_str().expect("value").to_owned(),
                        )
                    })
                    .collect(),
                body: base64::engine::general_purpose::STANDARD
                    .decode(v["body_b64"].as_str().expect("body"))
                    .expect("base64 body"),
            }
        })
        .collect();
    assert_eq!(responses.len(), paths.len(), "one response per path");
    responses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llhls_plays_over_http3_with_blocking_reload() {
    require("python3");
    require("curl");
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 30);
    let origin = start_origin(|c| c.https = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let https = origin.https_addr.expect("HTTPS listener");
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/quic,m=publish", &source);

    // Live at the origin (parts listed), over plain HTTP.
    let client = HttpClient::new();
    let plain = format!("http://{}/live/quic/video.m3u8", origin.http_addr);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(&plain).await;
        if r.status == 200
            && MediaPlaylist::parse(std::str::from_utf8(&r.body).expect("utf-8"))
                .last_part()
                .is_some()
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "stream not live");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The TCP listener advertises HTTP/3 on the same port.
    let curl = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-D", "-"])
            .arg(format!("https://{https}/live/quic/index.m3u8"))
            .output()
            .expect("run curl")
    })
    .await
    .expect("curl task");
    let head = String::from_utf8_lossy(&curl.stdout).to_ascii_lowercase();
    assert!(
        head.contains(&format!("alt-svc: h3=\":{}\"", https.port())),
        "no Alt-Svc for HTTP/3 on the TCP listener:\n{head}"
    );

    // Playlists and the certificate hash over HTTP/3.
    let r = tokio::task::spawn_blocking(move || {
        h3_get(
            https,
            &[
                "/live/quic/index.m3u8",
                "/live/quic/video.m3u8",
                "/certificate.sha256",
            ],
        )
    })
    .await
    .expect("h3 task");
    assert_eq!(r[2].status, 200);
    let served = r[2].text().trim().to_owned();
    assert_eq!(
        served, r[2].peer_certificate_sha256,
        "served hash is not the handshake's"
    );
    assert_eq!(Some(&served), origin.certificate_sha256.as_ref());
    assert_eq!(served.len(), 64);
    // What WebTransport's serverCertificateHashes accepts: ECDSA P-256,
    // valid at most 14 days.
    assert_eq!(r[2].peer_certificate_key, "ecdsa-p256");
    assert!(
        r[2].peer_certificate_days <= 14.0,
        "self-signed certificate valid {} days",
        r[2].peer_certificate_days
    );
    assert_eq!(r[0].status, 200, "multivariant over h3: {}", r[0].text());
    assert!(r[0].text().contains("#EXT-X-STREAM-INF"), "{}", r[0].text());
    assert!(
        r[0].header("content-type")
            .is_some_and(|t| t.contains("mpegurl")),
        "{:?}",
        r[0].headers
    );
    assert_eq!(r[1].status, 200);
    let media = r[1].text();
    assert!(
        media.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"),
        "{media}"
    );
    let playlist = MediaPlaylist::parse(&media);
    let (msn, _) = playlist.last_part().expect("parts listed");
    let part = playlist
        .segments
        .iter()
        .flat_map(|s| s.parts.iter())
        .next_back()
        .expect("a part")
        .uri
        .clone();
    let hint = playlist.preload_hint.clone().expect("EXT-X-PRELOAD-HINT");

    // A part, the hinted part (held until it exists) and a blocking reload
    // for the next segment, in that order over one HTTP/3 connection.
    let part_path = format!("/live/quic/{part}");
    let blocking = format!("/live/quic/video.m3u8?_HLS_msn={}", msn + 1);
    let hint_path = format!("/live/quic/{hint}");
    let paths = [part_path.clone(), hint_path.clone(), blocking];
    let r = tokio::task::spawn_blocking(move || {
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        h3_get(https, &paths)
    })
    .await
    .expect("h3 task");
    assert_eq!(r[0].status, 200, "part {part_path} over h3");
    let direct = client
        .get(&format!("http://{}{part_path}", origin.http_addr))
        .await;
    assert_eq!(direct.status, 200);
    assert!(!r[0].body.is_empty());
    assert_eq!(r[0].body, direct.body.to_vec(), "part bytes differ over h3");

    assert_eq!(r[1].status, 200, "hinted part {hint_path} over h3");
    let direct = client
        .get(&format!("http://{}{hint_path}", origin.http_addr))
        .await;
    assert!(!r[1].body.is_empty());
    assert_eq!(r[1].body, direct.body.to_vec(), "hinted part bytes differ");

    assert_eq!(r[2].status, 200, "blocking reload over h3: {}", r[2].text());
    let reloaded = MediaPlaylist::parse(&r[2].text());
    assert!(
        reloaded
            .segments
            .iter()
            .any(|s| s.msn == msn + 1 && s.uri.is_some()),
        "the blocking reload answered before segment {} was complete:\n{}",
        msn + 1,
        r[2].text()
    );

    ffmpeg.kill().expect("kill ffmpeg");
    let _ = ffmpeg.wait();
}
