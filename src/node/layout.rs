//! Two RocksDB object layouts, read from the machine code that uses them
//! rather than assumed: they move between RocksDB versions and compilers,
//! and a wrong offset would make the BPF programs read the wrong field.
//!
//! - Where an `ArenaWrappedDBIter` keeps its `DBIter *`: its `Next` is
//!   `mov rdi, [rdi + D]; jmp DBIter::Next` (it forwards every call).
//! - Where a `WriteBatch` keeps its data size: `rocksdb_writebatch_data(b,
//!   &size)` loads `[rdi + D]` and stores it through its second argument.
//!
//! Anything else (another instruction sequence, another architecture): not
//! learnt, and the feature that needs it stays off.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// `D` of a `mov r64, [base + D]` (no index), if `i` is one.
fn load_disp(i: &Instruction, base: Register) -> Option<(Register, u32)> {
    (i.mnemonic() == Mnemonic::Mov
        && i.op0_kind() == OpKind::Register
        && i.op0_register().size() == 8
        && i.op1_kind() == OpKind::Memory
        && i.memory_base() == base
        && i.memory_index() == Register::None)
        .then(|| (i.op0_register(), i.memory_displacement64() as u32))
}

/// The offset of the `DBIter *` inside an `ArenaWrappedDBIter`, from the
/// first bytes of `ArenaWrappedDBIter::Next` (`head`, at `vaddr`) and the
/// address of `DBIter::Next`, which it must jump to.
pub fn arena_dbiter_offset(head: &[u8], vaddr: u64, dbiter_next: u64) -> Option<u32> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let mut dec = Decoder::with_ip(64, head, vaddr, DecoderOptions::NONE);
    let mut first = dec.decode();
    if first.mnemonic() == Mnemonic::Endbr64 {
        first = dec.decode();
    }
    let (reg, d) = load_disp(&first, Register::RDI)?;
    let jmp = dec.decode();
    (reg == Register::RDI
        && d > 0
        && jmp.mnemonic() == Mnemonic::Jmp
        && matches!(jmp.op0_kind(), OpKind::NearBranch64)
        && jmp.near_branch_target() == dbiter_next)
        .then_some(d)
}

/// The offset of a write batch's data size, from the first bytes of
/// `rocksdb_writebatch_data` (`const char *(rocksdb_writebatch_t *b,
/// size_t *size)`): the field loaded from `[rdi + D]` and stored to `[rsi]`.
pub fn writebatch_size_offset(head: &[u8]) -> Option<u32> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let mut dec = Decoder::with_ip(64, head, 0, DecoderOptions::NONE);
    let mut loaded: Vec<(Register, u32)> = Vec::new();
    for _ in 0..4 {
        let i = dec.decode();
        if i.is_invalid() {
            return None;
        }
        if i.mnemonic() == Mnemonic::Endbr64 {
            continue;
        }
        if let Some(l) = load_disp(&i, Register::RDI) {
            loaded.retain(|(r, _)| *r != l.0);
            loaded.push(l);
            continue;
        }
        let store = i.mnemonic() == Mnemonic::Mov
            && i.op0_kind() == OpKind::Memory
            && i.memory_base() == Register::RSI
            && i.memory_index() == Register::None
            && i.memory_displacement64() == 0
            && i.op1_kind() == OpKind::Register;
        if store {
            return loaded
                .iter()
                .find(|(r, _)| *r == i.op1_register())
                .map(|&(_, d)| d)
                .filter(|&d| d > 0);
        }
        // Anything else first: not the accessor we know.
        return None;
    }
    None
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn ckb_0_210_arena_iterator() {
        // mov rdi, [rdi+0x28]; jmp 22eb7c0 (at 0x2219960)
        let head = [0x48, 0x8b, 0x7f, 0x28, 0xe9, 0x57, 0x1e, 0x0d, 0x00];
        assert_eq!(arena_dbiter_offset(&head, 0x2219960, 0x22eb7c0), Some(0x28));
        // Jumping elsewhere: not the forwarder we know.
        assert_eq!(arena_dbiter_offset(&head, 0x2219960, 0x22eb7d0), None);
        // Loading from another register.
        let head = [0x48, 0x8b, 0x7e, 0x28, 0xe9, 0x57, 0x1e, 0x0d, 0x00];
        assert_eq!(arena_dbiter_offset(&head, 0x2219960, 0x22eb7c0), None);
    }

    #[test]
    fn ckb_0_210_writebatch_data() {
        // mov rax, [rdi+0x48]; mov [rsi], rax; mov rax, [rdi+0x40]; ret
        let head = [
            0x48, 0x8b, 0x47, 0x48, 0x48, 0x89, 0x06, 0x48, 0x8b, 0x47, 0x40, 0xc3,
        ];
        assert_eq!(writebatch_size_offset(&head), Some(0x48));
        // A store of something not loaded from the batch.
        let head = [0x48, 0x89, 0x06, 0xc3];
        assert_eq!(writebatch_size_offset(&head), None);
        // endbr64 first (a CET build, e.g. Debian's librocksdb).
        let head = [
            0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x8b, 0x47, 0x48, 0x48, 0x89, 0x06,
        ];
        assert_eq!(writebatch_size_offset(&head), Some(0x48));
    }
}
