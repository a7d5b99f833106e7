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
#   bench/ops.sh           10 rounds of 3 s per figure and server
#   bench/ops.sh --quick   one short round (CI runs it via bench/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--quick" ]; then rounds=1; secs=0.5; else rounds=10; secs=3; fi

cargo build --release -q --bin rcmd --example loadgen
rcmd=$PWD/target/release/rcmd
load=$PWD/target/release/examples/loadgen

tmp=$(mktemp -d /tmp/rcmd-bench-ops.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
tick_us=$((1000000 / $(getconf CLK_TCK)))
# cpu_ticks PID: the process's user + system time so far, in clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

"$rcmd" pki init --dir "$tmp/certs" --client bench >/dev/null
client_dir() {
  "$rcmd" pki client "$1" --dir "$tmp/certs" >/dev/null
  echo "$tmp/certs/$1"
}

# start NAME [FLAGS...]: a server; sets addr_NAME (and metrics_NAME).
start() {
  local name=$1 out=$tmp/$1.out
  shift
  RUST_LOG=warn "$rcmd" serve --certs "$tmp/certs" --listen 127.0.0.1:0 --data-dir "$tmp/data-$name" \
    --max-running 5000 --max-jobs 1000000 "$@" >"$out" 2>"$tmp/$name.err" &
  pids+=($!)
  printf -v "pid_$name" '%s' $!
  for _ in $(seq 100); do
    grep -q '^rcmd listening on' "$out" && { [ $# = 0 ] || grep -q '^rcmd metrics on' "$out"; } && break
    sleep 0.1
  done
  printf -v "addr_$name" '%s' "$(sed -n 's/^rcmd listening on \([^ ]*\).*/\1/p' "$out")"
  printf -v "metrics_$name" '%s' "$(sed -n 's/^rcmd metrics on //p' "$out")"
}
start plain
start metrics --metrics-listen 127.0.0.1:0
# A scraper, as Prometheus would be, once a second.
(while true; do curl -s -o /dev/null "$metrics_metrics" || true; sleep 1; done) &
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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
sp=$(median <"$tmp/status-plain"); sm=$(median <"$tmp/status-metrics")
jp=$(median <"$tmp/jobs-plain"); jm=$(median <"$tmp/jobs-metrics")
csp=$(median <"$tmp/status-plain.cpu"); csm=$(median <"$tmp/status-metrics.cpu")
cjp=$(median <"$tmp/jobs-plain.cpu"); cjm=$(median <"$tmp/jobs-metrics.cpu")
echo "metrics cost, median of $rounds rounds: server CPU per status request $csp us without, $csm us with --metrics-listen (ratio $(ratio "$csm" "$csp")) | per job $cjp us without, $cjm us with (ratio $(ratio "$cjm" "$cjp"))"
echo "metrics cost, median of $rounds rounds: status $sp req/s without, $sm with (ratio $(ratio "$sm" "$sp")) | jobs $jp/s without, $jm/s with (ratio $(ratio "$jm" "$jp"))"
