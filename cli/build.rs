//! Links the `gitseal` binary as a position-dependent executable on Linux.
//!
//! A one-shot `sops decrypt` or `kubeseal` is a few milliseconds, and a position-independent
//! executable of this size starts by applying about 47,000 relative relocations, which
//! writes to (and so copies) some 200 pages of pointer tables in every run: 0.4 ms of the
//! 1.4 ms `gitseal --version` took (docs/benchmarks.md, "Start-up"). Linked at a fixed
//! address, the tables need no relocation and stay shared with the page cache. Only the
//! executable's own image loses address randomisation; the stack, heap, shared libraries
//! and every other mapping keep it. The other binaries of the workspace are unchanged.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=gitseal=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
