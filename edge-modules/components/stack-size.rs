//! Build script shared by the edge components (`build = "../stack-size.rs"`).
//!
//! Links with a 128 KiB shadow stack instead of wasm-ld's 1 MiB default.
//! The stack sits at the bottom of linear memory (`--stack-first`), so a
//! small one keeps everything a call touches (stack, data, the first heap
//! pages) in the first few hundred KiB, which the edge host's pooling
//! allocator keeps resident between instances (no page faults per call).
//! Overflowing it traps (an out-of-bounds access below address 0); it never
//! corrupts data. The jobs' recursion is bounded (CBOR nesting, JSON depth).

fn main() {
    println!("cargo:rustc-link-arg=-zstack-size=131072");
}
