//! # ingest-latency: ingest-to-viewer latency on loopback
//!
//! **What it measures.** With ffmpeg publishing in real time (`-re`) over
//! SRT and 200 ms parts, how long after a part's media time a blocking
//! LL-HLS client receives it: for each video part, (receive wall clock −
//! the part's program-date-time), and (receive − (PDT + part duration)),
//! i.e. how long after the wall-clock time of the part's *last* sample it
//! was delivered. **Goal: p95 (receive − PDT) ≤ 1 s.**
//!
//! **What PDT anchors to.** The origin stamps EXT-X-PROGRAM-DATE-TIME from
//! its own wall clock when the first video frame reaches its packager, and
//! every later part's PDT is that anchor plus media time. Everything before
//! the first frame's arrival — encoding, ffmpeg's muxing, the SRT latency
//! window (TSBPD, 120 ms here) and the demuxer's one-PES hold-back — shifts
//! the anchor and so is *not* in these figures; a real glass-to-glass
//! figure adds it. What is in them: the time a part takes to fill (its
//! duration, in the first figure), the packager's one-frame hold-back, the
//! SRT/TS transport's jitter relative to the first frame (a frame that
//! arrives later than the first one did, relative to its media time, adds
//! that lateness), and the HTTP delivery. Both processes share the host's
//! wall clock, so no clock offset is involved.
//!
//! **How.** Encodes (once, cached) 30 s of `testsrc2` 1280x720 30 fps H.264
//! 3 Mbit/s, 2 s GOP, + AAC; starts the release `livestack origin` on free
//! loopback ports (`--part-target 200ms`); publishes the file with
//! `ffmpeg -re -i FILE -c copy -f mpegts srt://…` (`livestack_test_harness::srt_url`);
//! follows `video.m3u8` with blocking reloads (`_HLS_msn`/`_HLS_part` for the
//! next part) and GETs every new part; a part's PDT is the preceding
//! EXT-X-PROGRAM-DATE-TIME (the first listed segment carries it) plus the
//! EXTINF durations of the segments in between plus the DURATIONs of the
//! parts before it in its segment. Parts already listed in the first
//! playlist (history) are not measured, nor those first listed with
//! EXT-X-ENDLIST (closed by the publisher's disconnect, not by a frame). Repeats `--runs` times (fresh
//! origin and publisher) and reports each run and the median across runs.
//!
//! **Run** (needs the release origin binary):
//!
//! ```sh
//! cargo build --release -p livestack
//! cargo run --release -p livestack-bench --bin ingest-latency
//! # on a machine shared with other work (as root):
//! cargo run --release -p livestack-bench --bin ingest-latency -- --nice -10
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use livestack_bench::{
    command_line,
    media::{self, EncodeSpec},
    process::{OriginProcess, OriginSpec, publish, renice_self},
    stats::{Summary, median, show},
};
use livestack_test_harness::hls::{HttpClient, MediaPlaylist};
use serde_json::json;

/// Ingest-to-viewer latency over SRT with ffmpeg -re.
#[derive(Debug, Parser)]
struct Args {
    /// Length of the published file, seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u32,
    /// Repetitions (fresh origin and publisher each).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// LL-HLS part target, milliseconds.
    #[arg(long, default_value_t = 200)]
    part_target_ms: u64,
    /// Niceness for the measured processes (e.g. -10, needs root): keeps
    /// other work on a shared machine from delaying them.
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
}

/// Goal for p95 of (receive − PDT), milliseconds.
const GOAL_P95_MS: f64 = 1000.0;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses the origin's EXT-X-PROGRAM-DATE-TIME form
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` into Unix milliseconds.
fn parse_pdt(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let frac_digits = frac.len().min(3);
    let ms = frac.get(..frac_digits)?.parse::<i64>().ok()? * 10_i64.pow(3 - frac_digits as u32);
    Some(((days_from_civil(y, mo, da) * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms)
}

/// PDT (Unix ms, fractional) and duration (ms) of every part listed, by
/// (msn, index).
fn part_times(pl: &MediaPlaylist) -> Vec<((u64, u32), f64, f64)> {
    let mut out = Vec::new();
    let mut seg_pdt: Option<f64> = None;
    for seg in &pl.segments {
        if let Some(p) = seg.program_date_time.as_deref().and_then(parse_pdt) {
            seg_pdt = Some(p as f64);
        }
        let Some(start) = seg_pdt else { continue };
        let mut at = start;
        for (i, part) in seg.parts.iter().enumerate() {
            out.push(((seg.msn, i as u32), at, part.duration * 1e3));
            at += part.duration * 1e3;
        }
        seg_pdt = Some(start + seg.duration * 1e3);
    }
    out
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// (receive − PDT, receive − (PDT + duration)) of every measured part, ms.
async fn run(
    source: &std::path::Path,
    part_target: Duration,
    nice: Option<i32>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let origin = OriginProcess::start(&OriginSpec {
        threads: None,
        cpu: None,
        part_target,
        nice,
        webtransport: false,
        https: false,
        webrtc: false,
    })
    .await?;
    let _ffmpeg = publish(origin.srt, "bench", source, false, None, nice)?;
    let url = format!("http://{}/live/bench/video.m3u8", origin.http);
    let client = HttpClient::new();
    // The stream exists once the SRT handshake is done; poll until then.
    let first = loop {
        let r = client.get(&url).await;
        if r.status == 200 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pl = MediaPlaylist::parse(&String::from_utf8_lossy(&first.body));
    let mut fetched = pl.last_part().context("first playlist has no part")?;
    let base = &url[..=url.rfind('/').unwrap_or(0)];
    let (mut to_start, mut to_end) = (Vec::new(), Vec::new());
    loop {
        let (m, p) = fetched;
        let r = client
            .get(&format!("{url}?_HLS_msn={m}&_HLS_part={}", p + 1))
            .await;
        if r.status != 200 {
            bail!("blocking reload answered {}", r.status);
        }
        let pl = MediaPlaylist::parse(&String::from_utf8_lossy(&r.body));
        let times = part_times(&pl);
        for seg in &pl.segments {
            for (i, part) in seg.parts.iter().enumerate() {
                let key = (seg.msn, i as u32);
                if key <= fetched {
                    continue;
                }
                let got = client.get(&format!("{base}{}", part.uri)).await;
                let recv = now_ms();
                fetched = key;
                if got.status != 200 {
                    continue;
                }
                // Parts first listed with EXT-X-ENDLIST were closed by the
                // publisher's disconnect, not by a following frame.
                if pl.endlist {
                    continue;
                }
                if let Some(&(_, pdt, dur)) = times.iter().find(|t| t.0 == key) {
                    to_start.push(recv - pdt);
                    to_end.push(recv - pdt - dur);
                }
            }
        }
        if pl.endlist {
            break;
        }
    }
    Ok((to_start, to_end))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(n) = args.nice {
        renice_self(n)?;
    }
    let spec = EncodeSpec {
        width: 1280,
        height: 720,
        fps: 30,
        seconds: args.seconds,
        video_kbps: 3000,
        audio_kbps: 128,
        gop_secs: 2,
    };
    let path = media::encoded(&spec)?;
    println!(
        "ingest-latency: program-date-time of each part vs the moment a blocking client receives it (goal p95 <= {GOAL_P95_MS} ms)"
    );
    println!("command: {}", command_line());
    println!(
        "source: {} ({:.2} Mbit/s) published with ffmpeg -re over SRT (latency 120 ms); part target {} ms; nice {:?}",
        path.display(),
        media::bitrate(&path)? as f64 / 1e6,
        args.part_target_ms,
        args.nice
    );
    let part_target = Duration::from_millis(args.part_target_ms);
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    let mut per_run = Vec::new();
    for i in 0..args.runs {
        let (a, b) = run(&path, part_target, args.nice).await?;
        let (sa, sb) = (Summary::of(&a), Summary::of(&b));
        println!(
            "run {}: receive - PDT ms               {}",
            i + 1,
            show(sa.as_ref())
        );
        println!(
            "run {}: receive - (PDT + duration) ms  {}",
            i + 1,
            show(sb.as_ref())
        );
        per_run.push(json!({
            "receive_minus_pdt_ms": Summary::json(sa.as_ref()),
            "receive_minus_part_end_ms": Summary::json(sb.as_ref()),
        }));
        starts.extend(sa);
        ends.extend(sb);
    }
    if starts.is_empty() {
        bail!("no part was measured");
    }
    let med = |v: &[Summary], f: fn(&Summary) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    let p95 = med(&starts, |s| s.p95);
    let verdict = if p95 <= GOAL_P95_MS { "MET" } else { "NOT MET" };
    println!(
        "median of {} runs: receive - PDT p50={:.1} p95={p95:.1} max={:.1} ms; receive - (PDT + duration) p50={:.1} p95={:.1} max={:.1} ms; goal p95 <= {GOAL_P95_MS} ms: {verdict} ({:.2}x of goal)",
        starts.len(),
        med(&starts, |s| s.p50),
        med(&starts, |s| s.max),
        med(&ends, |s| s.p50),
        med(&ends, |s| s.p95),
        med(&ends, |s| s.max),
        p95 / GOAL_P95_MS
    );
    println!(
        "{}",
        json!({
            "bench": "ingest-latency",
            "command": command_line(),
            "part_target_ms": args.part_target_ms,
            "nice": args.nice,
            "median_receive_minus_pdt_ms": {
                "p50": med(&starts, |s| s.p50), "p95": p95, "p99": med(&starts, |s| s.p99),
                "max": med(&starts, |s| s.max),
            },
            "median_receive_minus_part_end_ms": {
                "p50": med(&ends, |s| s.p50), "p95": med(&ends, |s| s.p95),
                "p99": med(&ends, |s| s.p99), "max": med(&ends, |s| s.max),
            },
            "goal_p95_ms": GOAL_P95_MS,
            "met": p95 <= GOAL_P95_MS,
            "runs": per_run,
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdt_round_trip() {
        for ms in [0, 951_782_400_000, 1_795_273_200_123, 4_107_542_399_999] {
            let text = livestack_hls::format_program_date_time(ms);
            assert_eq!(parse_pdt(&text), Some(ms), "{text}");
        }
    }
}
