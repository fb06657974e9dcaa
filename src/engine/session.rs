//! One capture and its sessions: loading and attaching each layer for one
//! process, the poll/drain loop, and folding the reads into the
//! aggregators that outlive the session.

use std::mem::MaybeUninit;
use std::time::Instant;

use anyhow::Result;
use crossbeam_channel::{never, select, Receiver};
use libbpf_rs::{Link, OpenObject};

use super::follow::{Resume, Sessions};
use super::{AlertCount, Options, Snapshot, Stop, Totals, View, Want};
use crate::analyze::inputs::{CauseInputs, CauseSample, SyscallTotals};
use crate::analyze::{Analyzer, Observation};
use crate::clock::{monotonic_ns, Clock};
use crate::collect::names::NameReader;
use crate::collect::{Poller, RingDrain, RingLines};
use crate::error::{note, Exit, Failure};
use crate::model::background::{self as bgmodel, BgAggregator};
use crate::model::net::{self as netmodel, ConnEvent};
use crate::model::overhead::HitClass;
use crate::model::rocksdb::{self as rdbmodel, Traced};
use crate::model::syscall::{self as scmodel, Tick};
use crate::model::TargetEvent;
use crate::node::insn::ProbeCost;
use crate::node::{procfs, Proc, Target};
use crate::probe::background::{self as bgprobe, BackgroundSkel, BgEvent};
use crate::probe::net::{self as netprobe, NetEvent, NetSkel};
use crate::probe::rocksdb::{self as rdb, Plan, RdbEvent, RocksdbSkel};
use crate::probe::syscall::{self as sc, SyscallSkel};
use crate::probe::uprobe::{self, Backend};
use crate::probe::MapMemory;
use crate::render::slow::{Family, SlowRef, Stamp};
use libbpf_rs::skel::Skel;

/// What a capture keeps across its sessions.
pub(super) struct Capture<'v> {
    opts: Options,
    view: &'v mut dyn View,
    clock: Clock,
    pub(super) sigs: Receiver<()>,
    pub(super) deadline: Receiver<Instant>,
    /// The net layer's program flavour per feature, chosen once.
    net_choice: Option<(netprobe::Choice, Vec<crate::probe::features::Probed>)>,
    sc_backend: Option<sc::Backend>,
    rdb: Option<rdbmodel::Aggregator>,
    bg: Option<BgAggregator>,
    net: Option<netmodel::Aggregator>,
    sc: Option<scmodel::Aggregator>,
    causes: CauseInputs,
    analyzer: Option<Analyzer>,
    restarts: u64,
    /// Links attached now per layer (`Snapshot::attached`).
    attached: Vec<(&'static str, u64)>,
}

/// The cost class of a probe; an unclassified first instruction counts as
/// single-stepped (the estimate errs on the side of cost).
fn hit_class(c: &ProbeCost) -> HitClass {
    match c {
        ProbeCost::Emulated(_) => HitClass::Emulated,
        ProbeCost::SingleStep(_) | ProbeCost::Unknown => HitClass::SingleStepped,
    }
}

/// One read of every layer at the end of an interval (poller thread).
struct Reading {
    rdb: Option<rdbmodel::Sample>,
    bg: Option<bgmodel::Sample>,
    net: Option<netmodel::Sample>,
    sc: Option<Tick>,
}

/// Owned map handles of the session's layers, for the poller thread.
struct Readers {
    rdb: Option<rdb::Maps>,
    bg: Option<bgprobe::Maps>,
    net: Option<netprobe::Maps>,
    sc: Option<(sc::Maps, u32)>,
}

impl Readers {
    fn read(&self, epoch: u64) -> Result<Reading> {
        let sc = match &self.sc {
            Some((m, pid)) => {
                // Waits first: the rows then hold every wait counted.
                let futex_waits = sc::read_futex_waits(m)?;
                Some(Tick {
                    sample: sc::read_sample(m, epoch)?,
                    threads: procfs::thread_names(*pid),
                    futex_waits,
                })
            }
            None => None,
        };
        Ok(Reading {
            rdb: self
                .rdb
                .as_ref()
                .map(|m| rdb::read_sample(m, epoch))
                .transpose()?,
            bg: self
                .bg
                .as_ref()
                .map(|m| bgprobe::read_sample(m, epoch))
                .transpose()?,
            net: self.net.as_ref().map(netprobe::read_sample).transpose()?,
            sc,
        })
    }
}

/// The RocksDB C API layer of one session.
struct RdbLayer<'obj> {
    skel: RocksdbSkel<'obj>,
    links: Option<Vec<Link>>,
    plan: Plan,
    backend: Backend,
}

/// The net and syscall layers of one session.
struct NetLayer<'obj> {
    skel: NetSkel<'obj>,
    links: Vec<Link>,
}
struct ScLayer<'obj> {
    skel: SyscallSkel<'obj>,
    links: Vec<Link>,
}
struct BgLayer<'obj> {
    skel: BackgroundSkel<'obj>,
    links: Vec<Link>,
    plan: bgprobe::Plan,
}

impl<'v> Capture<'v> {
    pub(super) fn new(
        opts: &Options,
        target: &Target,
        view: &'v mut dyn View,
        sigs: Receiver<()>,
        deadline: Receiver<Instant>,
    ) -> Result<Capture<'v>> {
        let l = opts.layers;
        let pid = target.proc.as_ref().map(|p| p.pid);
        if pid.is_none() && (l.net == Want::Required || l.syscall == Want::Required) {
            return Err(
                Failure::new(Exit::Usage, "the net and syscall layers trace one process")
                    .hint("name it with --pid PID or --name NAME")
                    .into(),
            );
        }
        let net_choice = match l.net {
            Want::Off => None,
            Want::Required => Some(netprobe::choose(opts.net_backend)?),
            Want::Optional => netprobe::choose(opts.net_backend).ok(),
        };
        let sc_backend = match l.syscall {
            Want::Off => None,
            Want::Required => {
                let (b, probed) = sc::choose(opts.syscall_backend)?;
                for p in probed.iter().filter(|p| !p.ok) {
                    note(format!("{} unavailable ({})", p.attach.name(), p.detail));
                }
                Some(b)
            }
            Want::Optional => sc::choose(opts.syscall_backend).ok().map(|(b, _)| b),
        };
        let rdb = l.rocksdb.then(|| {
            let mut a = rdbmodel::Aggregator::new(opts.by_function, opts.value_sizes);
            if opts.calibrate {
                let per_hit = super::calibrate(opts.uprobe_backend, opts.overhead_budget);
                a.set_overhead(per_hit, opts.overhead_budget);
            }
            a
        });
        Ok(Capture {
            net: net_choice
                .as_ref()
                .map(|(c, _)| netmodel::Aggregator::new(pid, c.pairs())),
            sc: sc_backend.map(|b| scmodel::Aggregator::new(b.name(), opts.top)),
            net_choice,
            sc_backend,
            rdb,
            bg: None,
            causes: CauseInputs::default(),
            analyzer: super::analyzer(opts),
            restarts: 0,
            attached: Vec::new(),
            opts: opts.clone(),
            view,
            clock: Clock::new(),
            sigs,
            deadline,
        })
    }

    /// The view's snapshot of the whole capture.
    pub(super) fn final_snapshot(&mut self) {
        let mut s = Snapshot {
            is_final: true,
            rocksdb: self.rdb.as_ref().map(|a| a.whole()),
            background: self.bg.as_ref().map(BgAggregator::whole),
            net: self
                .net
                .as_mut()
                .map(|a| a.whole(Instant::now(), monotonic_ns())),
            syscall: self.sc.as_ref().map(|a| a.whole()),
            anomalies: Vec::new(),
            alerts: self.alert_count(),
            totals: None,
            attached: self.attached.clone(),
        };
        if self.opts.totals {
            s.totals = Some(Box::new(self.totals(None)));
        }
        let _ = self.view.snapshot(&s);
    }

    fn alert_count(&self) -> Option<AlertCount> {
        self.analyzer.as_ref().map(|a| AlertCount {
            raised: a.alerts(),
            learning: a.learning(),
        })
    }

    /// The whole capture so far; `net` is the current session's last read.
    fn totals(&self, net: Option<&netmodel::Sample>) -> Totals {
        Totals {
            rocksdb: self.rdb.as_ref().map(|a| a.whole()),
            background: self.bg.as_ref().map(BgAggregator::whole),
            net: self.net.as_ref().map(|a| a.totals(net)),
            syscall: self.sc.as_ref().map(|a| a.whole()),
            restarts: self.restarts,
        }
    }

    /// Folds one interval's reading in and shows its snapshot.
    fn interval(&mut self, r: &Reading, now: Instant) -> Result<(), Stop> {
        let rocksdb = match (&mut self.rdb, &r.rdb) {
            (Some(a), Some(s)) => Some(a.interval(s, now)),
            _ => None,
        };
        let background = match (&mut self.bg, &r.bg) {
            (Some(a), Some(s)) => Some(a.interval(s)),
            _ => None,
        };
        let net = match (&mut self.net, &r.net) {
            (Some(a), Some(s)) => Some(a.report(s, now, monotonic_ns(), false)),
            _ => None,
        };
        let syscall = match (&mut self.sc, &r.sc) {
            (Some(a), Some(t)) => Some(a.interval(t, now)),
            _ => None,
        };
        let mut anomalies = Vec::new();
        if let (Some(an), Some(rep)) = (&mut self.analyzer, &rocksdb) {
            let cause = CauseSample {
                sc: r.sc.as_ref().map(|t| {
                    SyscallTotals::from_rows(
                        t.sample.rows.iter().map(|k| (k.nr, &k.stats.op)),
                        t.futex_waits,
                    )
                }),
                net: r.net.as_ref().map(|s| s.totals),
            };
            let obs = self
                .causes
                .observe(Observation::from_report(rep, background.as_ref()), &cause);
            anomalies = an.observe(obs);
        }
        let mut s = Snapshot {
            is_final: false,
            rocksdb,
            background,
            net,
            syscall,
            anomalies,
            alerts: self.alert_count(),
            totals: None,
            attached: self.attached.clone(),
        };
        if self.opts.totals {
            s.totals = Some(Box::new(self.totals(r.net.as_ref())));
        }
        self.view.snapshot(&s)
    }

    fn conn(&mut self, e: &ConnEvent) -> Result<(), Stop> {
        if let Some(a) = &mut self.net {
            a.event(e);
        }
        self.view.conn(&netmodel::event_line(&self.clock, e))
    }

    /// Renders slow events on the ring-buffer thread, straight into the
    /// batch's text: one line per record, no allocation.
    /// Handles are named from what the namer has confirmed so far
    /// (`collect::names`: never waiting for it), as the `by_cf` rows name
    /// them.
    fn slow_renderer(
        &self,
        line: super::SlowLine,
        mut names: NameReader,
    ) -> impl FnMut(&[u8], &mut Vec<u8>) -> bool + Send + 'static {
        let clock = self.clock;
        let mut stamp = Stamp::default();
        move |data, buf| {
            let Some(e) = RdbEvent::parse(data) else {
                return false;
            };
            let thread = crate::render::slow::comm(&e.comm);
            let op = e.op();
            let known = names.get((e.tgid, e.db, e.cf));
            line(
                buf,
                &SlowRef {
                    time: stamp.format(clock.wall(e.ts_ns)),
                    pid: e.tgid,
                    tid: e.tid,
                    thread: &thread,
                    op: op.name(),
                    function: e.function(),
                    latency_us: e.lat_ns as f64 / 1000.0,
                    bytes: e.bytes,
                    miss: e.miss != 0,
                    db: e.db,
                    db_name: known.and_then(|n| n.db.as_deref()),
                    cf: Family::of(known.and_then(|n| n.cf.as_deref()), e.cf, op),
                },
            );
            true
        }
    }

    fn start_rdb<'obj>(
        &self,
        storage: [&'obj mut MaybeUninit<OpenObject>; 2],
        target: &Target,
        again: bool,
    ) -> Result<RdbLayer<'obj>> {
        let found = rdb::resolve(target.files.clone()).map_err(|e| match &target.proc {
            Some(p) => e.context(format!("process {} ({})", p.pid, p.comm)),
            None => e,
        })?;
        let plan = Plan::new(&found, &self.opts.filter);
        if plan.attach.is_empty() {
            return Err(Failure::new(
                Exit::Usage,
                "none of the selected RocksDB functions is in the target",
            )
            .hint("drop --ops, or pick classes the target has (`ckb-libbpf symbols PATH`)")
            .into());
        }
        let cfg = rdb::Config {
            tgid: target.proc.as_ref().map_or(0, |p| p.pid),
            slow_ns: self.opts.slow_ns,
            empty: self.opts.empty_programs,
            slots: plan.slots().len() as u32,
            layout: plan.layout,
            stand_ins: !plan.covered.is_empty(),
            value_sizes: self.opts.value_sizes,
        };
        let forced = Backend::forced(self.opts.uprobe_backend);
        let loaded = uprobe::load_attach(storage, forced, |obj, b| {
            let skel = rdb::load(obj, &cfg, b)?;
            let links = rdb::attach(&skel, &plan, b)?;
            Ok((skel, links))
        });
        let ((skel, links), backend, why) = match (loaded, forced) {
            (Ok(x), _) => x,
            (Err(e), Some(b)) => return Err(uprobe::unavailable(b, e)),
            (Err(e), None) => return Err(e),
        };
        if let Some(why) = why {
            note(format!(
                "uprobe_multi unavailable ({why:#}); attaching one uprobe per function"
            ));
        }
        describe_plan(&plan, target.proc.as_ref(), backend, again);
        Ok(RdbLayer {
            skel,
            links: Some(links),
            plan,
            backend,
        })
    }

    fn start_bg<'obj>(
        &self,
        storage: [&'obj mut MaybeUninit<OpenObject>; 2],
        target: &Target,
        again: bool,
    ) -> Result<Option<BgLayer<'obj>>> {
        let plan = bgprobe::resolve(&target.files);
        if plan.attach.is_empty() && self.opts.layers.background == Want::Required {
            return Err(Failure::new(
                Exit::Usage,
                "none of RocksDB's background functions (CompactionJob::Run, FlushJob::Run, DBImpl::DelayWrite...) is in the target",
            )
            .hint("they are C++ internals: the binary needs its symbol table; `ckb-libbpf symbols --tier 2 PATH` lists them")
            .into());
        }
        if plan.attach.is_empty() {
            if !again {
                note("RocksDB's C++ internals are not in the target: no background figures");
            }
            return Ok(None);
        }
        let cfg = bgprobe::Config {
            tgid: target.proc.as_ref().map_or(0, |p| p.pid),
            events: self.opts.jobs,
        };
        let forced = Backend::forced(self.opts.uprobe_backend);
        let (skel, links, _) = bgprobe::load_and_attach(storage, forced, &cfg, &plan)?;
        let l = BgLayer { skel, links, plan };
        if !again {
            describe_bg(&l.plan).into_iter().for_each(note);
        }
        Ok(Some(l))
    }

    fn start_net<'obj>(
        &self,
        obj: &'obj mut MaybeUninit<OpenObject>,
        proc: &Proc,
        again: bool,
    ) -> Result<NetLayer<'obj>> {
        let Some((choice, probed)) = &self.net_choice else {
            anyhow::bail!("no net program flavour works on this kernel (see `ckb-libbpf check`)");
        };
        let skel = netprobe::load(obj, proc.pid, choice)?;
        // Connections accepted on listeners opened before we attached count too.
        let ports = netprobe::seed_listeners(&netprobe::Maps::new(&skel)?, proc.pid)?;
        let links = netprobe::attach(&skel, choice)?;
        if self.opts.layers.net == Want::Optional {
            if !again {
                note(format!(
                    "cause inputs: net layer ({}) for peer churn",
                    choice.describe()
                ));
            }
        } else {
            describe_net(choice, probed, proc, links.len(), &ports, again);
        }
        Ok(NetLayer { skel, links })
    }

    fn start_sc<'obj>(
        &self,
        obj: &'obj mut MaybeUninit<OpenObject>,
        proc: &Proc,
        again: bool,
    ) -> Result<ScLayer<'obj>> {
        let Some(backend) = self.sc_backend else {
            anyhow::bail!(
                "no raw_syscalls attach type works on this kernel (see `ckb-libbpf check`)"
            );
        };
        let skel = sc::load(obj, &sc::Config { tgid: proc.pid }, backend)?;
        let links = sc::attach(&skel, backend)?;
        if self.opts.layers.syscall == Want::Optional {
            if !again {
                note(format!(
                    "cause inputs: syscall layer ({}) for fsync latency and futex contention",
                    backend.name()
                ));
            }
        } else {
            note(format!(
                "attached raw_syscalls sys_enter/sys_exit ({}) for pid {} ({})",
                backend.name(),
                proc.pid,
                proc.comm
            ));
        }
        Ok(ScLayer { skel, links })
    }

    /// An optional layer that could not start: a note, and its figures are
    /// absent (the alerts then say which causes were not checked).
    fn optional<T>(&self, what: &str, want: Want, r: Result<T>) -> Result<Option<T>> {
        match (r, want) {
            (Ok(t), _) => Ok(Some(t)),
            (Err(e), Want::Required) => Err(e),
            (Err(e), _) => {
                note(format!("{what} unavailable ({e:#})"));
                Ok(None)
            }
        }
    }
}

impl Sessions for Capture<'_> {
    fn target(&mut self, e: &TargetEvent) -> Result<(), Stop> {
        self.view.target(e)
    }

    /// Traces one process (or, with --binary, every process of the file)
    /// until the capture stops or the process exits; folds everything it
    /// measured into the aggregators and detaches before returning.
    fn session(&mut self, target: &Target, resume: Option<Resume>) -> Result<Stop> {
        // A restarted node: say again what is attached, not the details.
        let again = resume.is_some();
        let l = self.opts.layers;
        let proc = target.proc.as_ref();
        let pid = proc.map(|p| p.pid);
        let (mut rdb_m, mut rdb_s) = (MaybeUninit::uninit(), MaybeUninit::uninit());
        let (mut bg_m, mut bg_s) = (MaybeUninit::uninit(), MaybeUninit::uninit());
        let (mut net_obj, mut sc_obj) = (MaybeUninit::uninit(), MaybeUninit::uninit());

        let mut rdbl = match l.rocksdb {
            true => Some(self.start_rdb([&mut rdb_m, &mut rdb_s], target, again)?),
            false => None,
        };
        // Not with --empty-programs: the floor holds nothing of ours but
        // empty programs.
        let bgl = if l.background.on() && !self.opts.empty_programs {
            let r = self.start_bg([&mut bg_m, &mut bg_s], target, again);
            self.optional("background layer", l.background, r)?
                .flatten()
        } else {
            None
        };
        let cause_layers = !self.opts.empty_programs;
        let no_proc = |what: &str| {
            if !again {
                note(format!(
                    "--causes needs one process (--pid or --name): {what} not checked"
                ));
            }
        };
        let scl = match (l.syscall.on() && cause_layers, proc) {
            (true, Some(p)) => {
                let r = self.start_sc(&mut sc_obj, p, again);
                self.optional("syscall layer", l.syscall, r)?
            }
            (true, None) => {
                no_proc("fsync/futex");
                None
            }
            (false, _) => None,
        };
        let netl = match (l.net.on() && cause_layers, proc) {
            (true, Some(p)) => {
                let r = self.start_net(&mut net_obj, p, again);
                self.optional("net layer", l.net, r)?
            }
            (true, None) => {
                no_proc("peers");
                None
            }
            (false, _) => None,
        };

        let readers = Readers {
            rdb: rdbl
                .as_ref()
                .map(|r| rdb::Maps::new(&r.skel, &r.plan))
                .transpose()?,
            bg: bgl
                .as_ref()
                .map(|b| bgprobe::Maps::new(&b.skel))
                .transpose()?,
            net: netl
                .as_ref()
                .map(|n| netprobe::Maps::new(&n.skel))
                .transpose()?,
            sc: match (&scl, pid) {
                (Some(s), Some(pid)) => Some((sc::Maps::new(&s.skel)?, pid)),
                _ => None,
            },
        };

        if !again {
            let mut mem = MapMemory::default();
            let objs = [
                rdbl.as_ref().map(|l| l.skel.object()),
                bgl.as_ref().map(|l| l.skel.object()),
                netl.as_ref().map(|l| l.skel.object()),
                scl.as_ref().map(|l| l.skel.object()),
            ];
            for o in objs.into_iter().flatten() {
                mem.add(MapMemory::of(o));
            }
            let stats = [
                rdbl.as_ref()
                    .map_or(0, |l| rdb::per_cpu_stats_bytes(&l.skel)),
                scl.as_ref().map_or(0, |l| sc::per_cpu_stats_bytes(&l.skel)),
            ];
            note(format!("BPF maps hold {}", map_memory_text(mem, &stats)));
        }

        let links = |n: Option<usize>| n.unwrap_or(0) as u64;
        self.attached = vec![
            (
                "rocksdb",
                links(rdbl.as_ref().and_then(|l| l.links.as_ref().map(Vec::len))),
            ),
            ("background", links(bgl.as_ref().map(|l| l.links.len()))),
            ("net", links(netl.as_ref().map(|l| l.links.len()))),
            ("syscall", links(scl.as_ref().map(|l| l.links.len()))),
        ];

        // The aggregators learn what this session traces.
        if let (Some(a), Some(r)) = (&mut self.rdb, &rdbl) {
            let traced: Vec<Traced> = r
                .plan
                .attach
                .iter()
                .map(|p| Traced {
                    id: p.id,
                    op: p.def.op,
                    class: hit_class(&p.cost),
                })
                .collect();
            a.begin(&traced, &r.plan.left_out(), pid);
        }
        if let (None, Some(b)) = (&self.bg, &bgl) {
            self.bg = Some(super::bg_aggregator(&b.plan));
        }
        if let (Some(a), Some(p)) = (&mut self.net, proc) {
            a.begin(p.pid);
        }
        if let (Some(a), Some(p)) = (&mut self.sc, proc) {
            a.begin(p.pid, &p.comm);
        }
        self.causes.begin();

        let mut stop = None;
        if let Some(resume) = resume {
            let gap = resume.end();
            self.restarts += 1;
            stop = self.view.target(&TargetEvent::Restarted(gap.clone())).err();
            if let Some(a) = &mut self.rdb {
                a.gap(gap.clone());
            }
            if let Some(a) = &mut self.net {
                a.gap(gap.clone());
            }
            if let Some(a) = &mut self.sc {
                a.gap(gap);
            }
        }

        // Handle names while the processes live (see rdb::Namer); stops
        // with the session.
        let _namer = readers.rdb.as_ref().map(rdb::Namer::spawn).transpose()?;
        let board = readers.rdb.as_ref().map(rdb::Maps::board);
        let mut epoch = 0u64;
        let poller = Poller::spawn(self.opts.interval, move || {
            let r = readers.read(epoch);
            epoch += 1;
            r
        });
        let slow = match (&rdbl, self.opts.slow_ns, self.view.slow_line(), &board) {
            (Some(r), Some(_), Some(line), Some(board)) => Some(RingLines::spawn(
                rdb::events(&r.skel)?,
                self.slow_renderer(line, board.reader()),
            )),
            _ => None,
        };
        let slow_rx = slow
            .as_ref()
            .map(|d| d.batches.clone())
            .unwrap_or_else(never);
        let jobs = match (&bgl, self.opts.jobs) {
            (Some(b), true) => Some(RingDrain::spawn(
                bgprobe::events(&b.skel)?,
                4096,
                BgEvent::parse,
            )),
            _ => None,
        };
        let jobs_rx = jobs
            .as_ref()
            .map(|d| d.events.clone())
            .unwrap_or_else(never);
        let conns = match &netl {
            Some(n) => Some(RingDrain::spawn(
                netprobe::events(&n.skel)?,
                16384,
                NetEvent::parse,
            )),
            None => None,
        };
        let conn_rx = conns
            .as_ref()
            .map(|d| d.events.clone())
            .unwrap_or_else(never);
        let fraction = self.rdb.as_ref().map_or(1.0, |a| a.duty.fraction());
        let mut detach_at = super::detach_timer(&self.opts, fraction);
        let (sigs, deadline) = (self.sigs.clone(), self.deadline.clone());

        let stop = match stop {
            Some(s) => s,
            None => {
                'main: loop {
                    // Set by the branches below, acted on after the select.
                    let (mut interval_ended, mut detach_now) = (false, false);
                    select! {
                        recv(poller.samples) -> s => {
                            interval_ended = true;
                            let Ok(s) = s else { anyhow::bail!("the map poller thread stopped unexpectedly") };
                            let s = s?;
                            // Connection events already queued belong before this report.
                            for e in conn_rx.try_iter() {
                                if let Err(stop) = self.conn(&e) { break 'main stop; }
                            }
                            if let Err(stop) = self.interval(&s, Instant::now()) { break stop; }
                            if proc.is_some_and(|p| !p.alive()) {
                                break Stop::TargetExited;
                            }
                        }
                        recv(slow_rx) -> b => {
                            // One write per batch of lines.
                            if let (Ok(b), Some(d)) = (b, &slow) {
                                if let Some(a) = &mut self.rdb {
                                    a.slow_events += b.events;
                                }
                                let r = self.view.slow_lines(text(&b.text));
                                d.recycle(b.text);
                                if let Err(stop) = r { break stop; }
                            }
                        }
                        recv(jobs_rx) -> e => {
                            if let Ok(e) = e {
                                if let Err(stop) = self.view.job(&e.job(&self.clock)) { break stop; }
                            }
                        }
                        recv(conn_rx) -> e => {
                            if let Ok(e) = e {
                                if let Err(stop) = self.conn(&e) { break stop; }
                            }
                        }
                        recv(detach_at) -> _ => detach_now = true,
                        recv(sigs) -> _ => break Stop::Signal,
                        recv(deadline) -> _ => break Stop::Deadline,
                    }
                    // --overhead-budget: off for the rest of the interval once
                    // its attached share is used up, on again when it ends.
                    // Attached time counts from the end of an attach to the
                    // start of a detach: it errs short, so the cost when
                    // always attached (hits / attached time) errs high, and
                    // the budget holds.
                    if let (Some(r), Some(a)) = (&mut rdbl, &mut self.rdb) {
                        if detach_now {
                            if let Some(links) = r.links.take() {
                                a.duty.detached(Instant::now());
                                crate::probe::detach(links);
                                set_attached(&mut self.attached, "rocksdb", 0);
                            }
                            detach_at = never();
                        }
                        if interval_ended && self.opts.overhead_budget.is_some() {
                            if r.links.is_none() {
                                match rdb::attach(&r.skel, &r.plan, r.backend) {
                                    Ok(l) => {
                                        set_attached(&mut self.attached, "rocksdb", l.len() as u64);
                                        r.links = Some(l);
                                        a.duty.attached(Instant::now());
                                    }
                                    Err(_) if proc.is_some_and(|p| !p.alive()) => {
                                        break Stop::TargetExited;
                                    }
                                    Err(e) => return Err(e.context(
                                        "attaching the RocksDB probes again (--overhead-budget)",
                                    )),
                                }
                            }
                            detach_at = super::detach_timer(&self.opts, a.duty.fraction());
                        }
                    }
                }
            }
        };

        // The net programs go first, so that their last read and their
        // last events cover the same span; the final read then closes the
        // window of the other layers while their probes are still live, so
        // all their rows cover the same span; then they detach.
        let net_skel = netl.map(|n| {
            crate::probe::detach(n.links);
            n.skel
        });
        let rest = poller.finish()?;
        if let Some(l) = rdbl.as_mut().and_then(|r| r.links.take()) {
            crate::probe::detach(l);
        }
        let bg_skel = bgl.map(|b| {
            crate::probe::detach(b.links);
            b.skel
        });
        let sc_skel = scl.map(|s| {
            crate::probe::detach(s.links);
            s.skel
        });
        self.attached.iter_mut().for_each(|(_, n)| *n = 0);
        let closed = stop == Stop::OutputClosed;
        if let Some(d) = conns {
            if let Some(a) = &mut self.net {
                a.user_lost += d.dropped.load(std::sync::atomic::Ordering::Relaxed);
            }
            for e in d.finish()? {
                if let Some(a) = &mut self.net {
                    a.event(&e);
                }
                if !closed {
                    let _ = self.view.conn(&netmodel::event_line(&self.clock, &e));
                }
            }
        }
        let mut rdb_rest = Vec::new();
        let mut sc_rest = Vec::new();
        let mut net_rest = Vec::new();
        for r in rest {
            if let (Some(a), Some(s)) = (&mut self.bg, &r.bg) {
                let _ = a.interval(s);
            }
            rdb_rest.extend(r.rdb);
            sc_rest.extend(r.sc);
            net_rest.extend(r.net);
        }
        if let Some(a) = &mut self.rdb {
            a.end(&rdb_rest);
            // The last read was taken attached; the session's time ends here.
            a.duty.detached(Instant::now());
        }
        if let Some(a) = &mut self.bg {
            if bg_skel.is_some() {
                a.end();
            }
        }
        if let Some(a) = &mut self.sc {
            a.end(&sc_rest);
        }
        if let Some(a) = &mut self.net {
            let last = net_rest.pop();
            for s in &net_rest {
                a.report(s, Instant::now(), monotonic_ns(), false);
            }
            a.end(last);
        }
        if let Some(d) = jobs {
            for e in d.finish()? {
                if !closed {
                    let _ = self.view.job(&e.job(&self.clock));
                }
            }
        }
        if let Some(d) = slow {
            let mut closed = closed;
            let (view, rdb) = (&mut *self.view, &mut self.rdb);
            d.finish(|b| {
                if let Some(a) = rdb.as_mut() {
                    a.slow_events += b.events;
                }
                closed = closed || view.slow_lines(text(&b.text)).is_err();
            })?;
        }
        drop((net_skel, bg_skel, sc_skel, rdbl));
        Ok(stop)
    }
}

fn set_attached(a: &mut [(&'static str, u64)], layer: &str, n: u64) {
    if let Some(x) = a.iter_mut().find(|(l, _)| *l == layer) {
        x.1 = n;
    }
}

/// Rendered lines as text: they are built from `str`s only, so the check
/// always passes.
fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// Kernel memory of the loaded maps here, and on a big host: per-CPU maps
/// grow with the CPU count, except the layers' aggregation maps (`stats`
/// bytes per CPU here, each), which one copy for all CPUs replaces above
/// its budget.
pub fn map_memory_text(m: MapMemory, stats: &[u64]) -> String {
    let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u64;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let fixed = m.per_cpu - stats.iter().sum::<u64>();
    let big = m.shared
        + fixed * 96
        + stats
            .iter()
            .map(|&s| crate::probe::stats_on(s, 96))
            .sum::<u64>();
    format!(
        "{:.1} MiB of kernel memory here ({:.1} MiB + {:.2} MiB per CPU x {cpus} CPUs); {:.0} MiB on a 96-CPU host",
        mib(m.on(cpus)),
        mib(m.shared),
        mib(m.per_cpu),
        mib(big)
    )
}

/// The attach note; the details (left out, absent) only the first time.
fn describe_plan(plan: &Plan, proc: Option<&Proc>, backend: Backend, again: bool) {
    let who = match proc {
        Some(p) => format!("pid {} ({})", p.pid, p.comm),
        None => "every process of the file".to_string(),
    };
    note(format!(
        "attached {} RocksDB functions ({} probes, {}) in {} for {who}",
        plan.attach.len(),
        plan.attach.len() * 2,
        backend.describe(),
        rdb::describe_files(plan)
    ));
    if again {
        return;
    }
    for l in plan.left_out() {
        note(format!("left out {} ({}): {}", l.function, l.op, l.reason));
    }
    for c in &plan.covered {
        let by: Vec<&str> = plan
            .attach
            .iter()
            .filter(|p| p.def.stands_in == Some(c.def.name) && p.file.elf_path == c.file.elf_path)
            .map(|p| p.def.name)
            .collect();
        note(format!(
            "{} ({}) is single-stepped (`{}`): its calls are counted at {} instead",
            c.def.name,
            c.def.op.name(),
            c.cost.insn(),
            by.join(" and ")
        ));
    }
    if !plan.absent.is_empty() {
        note(format!(
            "not in the target (skipped): {}",
            plan.absent.join(", ")
        ));
    }
}

/// The background layer's note: what is traced, what is missing.
fn describe_bg(plan: &bgprobe::Plan) -> Vec<String> {
    let mut kinds: Vec<&str> = plan.attach.iter().map(|p| p.kind.name()).collect();
    kinds.dedup();
    let mut lines = vec![format!(
        "attached {} RocksDB internal functions ({}) for background work",
        plan.attach.len(),
        kinds.join(", ")
    )];
    let steps = plan.single_stepped();
    if !steps.is_empty() {
        let names: Vec<&str> = steps.iter().map(|k| k.function()).collect();
        lines.push(format!(
            "single-stepped (fine: they run a few times a second at most): {}",
            names.join(", ")
        ));
    }
    if !plan.absent.is_empty() {
        let names: Vec<&str> = plan.absent.iter().map(|k| k.function()).collect();
        lines.push(format!("not in the target (skipped): {}", names.join(", ")));
    }
    lines
}

/// The net layer's attach notes; what the kernel cannot trace only the
/// first time.
fn describe_net(
    choice: &netprobe::Choice,
    probed: &[crate::probe::features::Probed],
    proc: &Proc,
    links: usize,
    ports: &[u16],
    again: bool,
) {
    note(format!(
        "attached {links} net programs for pid {} ({}): {}",
        proc.pid,
        proc.comm,
        choice.describe()
    ));
    note(format!(
        "listening ports of the target: {}",
        if ports.is_empty() {
            "none yet (new listeners are learned as they open)".to_string()
        } else {
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    if again {
        return;
    }
    for p in probed.iter().filter(|p| !p.ok) {
        note(format!(
            "{} programs not attached on this kernel: {}",
            p.attach.name(),
            p.detail
        ));
    }
    for (f, v) in &choice.per_feature {
        if v.is_none() {
            note(format!("{} is not traced on this kernel", f.name()));
        }
    }
}
