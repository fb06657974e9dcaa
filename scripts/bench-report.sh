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
"Machine: Linux \($m.kernel), \($m.cpus) × \($m.cpu), load \($m.load) at start; commit \($m.commit) (last change to the sources: \($m.src_commit // "?")\(if ($m.src_dirty_files // 0) > 0 then ", plus \($m.src_dirty_files) uncommitted files" else "" end)); \($m.bpftrace).\n",
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
(map(select(.section == "causes"))[] |
  "### Cause layers (bundled workload, \(.rounds) rounds a run, workload CPU of all threads, medians of \(.reps))\n",
  "| setup | CPU | ratio |", "|---|---|---|",
  "| `rocksdb --causes none` | \(r1(.median_cpu_us.none / 1000)) ms | 1 |",
  "| `--causes syscall` | \(r1(.median_cpu_us.syscall / 1000)) ms | \(r3(.syscall_vs_none))× |",
  "| `--causes net` (the default) | \(r1(.median_cpu_us.net / 1000)) ms | \(r3(.net_vs_none))× |",
  "", "raw: \(.raw_us)\n"),
(map(select(.section == "net"))[] |
  "### Net layer per send (\(.sends) 64-byte loopback sends a run, medians of \(.reps))\n",
  "| setup | ns per send | added |", "|---|---|---|",
  "| bare | \(r1(.median_ns_per_send.bare)) | |",
  "| `net --backend tp_btf` | \(r1(.median_ns_per_send.tp_btf)) | +\(r1(.added_ns_per_send.tp_btf)) |",
  "| `net --backend tracepoint` | \(r1(.median_ns_per_send.tracepoint)) | +\(r1(.added_ns_per_send.tracepoint)) |",
  "", "raw: \(.raw_ns)\n"),
(map(select(.section == "budget"))[] |
  "### `--overhead-budget \(.budget_pct)` (\(.rounds) rounds at full speed, calling thread CPU, medians of \(.reps))\n",
  "| setup | CPU | wall | extra CPU, % of one core | the tool estimate | attached |", "|---|---|---|---|---|---|",
  "| bare | \(r(.median_cpu_ms.bare / 1000)) s | | | | |",
  "| `--overhead-budget \(.budget_pct)` | \(r(.median_cpu_ms.budget / 1000)) s | \(r1(.median_wall_ms.budget / 1000)) s | **\(r(.extra_pct_core.budget))** | \(r(.tool_estimate_pct_core.budget)) | \(r1(.attached_pct.budget)) % |",
  "| no budget | \(r(.median_cpu_ms.full / 1000)) s | \(r1(.median_wall_ms.full / 1000)) s | \(r(.extra_pct_core.full)) | \(r(.tool_estimate_pct_core.full)) | \(r1(.attached_pct.full)) % |",
  "", "raw: \(.raw)\n"),
(map(select(.section == "ckb"))[] |
  if .skipped then "### 4. ckb import: **skipped, not measured** (\(.why))\n"
  else "### 4. `ckb import` of \(.blocks) blocks (medians)\n",
    "| setup | seconds | slowdown |", "|---|---|---|",
    "| bare | \(.median_s.bare) | 1 |",
    "| floor (empty programs) | \(.median_s.floor) | \(r(.floor_slowdown))× |",
    "| ckb-libbpf | \(.median_s.ours) | \(r(.ours_slowdown))× (\(r(.ours_vs_floor))× the floor slowdown; target ≤ 1.10: \(pass(.ours_vs_floor <= 1.10))) |",
    "",
    "What we add ÷ what the floor adds, (ours − bare) ÷ (floor − bare): \(r(.added_vs_floor_added)) by the timed medians; \(if .added_vs_floor_added_by_program_time then r(.added_vs_floor_added_by_program_time) else "?" end) with ours − floor taken from bpf_stats (programs \(.program_s.ours // "?") s vs \(.program_s.floor // "?") s an import; target ≤ 1.10: \(if .added_vs_floor_added_by_program_time then pass(.added_vs_floor_added_by_program_time <= 1.10) else "?" end)).",
    "", "raw: \(.raw_s)\n" end),
(map(select(.section == "chain"))[] |
  if .skipped then "### 4. Running dev chain: **skipped, not measured** (\(.why))\n"
  else
    . as $c |
    def setup_name: {bare: "bare", floor: "floor: `--empty-programs` (same functions, same links)",
      defaults: ("defaults: `ckb-libbpf rocksdb --pid NODE`" + (if ($c.tool_args // "") == "" then "" else " \($c.tool_args)" end)),
      nocauses: "`--causes none`"}[.];
    def sp: "\(r3(.min)) / **\(r3(.median))** / \(r3(.max))";
    def pct: "\(r((.min) * 100)) / **\(r((.median) * 100))** / \(r((.max) * 100)) %";
    "### 4. Running dev chain: node CPU per block (\(.reps) × \(.window_s) s windows of each setup, rotating; miner delay \(.miner_delay_ms) ms; tip \(.final_tip) at the end; node CPU from \(.cpu_source))\n",
    "| setup | blocks/min (median) | node CPU ms per block (median) | RocksDB calls/s, per block (tool) | lost |", "|---|---|---|---|---|",
    (.setups[] as $s | "| \($s | setup_name) | \($c.blocks_per_min[$s]) | \(r3($c.cpu_ms_per_block[$s])) | \(if $c.tool[$s] then "\($c.tool[$s].calls_per_s), \($c.tool[$s].calls_per_block)" else "" end) | \($c.tool[$s].lost // "") |"),
    "", "Per alternation (the windows of one rotation), min / **median** / max over \(.reps):", "",
    "| ratio | min / median / max |", "|---|---|",
    (if .per_alternation.floor_vs_bare then "| floor / bare | \(.per_alternation.floor_vs_bare | sp) |" else empty end),
    (if .per_alternation.defaults_vs_bare then "| defaults / bare | \(.per_alternation.defaults_vs_bare | sp) |" else empty end),
    (if .per_alternation.defaults_vs_floor then "| **defaults / floor** (target ≤ 1.10) | \(.per_alternation.defaults_vs_floor | sp) |" else empty end),
    (if .per_alternation.above_floor_share_of_bare then "| (defaults − floor) / bare: programs + background + cause layers | \(.per_alternation.above_floor_share_of_bare | pct) |" else empty end),
    (if .per_alternation.causes_share_of_bare then "| (defaults − `--causes none`) / bare: the cause layers alone | \(.per_alternation.causes_share_of_bare | pct) |" else empty end),
    "", "raw CPU ms/block: \(.raw.cpu_ms_per_block | tojson); blocks/min: \(.raw.blocks_per_min | tojson)\n"
  end),
(map(select(.section == "export"))[] |
  def sp: "\(r3(.min)) / **\(r3(.median))** / \(r3(.max))";
  def sp2: "\(r(.min)) / **\(r(.median))** / \(r(.max))";
  "### `ckb-libbpf export` (`--layers \(.layers) --interval \(.interval_s)`; \(.reps) × \(.window_s) s windows of each setup, rotating; bundled workload with `--cf-db2` at full speed)\n",
  "| setup | workload calls/s (median) | workload CPU µs per call (median) | exporter CPU, % of a core (min / median / max) | exporter RSS (median; peak) |", "|---|---|---|---|---|",
  "| bare | \(.ops_per_s.bare) | \(r3(.cpu_us_per_call.bare)) | | |",
  "| exporter attached, not scraped | \(.ops_per_s.quiet) | \(r3(.cpu_us_per_call.quiet)) | \(.exporter_cpu_pct.quiet | sp2) | \(r1(.exporter_rss_kb.quiet.median / 1024)) MB; \(r1(.exporter_rss_peak_kb.quiet / 1024)) MB |",
  "| exporter attached, scraped every 1 s | \(.ops_per_s.scraped) | \(r3(.cpu_us_per_call.scraped)) | \(.exporter_cpu_pct.scraped | sp2) | \(r1(.exporter_rss_kb.scraped.median / 1024)) MB; \(r1(.exporter_rss_peak_kb.scraped / 1024)) MB |",
  "", "Per alternation, min / **median** / max over \(.reps):", "",
  "| ratio | ops/s | CPU per call |", "|---|---|---|",
  "| not scraped / bare | \(.per_alternation.quiet_vs_bare_ops | sp) | \(.per_alternation.quiet_vs_bare_cpu_per_call | sp) |",
  "| scraped / bare | \(.per_alternation.scraped_vs_bare_ops | sp) | \(.per_alternation.scraped_vs_bare_cpu_per_call | sp) |",
  "| **scraped / not scraped** | \(.per_alternation.scraped_vs_quiet_ops | sp) | \(.per_alternation.scraped_vs_quiet_cpu_per_call | sp) |",
  "", "Scrape latency (curl time_total, OpenMetrics; page \(.page_bytes) bytes, \(.page_samples) samples):", "",
  "| scrapes | n | p50 | p99 | max |", "|---|---|---|---|---|",
  "| back to back, workload at \(.scrape_back_to_back.workload_calls_per_s // "full speed") calls/s | \(.scrape_back_to_back.n) | \(r3(.scrape_back_to_back.p50_ms)) ms | \(r3(.scrape_back_to_back.p99_ms)) ms | \(r3(.scrape_back_to_back.max_ms)) ms |",
  "| every 1 s during the scraped windows (workload at full speed) | \(.scrape_every_1s.n) | \(r3(.scrape_every_1s.p50_ms)) ms | \(r3(.scrape_every_1s.p99_ms)) ms | \(r3(.scrape_every_1s.max_ms)) ms |",
  "", "raw: \(.raw | tojson)\n"),
(map(select(.section == "overview"))[] |
  "### `ckb-libbpf overview` (the whole tool in a 200x60 tmux pane, \(.secs) s per setup; target: under 2 % of a core)\n",
  "| workload | Overview tab | RocksDB tab |", "|---|---|---|",
  "| idle (1 round a second) | \(.pct_core.idle.overview_tab) % | \(.pct_core.idle.rocksdb_tab) % |",
  "| ~15 K calls/s | \(.pct_core.busy_15k.overview_tab) % | \(.pct_core.busy_15k.rocksdb_tab) % |", "")
' "$f"
