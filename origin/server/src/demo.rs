//! The built-in live source of `livestack demo`: a running wall clock
//! encoded as H.264 and a once-per-second AAC beep, published straight into
//! the media model (no SRT, no external tool), paced in real time.

use std::{sync::Arc, time::Duration};

use livestack_testsrc::{ClockConfig, ClockSource};
use tokio::time::{Instant, MissedTickBehavior};

use crate::{
    fanout::{self, MediaEvent},
    streams::{Streams, unix_ms},
};

/// Track ids of the demo broadcast.
const VIDEO_ID: u32 = 1;
const AUDIO_ID: u32 = 2;

/// Publishes the demo broadcast `name` until the returned future is
/// dropped.
pub async fn run(streams: Arc<Streams>, name: String) {
    let (producer, subscriber) = fanout::broadcast();
    streams.start(&name, &subscriber);
    let mut source = match ClockSource::new(ClockConfig::default()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "demo source configuration is invalid");
            return;
        }
    };
    producer.send(MediaEvent::Track {
        id: VIDEO_ID,
        params: source.video_params(),
    });
    producer.send(MediaEvent::Track {
        id: AUDIO_ID,
        params: source.audio_params(),
    });
    let frame_time = source.video_frame_duration();
    let audio_time = source.audio_frame_duration();
    let start = Instant::now();
    let mut video_n: u32 = 0;
    let mut audio_n: u32 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        // Audio first up to now, then video, so audio never trails video.
        while audio_time * audio_n <= elapsed {
            producer.send(MediaEvent::Frame {
                id: AUDIO_ID,
                frame: source.next_audio_frame(),
            });
            audio_n += 1;
        }
        while frame_time * video_n <= elapsed {
            let now = unix_ms(std::time::SystemTime::now());
            producer.send(MediaEvent::Frame {
                id: VIDEO_ID,
                frame: source.next_video_frame(now),
            });
            video_n += 1;
        }
    }
}
