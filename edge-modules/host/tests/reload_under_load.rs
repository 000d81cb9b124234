//! `reload` swaps components atomically while calls run on other threads:
//! no call fails or sees a half-loaded set, and calls after a reload use
//! the new components.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use livestack_edge::{
    ClientGeo, ComponentError, ComponentLimits, ComponentSource, Components, Job, RewriteOptions,
};

const PLAYLIST: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nseg1.m4s\n";

fn opts() -> RewriteOptions {
    RewriteOptions {
        token_query: Some("token=abc".into()),
        token_foreign_uris: false,
        base: None,
        max_bandwidth: None,
        max_height: None,
        allowed_codecs: Vec::new(),
        max_input_bytes: None,
    }
}

#[test]
fn reload_while_other_threads_call() {
    let with_files = common::modules_dir("reload-files");
    std::fs::copy(common::MANIFEST, with_files.join("manifest.wasm")).unwrap();
    std::fs::copy(common::ROUTING, with_files.join("routing.wasm")).unwrap();
    let embedded = common::modules_dir("reload-empty");

    // A generous deadline: this test is about atomic swaps, and on a busy
    // machine (debug build, three callers, compiles on other cores) a
    // thread can be descheduled for longer than the default 50 ms mid-call.
    let limits = ComponentLimits {
        deadline: Duration::from_secs(5),
        ..ComponentLimits::default()
    };
    let components = Arc::new(Components::load(None, limits, common::imports()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (components, stop, calls) = (
                Arc::clone(&components),
                Arc::clone(&stop),
                Arc::clone(&calls),
            );
            std::thread::spawn(move || {
                let client = ClientGeo {
                    location: None,
                    country: Some("DE".into()),
                };
                while !stop.load(Ordering::Relaxed) {
                    let out = components.rewrite_manifest(PLAYLIST, &opts());
                    assert_eq!(
                        out.unwrap().unwrap(),
                        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nseg1.m4s?token=abc\n"
                    );
                    let route = components.route("cam1", &client).unwrap().unwrap();
                    assert_eq!(route.node.region, "eu-west");
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    for round in 0..6 {
        let dir = if round % 2 == 0 {
            &with_files
        } else {
            &embedded
        };
        components.reload(dir).unwrap();
        let want = if round % 2 == 0 {
            ComponentSource::File(with_files.join("manifest.wasm"))
        } else {
            ComponentSource::Embedded
        };
        assert_eq!(components.sources()[1], (Job::Manifest, want));
        std::thread::sleep(Duration::from_millis(50));
    }

    // A failed reload leaves the running set in place.
    let broken = common::modules_dir("reload-broken");
    std::fs::write(broken.join("manifest.wasm"), b"\0asm garbage").unwrap();
    let err = components.reload(&broken).unwrap_err();
    assert!(
        matches!(
            err,
            ComponentError::Load {
                job: Job::Manifest,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        components.sources()[1],
        (Job::Manifest, ComponentSource::Embedded)
    );

    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker thread saw a failed call");
    }
    assert!(calls.load(Ordering::Relaxed) > 0);
    for dir in [with_files, embedded, broken] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn hostile_reload_fails_calls_until_the_good_module_returns() {
    let hostile = common::modules_dir("reload-hostile");
    std::fs::copy(common::HOSTILE_LOOP, hostile.join("manifest.wasm")).unwrap();
    let good = common::modules_dir("reload-good");
    let components = Components::load(
        Some(&good),
        ComponentLimits {
            deadline: Duration::from_millis(20),
            ..ComponentLimits::default()
        },
        common::imports(),
    )
    .unwrap();
    assert!(
        components
            .rewrite_manifest(PLAYLIST, &opts())
            .unwrap()
            .is_ok()
    );
    components.reload(&hostile).unwrap();
    assert_eq!(
        components.rewrite_manifest(PLAYLIST, &opts()),
        Err(ComponentError::DeadlineExceeded { job: Job::Manifest })
    );
    components.reload(&good).unwrap();
    assert!(
        components
            .rewrite_manifest(PLAYLIST, &opts())
            .unwrap()
            .is_ok()
    );
    for dir in [hostile, good] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn bounded_reuse_gives_the_same_answers_and_drops_failed_instances() {
    let hostile = common::modules_dir("reuse-hostile");
    std::fs::copy(common::HOSTILE_LOOP, hostile.join("manifest.wasm")).unwrap();
    let limits = ComponentLimits {
        max_instance_reuse: 3,
        max_module_instance_reuse: 3,
        max_idle_instances: 2,
        deadline: Duration::from_millis(20),
        ..ComponentLimits::default()
    };
    let components = Components::load(None, limits, common::imports()).unwrap();
    let client = ClientGeo {
        location: None,
        country: Some("US".into()),
    };
    for _ in 0..10 {
        let out = components
            .rewrite_manifest(PLAYLIST, &opts())
            .unwrap()
            .unwrap();
        assert!(out.ends_with("seg1.m4s?token=abc\n"));
        let route = components.route("cam1", &client).unwrap().unwrap();
        assert_eq!(route.node.region, "us-east");
    }
    // New imports reach the next call even with instances kept.
    let mut imports = common::imports();
    imports.registry = std::sync::Arc::new(livestack_edge::StaticRegistry::default());
    components.set_imports(imports);
    assert_eq!(
        components.route("cam1", &client).unwrap(),
        Err(livestack_edge::RoutingError::NoHealthyNode)
    );
    // A hostile module is still cut off, and a trapped instance is not
    // reused: every call gets the deadline again.
    components.reload(&hostile).unwrap();
    for _ in 0..2 {
        assert_eq!(
            components.rewrite_manifest(PLAYLIST, &opts()),
            Err(ComponentError::DeadlineExceeded { job: Job::Manifest })
        );
    }
    let _ = std::fs::remove_dir_all(hostile);
}

#[test]
fn embedded_components_are_reused_and_operator_modules_are_fresh_by_default() {
    let dir = common::modules_dir("reuse-policy");
    std::fs::copy(common::MANIFEST, dir.join("manifest.wasm")).unwrap();
    let components =
        Components::load(Some(&dir), ComponentLimits::default(), common::imports()).unwrap();
    let defaults = ComponentLimits::default();
    assert_eq!(defaults.max_module_instance_reuse, 1);
    assert!(defaults.max_instance_reuse > 1);
    // manifest.wasm comes from the modules directory: a fresh instance per
    // call. The other jobs run the embedded defaults: bounded reuse.
    assert_eq!(components.instance_reuse(Job::Manifest), 1);
    for job in [Job::Tokens, Job::Routing, Job::Signaling] {
        assert_eq!(
            components.instance_reuse(job),
            defaults.max_instance_reuse,
            "{job}"
        );
    }
    for _ in 0..3 {
        let out = components
            .rewrite_manifest(PLAYLIST, &opts())
            .unwrap()
            .unwrap();
        assert!(out.ends_with("seg1.m4s?token=abc\n"));
    }
    // Back to the embedded manifest component on reload from an empty
    // directory: reused again.
    let empty = common::modules_dir("reuse-policy-empty");
    components.reload(&empty).unwrap();
    assert_eq!(
        components.instance_reuse(Job::Manifest),
        defaults.max_instance_reuse
    );
    for dir in [dir, empty] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
