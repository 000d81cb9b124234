//! CPU cost of one transcoder: 10 s of AAC-LC 44.1 kHz stereo (the
//! fixture, looped) through decode, resampling and Opus encoding, three
//! runs, median and each run's real-time ratio.
//!
//!   cargo bench -p livestack-transcode --bench transcode
//!
//! `TRANSCODE_BENCH_AAC=FILE.aac` (ADTS) measures another source instead,
//! e.g. noise, which costs the encoder more than a tone:
//!
//!   ffmpeg -f lavfi -i anoisesrc=color=pink:sample_rate=44100 -ac 2 -t 10 \
//!     -c:a aac -b:a 128k -f adts /tmp/noise.aac

use std::time::{Duration, Instant};

use bytes::Bytes;
use livestack_media::{
    adts,
    model::{Frame, MediaTime},
};
use livestack_transcode::{AAC_FRAME_SAMPLES, AacToOpus};

const AAC: &[u8] = include_bytes!("../tests/data/sine440-44k1-stereo.aac");
const SECONDS: usize = 10;
const RUNS: usize = 3;

fn main() {
    let custom = std::env::var_os("TRANSCODE_BENCH_AAC")
        .map(|p| std::fs::read(p).expect("read the AAC file"));
    let aac = custom.as_deref().unwrap_or(AAC);
    let frames: Vec<_> = adts::frames(aac).filter_map(Result::ok).collect();
    let Some(first) = frames.first() else {
        panic!("no frames in the fixture");
    };
    let params = first.header.audio_params().expect("AAC params");
    let rate = params.sample_rate;
    let count = SECONDS * rate.get() as usize / AAC_FRAME_SAMPLES;
    let input: Vec<Frame> = (0..count)
        .map(|i| {
            let pts = MediaTime::new((i * AAC_FRAME_SAMPLES) as i64, rate);
            Frame {
                pts,
                dts: pts,
                duration: None,
                keyframe: true,
                data: Bytes::copy_from_slice(frames[i % frames.len()].payload),
            }
        })
        .collect();
    let audio = Duration::from_secs_f64((count * AAC_FRAME_SAMPLES) as f64 / f64::from(rate.get()));
    let mut times = Vec::new();
    for run in 0..RUNS {
        let mut t = AacToOpus::new(&params).expect("transcoder");
        let mut out = Vec::new();
        let start = Instant::now();
        for f in &input {
            t.push(f, &mut out).expect("transcodes");
        }
        let took = start.elapsed();
        let bytes: usize = out.iter().map(|p| p.data.len()).sum();
        println!(
            "run {run}: {count} AAC frames ({audio:.2?} of audio) → {} Opus packets ({:.0} kb/s) in {took:.2?} ({:.2} % of real time)",
            out.len(),
            bytes as f64 * 8.0 / audio.as_secs_f64() / 1000.0,
            100.0 * took.as_secs_f64() / audio.as_secs_f64()
        );
        times.push(took);
    }
    times.sort();
    let median = times[RUNS / 2];
    println!(
        "median of {RUNS}: {median:.2?} for {audio:.2?} of {} Hz, {} channel AAC → 48 kHz Opus ({:.2} % of one core)",
        rate.get(),
        params.channels,
        100.0 * median.as_secs_f64() / audio.as_secs_f64()
    );
}
