#!/usr/bin/env bash
# The soak report (proposal §6.5) from the data of scripts/soak.sh:
#
#   scripts/soak-report.sh DATA_DIR [REPORT_DIR=DATA_DIR/report]
#
# REPORT_DIR/REPORT.md: verdicts S-1..S-3, resource summary against P-1..P-4,
# per-operation latency over the whole run, the fidelity table (the
# workload's own counts against the tracer's), one write burst interval by
# interval with its alert, the anomalies with their timestamps and the
# write bursts, the reproduction command and machine; and its charts (SVG,
# matplotlib; CHART_FORMAT=png for PNG): resources.svg, p99.svg,
# hist-SOURCE.svg, cdf-SOURCE.svg, burst.svg. examples/soak_report.rs decodes the data
# (typed, strict), scripts/soak-charts.py draws.
# Exit: 0 done; 1 report written but the fidelity table differs; 2 bad or
# missing data; 3 python3-matplotlib missing (apt-get install python3-matplotlib).
cd "$(dirname "$0")/.."
. scripts/lib.sh
[ $# -ge 1 ] || die 2 "usage: scripts/soak-report.sh DATA_DIR [REPORT_DIR]"
data=$1
[ -f "$data/meta.json" ] || die 2 "$data: no meta.json (not a scripts/soak.sh directory?)"
out=${2:-$data/report}
# Debian's python3 (python3-matplotlib), not whichever python3 is first on PATH.
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import matplotlib' 2>/dev/null ||
	die 3 "python3-matplotlib missing for $py: apt-get install python3-matplotlib (or PYTHON=...)"
bin=$REPO/target/release/examples/soak_report
if command -v cargo >/dev/null; then
	cargo build --release --quiet --example soak_report || die 1 "building examples/soak_report failed"
fi
[ -x "$bin" ] || die 1 "no $bin: cargo build --release --example soak_report"
rc=0
"$bin" "$data" "$out" || rc=$?
[ "$rc" -le 1 ] || exit "$rc"
"$py" scripts/soak-charts.py "$data" "$out" || die 1 "the charts failed"
log "soak report: $out/REPORT.md ($(cd "$out" && echo ./*.svg | wc -w) charts)"
exit "$rc"
