//! `livestack demo`: origin and edge with embedded defaults and a built-in
//! live source (a running clock and a beep), printing the URLs to open.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Result;
use clap::Args;
use livestack_origin::config::OriginConfig;

use crate::{
    edge,
    origin::{self, OriginArgs},
    shutdown,
    token::{self, AccessArg, Format},
};

/// The demo's Media over QUIC listener (UDP) when `--webtransport` is not
/// given.
pub(crate) const DEFAULT_WEBTRANSPORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4443);

/// The demo's WebRTC port (UDP) when `--webrtc` is not given.
pub(crate) const DEFAULT_WEBRTC: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8189);

/// `livestack demo` flags.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub(crate) origin: OriginArgs,
    /// Name of the built-in broadcast.
    #[arg(long, default_value = "demo")]
    stream: String,
    /// The demo edge's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    edge_http: SocketAddr,
}

/// Runs the demo (origin `config`, which `main` resolved from
/// `args.origin`) until SIGINT or SIGTERM.
pub(crate) async fn run(args: DemoArgs, config: &OriginConfig) -> Result<()> {
    let mut origin = origin::start(config).await?;
    let name = args.stream;
    origin.spawn(livestack_origin::demo::run(
        Arc::clone(&origin.streams),
        name.clone(),
    ));
    origin::print_endpoints(&origin);
    let http = origin.http_addr;
    let srt = origin.srt_addr;
    // The demo edge gets a fresh HS256 key; viewers through it need
    // a token minted with that key.
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    use base64::Engine as _;
    let keys = format!(
        "demo:HS256:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let edge = edge::start(
        args.edge_http,
        &format!("http://{http}"),
        None,
        None,
        keys.clone(),
    )
    .await?;
    let token = token::mint(
        &keys,
        &name,
        Duration::from_secs(24 * 3600),
        Format::Cat,
        AccessArg::Play,
    )?;
    let edge_addr = edge.http_addr;
    origin.spawn(async move { edge.run().await });
    println!("HTTP (edge) listening on http://{edge_addr}");
    println!();
    println!("livestack demo is live. Open in a browser:");
    println!("  player:   http://{http}/?stream={name}");
    println!("  playlist: http://{http}/live/{name}/index.m3u8");
    if let Some(wt) = origin.webtransport_addr {
        println!(
            "  Media over QUIC (WebTransport, @moq/watch): http://{http}/moq.html?stream={name}"
        );
        println!("    (session https://{wt}/moq, broadcast {name})");
    }
    if origin.webrtc_addr.is_some() {
        println!(
            "  WebRTC: watch over WHEP, or publish your camera over WHIP: http://{http}/webrtc.html?stream={name}"
        );
        println!(
            "  WebRTC room (open it in several tabs, one name each): http://{http}/room.html?room=demo&name=you"
        );
    }
    println!("  through the edge, with a viewer token (CTA-5007 CAT, valid 24 h):");
    println!("  player:   http://{edge_addr}/?stream={name}&token={token}");
    println!("  playlist: http://{edge_addr}/live/{name}/index.m3u8?token={token}");
    println!("Publish your own stream over SRT, then pick it in the player:");
    println!(
        "  ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -c:v libx264 -g 60 -c:a aac -f mpegts 'srt://{srt}?streamid=#!::r=live/mine,m=publish'"
    );
    tokio::select! {
        _ = origin.run() => {}
        _ = shutdown::signal() => {}
    }
    Ok(())
}
