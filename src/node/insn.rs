//! Will a uprobe on this instruction be cheap? The x86 uprobe code
//! (arch/x86/kernel/uprobes.c) emulates a few instructions in the trap
//! handler: relative jmp/call/jcc, `push reg` and NOPs (endbr64 included).
//! Anything else is copied to an out-of-line slot and single-stepped, which
//! costs a second trap: measured here ~1.5 µs vs ~10 µs per uprobe+uretprobe
//! hit (BENCHMARKS.md §5).

use iced_x86::{
    Code, Decoder, DecoderOptions, FlowControl, Formatter, IntelFormatter, Mnemonic, OpKind,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeCost {
    /// The kernel emulates the instruction: cheap probe.
    Emulated(String),
    /// The kernel must single-step the instruction: expensive probe.
    SingleStep(String),
    /// Not x86_64, or the bytes do not decode.
    Unknown,
}

impl ProbeCost {
    pub fn is_single_step(&self) -> bool {
        matches!(self, ProbeCost::SingleStep(_))
    }
    pub fn insn(&self) -> &str {
        match self {
            ProbeCost::Emulated(s) | ProbeCost::SingleStep(s) => s,
            ProbeCost::Unknown => "?",
        }
    }
    pub fn label(&self) -> &'static str {
        match self {
            ProbeCost::Emulated(_) => "emulated",
            ProbeCost::SingleStep(_) => "single-step",
            ProbeCost::Unknown => "unknown",
        }
    }
}

/// Classifies the first instruction of a function from its first bytes.
pub fn classify(head: &[u8]) -> ProbeCost {
    if !cfg!(target_arch = "x86_64") || head.is_empty() {
        return ProbeCost::Unknown;
    }
    let mut dec = Decoder::with_ip(64, head, 0, DecoderOptions::NONE);
    let insn = dec.decode();
    if insn.is_invalid() {
        return ProbeCost::Unknown;
    }
    let mut text = String::new();
    IntelFormatter::new().format(&insn, &mut text);
    let emulated = match insn.mnemonic() {
        Mnemonic::Nop | Mnemonic::Endbr64 | Mnemonic::Endbr32 => true,
        Mnemonic::Push => insn.op0_kind() == OpKind::Register,
        _ => {
            matches!(
                insn.flow_control(),
                FlowControl::UnconditionalBranch
                    | FlowControl::ConditionalBranch
                    | FlowControl::Call
            ) && matches!(insn.op0_kind(), OpKind::NearBranch64 | OpKind::NearBranch32)
                && insn.code() != Code::INVALID
        }
    };
    if emulated {
        ProbeCost::Emulated(text)
    } else {
        ProbeCost::SingleStep(text)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn prologues_seen_in_ckb() {
        // push %rbp; push %r15; endbr64: emulated.
        assert!(matches!(classify(&[0x55]), ProbeCost::Emulated(_)));
        assert!(matches!(classify(&[0x41, 0x57]), ProbeCost::Emulated(_)));
        assert!(matches!(
            classify(&[0xf3, 0x0f, 0x1e, 0xfa]),
            ProbeCost::Emulated(_)
        ));
        // sub $0x18,%rsp (rocksdb_iter_seek in CKB 0.210.0): single-stepped.
        let c = classify(&[0x48, 0x83, 0xec, 0x18]);
        assert!(c.is_single_step(), "{c:?}");
        assert_eq!(c.insn(), "sub rsp,18h");
        // add, mov: single-stepped.
        assert!(classify(&[0x48, 0x01, 0xd8]).is_single_step());
        assert!(classify(&[0x48, 0x89, 0xe5]).is_single_step());
    }

    #[test]
    fn branches_are_emulated() {
        assert!(matches!(
            classify(&[0xe9, 0, 0, 0, 0]),
            ProbeCost::Emulated(_)
        )); // jmp rel32
        assert!(matches!(classify(&[0xeb, 0x10]), ProbeCost::Emulated(_))); // jmp rel8
        assert!(matches!(
            classify(&[0xe8, 0, 0, 0, 0]),
            ProbeCost::Emulated(_)
        )); // call rel32
        assert!(matches!(classify(&[0x74, 0x05]), ProbeCost::Emulated(_))); // je
        assert!(classify(&[0xff, 0xe0]).is_single_step()); // jmp *%rax
        assert!(classify(&[0xff, 0x30]).is_single_step()); // push (%rax): memory operand
    }

    #[test]
    fn garbage_is_unknown() {
        assert_eq!(classify(&[]), ProbeCost::Unknown);
        assert_eq!(classify(&[0x0f, 0xff]), ProbeCost::Unknown);
    }
}
