#!/usr/bin/env bash
# What metrics cost: a server with --metrics-listen (and a scraper reading it
# every second, as Prometheus would) against one without, in alternating
# rounds of the same run, so that both see the same machine. Two measures:
#
# * the server's own CPU time per status request and per job (utime + stime
#   of its process, all threads, from /proc/PID/stat, over every request of a
#   round; a job's own processes are not counted): what metrics add to each
#   request, and steady even when the machine is busy;
# * status requests and jobs per second, as a client sees them: the
#   end-to-end figure, but as noisy as the machine (the load generator runs
#   on the same two cores).
#
# Ratios are medians of the per-round ratios (with / without).
#
#   bench/ops.sh           10 rounds of 3 s per figure and server
#   bench/ops.sh --quick   one short round (CI runs it via bench/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--quick" ]; then rounds=1; secs=0.5; else rounds=10; secs=3; fi

cargo build --release -q --bin rcmd --example loadgen
rcmd=$PWD/target/release/rcmd
load=$PWD/target/release/examples/loadgen
source bench/lib.sh

tick_us=$((1000000 / $(getconf CLK_TCK)))
# cpu_ticks PID: the process's user + system time so far, in clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

start "$rcmd" "$tmp/data-plain"
pid_plain=$server_pid addr_plain=$addr
start "$rcmd" "$tmp/data-metrics" --metrics-listen 127.0.0.1:0
pid_metrics=$server_pid addr_metrics=$addr
for _ in $(seq 100); do grep -q '^rcmd metrics on' "$server_out" && break; sleep 0.05; done
metrics_url=$(sed -n 's/^rcmd metrics on //p' "$server_out")
# A scraper, as Prometheus would be, once a second.
(while true; do curl -s -o /dev/null "$metrics_url" || true; sleep 1; done) &
pids+=($!)

# Ids 1..1000 exist for every status client.
for name in plain metrics; do
  c=$(client_dir "status-$name")
  addr_var=addr_$name
  "$load" fill "$c" "${!addr_var}" 1000 /bin/true >/dev/null
done

# measure NAME KIND OUTFILE LOADGEN-ARGS...: one round of load; appends the
# rate to OUTFILE and the server's CPU microseconds per request (or job) to
# OUTFILE.cpu (loadgen says how many: count= for jobs, n= for requests).
measure() {
  local name=$1 kind=$2 out=$3 pid_var=pid_$1
  shift 3
  local before after line
  before=$(cpu_ticks "${!pid_var}")
  line=$("$load" "$kind" "$@")
  after=$(cpu_ticks "${!pid_var}")
  echo "$line" | field per_second >>"$out"
  echo "$line" | awk -v t=$((after - before)) -v us="$tick_us" '
    { for (i = 1; i <= NF; i++) if ($i ~ /^(count|n)=/) { split($i, kv, "="); n = kv[2] } }
    END { printf "%.2f\n", t * us / n }' >>"$out.cpu"
}

for round in $(seq "$rounds"); do
  order="plain metrics"
  [ $((round % 2)) = 0 ] && order="metrics plain"
  for name in $order; do
    addr_var=addr_$name
    measure "$name" status "$tmp/status-$name" "$tmp/certs/status-$name" "${!addr_var}" 8 "$secs" 1000
    c=$(client_dir "jobs-$name-$round")
    measure "$name" throughput "$tmp/jobs-$name" "$c" "${!addr_var}" 8 "$secs"
  done
done

for f in status jobs; do
  echo "   per round, $f/s without:         $(tr '\n' ' ' <"$tmp/$f-plain")" >&2
  echo "   per round, $f/s with:            $(tr '\n' ' ' <"$tmp/$f-metrics")" >&2
  echo "   per round, CPU us per $f without: $(tr '\n' ' ' <"$tmp/$f-plain.cpu")" >&2
  echo "   per round, CPU us per $f with:    $(tr '\n' ' ' <"$tmp/$f-metrics.cpu")" >&2
done
m() { median <"$tmp/$1"; }
say "metrics cost, median of $rounds rounds: server CPU per status request $(m status-plain.cpu) us without, $(m status-metrics.cpu) us with --metrics-listen (ratio $(paired "$tmp/status-metrics.cpu" "$tmp/status-plain.cpu" 3)) | per job $(m jobs-plain.cpu) us without, $(m jobs-metrics.cpu) us with (ratio $(paired "$tmp/jobs-metrics.cpu" "$tmp/jobs-plain.cpu" 3))"
say "metrics cost, median of $rounds rounds: status $(m status-plain) req/s without, $(m status-metrics) with (ratio $(paired "$tmp/status-metrics" "$tmp/status-plain" 3)) | jobs $(m jobs-plain)/s without, $(m jobs-metrics)/s with (ratio $(paired "$tmp/jobs-metrics" "$tmp/jobs-plain" 3))"
