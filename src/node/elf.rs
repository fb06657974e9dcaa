//! ELF symbol resolution for uprobes: function name -> file offset, from
//! .symtab and .dynsym, with the first instruction's bytes for the probe-cost
//! check. Offsets are computed from the PT_LOAD segment holding the symbol
//! (file offset = vaddr - p_vaddr + p_offset), which is right for PIE and
//! non-PIE executables and for shared objects alike.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Result;
use memmap2::Mmap;
use object::{Object, ObjectKind, ObjectSegment, ObjectSymbol, SymbolKind};

use crate::error::{Exit, Failure};

/// A function the uprobe layer can attach to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncSym {
    pub name: String,
    pub vaddr: u64,
    pub size: u64,
    /// Offset of the first instruction in the file (what a uprobe takes).
    pub offset: u64,
    /// Up to 16 bytes from the start of the function.
    pub head: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfKind {
    Executable,
    PieExecutable,
    SharedObject,
    Other,
}

/// The bytes of an ELF file: mapped from disk, or owned (fuzzing, tests).
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// The remedy for a path that is not a usable binary.
const PASS_A_BINARY: &str =
    "pass the CKB executable (or the librocksdb.so it loads) with --binary, or a running node with --pid";

/// A file that could not be read, with its remedy: a live process's
/// /proc/PID/exe (or map_files) that we may not read belongs to another user,
/// and only CAP_SYS_PTRACE (or root) lets us in.
fn io_failure(what: &str, path: &Path, e: &std::io::Error) -> Failure {
    let f = Failure::new(Exit::Usage, format!("{what} {}: {e}", path.display()));
    if e.kind() == std::io::ErrorKind::PermissionDenied && path.starts_with("/proc") {
        f.hint("the process runs as another user: run as root, or grant CAP_SYS_PTRACE too: setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep $(which ckb-libbpf)")
    } else if e.kind() == std::io::ErrorKind::PermissionDenied {
        f.hint(format!(
            "make {} readable by this user, or run as root",
            path.display()
        ))
    } else {
        f.hint(PASS_A_BINARY)
    }
}

/// An ELF file, validated on creation.
pub struct Elf {
    pub path: PathBuf,
    map: Bytes,
}

impl Elf {
    /// Maps and validates `path`; a missing path, a directory or a non-ELF file
    /// is a usage error (exit 2) with a message naming the path and a remedy.
    pub fn open(path: &Path) -> Result<Elf> {
        let meta = std::fs::metadata(path).map_err(|e| io_failure("cannot read", path, &e))?;
        if meta.is_dir() {
            return Err(Failure::new(
                Exit::Usage,
                format!("{} is a directory, not an ELF binary", path.display()),
            )
            .hint(PASS_A_BINARY)
            .into());
        }
        if meta.len() == 0 {
            return Err(Failure::new(
                Exit::Usage,
                format!("{} is empty, not a valid ELF file", path.display()),
            )
            .hint(PASS_A_BINARY)
            .into());
        }
        let file = File::open(path).map_err(|e| io_failure("cannot open", path, &e))?;
        // SAFETY: read-only private mapping; a binary truncated under us can
        // only make the parser see garbage, which `object` bounds-checks.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io_failure("cannot map", path, &e))?;
        let elf = Elf {
            path: path.to_path_buf(),
            map: Bytes::Mapped(map),
        };
        elf.parse()?;
        Ok(elf)
    }

    /// An ELF image already in memory, under a display name.
    pub fn from_bytes(name: &str, data: Vec<u8>) -> Result<Elf> {
        let elf = Elf {
            path: PathBuf::from(name),
            map: Bytes::Owned(data),
        };
        elf.parse()?;
        Ok(elf)
    }

    fn parse(&self) -> Result<object::File<'_>> {
        object::File::parse(&*self.map).map_err(|e| {
            Failure::new(
                Exit::Usage,
                format!("{} is not a valid ELF file ({e})", self.path.display()),
            )
            .hint(PASS_A_BINARY)
            .into()
        })
    }

    pub fn kind(&self) -> ElfKind {
        match self.parse() {
            Ok(f) => match f.kind() {
                ObjectKind::Executable => ElfKind::Executable,
                ObjectKind::Dynamic if f.entry() != 0 && self.has_interp(&f) => {
                    ElfKind::PieExecutable
                }
                ObjectKind::Dynamic => ElfKind::SharedObject,
                _ => ElfKind::Other,
            },
            Err(_) => ElfKind::Other,
        }
    }

    fn has_interp(&self, f: &object::File<'_>) -> bool {
        f.section_by_name(".interp").is_some()
    }

    /// Libraries the file needs (DT_NEEDED), in order.
    pub fn needed(&self) -> Vec<String> {
        let Ok(object::File::Elf64(f)) = self.parse() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let endian = f.endian();
        let data = &*self.map;
        use object::read::elf::{Dyn, FileHeader, SectionHeader};
        let Ok(sections) = f.elf_header().sections(endian, data) else {
            return out;
        };
        for section in sections.iter() {
            let Ok(Some((dyns, link))) = section.dynamic(endian, data) else {
                continue;
            };
            let Ok(strings) = sections.strings(endian, data, link) else {
                continue;
            };
            for d in dyns {
                if d.tag32(endian) == Some(object::elf::DT_NEEDED) {
                    if let Ok(name) = d.string(endian, strings) {
                        out.push(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
        }
        out
    }

    /// Whether the file still has its full symbol table.
    pub fn has_symtab(&self) -> bool {
        self.parse()
            .map(|f| f.symbols().next().is_some())
            .unwrap_or(false)
    }

    /// The GNU build-id, hex.
    pub fn build_id(&self) -> Option<String> {
        let f = self.parse().ok()?;
        let id = f.build_id().ok()??;
        Some(id.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The file named by .gnu_debuglink (separate debug symbols), if any.
    pub fn debuglink(&self) -> Option<String> {
        let f = self.parse().ok()?;
        let (name, _crc) = f.gnu_debuglink().ok()??;
        Some(String::from_utf8_lossy(name).into_owned())
    }

    /// A printable string in the read-only data that starts with `prefix`
    /// (used to find version strings).
    pub fn find_string(&self, prefix: &[u8], max_len: usize) -> Option<String> {
        let f = self.parse().ok()?;
        let sec = f.section_by_name(".rodata")?;
        let data = object::ObjectSection::data(&sec).ok()?;
        let at = data.windows(prefix.len()).position(|w| w == prefix)?;
        let tail = &data[at..data.len().min(at + max_len)];
        let end = tail
            .iter()
            .position(|&c| !(0x20..0x7f).contains(&c))
            .unwrap_or(tail.len());
        Some(String::from_utf8_lossy(&tail[..end]).into_owned())
    }

    /// Drops the pages of the mapping read so far from the tool's resident
    /// set: a CKB binary's symbol and string tables are ~15 MB, and scanning
    /// them in one go would count all of it in the tool's RSS. The pages stay
    /// in the page cache and are read again on the next access.
    fn release_pages(&self) {
        if let Bytes::Mapped(m) = &self.map {
            // SAFETY: a read-only private file mapping that is never written:
            // MADV_DONTNEED only drops page-table entries, a later read faults
            // the same file contents back in.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// Every defined function symbol (.symtab and .dynsym, deduplicated by
    /// name), in no particular order.
    pub fn all_functions(&self) -> Result<Vec<FuncSym>> {
        self.collect_functions(|_| true)
            .map(|m| m.into_values().collect())
    }

    /// Resolves the defined functions among `names`, from .symtab then
    /// .dynsym. Only exact names match, so `foo.cold` clones never do.
    pub fn functions(&self, names: &[&str]) -> Result<HashMap<String, FuncSym>> {
        let wanted: std::collections::HashSet<&str> = names.iter().copied().collect();
        self.collect_functions(|n| wanted.contains(n))
    }

    /// The defined functions whose name passes `keep`. Filtering while
    /// reading matters: a CKB binary has ~150 K function symbols, and
    /// keeping them all costs the tool tens of MB of heap.
    pub fn functions_where(&self, keep: impl Fn(&str) -> bool) -> Result<Vec<FuncSym>> {
        self.collect_functions(keep)
            .map(|m| m.into_values().collect())
    }

    fn collect_functions(&self, keep: impl Fn(&str) -> bool) -> Result<HashMap<String, FuncSym>> {
        let f = self.parse()?;
        let mut out = HashMap::new();
        let segments: Vec<(u64, u64, u64)> = f
            .segments()
            .map(|s| {
                let (off, fsize) = s.file_range();
                (s.address(), fsize, off)
            })
            .collect();
        for (i, sym) in f.symbols().chain(f.dynamic_symbols()).enumerate() {
            if i % 16384 == 16383 {
                self.release_pages();
            }
            if sym.kind() != SymbolKind::Text || sym.is_undefined() || sym.address() == 0 {
                continue;
            }
            let Ok(name) = sym.name() else { continue };
            if !keep(name) || out.contains_key(name) {
                continue;
            }
            let vaddr = sym.address();
            let Some(offset) = file_offset(&segments, vaddr) else {
                continue;
            };
            let start = offset as usize;
            let end = (start + 16).min(self.map.len());
            out.insert(
                name.to_string(),
                FuncSym {
                    name: name.to_string(),
                    vaddr,
                    size: sym.size(),
                    offset,
                    head: self.map.get(start..end).unwrap_or_default().to_vec(),
                },
            );
        }
        Ok(out)
    }
}

/// File offset of `vaddr`, given (p_vaddr, p_filesz, p_offset) of each
/// loadable segment.
pub fn file_offset(segments: &[(u64, u64, u64)], vaddr: u64) -> Option<u64> {
    segments
        .iter()
        .find(|(addr, fsize, _)| vaddr >= *addr && vaddr < addr + fsize)
        .map(|(addr, _, off)| vaddr - addr + off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_of_a_pie_text_symbol() {
        // A typical PIE/.so layout: text mapped at 0x1000 from file offset 0x1000,
        // data at vaddr 0x3df0 from file offset 0x2df0.
        let segs = [
            (0, 0x6f8, 0),
            (0x1000, 0x1d5, 0x1000),
            (0x3df0, 0x248, 0x2df0),
        ];
        assert_eq!(file_offset(&segs, 0x1139), Some(0x1139));
        assert_eq!(file_offset(&segs, 0x3e00), Some(0x2e00));
        assert_eq!(file_offset(&segs, 0x2000), None);
    }

    #[test]
    fn offset_of_a_non_pie_symbol() {
        // Non-PIE executables load at 0x400000: offset = vaddr - 0x400000 + p_offset.
        let segs = [(0x400000, 0x1000, 0), (0x401000, 0x5000, 0x1000)];
        assert_eq!(file_offset(&segs, 0x401234), Some(0x1234));
    }

    #[test]
    fn offsets_match_the_running_test_binary() {
        // The test binary is a real PIE: the bytes at the computed offset must
        // be the bytes the loader mapped at the function's runtime address.
        #[inline(never)]
        #[no_mangle]
        extern "C" fn ckb_libbpf_elf_selftest_fn(x: u64) -> u64 {
            x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7)
        }
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let elf = Elf::open(&exe).unwrap();
        let funcs = elf.functions(&["ckb_libbpf_elf_selftest_fn"]).unwrap();
        let f = &funcs["ckb_libbpf_elf_selftest_fn"];
        let runtime = ckb_libbpf_elf_selftest_fn as *const () as *const u8;
        // SAFETY: reading the first bytes of a function of this very binary.
        let live = unsafe { std::slice::from_raw_parts(runtime, f.head.len()) };
        assert_eq!(live, &f.head[..]);
        assert_eq!(elf.kind(), ElfKind::PieExecutable);
    }

    #[test]
    fn non_elf_and_directories_are_usage_errors_with_a_remedy() {
        for p in ["/proc/self/status", "/tmp", "/nonexistent/ckb"] {
            let e = Elf::open(Path::new(p)).err().unwrap();
            assert_eq!(crate::error::exit_code(&e), Exit::Usage, "{p}");
            assert_eq!(crate::error::remedy(&e), Some(PASS_A_BINARY), "{p}");
        }
    }

    #[test]
    fn another_users_process_names_cap_sys_ptrace() {
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        let f = io_failure("cannot read", Path::new("/proc/42/exe"), &denied);
        assert!(f.remedy.unwrap().contains("CAP_SYS_PTRACE"));
        let f = io_failure("cannot read", Path::new("/opt/ckb"), &denied);
        assert!(f.remedy.unwrap().contains("readable"));
    }
}
