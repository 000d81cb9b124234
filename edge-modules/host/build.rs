//! Builds the edge components (`edge-modules/components`, a workspace of its
//! own) for `wasm32-wasip2` in release, into `<target dir>/wasm-components`,
//! and hands their paths to the crate as `LIVESTACK_COMPONENT_<JOB>` so the
//! host embeds them as defaults.
//!
//! Modelled on wasmtime's `crates/test-programs/artifacts/build.rs`: a nested
//! `$CARGO build` with a separate target directory and a cleaned environment,
//! and `rerun-if-changed` taken from the artifacts' dep-info files.

use std::collections::BTreeSet;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, env suffix) of every component the host embeds or tests use.
const COMPONENTS: &[(&str, &str)] = &[
    ("livestack-tokens-component", "TOKENS"),
    ("livestack-manifest-component", "MANIFEST"),
    ("livestack-routing-component", "ROUTING"),
    ("livestack-signaling-component", "SIGNALING"),
    ("livestack-hostile-loop", "HOSTILE_LOOP"),
    ("livestack-hostile-alloc", "HOSTILE_ALLOC"),
    ("livestack-hostile-keys", "HOSTILE_KEYS"),
    ("livestack-hostile-route", "HOSTILE_ROUTE"),
    ("livestack-hostile-kv", "HOSTILE_KV"),
];

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let edge_modules = manifest_dir
        .parent()
        .expect("edge-modules/host has a parent")
        .to_path_buf();
    let components = edge_modules.join("components");
    let wit = edge_modules
        .parent()
        .expect("edge-modules has a parent")
        .join("wit");
    let target_dir = wasm_target_dir();

    let mut watched = BTreeSet::new();
    watched.insert(wit.clone());
    watched.insert(components.join("Cargo.toml"));
    watched.insert(components.join("stack-size.rs"));
    for dir in [
        "tokens",
        "manifest",
        "routing",
        "signaling",
        "hostile-loop",
        "hostile-alloc",
        "hostile-keys",
        "hostile-route",
        "hostile-kv",
    ] {
        watched.insert(components.join(dir).join("Cargo.toml"));
        watched.insert(components.join(dir).join("src"));
    }
    for dir in ["tokens", "manifest", "routing", "signaling"] {
        watched.insert(edge_modules.join(dir).join("Cargo.toml"));
        watched.insert(edge_modules.join(dir).join("src"));
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(components.join("Cargo.toml"));
    for (package, _) in COMPONENTS {
        cmd.arg("--package").arg(package);
    }
    // The outer build's flags and wrappers are for the host target (and
    // clippy/miri drivers); none of them belongs in the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "CARGO_PROFILE_RELEASE_OPT_LEVEL",
        "CARGO_PROFILE_RELEASE_LTO",
        "CARGO_PROFILE_RELEASE_STRIP",
        "CARGO_PROFILE_RELEASE_PANIC",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_DIR", &target_dir);
    eprintln!("running: {cmd:?}");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo for the edge components: {e}"));
    assert!(
        status.success(),
        "building the edge components for {WASM_TARGET} failed ({status}); \
         the rustup target is needed: `rustup target add {WASM_TARGET}`"
    );

    let out = target_dir.join(WASM_TARGET).join("release");
    for (package, job) in COMPONENTS {
        let stem = package.replace('-', "_");
        let wasm = out.join(format!("{stem}.wasm"));
        assert!(wasm.is_file(), "{} was not produced", wasm.display());
        read_deps_of(&wasm, &mut watched);
        println!(
            "cargo:rustc-env=LIVESTACK_COMPONENT_{job}={}",
            wasm.display()
        );
    }
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `<workspace target dir>/wasm-components`, where the workspace target
/// directory is the directory above `OUT_DIR` that cargo marked with
/// `CACHEDIR.TAG` (this also honours `CARGO_TARGET_DIR` and `--target-dir`),
/// else `OUT_DIR` itself.
fn wasm_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or(&out_dir)
        .join("wasm-components")
}

/// Adds every source file listed in the Makefile-style dep-info file next to
/// `artifact` (`<name>.d`) to `watched`; files in the cargo registry never
/// change and are skipped.
fn read_deps_of(artifact: &Path, watched: &mut BTreeSet<PathBuf>) {
    let Ok(contents) = std::fs::read_to_string(artifact.with_extension("d")) else {
        return;
    };
    for line in contents.lines() {
        let Some(pos) = line.find(": ") else {
            continue;
        };
        let mut parts = line[pos + 2..].split_whitespace();
        while let Some(part) = parts.next() {
            let mut file = part.to_string();
            while file.ends_with('\\') {
                file.pop();
                file.push(' ');
                // A dep-info line may end in a continuation with nothing after it.
                file.push_str(parts.next().unwrap_or_default());
            }
            if !file.contains("/.cargo/registry/") {
                watched.insert(PathBuf::from(file));
            }
        }
    }
}
