//! Compiles every `src/bpf/<layer>.bpf.c` into a BPF object with clang and
//! generates its libbpf-rs skeleton (`<layer>.skel.rs` in OUT_DIR). The object
//! is embedded in the skeleton, so the binary runs from any directory.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const LAYERS: &[&str] = &["rocksdb", "probe", "net", "background", "syscall"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    for layer in LAYERS {
        let src = format!("src/bpf/{layer}.bpf.c");
        SkeletonBuilder::new()
            .source(&src)
            .clang(&clang)
            .clang_args([
                // BPF ISA v3 (Linux 5.1+; the tool needs 5.8): 32-bit
                // subregisters and jumps, and the atomics rocksdb.bpf.c
                // claims a per-thread slot with (compare-and-swap).
                "-mcpu=v3",
                "-Wall",
                "-Wno-unused-function",
                "-I",
                "include",
                "-I",
                "src/bpf",
            ])
            .build_and_generate(out.join(format!("{layer}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src} (is clang installed? `make deps`): {e:#}"));
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=src/bpf/common.bpf.h");
    println!("cargo:rerun-if-changed=src/bpf/epoch.bpf.h");
    println!("cargo:rerun-if-changed=src/bpf/vmlinux.h");
    println!("cargo:rerun-if-changed=include/ckb_libbpf.h");
    println!("cargo:rerun-if-env-changed=CLANG");
}
