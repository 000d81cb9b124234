//! WHIP/WHEP bad input, with offers from a real WebRTC stack (str0m) and
//! curl: every refusal is the documented one, and the session it was aimed
//! at is not disturbed.
//!
//! - a publish without the stream's key 401, with a wrong one 401/403;
//! - an offer with VP8 only 400 naming the codecs, garbage SDP 400;
//! - a DELETE or PATCH without the session's token 401;
//! - PATCH (RFC 9725 §4.3.1): a trickle ICE fragment 204, an ICE restart
//!   (`If-Match: *` or a new `ice-ufrag`) 422, another ETag 412, not a
//!   fragment 415, a fragment that does not parse 400, an unknown session
//!   404;
//! - the session still answers afterwards, and its DELETE with the token
//!   200, then 404;
//! - an offer whose peer never connects holds its stream name only until
//!   the connect timeout (15 s): then the name can be published again.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use livestack_origin::config::StreamKeyConfig;
use livestack_test_harness::start_origin;
use str0m::{
    RtcConfig,
    media::{Direction, MediaKind},
};

const KEY: &str = "s3cret-publish-key";

/// An SDP offer from a str0m peer sending audio and video with the codecs
/// `config` enables.
fn offer(config: RtcConfig) -> String {
    let mut rtc = config.build(Instant::now());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, _pending) = change.apply().expect("an offer");
    offer.to_sdp_string()
}

/// What curl got: status, `Location`, body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

/// `curl -X METHOD URL` with `headers` and an optional body.
fn curl(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-D", "-", "--max-time", "10", "-X", method, url]);
    for (name, value) in headers {
        cmd.args(["-H", &format!("{name}: {value}")]);
    }
    if let Some(body) = body {
        cmd.args(["--data-binary", body]);
    }
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let location = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_owned())
    });
    Answer {
        status,
        location,
        body: body.to_owned(),
    }
}

const SDP: (&str, &str) = ("Content-Type", "application/sdp");
const FRAG: (&str, &str) = ("Content-Type", "application/trickle-ice-sdpfrag");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webrtc_requests_get_the_documented_answers() {
    let origin = start_origin(|c| {
        c.webrtc = Some("127.0.0.1:0".parse().expect("addr"));
        c.auth.keys.push(StreamKeyConfig {
            stream: "keyed".into(),
            key: KEY.into(),
        });
    })
    .await;
    let base = format!("http://{}", origin.http_addr);
    let good = offer(RtcConfig::new());
    let bearer = format!("Bearer {KEY}");
    let auth = ("Authorization", bearer.as_str());

    // Admission and offers.
    let url = format!("{base}/whip/keyed");
    assert_eq!(curl("POST", &url, &[SDP], Some(&good)).status, 401);
    let wrong = curl(
        "POST",
        &url,
        &[SDP, ("Authorization", "Bearer not-the-key")],
        Some(&good),
    );
    assert!(matches!(wrong.status, 401 | 403), "{}", wrong.status);
    let vp8 = offer(
        RtcConfig::new()
            .clear_codecs()
            .enable_vp8(true)
            .enable_opus(false, false),
    );
    let refused = curl("POST", &url, &[SDP, auth], Some(&vp8));
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("H.264"), "{}", refused.body);
    let garbage = curl("POST", &url, &[SDP, auth], Some("v=0\r\nm=nonsense"));
    assert_eq!(garbage.status, 400, "{}", garbage.body);

    let created = curl("POST", &url, &[SDP, auth], Some(&good));
    assert_eq!(created.status, 201, "{}", created.body);
    let session = format!("{base}{}", created.location.expect("Location"));
    let id = session.rsplit('/').next().expect("id").to_owned();

    // The session's calls need its token.
    assert_eq!(curl("DELETE", &session, &[], None).status, 401);
    let other = ("Authorization", "Bearer someone-else");
    assert_eq!(curl("DELETE", &session, &[other], None).status, 401);
    let candidate = "a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\n";
    assert_eq!(
        curl("PATCH", &session, &[FRAG], Some(candidate)).status,
        401
    );

    // PATCH.
    assert_eq!(
        curl("PATCH", &session, &[FRAG, auth], Some(candidate)).status,
        204
    );
    let restart = curl(
        "PATCH",
        &session,
        &[FRAG, auth, ("If-Match", "*")],
        Some("a=ice-ufrag:new1\r\na=ice-pwd:newpassword0123456789\r\n"),
    );
    assert_eq!(restart.status, 422, "{}", restart.body);
    let new_ufrag = curl(
        "PATCH",
        &session,
        &[FRAG, auth],
        Some("a=ice-ufrag:zzzz\r\na=ice-pwd:newpassword0123456789\r\n"),
    );
    assert_eq!(new_ufrag.status, 422, "{}", new_ufrag.body);
    assert_eq!(
        curl(
            "PATCH",
            &session,
            &[FRAG, auth, ("If-Match", "\"not-this-one\"")],
            Some(candidate)
        )
        .status,
        412
    );
    let tag = format!("\"{id}\"");
    assert_eq!(
        curl(
            "PATCH",
            &session,
            &[FRAG, auth, ("If-Match", tag.as_str())],
            Some(candidate)
        )
        .status,
        204
    );
    assert_eq!(
        curl("PATCH", &session, &[SDP, auth], Some(candidate)).status,
        415
    );
    let bad = curl("PATCH", &session, &[FRAG, auth], Some("a=candidate:junk"));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(
        curl(
            "PATCH",
            &format!("{url}/ffff"),
            &[FRAG, auth],
            Some(candidate)
        )
        .status,
        404
    );

    // Undisturbed: the session still answers, and ends with its token.
    assert_eq!(
        curl("PATCH", &session, &[FRAG, auth], Some(candidate)).status,
        204
    );
    assert_eq!(curl("DELETE", &session, &[auth], None).status, 200);
    assert_eq!(curl("DELETE", &session, &[auth], None).status, 404);

    // A peer that never connects holds the name until the connect timeout.
    assert_eq!(curl("POST", &url, &[SDP, auth], Some(&good)).status, 201);
    assert_eq!(curl("POST", &url, &[SDP, auth], Some(&good)).status, 409);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = curl("POST", &url, &[SDP, auth], Some(&good));
        if again.status == 201 {
            break;
        }
        assert_eq!(again.status, 409, "{}", again.body);
        assert!(
            Instant::now() < deadline,
            "the unconnected session kept the name"
        );
    }
}
