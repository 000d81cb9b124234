//! A misbehaving component fails only its own call: an endless loop is cut
//! off at the epoch deadline, unbounded allocation at the memory limit, and
//! the next call (with a good module) works.

mod common;

use std::time::{Duration, Instant};

use livestack_edge::{
    ComponentError, ComponentLimits, ComponentSource, Components, Job, RewriteOptions,
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
fn endless_loop_hits_the_deadline_and_the_next_call_works() {
    let dir = common::modules_dir("loop");
    std::fs::copy(common::HOSTILE_LOOP, dir.join("manifest.wasm")).unwrap();
    let limits = ComponentLimits {
        deadline: Duration::from_millis(50),
        ..ComponentLimits::default()
    };
    let components = Components::load(Some(&dir), limits, common::imports()).unwrap();
    assert_eq!(
        components.sources()[1],
        (
            Job::Manifest,
            ComponentSource::File(dir.join("manifest.wasm"))
        )
    );

    let start = Instant::now();
    let err = components.rewrite_manifest(PLAYLIST, &opts()).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err, ComponentError::DeadlineExceeded { job: Job::Manifest });
    assert!(
        took >= Duration::from_millis(45),
        "cut off too early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(500),
        "cut off too late: {took:?}"
    );

    // The other jobs are unaffected.
    assert!(components.verify_token("x", "", 0).unwrap().is_err());

    // Swap the good module back in: the next call works.
    std::fs::remove_file(dir.join("manifest.wasm")).unwrap();
    components.reload(&dir).unwrap();
    assert_eq!(
        components.sources()[1],
        (Job::Manifest, ComponentSource::Embedded)
    );
    let out = components
        .rewrite_manifest(PLAYLIST, &opts())
        .unwrap()
        .unwrap();
    assert!(out.contains("seg1.m4s?token=abc"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let dir = common::modules_dir("alloc");
    std::fs::copy(common::HOSTILE_ALLOC, dir.join("manifest.wasm")).unwrap();
    let limits = ComponentLimits {
        max_memory_bytes: 16 << 20,
        deadline: Duration::from_secs(5),
        ..ComponentLimits::default()
    };
    let components = Components::load(Some(&dir), limits, common::imports()).unwrap();
    for _ in 0..3 {
        let err = components.rewrite_manifest(PLAYLIST, &opts()).unwrap_err();
        assert_eq!(err, ComponentError::ResourceLimit { job: Job::Manifest });
    }
    std::fs::copy(common::MANIFEST, dir.join("manifest.wasm")).unwrap();
    components.reload(&dir).unwrap();
    let out = components
        .rewrite_manifest(PLAYLIST, &opts())
        .unwrap()
        .unwrap();
    assert!(out.contains("seg1.m4s?token=abc"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_file_that_is_not_a_component_is_a_load_error() {
    let dir = common::modules_dir("garbage");
    std::fs::write(dir.join("routing.wasm"), b"not wasm").unwrap();
    let err =
        Components::load(Some(&dir), ComponentLimits::default(), common::imports()).unwrap_err();
    assert!(
        matches!(
            err,
            ComponentError::Load {
                job: Job::Routing,
                ..
            }
        ),
        "{err}"
    );
    // A component for another job does not export this job's interface.
    std::fs::copy(common::MANIFEST, dir.join("routing.wasm")).unwrap();
    let err =
        Components::load(Some(&dir), ComponentLimits::default(), common::imports()).unwrap_err();
    assert!(
        matches!(
            err,
            ComponentError::Load {
                job: Job::Routing,
                ..
            }
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A replacement manifest component that imports the token keys (to sign
/// what it likes and leak the MACs into playlists) and the configuration is
/// refused at load: the
/// manifest job is linked with no host imports, so the import is missing
/// and named; the embedded components keep serving.
#[test]
fn a_manifest_module_asking_for_the_keys_is_not_linked() {
    let dir = common::modules_dir("keys");
    std::fs::copy(common::HOSTILE_KEYS, dir.join("manifest.wasm")).unwrap();
    let err = Components::load(Some(&dir), ComponentLimits::default(), common::imports())
        .expect_err("a manifest module importing keys or config must not load");
    match &err {
        ComponentError::Load { job, message, .. } => {
            assert_eq!(*job, Job::Manifest);
            assert!(
                message.contains("livestack:edge/config")
                    || message.contains("livestack:edge/keys"),
                "{message}"
            );
        }
        other => panic!("expected a load error, got {other:?}"),
    }
    // Without it, the defaults load and rewrite.
    std::fs::remove_file(dir.join("manifest.wasm")).unwrap();
    let components =
        Components::load(Some(&dir), ComponentLimits::default(), common::imports()).unwrap();
    let out = components
        .rewrite_manifest(PLAYLIST, &opts())
        .unwrap()
        .unwrap();
    assert!(out.contains("seg1.m4s?token=abc"), "{out}");
}

/// A replacement routing component that answers with a URL of its own, or
/// with a node the registry does not list: the host returns the
/// registry's record of a listed node (its URL, not the module's), and
/// refuses an unlisted one as a routing error.
#[test]
fn a_routing_module_cannot_send_the_edge_elsewhere() {
    let dir = common::modules_dir("route");
    std::fs::copy(common::HOSTILE_ROUTE, dir.join("routing.wasm")).unwrap();
    let components =
        Components::load(Some(&dir), ComponentLimits::default(), common::imports()).unwrap();
    let listed = common::registry().nodes[0].clone();
    let geo = livestack_edge::ClientGeo {
        location: None,
        country: None,
    };

    components.set_imports(livestack_edge::HostImports {
        config: [("hostile.node-id".to_owned(), listed.id.clone())].into(),
        ..common::imports()
    });
    let route = components.route("live/cam", &geo).unwrap().unwrap();
    assert_eq!(route.node.id, listed.id);
    assert_eq!(route.node.base_url, listed.base_url, "the registry's URL");

    components.set_imports(common::imports());
    match components.route("live/cam", &geo).unwrap() {
        Err(livestack_edge::RoutingError::Other(reason)) => {
            assert!(reason.contains("\"evil\""), "{reason}");
        }
        other => panic!("an unlisted node must not be routed to: {other:?}"),
    }
}

/// A replacement signaling component writes the replay record of a
/// single-use token that has not been used yet (so that its first use
/// would be refused): every job has its own key-value store, so the tokens
/// job still sees the token's first use.
#[test]
fn a_module_cannot_forge_another_jobs_store() {
    const URL: &str = "https://edge.example/live/cam1/index.m3u8";
    const NOW: u64 = 1_750_000_000;
    let mut req = livestack_tokens::MintRequest::for_stream(
        "cam1",
        livestack_tokens::Access::Play,
        NOW,
        300,
        *b"t-forged",
    )
    .unwrap();
    req.claims.catreplay = Some(livestack_tokens::ReplayPolicy::Prohibited);
    let token = livestack_tokens::mint_cat(&req, &common::native_keys()).unwrap();
    let mut opts = livestack_tokens::VerifyOptions::new(NOW);
    opts.url = Some(livestack_tokens::RequestUrl::parse(URL).unwrap());
    let (replay_key, _) = livestack_tokens::verify(&token, &common::native_keys(), &opts)
        .unwrap()
        .replay
        .record()
        .map(|(k, t)| (k.to_owned(), t))
        .expect("a single-use token is recorded");

    let dir = common::modules_dir("kv");
    std::fs::copy(common::HOSTILE_KV, dir.join("signaling.wasm")).unwrap();
    let components =
        Components::load(Some(&dir), ComponentLimits::default(), common::imports()).unwrap();
    let forged = components
        .signal(livestack_edge::SignalingRequest {
            method: "POST".into(),
            path: "/whep/cam1".into(),
            headers: Vec::new(),
            body: replay_key.into_bytes(),
            client: livestack_edge::ClientGeo {
                location: None,
                country: None,
            },
            now_unix_s: NOW,
        })
        .unwrap();
    assert_eq!(forged.status, 204, "the module wrote into its own store");
    let first = components.verify_token(&token, URL, NOW).unwrap().unwrap();
    assert_eq!(first.replay, livestack_edge::ReplayOutcome::FirstUse);
}
