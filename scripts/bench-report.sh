#!/usr/bin/env bash
# Markdown tables (BENCHMARKS.md-ready) from scripts/bench.sh's results.json.
# Usage: scripts/bench-report.sh results.json
set -euo pipefail
f=${1:?usage: bench-report.sh results.json}
jq -r '
def r(n): (n * 100 | round) / 100;
def r1(n): (n * 10 | round) / 10;
def r3(n): (n * 1000 | round) / 1000;
def pass(ok): if ok then "yes" else "**no**" end;
(map(select(.section == "machine")) | .[0]) as $m |
"Machine: Linux \($m.kernel), \($m.cpus) × \($m.cpu), load \($m.load) at start; commit \($m.commit); \($m.bpftrace).\n",
(map(select(.section == "hit"))[] |
  "### 1–2. Per-hit cost (bundled workload, \(.functions) functions, \(.calls_per_run) traced calls per run, medians of \(.reps))\n",
  "| setup | median run | per traced call | ratio |",
  "|---|---|---|---|",
  "| bare | \(r1(.median_us.bare / 1000)) ms | | |",
  "| floor: empty programs, our uprobe_multi links | \(r1(.median_us.floor / 1000)) ms | +\(.per_call_ns.floor | round) ns | 1 |",
  "| ckb-libbpf rocksdb | \(r1(.median_us.ours / 1000)) ms | +\(.per_call_ns.ours | round) ns | **\(r(.ours_vs_floor))** × floor (target ≤ 1.10: \(pass(.ours_vs_floor <= 1.10))) |",
  "| bpftrace, empty probes | \(r1(.median_us.bpftrace_empty / 1000)) ms | +\(.per_call_ns.bpftrace_empty | round) ns | |",
  "| bpftrace, count + hist | \(r1(.median_us.bpftrace / 1000)) ms | +\(.per_call_ns.bpftrace | round) ns | ours / bpftrace = **\(r(.ours_vs_bpftrace))** (target < 1.0: \(pass(.ours_vs_bpftrace < 1.0))) |",
  ""),
(map(select(.section == "prog"))[] |
  "### bpf_stats run time per call (kernel.bpf_stats_enabled=1, medians)\n",
  "| program | ns per call | empty program (the cost of bpf_stats itself) | net |", "|---|---|---|---|",
  "| entry (rdb_enter_m) | \(.enter_ns) | \(.empty_enter_ns) | \(.enter_ns - .empty_enter_ns) |",
  "| return (rdb_exit_m) | \(.exit_ns) | \(.empty_exit_ns) | \(.exit_ns - .empty_exit_ns) |", ""),
(map(select(.section == "tool")) | select(length > 0) |
  "### 3. Cost of the tool itself\n",
  "| setup | calls/s reached | CPU % of one core | RSS steady / peak | slow events | lost |",
  "|---|---|---|---|---|---|",
  (.[] | "| \(.setup) | \(.calls_per_s | round) | \(r(.cpu_pct_of_core)) | \(r1(.rss_steady_kb / 1024)) / \(r1(.rss_peak_kb / 1024)) MB | \(.slow_events) | \(.lost) |"),
  ""),
(map(select(.section == "funcs")) | select(length > 0) |
  "### 5. Cost per hit of each function (rocksdb_percall: that function alone, N calls a run, medians)\n",
  "| function | first instruction | probe | calls/run | bare ns/call | floor ns/hit | ckb-libbpf ns/hit | seen / made |",
  "|---|---|---|---|---|---|---|---|",
  (.[] | "| \(.function) | `\(.first_insn)` | \(.probe_cost) | \(.calls_per_run) | \(.bare_ns_per_call | round) | \(.floor_ns_per_hit | round) | \(.ours_ns_per_hit | round) | \(.calls_seen) / \(.calls_expected) |"),
  ""),
(map(select(.section == "ckb"))[] |
  if .skipped then "### 4. ckb import: skipped (no CKB binary or no export)\n"
  else "### 4. `ckb import` of \(.blocks) blocks (medians)\n",
    "| setup | seconds | slowdown |", "|---|---|---|",
    "| bare | \(.median_s.bare) | 1 |",
    "| floor (empty programs) | \(.median_s.floor) | \(r(.floor_slowdown))× |",
    "| ckb-libbpf | \(.median_s.ours) | \(r(.ours_slowdown))× (\(r(.ours_vs_floor))× the floor slowdown; target ≤ 1.10: \(pass(.ours_vs_floor <= 1.10))) |",
    "", "raw: \(.raw_s)\n" end),
(map(select(.section == "chain"))[] |
  if .skipped then "### 4. Running dev chain: **skipped** (no CKB binary at \(.ckb_bin); set CKB_BIN)\n"
  else "### 4. Running dev chain: blocks/min, bare / under `ckb-libbpf rocksdb --pid NODE` (medians of \(.reps) × \(.window_s) s windows each, ABBA order; miner delay \(.miner_delay_ms) ms; tip \(.final_tip) at the end)\n",
    "| setup | blocks/min | node CPU ms per block (\(.cpu_source)) |", "|---|---|---|",
    "| bare | \(.blocks_per_min.bare) | \(.cpu_ms_per_block.bare) |",
    "| ckb-libbpf rocksdb \(if (.tool_args // "") == "" then "(default options)" else .tool_args end) | \(.blocks_per_min.ours) | \(.cpu_ms_per_block.ours) |",
    "| **ours / bare** | **\(r3(.blocks_per_min_ratio))** (slowdown \(r((1 - .blocks_per_min_ratio) * 100))%; target ≤ 1 %: \(pass(.blocks_per_min_ratio >= 0.99))) | **\(r3(.cpu_per_block_ratio))** |",
    "", "RocksDB calls the tool saw: \(.rocksdb_calls_per_s) /s, \(.rocksdb_calls_per_block) per block; lost events + uncounted calls over all windows: \(.lost).", "",
    "raw: \(.raw)\n" end)
' "$f"
