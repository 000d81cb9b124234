//! The Media over QUIC listener refuses bad input and keeps serving
//! (issue 10): a connection offering an ALPN that is neither `h3` nor a MoQ
//! version fails its handshake; a raw MoQ Transport session whose control
//! stream starts with a message that is not its SETUP is closed by the
//! origin with PROTOCOL_VIOLATION; a WebTransport
//! session asking for a path other than `/moq` is refused with 404. Each is
//! counted in `livestack_origin_moq_sessions_total` by outcome, and
//! meanwhile a well-behaved subscriber (moq-net over raw QUIC, offering
//! every version) receives the demo broadcast: the catalog, then video
//! frames starting at a group's first frame, an IDR picture (a late
//! subscriber starts at a keyframe).

use std::time::Duration;

use livestack_test_harness::{hls::HttpClient, quic, registry::metric, start_origin};

/// Time the origin may take to close a misbehaving session.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// NAL unit types of an AVCC access unit (4-byte lengths).
fn nal_types(mut au: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while au.len() > 4 {
        let len = u32::from_be_bytes([au[0], au[1], au[2], au[3]]) as usize;
        let Some(nal) = au.get(4..4 + len) else { break };
        if let Some(h) = nal.first() {
            types.push(h & 0x1f);
        }
        au = &au[4 + len..];
    }
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_moq_sessions_are_refused_and_others_keep_playing() {
    let mut origin =
        start_origin(|c| c.webtransport = Some("127.0.0.1:0".parse().expect("addr"))).await;
    origin.spawn(livestack_origin::demo::run(
        origin.streams.clone(),
        "demo".into(),
    ));
    let wt = origin.webtransport_addr.expect("MoQ listener");
    let hash = origin.certificate_sha256.clone().expect("certificate");

    // 1. An ALPN the origin does not speak: no connection.
    let refused = quic::connect(wt, &["not-moq"], &hash).await;
    assert!(
        refused.is_err(),
        "a connection offering only 'not-moq' was accepted"
    );

    // 2. A raw MoQ Transport draft-14 session (ALPN moq-00) whose control
    //    stream starts with a message that is not CLIENT_SETUP (type 0x3fff,
    //    empty): the origin closes the session with PROTOCOL_VIOLATION.
    //    (Later drafts and moq-lite wait for the rest of a message they
    //    cannot parse yet; the SETUP deadline, header_read_timeout, closes
    //    those.)
    let conn = quic::connect(wt, &["moq-00"], &hash)
        .await
        .expect("moq-00 (draft-14) connection");
    let (mut send, _recv) = conn.open_bi().await.expect("bidi stream");
    send.write_all(&[0x7f, 0xff, 0x00, 0x00])
        .await
        .expect("write the bogus message");
    let _ = send.finish();
    let t0 = std::time::Instant::now();
    let closed = tokio::time::timeout(CLOSE_TIMEOUT, conn.closed())
        .await
        .expect("the origin did not close a session that sent garbage");
    assert!(
        matches!(closed, quinn::ConnectionError::ApplicationClosed(_)),
        "closed how: {closed:?}"
    );
    // MoQ Transport's PROTOCOL_VIOLATION (0x3), at once: not a timeout.
    let quinn::ConnectionError::ApplicationClosed(close) = closed else {
        unreachable!()
    };
    assert_eq!(u64::from(close.error_code), 3, "{close:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        t0.elapsed()
    );

    // 3. WebTransport at a path that is not /moq: 404.
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(vec![
            (0..hash.len() / 2)
                .map(|i| u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).expect("hex"))
                .collect(),
        ])
        .expect("WebTransport client");
    let url: url::Url = format!("https://{wt}/not-moq").parse().expect("url");
    let wrong = client
        .connect(web_transport_quinn::proto::ConnectRequest::new(url))
        .await;
    assert!(
        wrong.is_err(),
        "a WebTransport session at /not-moq was accepted"
    );

    // 4. Meanwhile a good subscriber plays.
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        quic::moq_subscribe(wt, moq_net::ALPNS, &hash, "demo", 30),
    )
    .await
    .expect("the good subscriber got no frames in time")
    .expect("the good subscriber");
    assert!(
        report.catalog.contains("avc1"),
        "catalog: {}",
        report.catalog
    );
    assert_eq!(report.frames.len(), 30);
    let first = &report.frames[0];
    assert_eq!(
        first.index, 0,
        "a late subscriber starts at a group's first frame"
    );
    assert!(
        nal_types(&first.payload).contains(&5),
        "the first frame is not an IDR picture: NAL types {:?}",
        nal_types(&first.payload)
    );
    assert!(
        report.frames.windows(2).all(|w| w[0].group <= w[1].group),
        "groups out of order"
    );

    // 5. Counted by outcome.
    let metrics = String::from_utf8(
        HttpClient::new()
            .get(&format!("http://{}/metrics", origin.http_addr))
            .await
            .body
            .to_vec(),
    )
    .expect("utf-8");
    let count = |outcome: &str| {
        metric(
            &metrics,
            &format!("livestack_origin_moq_sessions_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert!(count("moq_error") >= 1.0, "{metrics}");
    assert!(count("not_found") >= 1.0, "{metrics}");
    assert!(count("handshake_failed") >= 1.0, "{metrics}");
}
