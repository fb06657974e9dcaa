//! Names of RocksDB databases and column families, read out of a running
//! process. The BPF side only sees handle pointers (`rocksdb_t *`,
//! `rocksdb_column_family_handle_t *`); what they are called lives in
//! RocksDB's C++ objects, whose layouts differ between RocksDB versions and
//! builds. Instead of hard-coding offsets, the tool runs RocksDB's own
//! accessors (`ColumnFamilyHandleImpl::GetName`, `DBImpl::GetName`,
//! `StackableDB::GetName`) on the live objects in a tiny x86-64 interpreter
//! that knows only loads, `lea`, `add`/`sub`, `cmp` with `je`/`jne`, calls,
//! jumps and `ret`, reading code
//! and data from /proc/PID/mem. Anything else (a store, an unknown
//! instruction, an unreadable address) gives up: unresolved.
//!
//! A name is only believed when the process itself confirms it: a database
//! name must be a directory whose `LOCK` file the process holds open, a
//! family name must be listed in that directory's latest `OPTIONS-*` file.
//! Unconfirmed handles stay unresolved ("db@0x…"), never misnamed.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

use super::elf::Elf;

/// Mangled names of the accessors run on the live objects.
const CF_GET_NAME: &str = "_ZNK7rocksdb22ColumnFamilyHandleImpl7GetNameB5cxx11Ev";
const DBIMPL_GET_NAME: &str = "_ZNK7rocksdb6DBImpl7GetNameB5cxx11Ev";
const STACKABLE_GET_NAME: &str = "_ZNK7rocksdb11StackableDB7GetNameB5cxx11Ev";

/// File offsets of the accessors in one ELF file (binary or librocksdb.so).
#[derive(Clone, Debug, Default)]
pub struct Accessors {
    /// (device, inode) of the file, to find its mappings in a process.
    file: (u64, u64),
    cf_name: Option<u64>,
    db_names: Vec<u64>,
}

impl Accessors {
    /// The accessors of `elf_path` (`attach_path` identifies its mappings);
    /// None if it has none of them.
    pub fn find(elf_path: &Path, attach_path: &Path) -> Option<Accessors> {
        let elf = Elf::open(elf_path).ok()?;
        let names = [CF_GET_NAME, DBIMPL_GET_NAME, STACKABLE_GET_NAME];
        let syms = elf.functions(&names).ok()?;
        let meta = std::fs::metadata(attach_path).ok()?;
        let a = Accessors {
            file: (meta.dev(), meta.ino()),
            cf_name: syms.get(CF_GET_NAME).map(|s| s.offset),
            // DBImpl first: the handle of a plain or base database.
            db_names: [DBIMPL_GET_NAME, STACKABLE_GET_NAME]
                .iter()
                .filter_map(|n| syms.get(*n).map(|s| s.offset))
                .collect(),
        };
        (a.cf_name.is_some() || !a.db_names.is_empty()).then_some(a)
    }
}

/// Resolved names of one process's handles.
struct Process {
    mem: Option<MemSource>,
    /// Runtime addresses of the accessors in this process.
    cf_name: Option<u64>,
    db_names: Vec<u64>,
    /// Directories whose LOCK file the process holds, and their families.
    dbs: HashMap<PathBuf, BTreeSet<String>>,
    db: HashMap<u64, Option<Db>>,
    cf: HashMap<(u64, u64), Option<String>>,
}

#[derive(Clone, Debug)]
struct Db {
    /// As the process opened it (`dbname_`).
    name: String,
    /// Its directory as the LOCK file's fd shows it.
    dir: PathBuf,
}

/// Handle -> name resolution for every traced process, cached. Unresolved
/// handles are retried at most `RETRIES` times (a database opened a moment
/// ago may not have its OPTIONS file yet).
#[derive(Default)]
pub struct Names {
    accessors: Vec<Accessors>,
    procs: HashMap<u32, Process>,
    tries: HashMap<(u32, u64, u64), u32>,
}

const RETRIES: u32 = 5;

impl Names {
    pub fn new(accessors: Vec<Accessors>) -> Names {
        Names {
            accessors,
            ..Names::default()
        }
    }

    /// The name of database handle `db` in process `tgid`.
    pub fn db(&mut self, tgid: u32, db: u64) -> Option<String> {
        self.db_entry(tgid, db).map(|d| d.name)
    }

    fn db_entry(&mut self, tgid: u32, db: u64) -> Option<Db> {
        if let Some(p) = self.procs.get(&tgid) {
            if let Some(Some(d)) = p.db.get(&db) {
                return Some(d.clone());
            }
        }
        if !self.retry(tgid, db, 0) {
            return None;
        }
        let p = self.process(tgid)?;
        let d = p.resolve_db(tgid, db);
        p.db.insert(db, d.clone());
        d
    }

    /// The name of family handle `cf` used on database handle `db`, or
    /// None if unconfirmed. CKB's chain families get its schema names.
    pub fn cf(&mut self, tgid: u32, db: u64, cf: u64) -> Option<String> {
        if let Some(Some(n)) = self.procs.get(&tgid).and_then(|p| p.cf.get(&(db, cf))) {
            return Some(n.clone());
        }
        if !self.retry(tgid, db, cf) {
            return None;
        }
        let dir = self.db_entry(tgid, db).map(|d| d.dir);
        let p = self.process(tgid)?;
        let n = p.resolve_cf(cf, dir.as_deref());
        p.cf.insert((db, cf), n.clone());
        n
    }

    fn retry(&mut self, tgid: u32, db: u64, cf: u64) -> bool {
        let n = self.tries.entry((tgid, db, cf)).or_default();
        *n += 1;
        if *n == 1 {
            return true;
        }
        // Later tries re-read the process's open databases.
        if *n <= RETRIES {
            if let Some(p) = self.procs.get_mut(&tgid) {
                p.dbs = lock_dirs(tgid);
            }
            return true;
        }
        false
    }

    fn process(&mut self, tgid: u32) -> Option<&mut Process> {
        if !self.procs.contains_key(&tgid) {
            let maps = std::fs::read_to_string(format!("/proc/{tgid}/maps")).ok()?;
            let mut cf_name = None;
            let mut db_names = Vec::new();
            for a in &self.accessors {
                if cf_name.is_none() {
                    cf_name = a.cf_name.and_then(|o| runtime(&maps, a.file, o));
                }
                db_names.extend(a.db_names.iter().filter_map(|&o| runtime(&maps, a.file, o)));
            }
            self.procs.insert(
                tgid,
                Process {
                    mem: Some(MemSource::open(tgid)),
                    cf_name,
                    db_names,
                    dbs: lock_dirs(tgid),
                    db: HashMap::new(),
                    cf: HashMap::new(),
                },
            );
        }
        self.procs.get_mut(&tgid)
    }

    /// Forgets a process that exited (its handles mean nothing any more).
    pub fn forget(&mut self, tgid: u32) {
        self.procs.remove(&tgid);
        self.tries.retain(|k, _| k.0 != tgid);
    }
}

impl Process {
    fn resolve_db(&mut self, tgid: u32, db: u64) -> Option<Db> {
        let mem = Mem(self.mem.as_ref()?);
        // rocksdb_t (and the transaction dbs' C structs) hold the C++
        // object pointer first.
        let rep = mem.u64(db)?;
        for &f in &self.db_names {
            let Some(s) = run(&mem, f, rep).and_then(|p| mem.string(p)) else {
                continue;
            };
            if let Some(dir) = confirm_dir(tgid, &s, &self.dbs) {
                return Some(Db { name: s, dir });
            }
            if let Some((dir, families)) = locked_dir(tgid, &s) {
                self.dbs.insert(dir.clone(), families);
                return Some(Db { name: s, dir });
            }
        }
        None
    }

    fn resolve_cf(&self, cf: u64, dir: Option<&Path>) -> Option<String> {
        let mem = Mem(self.mem.as_ref()?);
        let rep = mem.u64(cf)?;
        let name = mem.string(run(&mem, self.cf_name?, rep)?)?;
        let families: Vec<&BTreeSet<String>> = match dir {
            Some(d) => vec![self.dbs.get(d)?],
            // The database is unknown: the name must at least be a family
            // of one of the process's databases.
            None => self.dbs.values().collect(),
        };
        let set = families.into_iter().find(|s| s.contains(&name))?;
        Some(ckb_name(&name, set).map_or(name, str::to_string))
    }
}

/// CKB's schema names (db-schema crate) for its chain database's families
/// "0".."19", used when the database has all of "0".."18".
pub fn ckb_name(name: &str, families: &BTreeSet<String>) -> Option<&'static str> {
    const SCHEMA: [&str; 20] = [
        "COLUMN_INDEX",
        "COLUMN_BLOCK_HEADER",
        "COLUMN_BLOCK_BODY",
        "COLUMN_BLOCK_UNCLE",
        "COLUMN_META",
        "COLUMN_TRANSACTION_INFO",
        "COLUMN_BLOCK_EXT",
        "COLUMN_BLOCK_PROPOSAL_IDS",
        "COLUMN_BLOCK_EPOCH",
        "COLUMN_EPOCH",
        "COLUMN_CELL",
        "COLUMN_UNCLES",
        "COLUMN_CELL_DATA",
        "COLUMN_NUMBER_HASH",
        "COLUMN_CELL_DATA_HASH",
        "COLUMN_BLOCK_EXTENSION",
        "COLUMN_CHAIN_ROOT_MMR",
        "COLUMN_BLOCK_FILTER",
        "COLUMN_BLOCK_FILTER_HASH",
        "COLUMN_BLOCK_HEADER_NUM",
    ];
    let chain = (0..19).all(|i| families.contains(&i.to_string()));
    let i: usize = name.parse().ok()?;
    // "07" parses too: only the canonical spelling is CKB's.
    (chain && i.to_string() == name).then(|| SCHEMA.get(i).copied())?
}

/// Runtime address of file offset `off` of file `id` in a process's maps.
fn runtime(maps: &str, id: (u64, u64), off: u64) -> Option<u64> {
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (range, _perms, foff, dev, ino) =
            (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        let ino: u64 = ino.parse().ok()?;
        if ino != id.1 || !dev_matches(dev, id.0) {
            continue;
        }
        let (lo, hi) = range.split_once('-')?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let foff = u64::from_str_radix(foff, 16).ok()?;
        if off >= foff && off - foff < hi - lo {
            return Some(lo + off - foff);
        }
    }
    None
}

/// /proc/PID/maps prints the device as major:minor in hex.
fn dev_matches(field: &str, dev: u64) -> bool {
    let Some((ma, mi)) = field.split_once(':') else {
        return false;
    };
    let (Ok(ma), Ok(mi)) = (u64::from_str_radix(ma, 16), u64::from_str_radix(mi, 16)) else {
        return false;
    };
    // Linux's new_encode_dev layout (what stat's st_dev holds).
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    ma == major && mi == minor
}

/// The directories whose LOCK file the process holds open, with the
/// families their latest OPTIONS file lists.
fn lock_dirs(tgid: u32) -> HashMap<PathBuf, BTreeSet<String>> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{tgid}/fd")) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if target.file_name().is_some_and(|n| n == "LOCK") {
            if let Some(dir) = target.parent() {
                let fams = families(&Path::new(&format!("/proc/{tgid}/root")).join(rel(dir)));
                out.insert(dir.to_path_buf(), fams);
            }
        }
    }
    out
}

fn rel(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::RootDir))
        .collect()
}

/// Column families listed by the newest OPTIONS-<n> file of `dir`.
pub fn families(dir: &Path) -> BTreeSet<String> {
    let newest = std::fs::read_dir(dir).ok().and_then(|rd| {
        rd.flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let num: u64 = n.strip_prefix("OPTIONS-")?.parse().ok()?;
                Some((num, e.path()))
            })
            .max()
    });
    let Some((_, path)) = newest else {
        return BTreeSet::new();
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    options_families(&text)
}

/// `[CFOptions "name"]` sections of an OPTIONS file.
pub fn options_families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("[CFOptions \"")?
                .strip_suffix("\"]")
                .map(str::to_string)
        })
        .collect()
}

/// The LOCK directory `name` (as the process spelled it) is, if any.
fn confirm_dir(tgid: u32, name: &str, dbs: &HashMap<PathBuf, BTreeSet<String>>) -> Option<PathBuf> {
    let abs = absolute(tgid, name)?;
    if dbs.contains_key(&abs) {
        return Some(abs);
    }
    // Through symlinks, as the fd shows it.
    let real = real_path(tgid, &abs)?;
    dbs.contains_key(&real).then_some(real)
}

/// `name` as the process spelled it, made absolute against its cwd.
fn absolute(tgid: u32, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.len() > 4096 {
        return None;
    }
    let mut abs = PathBuf::new();
    if !name.starts_with('/') {
        abs = std::fs::read_link(format!("/proc/{tgid}/cwd")).ok()?;
    }
    for c in Path::new(name).components() {
        match c {
            Component::RootDir => abs.push("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                abs.pop();
            }
            Component::Normal(s) => abs.push(s),
            Component::Prefix(_) => return None,
        }
    }
    Some(abs)
}

/// `abs` in the process's filesystem with symlinks resolved.
fn real_path(tgid: u32, abs: &Path) -> Option<PathBuf> {
    let root = PathBuf::from(format!("/proc/{tgid}/root"));
    let real = std::fs::canonicalize(root.join(rel(abs))).ok()?;
    Some(match real.strip_prefix(&root) {
        Ok(r) => Path::new("/").join(r),
        Err(_) => real,
    })
}

/// The directory `name` is, with its families, when the process holds a
/// lock on its `LOCK` file by /proc/locks. The fallback for a process whose
/// /proc/PID/fd we may not list: that directory is mode 0500 and its
/// owner's, so tracing another user's node would otherwise need
/// CAP_DAC_READ_SEARCH on top of CAP_SYS_PTRACE just for the names.
fn locked_dir(tgid: u32, name: &str) -> Option<(PathBuf, BTreeSet<String>)> {
    let dir = real_path(tgid, &absolute(tgid, name)?)?;
    let in_root = Path::new(&format!("/proc/{tgid}/root")).join(rel(&dir));
    let lock = std::fs::metadata(in_root.join("LOCK")).ok()?;
    let locks = super::procfs::locks()?;
    posix_lock_held(&locks, tgid, lock.dev(), lock.ino()).then(|| (dir, families(&in_root)))
}

/// Whether /proc/locks text lists a POSIX lock (RocksDB locks `LOCK` with
/// fcntl) held by `tgid` on the file `dev`/`ino` (stat's values). A line:
/// `1: POSIX  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF`; a waiter's has
/// `->` before POSIX.
fn posix_lock_held(locks: &str, tgid: u32, dev: u64, ino: u64) -> bool {
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(&"POSIX"), Some(pid), Some(file)) = (f.get(1), f.get(4), f.get(5)) else {
            return false;
        };
        let Some((devf, inof)) = file.rsplit_once(':') else {
            return false;
        };
        pid.parse() == Ok(tgid) && inof.parse() == Ok(ino) && dev_matches(devf, dev)
    })
}

/// Reads of the process's memory.
/// Where the process's memory is read from: /proc/PID/mem, or
/// process_vm_readv(2) when that file's mode (0600, the process owner's)
/// keeps us out of another user's process although ptrace access
/// (CAP_SYS_PTRACE) is granted: the syscall checks only the latter.
enum MemSource {
    File(File),
    Pid(u32),
}

impl MemSource {
    fn open(tgid: u32) -> MemSource {
        File::open(format!("/proc/{tgid}/mem")).map_or(MemSource::Pid(tgid), MemSource::File)
    }
}

struct Mem<'a>(&'a MemSource);

impl Mem<'_> {
    fn bytes(&self, addr: u64, buf: &mut [u8]) -> Option<()> {
        let n = match self.0 {
            MemSource::File(f) => f.read_at(buf, addr).ok()?,
            MemSource::Pid(pid) => {
                let local = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                let remote = libc::iovec {
                    iov_base: addr as *mut libc::c_void,
                    iov_len: buf.len(),
                };
                // SAFETY: one local iovec covering `buf`, which outlives the
                // call; the remote one is only read, by the kernel, checked.
                let n = unsafe { libc::process_vm_readv(*pid as i32, &local, 1, &remote, 1, 0) };
                usize::try_from(n).ok()?
            }
        };
        (n == buf.len()).then_some(())
    }
    fn u64(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.bytes(addr, &mut b)?;
        Some(u64::from_le_bytes(b))
    }
    fn u32(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 4];
        self.bytes(addr, &mut b)?;
        Some(u32::from_le_bytes(b) as u64)
    }
    /// A libstdc++ std::string at `addr`: {data pointer, length, ...}.
    fn string(&self, addr: u64) -> Option<String> {
        let ptr = self.u64(addr)?;
        let len = self.u64(addr + 8)?;
        if len == 0 || len > 4096 {
            return None;
        }
        let mut b = vec![0u8; len as usize];
        self.bytes(ptr, &mut b)?;
        let s = String::from_utf8(b).ok()?;
        s.chars().all(|c| !c.is_control()).then_some(s)
    }
}

/// Instructions the interpreter runs before it gives up, all calls included.
const STEPS: usize = 64;

/// Runs the function at `pc` with `this` in rdi; returns rax at its `ret`.
fn run(mem: &Mem<'_>, pc: u64, this: u64) -> Option<u64> {
    let mut steps = STEPS;
    call(mem, pc, this, &mut steps, 0)
}

fn call(mem: &Mem<'_>, mut pc: u64, rdi: u64, steps: &mut usize, depth: u32) -> Option<u64> {
    if depth > 4 {
        return None;
    }
    let mut regs: HashMap<Register, u64> = HashMap::new();
    regs.insert(Register::RDI, rdi);
    // The zero flag after a `cmp` (None: no comparison seen).
    let mut equal: Option<bool> = None;
    let mut code = [0u8; 16];
    loop {
        *steps = steps.checked_sub(1)?;
        mem.bytes(pc, &mut code)?;
        let mut dec = Decoder::with_ip(64, &code, pc, DecoderOptions::NONE);
        let insn = dec.decode();
        if insn.is_invalid() {
            return None;
        }
        pc = insn.next_ip();
        match insn.mnemonic() {
            Mnemonic::Endbr64 | Mnemonic::Nop => {}
            // Frame set-up and tear-down: the stack is not modelled.
            Mnemonic::Push if insn.op0_kind() == OpKind::Register => {}
            Mnemonic::Pop if insn.op0_kind() == OpKind::Register => {
                regs.remove(&insn.op0_register().full_register());
            }
            Mnemonic::Mov if insn.op0_register() == Register::RBP => {}
            Mnemonic::Mov => {
                let dst = insn.op0_register();
                if dst == Register::None {
                    return None; // a store
                }
                let v = match insn.op1_kind() {
                    OpKind::Register => *regs.get(&insn.op1_register().full_register())?,
                    OpKind::Memory => {
                        let a = address(&insn, &regs)?;
                        match dst.size() {
                            8 => mem.u64(a)?,
                            4 => mem.u32(a)?,
                            _ => return None,
                        }
                    }
                    OpKind::Immediate32 | OpKind::Immediate32to64 | OpKind::Immediate64 => {
                        insn.immediate(1)
                    }
                    _ => return None,
                };
                regs.insert(dst.full_register(), v);
            }
            Mnemonic::Lea => {
                let a = address(&insn, &regs)?;
                regs.insert(insn.op0_register().full_register(), a);
            }
            Mnemonic::Add | Mnemonic::Sub if insn.op0_kind() == OpKind::Register => {
                let r = insn.op0_register().full_register();
                if r == Register::RSP {
                    continue;
                }
                let imm = match insn.op1_kind() {
                    OpKind::Immediate8to64 | OpKind::Immediate32to64 | OpKind::Immediate32 => {
                        insn.immediate(1)
                    }
                    _ => return None,
                };
                let v = *regs.get(&r)?;
                let v = if insn.mnemonic() == Mnemonic::Add {
                    v.wrapping_add(imm)
                } else {
                    v.wrapping_sub(imm)
                };
                regs.insert(r, v);
            }
            // Speculative devirtualisation (static builds): compare a
            // vtable slot with a known function, branch on equality.
            Mnemonic::Cmp if insn.op0_kind() == OpKind::Register => {
                let a = *regs.get(&insn.op0_register().full_register())?;
                let b = match insn.op1_kind() {
                    OpKind::Register => *regs.get(&insn.op1_register().full_register())?,
                    OpKind::Memory if insn.op0_register().size() == 8 => {
                        mem.u64(address(&insn, &regs)?)?
                    }
                    _ => return None,
                };
                equal = Some(a == b);
            }
            Mnemonic::Je | Mnemonic::Jne => {
                if (insn.mnemonic() == Mnemonic::Je) == equal? {
                    pc = insn.near_branch_target();
                }
            }
            Mnemonic::Call | Mnemonic::Jmp => {
                let target = match insn.op0_kind() {
                    OpKind::NearBranch64 => insn.near_branch_target(),
                    OpKind::Memory => mem.u64(address(&insn, &regs)?)?,
                    OpKind::Register => *regs.get(&insn.op0_register().full_register())?,
                    _ => return None,
                };
                let this = *regs.get(&Register::RDI)?;
                if insn.mnemonic() == Mnemonic::Jmp {
                    // A tail call (or a jump within): same frame.
                    pc = target;
                    continue;
                }
                let rax = call(mem, target, this, steps, depth + 1)?;
                // Caller-saved registers are gone after a call.
                regs.clear();
                regs.insert(Register::RAX, rax);
            }
            Mnemonic::Ret => return regs.get(&Register::RAX).copied(),
            _ => return None,
        }
    }
}

/// The effective address of a memory operand (base + displacement, or
/// RIP-relative); index registers are not expected in accessors.
fn address(insn: &Instruction, regs: &HashMap<Register, u64>) -> Option<u64> {
    if insn.memory_index() != Register::None {
        return None;
    }
    match insn.memory_base() {
        Register::RIP => Some(insn.memory_displacement64()),
        Register::None => None,
        b => Some(
            regs.get(&b.full_register())?
                .wrapping_add(insn.memory_displacement64()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines() {
        // st_dev of fd:01 in new_encode_dev's layout: major 0xfd, minor 1.
        let dev = (0xfd << 8) | 1;
        let text = "1: POSIX  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF\n\
                    1: -> POSIX  ADVISORY  WRITE 4343 fd:01:1234567 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 4444 fd:01:7654321 0 EOF\n";
        assert!(posix_lock_held(text, 4242, dev, 1234567));
        assert!(
            !posix_lock_held(text, 4343, dev, 1234567),
            "a waiter holds nothing"
        );
        assert!(
            !posix_lock_held(text, 4444, dev, 7654321),
            "flock, not RocksDB's fcntl"
        );
        assert!(!posix_lock_held(text, 4242, dev, 1234568));
        assert!(!posix_lock_held(text, 4242, dev + 1, 1234567));
    }

    #[test]
    fn options_files_list_their_families() {
        let text = "[Version]\n  rocksdb_version=9.10.0\n[DBOptions]\n  x=1\n[CFOptions \"default\"]\n  a=1\n[TableOptions/BlockBasedTable \"default\"]\n[CFOptions \"cells\"]\n";
        let f = options_families(text);
        assert_eq!(f.into_iter().collect::<Vec<_>>(), ["cells", "default"]);
    }

    #[test]
    fn ckb_names_only_for_the_chain_database() {
        let mut chain: BTreeSet<String> = (0..19).map(|i| i.to_string()).collect();
        chain.insert("default".into());
        assert_eq!(ckb_name("1", &chain), Some("COLUMN_BLOCK_HEADER"));
        assert_eq!(ckb_name("18", &chain), Some("COLUMN_BLOCK_FILTER_HASH"));
        assert_eq!(ckb_name("19", &chain), Some("COLUMN_BLOCK_HEADER_NUM"));
        assert_eq!(ckb_name("default", &chain), None);
        assert_eq!(ckb_name("01", &chain), None);
        chain.remove("7");
        assert_eq!(ckb_name("1", &chain), None, "not CKB's chain database");
    }

    #[test]
    fn devices_compare_as_the_kernel_prints_them() {
        // 259:3 (nvme) and 8:1 encoded as st_dev.
        assert!(dev_matches("103:03", (259 << 8) | 3));
        assert!(dev_matches("08:01", (8 << 8) | 1));
        assert!(!dev_matches("08:02", (8 << 8) | 1));
    }

    #[test]
    fn maps_translate_file_offsets() {
        let maps = "5581a0000000-5581a0100000 r--p 00000000 08:01 42 /x\n5581a0100000-5581a0300000 r-xp 00100000 08:01 42 /x\n";
        let id = ((8 << 8) | 1, 42);
        assert_eq!(runtime(maps, id, 0x100010), Some(0x5581a0100010));
        assert_eq!(runtime(maps, (id.0, 43), 0x100010), None);
    }
}
