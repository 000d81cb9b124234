//! Per-request cost of the edge components against the same logic called
//! natively.
//!
//! One request = instantiate the tokens component and verify a CAT, then
//! instantiate the manifest component and rewrite an LL-HLS media playlist
//! (10 segments, 30 parts, a preload hint and rendition reports: the
//! `livestack-manifest` bench playlist) with the token appended to every
//! URI. 20 000 requests after 2 000 warm-up requests; prints p50/p99/max
//! per request in µs, the same for each job alone and for the native
//! calls, and the ratios; first with a fresh instance per call
//! (`ComponentLimits::max_instance_reuse` = 1, what operator modules get by
//! default), then with the default limits (bounded instance reuse of the
//! embedded components, `max_instance_reuse` = 1000).
//!
//! Run: `cargo bench -p livestack-edge --bench component_call`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use livestack_edge::{ComponentLimits, Components, HostImports, Keys, RewriteOptions};

const KEYS: &str = "k1:HS256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
const PLAYLIST: &str = include_str!("../../manifest/tests/data/bench-media.m3u8");
const URL: &str = "https://edge.example/live/cam1/index.m3u8";
const NOW: u64 = 1_750_000_000;
const WARMUP: usize = 2_000;
const ITERATIONS: usize = 20_000;

struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
}

fn measure(mut call: impl FnMut()) -> Stats {
    for _ in 0..WARMUP {
        call();
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        call();
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Stats {
        p50: us(samples[ITERATIONS / 2]),
        p99: us(samples[ITERATIONS * 99 / 100]),
        max: us(samples[ITERATIONS - 1]),
    }
}

fn print(name: &str, s: &Stats) {
    println!(
        "{name:<34} p50 {:>8.2} µs   p99 {:>8.2} µs   max {:>9.2} µs",
        s.p50, s.p99, s.max
    );
}

/// Minor page faults of this process so far (Linux `/proc/self/stat`
/// field 10); 0 elsewhere.
fn minor_faults() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7))
        .and_then(|field| field.parse().ok())
        .unwrap_or(0)
}

struct Inputs {
    token: String,
    opts: RewriteOptions,
    native_opts: livestack_manifest::RewriteOptions,
}

/// Loads the components with `limits`, checks them against the native
/// crates, times them and returns the whole-request figures.
fn run_components(label: &str, limits: ComponentLimits, inputs: &Inputs) -> Stats {
    let load_start = Instant::now();
    let components = Components::load(
        None,
        limits,
        HostImports {
            keys: Keys::parse(KEYS).expect("keys"),
            ..HostImports::default()
        },
    )
    .expect("load components");
    println!(
        "{label}: load (compile + pre-instantiate 4 components) {:.1} ms",
        load_start.elapsed().as_secs_f64() * 1e3
    );
    let Inputs {
        token,
        opts,
        native_opts,
    } = inputs;

    // Same answers both ways before timing anything.
    let via_component = components
        .rewrite_manifest(PLAYLIST, opts)
        .expect("component call")
        .expect("rewrite");
    let native = livestack_manifest::rewrite(PLAYLIST, native_opts).expect("native rewrite");
    assert_eq!(via_component, native);
    components
        .verify_token(token, URL, NOW)
        .expect("component call")
        .expect("verify");

    let faults_before = minor_faults();
    let request = measure(|| {
        let verified = components.verify_token(black_box(token), URL, NOW);
        let rewritten = components.rewrite_manifest(black_box(PLAYLIST), opts);
        black_box(&(verified, rewritten));
    });
    let faults = minor_faults().saturating_sub(faults_before) as f64 / (WARMUP + ITERATIONS) as f64;
    let verify_only = measure(|| {
        black_box(components.verify_token(black_box(token), URL, NOW)).ok();
    });
    let rewrite_only = measure(|| {
        black_box(components.rewrite_manifest(black_box(PLAYLIST), opts)).ok();
    });
    println!("  {faults:.2} minor page faults per request");
    print("  request via components", &request);
    print("    tokens component (verify)", &verify_only);
    print("    manifest component (rewrite)", &rewrite_only);
    request
}

fn main() {
    let native_keys = livestack_tokens::KeySet::parse(KEYS).expect("keys");
    let mint = livestack_tokens::MintRequest::for_stream(
        "cam1",
        livestack_tokens::Access::Play,
        NOW,
        300,
        *b"bench-token",
    )
    .expect("mint request");
    let token = livestack_tokens::mint_cat(&mint, &native_keys).expect("mint");
    let token_query = format!("token={token}");
    let inputs = Inputs {
        opts: RewriteOptions {
            token_query: Some(token_query.clone()),
            token_foreign_uris: false,
            base: None,
            max_bandwidth: None,
            max_height: None,
            allowed_codecs: Vec::new(),
            max_input_bytes: None,
        },
        native_opts: livestack_manifest::RewriteOptions {
            token_query: Some(token_query),
            ..livestack_manifest::RewriteOptions::default()
        },
        token,
    };
    println!(
        "{ITERATIONS} iterations after {WARMUP} warm-up; playlist {} bytes",
        PLAYLIST.len()
    );

    let fresh = run_components(
        "fresh instance per call (max_instance_reuse = 1)",
        ComponentLimits {
            max_instance_reuse: 1,
            ..ComponentLimits::default()
        },
        &inputs,
    );
    let defaults = ComponentLimits::default();
    let reused = run_components(
        &format!(
            "bounded reuse (the default: max_instance_reuse = {})",
            defaults.max_instance_reuse
        ),
        defaults,
        &inputs,
    );

    let mut verify_opts = livestack_tokens::VerifyOptions::new(NOW);
    verify_opts.url = Some(livestack_tokens::RequestUrl::parse(URL).expect("url"));
    let native_request = measure(|| {
        let verified =
            livestack_tokens::verify(black_box(&inputs.token), &native_keys, &verify_opts);
        let rewritten = livestack_manifest::rewrite(black_box(PLAYLIST), &inputs.native_opts);
        black_box(&(verified, rewritten));
    });
    let native_verify = measure(|| {
        black_box(livestack_tokens::verify(
            black_box(&inputs.token),
            &native_keys,
            &verify_opts,
        ))
        .ok();
    });
    let native_rewrite = measure(|| {
        black_box(livestack_manifest::rewrite(
            black_box(PLAYLIST),
            &inputs.native_opts,
        ))
        .ok();
    });
    println!("native (the same logic called directly)");
    print("  request native", &native_request);
    print("    native verify", &native_verify);
    print("    native rewrite", &native_rewrite);
    for (label, request) in [("fresh", &fresh), ("reuse", &reused)] {
        println!(
            "{label}: components / native p50 {:.1}x, p99 {:.1}x; goal p50 <= 30 µs {}, p99 <= 150 µs {}",
            request.p50 / native_request.p50,
            request.p99 / native_request.p99,
            if request.p50 <= 30.0 { "met" } else { "MISSED" },
            if request.p99 <= 150.0 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}
