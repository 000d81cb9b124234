//! A broadcast's frames are handed to the SFU once (one [`Feed`]) and
//! reach every viewer playing it: three str0m viewers over real UDP on
//! loopback each receive every frame, starting with the keyframe and the
//! frames sent *before* they connected (the feed keeps the GOP); a fourth
//! offer beyond `max_sessions` is refused; a closed viewer stops counting
//! towards it.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use livestack_sfu::{Limits, OutFrame, WebRtc, WebRtcError};
use str0m::{
    Candidate, Event, Input, Output, Rtc, RtcConfig,
    change::SdpAnswer,
    media::{Direction, MediaKind},
    net::{Protocol, Receive},
};
use tokio::{net::UdpSocket, sync::mpsc};

/// An Annex B access unit: SPS + PPS + IDR for a keyframe, else one
/// non-IDR slice; `n` makes each frame's bytes distinct.
fn access_unit(keyframe: bool, n: u8) -> Arc<[u8]> {
    let mut v = Vec::new();
    if keyframe {
        v.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40]);
        v.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
        v.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84, n]);
    } else {
        v.extend_from_slice(&[0, 0, 0, 1, 0x41, 0x9a, 0x02, n]);
    }
    // Several RTP packets per frame: they leave in one GSO batch.
    v.extend(std::iter::repeat_n(n, 4000));
    v.into()
}

/// A str0m viewer: offers to receive video and audio, takes `answer` from
/// `play`, then reports the RTP time of every video frame it receives.
struct TestViewer {
    rtc: Rtc,
    socket: UdpSocket,
}

impl TestViewer {
    async fn new() -> (Self, String, str0m::change::SdpPendingOffer) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let local = socket.local_addr().expect("addr");
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = change.apply().expect("offer");
        (Self { rtc, socket }, offer.to_sdp_string(), pending)
    }

    /// Drives the peer until dropped, sending each video frame's RTP time.
    async fn run(mut self, frames: mpsc::UnboundedSender<u64>) {
        let local = self.socket.local_addr().expect("addr");
        let mut buf = vec![0u8; 2048];
        loop {
            let timeout = loop {
                match self.rtc.poll_output().expect("poll") {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = self.socket.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(Event::MediaData(d)) if d.params.spec().codec.is_video() => {
                        if frames.send(d.time.numer()).is_err() {
                            return;
                        }
                    }
                    Output::Event(_) => {}
                }
            };
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let (n, source) = r.expect("recv");
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination: local, contents },
                    );
                    self.rtc.handle_input(input).expect("input");
                }
                () = tokio::time::sleep_until(timeout.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).expect("timeout");
                }
            }
        }
    }
}

/// Plays `feed` with a new test viewer; returns the channel of the video
/// frame times it receives and its session id.
async fn viewer(
    webrtc: &WebRtc,
    feed: u64,
) -> Result<(mpsc::UnboundedReceiver<u64>, u64), WebRtcError> {
    let (mut peer, offer, pending) = TestViewer::new().await;
    let (mut handle, answer) = webrtc.play(&offer, None, feed).await?;
    let answer = SdpAnswer::from_sdp_string(&answer).expect("answer parses");
    peer.rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .expect("answer accepted");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(peer.run(tx));
    assert!(
        handle.ready(Duration::from_secs(10)).await,
        "viewer connected"
    );
    Ok((rx, handle.id))
}

/// The frame times `rx` gets within `wait` after the last one, up to `n`.
async fn collect(rx: &mut mpsc::UnboundedReceiver<u64>, n: usize) -> Vec<u64> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(t)) => got.push(t),
            _ => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_handed_once_reach_every_viewer_from_the_last_keyframe() {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let webrtc = WebRtc::bind(addr, None, Limits { max_sessions: 3 })
        .await
        .expect("bind");
    let mut feed = webrtc.feed();

    // A GOP begins before anyone watches: a viewer must start from it.
    let frame = |n: u64| OutFrame::Video {
        data: access_unit(n.is_multiple_of(10), n as u8),
        rtp_time: 1_000 + n * 3000,
        keyframe: n.is_multiple_of(10),
        layer: 1,
    };
    assert!(feed.send(frame(0)), "queued");
    assert!(feed.send(frame(1)), "queued");
    assert!(feed.send(frame(2)), "queued");

    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(viewer(&webrtc, feed.id()).await.expect("a viewer"));
    }
    assert!(
        matches!(viewer(&webrtc, feed.id()).await, Err(WebRtcError::Full)),
        "a fourth session is beyond max_sessions"
    );

    for n in 3..12 {
        assert!(feed.send(frame(n)), "queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let expected: Vec<u64> = (0..12).map(|n| 1_000 + n * 3000).collect();
    for (rx, id) in &mut viewers {
        let got = collect(rx, expected.len()).await;
        assert_eq!(got, expected, "viewer {id}: every frame, from the keyframe");
    }

    // Ending one viewer frees its place.
    let (_, first) = viewers.remove(0);
    assert!(webrtc.close(first).await, "a known session");
    assert!(
        viewer(&webrtc, feed.id()).await.is_ok(),
        "a place was freed"
    );
}
