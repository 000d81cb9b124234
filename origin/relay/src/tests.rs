use super::*;

type P = Producer<&'static str, u32>;
type C = Consumer<&'static str, u32>;

fn frame(id: u32, keyframe: bool, payload: u32) -> Event<&'static str, u32> {
    Event::Frame {
        id,
        keyframe,
        payload,
    }
}

/// Payloads of every frame the consumer can read now, until it would wait.
async fn drain(c: &mut C) -> (Vec<(u32, u32)>, u64) {
    let mut frames = Vec::new();
    let mut skipped = 0;
    loop {
        let r = tokio::time::timeout(std::time::Duration::from_millis(20), c.recv()).await;
        match r {
            Ok(Received::Event(Event::Frame { id, payload, .. })) => frames.push((id, payload)),
            Ok(Received::Skipped { groups, .. }) => skipped += groups,
            Ok(Received::Event(Event::End) | Received::Closed) | Err(_) => break,
            Ok(Received::Event(_)) => {}
        }
    }
    (frames, skipped)
}

fn gops(p: &P, from: u32, to: u32, gop: u32) {
    for n in from..to {
        p.send(frame(1, n % gop == 0, n), 10);
    }
}

#[tokio::test]
async fn a_late_consumer_starts_at_the_latest_keyframe_of_every_track() {
    let (p, s) = broadcast(RelayConfig::default());
    p.send(
        Event::Track {
            id: 1,
            info: "video",
        },
        0,
    );
    p.send(
        Event::Track {
            id: 2,
            info: "audio",
        },
        0,
    );
    // Video groups start at 0 and 4; audio frames are all keyframes.
    for n in 0..6 {
        p.send(frame(1, n % 4 == 0, n), 10);
        p.send(frame(2, true, 100 + n), 1);
    }
    let mut c = s.subscribe();
    // Track information first, then the log from the video keyframe 4.
    assert_eq!(
        c.recv().await,
        Received::Event(Event::Track {
            id: 1,
            info: "video"
        })
    );
    assert_eq!(
        c.recv().await,
        Received::Event(Event::Track {
            id: 2,
            info: "audio"
        })
    );
    let (frames, skipped) = drain(&mut c).await;
    // Audio 104 was published right after video 4; the audio before it is
    // older than the join point.
    assert_eq!(frames, [(1, 4), (2, 104), (1, 5), (2, 105)]);
    assert_eq!(skipped, 0);
}

#[tokio::test]
async fn a_slow_consumer_skips_to_the_newest_group_and_counts_it() {
    let config = RelayConfig {
        max_entries: 50,
        max_bytes: 1 << 20,
    };
    let (p, s) = broadcast(config);
    let mut c = s.subscribe();
    gops(&p, 0, 5, 10);
    let (first, _) = drain(&mut c).await;
    assert_eq!(first.len(), 5);
    // The consumer stalls while 12 groups of 10 go by: the producer never
    // waits, the log keeps 50 events.
    gops(&p, 5, 125, 10);
    assert_eq!(
        c.recv().await,
        Received::Skipped {
            groups: 11,
            events: 115
        }
    );
    let (frames, _) = drain(&mut c).await;
    let payloads: Vec<u32> = frames.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        payloads,
        (120..125).collect::<Vec<_>>(),
        "the newest group, from its keyframe"
    );
    assert_eq!(c.skipped_groups(), 11);
}

#[tokio::test]
async fn memory_is_bounded_by_bytes_too() {
    let config = RelayConfig {
        max_entries: 1000,
        max_bytes: 100,
    };
    let (p, s) = broadcast(config);
    gops(&p, 0, 100, 5);
    let log = s.shared.lock();
    assert!(log.bytes <= 100);
    assert_eq!(log.entries.len(), 10);
}

#[tokio::test]
async fn a_group_too_large_for_the_log_waits_for_the_next_keyframe() {
    let config = RelayConfig {
        max_entries: 8,
        max_bytes: 1 << 20,
    };
    let (p, s) = broadcast(config);
    // One 20-frame group: its keyframe is evicted.
    gops(&p, 0, 20, 100);
    let mut c = s.subscribe();
    let (frames, _) = drain(&mut c).await;
    assert!(frames.is_empty(), "no keyframe to start from: {frames:?}");
    p.send(frame(1, true, 20), 10);
    let (frames, _) = drain(&mut c).await;
    assert_eq!(frames, [(1, 20)]);
}

#[tokio::test]
async fn loss_makes_late_consumers_wait_for_the_next_keyframe() {
    let (p, s) = broadcast(RelayConfig::default());
    gops(&p, 0, 3, 10);
    p.send(Event::Loss { id: 1 }, 0);
    p.send(frame(1, false, 3), 10);
    let mut c = s.subscribe();
    let (frames, _) = drain(&mut c).await;
    assert!(frames.is_empty(), "{frames:?}");
}

#[tokio::test]
async fn dropping_the_producer_ends_every_consumer() {
    let (p, s) = broadcast::<&'static str, u32>(RelayConfig::default());
    let mut live = s.subscribe();
    gops(&p, 0, 2, 10);
    drop(p);
    let mut late = s.subscribe();
    for c in [&mut live, &mut late] {
        let mut saw_end = false;
        loop {
            match c.recv().await {
                Received::Event(Event::End) => saw_end = true,
                Received::Closed => break,
                _ => {}
            }
        }
        assert!(saw_end);
    }
}

#[tokio::test]
async fn a_waiting_consumer_wakes_on_publish() {
    let (p, s) = broadcast::<&'static str, u32>(RelayConfig::default());
    let mut c = s.subscribe();
    let task = tokio::spawn(async move { c.recv().await });
    tokio::task::yield_now().await;
    p.send(frame(1, true, 7), 1);
    assert_eq!(task.await.ok(), Some(Received::Event(frame(1, true, 7))));
}
