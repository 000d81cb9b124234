//! The `livestack` binary once more, for the end-to-end tests that run the
//! real command line as separate processes (a cluster around Redis, logs
//! and span export): cargo hands an integration test only the binaries of
//! its own package (`CARGO_BIN_EXE_<name>`). Same code as
//! `origin/livestack/src/main.rs`.

fn main() -> anyhow::Result<()> {
    livestack::main()
}
