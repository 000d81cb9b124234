//! Per-call latency of the rewrite on a realistic LL-HLS Media Playlist:
//! 10 segments, 30 parts, `EXT-X-MAP`, a preload hint and two rendition
//! reports (44 URIs, 2.6 KiB), with a token on every URI.
//!
//! Run with `cargo bench -p livestack-manifest`. Prints p50/p99/max of
//! single calls over 100 000 calls after 10 000 warm-up calls, for
//! `rewrite` (fresh output String per call, as inside a fresh component
//! instance) and `rewrite_into` (one reused buffer), and the same with a
//! Multivariant filter active.

use std::hint::black_box;
use std::time::Instant;

use livestack_manifest::{BaseRewrite, RewriteOptions, rewrite, rewrite_into};

const PLAYLIST: &str = include_str!("../tests/data/bench-media.m3u8");
const MULTIVARIANT: &str = include_str!("../tests/data/multivariant.m3u8");
const WARMUP: usize = 10_000;
const CALLS: usize = 100_000;

fn measure(name: &str, mut call: impl FnMut()) {
    for _ in 0..WARMUP {
        call();
    }
    let mut samples = Vec::with_capacity(CALLS);
    let total = Instant::now();
    for _ in 0..CALLS {
        let start = Instant::now();
        call();
        samples.push(start.elapsed());
    }
    let total = total.elapsed();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<44} p50 {:>8.2?}  p99 {:>8.2?}  max {:>9.2?}  mean {:>8.2?}",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1],
        total / u32::try_from(CALLS).unwrap_or(u32::MAX),
    );
}

fn main() {
    let token = RewriteOptions {
        token_query: Some(
            "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsaXZlL2RlbW8ifQ.c2lnbmF0dXJl".into(),
        ),
        ..RewriteOptions::default()
    };
    let token_base = RewriteOptions {
        base: Some(BaseRewrite {
            from: "http://origin:8080/live/".into(),
            to: "https://edge.example/live/".into(),
        }),
        ..token.clone()
    };
    let filter = RewriteOptions {
        max_height: Some(720),
        allowed_codecs: vec!["avc1".into(), "mp4a".into()],
        ..token.clone()
    };
    println!(
        "media playlist: {} bytes; multivariant: {} bytes; {CALLS} calls each",
        PLAYLIST.len(),
        MULTIVARIANT.len()
    );

    // Baselines on the same machine, to read the figures below as ratios
    // when other work shares the cores.
    measure("baseline: copy the playlist into a new String", || {
        black_box(black_box(PLAYLIST).to_owned());
    });
    measure("baseline: count lines (str::lines)", || {
        black_box(black_box(PLAYLIST).lines().count());
    });
    measure("rewrite (media, token)", || {
        black_box(rewrite(black_box(PLAYLIST), black_box(&token)).ok());
    });
    let mut buf = String::new();
    measure("rewrite_into reused buffer (media, token)", || {
        buf.clear();
        black_box(rewrite_into(black_box(PLAYLIST), black_box(&token), &mut buf).ok());
    });
    measure("rewrite (media, token + base)", || {
        black_box(rewrite(black_box(PLAYLIST), black_box(&token_base)).ok());
    });
    measure("rewrite (media, no options: copy only)", || {
        black_box(rewrite(black_box(PLAYLIST), black_box(&RewriteOptions::default())).ok());
    });
    measure("rewrite (multivariant, token + filters)", || {
        black_box(rewrite(black_box(MULTIVARIANT), black_box(&filter)).ok());
    });
}
