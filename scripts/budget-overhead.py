#!/usr/bin/env python3
"""What `--overhead-budget` actually costs the bundled workload (root).

Runs the same fixed amount of work (`rocksdb_workload --rounds R --pause-ms
0`, full speed) bare, under `ckb-libbpf rocksdb --overhead-budget B` and
under plain `ckb-libbpf rocksdb`, REPS times each in a rotating order. The
workload's CPU time is the sum of its threads' run time
(/proc/PID/task/*/schedstat, ns) from the moment it starts its calls to the
moment it reports them, of its main thread (the one making the calls, where
the uprobe traps and programs run; RocksDB's background threads only add
noise). The cost of a setup, in % of one core, is
(its median CPU − the bare median) / its median wall time: what the budget
limits. Also prints the tool's own estimate (final JSON report).

usage: scripts/budget-overhead.py [--budget 1] [--rounds 8000] [--reps 5]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "target/release/ckb-libbpf")
WORKLOAD = os.path.join(ROOT, "target/release/examples/rocksdb_workload")


def cpu_ns(pid, tasks=None):
    total = 0
    for t in tasks or os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def run(setup, rounds, budget):
    db = tempfile.mkdtemp(prefix="ckb-libbpf-budget-")
    wl = subprocess.Popen(
        [WORKLOAD, "--db", db, "--wait-stdin", "--rounds", str(rounds), "--pause-ms", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = int(wl.stdout.readline().split()[1])
    tool = None
    if setup != "bare":
        args = [TOOL, "rocksdb", "--pid", str(pid), "--json", "--interval", "1", "--causes", "none"]
        if setup == "budget":
            args += ["--overhead-budget", str(budget)]
        tool = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in tool.stderr:
            if "attached " in line and "RocksDB functions" in line:
                break
    c0 = cpu_ns(pid, [str(pid)])
    wl.stdin.write("go\n")
    wl.stdin.flush()
    counts = json.loads(wl.stdout.readline())
    c1 = cpu_ns(pid, [str(pid)])
    est = None
    if tool:
        tool.send_signal(signal.SIGINT)
        out, _ = tool.communicate(timeout=60)
        for line in out.splitlines():
            v = json.loads(line)
            if v.get("final"):
                est = v["overhead"]
    wl.stdin.write("done\n")
    wl.stdin.flush()
    wl.wait()
    shutil.rmtree(db, ignore_errors=True)
    return (c1 - c0) / 1e9, counts["elapsed_us"] / 1e6, est


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=8000)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    setups = ["bare", "budget", "full"]
    res = {s: [] for s in setups}
    for i in range(a.reps):
        for s in setups[i % 3:] + setups[:i % 3]:
            cpu, wall, est = run(s, a.rounds, a.budget)
            res[s].append((cpu, wall, est))
            e = ""
            if est:
                e = f"  tool: est {est['est_pct_core']:.2f} %, attached {est['attached_pct']:.0f} %, " \
                    f"always {est['always_attached_pct_core']:.1f} %"
            print(f"{s:6} cpu {cpu:.3f} s  wall {wall:.3f} s{e}", flush=True)
    bare = statistics.median(c for c, _, _ in res["bare"])
    print(f"\nmedians of {a.reps}, {a.rounds} rounds, budget {a.budget} % (load {os.getloadavg()[0]:.1f}):")
    print(f"bare    cpu {bare:.3f} s")
    for s in ("budget", "full"):
        cpu = statistics.median(c for c, _, _ in res[s])
        wall = statistics.median(w for _, w, _ in res[s])
        est = statistics.median(e["est_pct_core"] for _, _, e in res[s])
        att = statistics.median(e["attached_pct"] for _, _, e in res[s])
        print(f"{s:7} cpu {cpu:.3f} s  wall {wall:.3f} s  extra CPU {100 * (cpu - bare) / wall:.2f} % "
              f"of one core ({100 * (cpu / bare - 1):+.1f} % CPU); tool's estimate {est:.2f} %, "
              f"attached {att:.0f} %")


if __name__ == "__main__":
    main()
