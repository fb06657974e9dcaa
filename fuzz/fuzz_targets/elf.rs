//! The ELF path on arbitrary bytes: parsing, symbol resolution, offsets,
//! first-instruction decoding and the tiered report must never panic.
#![no_main]

use ckb_libbpf::node::elf::Elf;
use ckb_libbpf::node::insn::classify;
use ckb_libbpf::node::symbols::analyze_elf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(elf) = Elf::from_bytes("fuzz", data.to_vec()) else {
        return;
    };
    let _ = elf.kind();
    let _ = elf.needed();
    let _ = elf.has_symtab();
    let _ = elf.build_id();
    let _ = elf.debuglink();
    let _ = elf.find_string(b"ckb 0.", 40);
    if let Ok(funcs) = elf.all_functions() {
        for f in funcs.iter().take(64) {
            let _ = classify(&f.head);
        }
    }
    let _ = elf.functions(&["rocksdb_get", "rocksdb_put_cf"]);
    let _ = analyze_elf(&elf, Some("rocksdb"));
});
