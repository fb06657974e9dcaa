#!/usr/bin/env python3
"""The soak report's charts (scripts/soak-report.sh): SVGs drawn with
matplotlib from soak.tsv and the tables examples/soak_report.rs wrote.

    scripts/soak-charts.py DATA_DIR REPORT_DIR

resources.svg     tracer RSS, tracer CPU, node CPU, events/s, lost events
p99.svg           p99 latency per operation over time, per tracer
hist-SOURCE.svg   per-operation log2 histograms over the whole run (bars)
cdf-SOURCE.svg    the same as cumulative distributions
burst.svg         the case study's burst (case.tsv), interval by interval
Write bursts are shaded on the time series. CHART_FORMAT=png draws PNGs
instead (for viewers without SVG).
"""
import csv
import os
import sys
from collections import defaultdict

import matplotlib

FMT = os.environ.get("CHART_FORMAT", "svg")
matplotlib.use("svg" if FMT == "svg" else "agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"font.size": 9, "svg.fonttype": "none", "axes.grid": True, "grid.alpha": 0.3})


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# Time axis unit: minutes for runs under 3 hours, else hours (set in main).
UNIT = [3600.0, "hours"]


def hours(s):
    return s / UNIT[0]


def shade(ax, bursts):
    for b in bursts:
        a, e = num(b["start_s"]), num(b["end_s"])
        if a is not None:
            ax.axvspan(hours(a), hours(e if e is not None else a + 5), color="tab:red", alpha=0.15, lw=0)


def series(tsv, col):
    """(hours, value) of a soak.tsv column, NA rows left out."""
    xs, ys = [], []
    for r in tsv:
        v = num(r.get(col))
        if v is not None:
            xs.append(hours(float(r["elapsed_s"])))
            ys.append(v)
    return xs, ys


def resources(data, out, bursts, iv):
    tsv = rows(f"{data}/soak.tsv")
    panels = [
        ("tracer RSS (MB)", [("tool_rss_kb", "on the node", 1 / 1024), ("wl_tool_rss_kb", "on the workload", 1 / 1024)]),
        ("tracer CPU (% of a core)", [("tool_cpu_pct", "on the node", 1), ("wl_tool_cpu_pct", "on the workload", 1)]),
        ("node CPU (% of a core)", [("node_cpu_pct", "node", 1)]),
    ]
    panels = [(t, [c for c in cs if series(tsv, c[0])[0]]) for t, cs in panels]
    panels = [p for p in panels if p[1]]
    n = len(panels) + 2
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.1 * n), sharex=True)
    for ax, (title, cols) in zip(axes, panels):
        for col, label, k in cols:
            xs, ys = series(tsv, col)
            ax.plot(xs, [y * k for y in ys], label=label, lw=1)
        ax.set_ylabel(title)
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.15)
        ax.legend(loc="upper left", fontsize=8)
    by_src = defaultdict(list)
    for r in iv:
        by_src[r["source"]].append(r)
    ax_ev, ax_lost = axes[-2], axes[-1]
    for src, rs in by_src.items():
        xs = [hours(float(r["t_s"])) for r in rs]
        ax_ev.plot(xs, [float(r["events_per_s"]) for r in rs], label=src, lw=1)
        total, cum = 0, []
        for r in rs:
            total += int(r["lost"]) + int(r["uncounted"])
            cum.append(total)
        ax_lost.step(xs, cum, where="post", label=src, lw=1)
    # Log scale: a quiet node's ~100 calls/s beside the workload's thousands.
    ax_ev.set_yscale("log")
    ax_ev.set_ylabel("RocksDB calls/s (log)")
    ax_ev.set_ylim(bottom=1)
    ax_ev.legend(loc="upper left", fontsize=8)
    ax_lost.set_ylabel("lost + uncounted\n(cumulative)")
    ax_lost.set_ylim(bottom=0, top=max(1, ax_lost.get_ylim()[1]))
    ax_lost.legend(loc="upper left", fontsize=8)
    ax_lost.set_xlabel(f"{UNIT[1]} since start (red: write bursts)")
    for ax in axes:
        shade(ax, bursts)
    fig.tight_layout()
    fig.savefig(f"{out}/resources.{FMT}", dpi=110)
    plt.close(fig)


def p99(out, bursts):
    pr = rows(f"{out}/p99.tsv")
    by = defaultdict(lambda: defaultdict(list))
    for r in pr:
        by[r["source"]][r["op"]].append((hours(float(r["t_s"])), float(r["p99_us"])))
    if not by:
        return
    fig, axes = plt.subplots(len(by), 1, figsize=(9, 3 * len(by)), sharex=True, squeeze=False)
    for ax, (src, ops) in zip(axes[:, 0], sorted(by.items())):
        for op, pts in sorted(ops.items()):
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=op, lw=1)
        ax.set_yscale("log")
        ax.set_ylabel(f"{src}: p99 per interval (µs)")
        ax.legend(loc="upper left", fontsize=7, ncol=5)
        shade(ax, bursts)
    axes[-1, 0].set_xlabel(f"{UNIT[1]} since start (red: write bursts)")
    fig.tight_layout()
    fig.savefig(f"{out}/p99.{FMT}", dpi=110)
    plt.close(fig)


def histograms(out):
    hr = rows(f"{out}/hist.tsv")
    by = defaultdict(lambda: defaultdict(dict))
    for r in hr:
        by[r["source"]][r["op"]][int(r["log2"])] = int(r["count"])
    for src, ops in by.items():
        names = sorted(ops)
        cols = 3
        nrow = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(nrow, cols, figsize=(10, 2.4 * nrow), squeeze=False)
        for ax, op in zip(axes.flat, names):
            h = ops[op]
            ps = sorted(h)
            # One bar per bucket [2^p, 2^(p+1)) ns on a log axis in µs.
            ax.bar([2**p / 1000.0 for p in ps], [h[p] for p in ps],
                   width=[2**p / 1000.0 for p in ps], align="edge", color="tab:blue", edgecolor="white", lw=0.3)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("latency (µs)", fontsize=8)
            ax.set_title(f"{op}: {sum(h.values()):,} calls", fontsize=9)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.suptitle(f"{src}: calls per log2 latency bucket, whole run (log scale)")
        fig.tight_layout()
        fig.savefig(f"{out}/hist-{src}.{FMT}", dpi=110)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(9, 4))
        for op in names:
            h = ops[op]
            total = sum(h.values())
            ps = sorted(h)
            xs, ys, run = [], [], 0
            for p in ps:
                run += h[p]
                xs.append(2 ** (p + 1) / 1000.0)
                ys.append(run / total)
            ax.step(xs, ys, where="post", label=op, lw=1.2)
        ax.set_xscale("log")
        ax.set_xlabel("latency (µs, upper bucket edges)")
        ax.set_ylabel("share of calls at or below")
        ax.set_ylim(0, 1.01)
        ax.legend(fontsize=7, ncol=3, loc="lower right")
        ax.set_title(f"{src}: latency CDF per operation, whole run")
        fig.tight_layout()
        fig.savefig(f"{out}/cdf-{src}.{FMT}", dpi=110)
        plt.close(fig)


def burst(out):
    """The case study's window (case.tsv): WRITE / PUT / TXN_COMMIT latency
    per interval of the workload's tracer, and the writers' stall time."""
    try:
        case = rows(f"{out}/case.tsv")[0]
    except (OSError, IndexError):
        return
    lo, hi = float(case["from_s"]), float(case["to_s"])
    a, e = float(case["burst_start_s"]), float(case["burst_end_s"])
    pts = defaultdict(list)
    for r in rows(f"{out}/p99.tsv"):
        t = float(r["t_s"])
        if r["source"] == "workload" and lo <= t <= hi and r["op"] in ("WRITE", "PUT", "TXN_COMMIT"):
            pts[r["op"]].append((t, float(r["avg_us"]), float(r["p99_us"])))
    stalls = [(float(r["t_s"]), float(r["stalled_ms"])) for r in rows(f"{out}/intervals.tsv")
              if r["source"] == "workload" and lo <= float(r["t_s"]) <= hi]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    for op, p in sorted(pts.items()):
        (line,) = ax.plot([(x[0] - a) for x in p], [x[2] for x in p], marker="o", lw=1.2, label=f"{op} p99")
        ax.plot([(x[0] - a) for x in p], [x[1] for x in p], ls="--", lw=1, color=line.get_color(), label=f"{op} avg")
    ax.set_yscale("log")
    ax.set_ylabel("latency per interval (µs)")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    ax2.bar([s[0] - a for s in stalls], [s[1] for s in stalls], width=float(rows(f"{out}/intervals.tsv")[0]["interval_s"]) * 0.8,
            align="edge", color="tab:gray")
    ax2.set_ylabel("writers stalled (ms)")
    ax2.set_xlabel("seconds since the burst began (each point: the interval ending there; red: the burst)")
    for x in (ax, ax2):
        x.axvspan(0, e - a, color="tab:red", alpha=0.15, lw=0)
    fig.tight_layout()
    fig.savefig(f"{out}/burst.{FMT}", dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: soak-charts.py DATA_DIR REPORT_DIR")
    data, out = sys.argv[1], sys.argv[2]
    bursts = rows(f"{out}/bursts.tsv")
    iv = rows(f"{out}/intervals.tsv")
    last = max([float(r["elapsed_s"]) for r in rows(f"{data}/soak.tsv")] or [0])
    if last < 3 * 3600:
        UNIT[:] = [60.0, "minutes"]
    resources(data, out, bursts, iv)
    p99(out, bursts)
    histograms(out)
    burst(out)


if __name__ == "__main__":
    main()
