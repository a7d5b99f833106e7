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
#   bench/ops.sh                   10 rounds of 3 s per figure and server
#   bench/ops.sh --quick           one short round (CI runs it via bench/run.sh)
#   bench/ops.sh --baseline PATH   also the rcmd binary PATH, alternating
#                                  with this tree's round by round
#
# Every process it starts is stopped by pid. Needs curl.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "quick baseline" "$@"
if [ "$quick" = 1 ]; then rounds=1; secs=0.5; else rounds=10; secs=3; fi
bench_build
need curl=curl

tick_us=$((1000000 / $(getconf CLK_TCK)))
# cpu_ticks PID: the process's user + system time so far, in clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# A plain server and one with metrics for every binary; ids 1..1000 exist for
# every status client.
declare -A server_pids server_addrs
for which in "${labels[@]}"; do
  for kind in plain metrics; do
    name=$kind-$which
    if [ $kind = metrics ]; then
      server_start --ready '^rcmd metrics on ' "$(bin_of "$which")" "$tmp/data-$name" --metrics-listen 127.0.0.1:0
      url=$(sed -n 's/^rcmd metrics on //p' "$server_out")
      # A scraper, as Prometheus would be, once a second.
      (while true; do curl -s -o /dev/null "$url" || true; sleep 1; done) &
      pids+=($!)
    else
      server_start "$(bin_of "$which")" "$tmp/data-$name"
    fi
    server_pids[$name]=$server_pid
    server_addrs[$name]=$addr
    "$load" fill "$(client_dir "status-$name")" "$addr" 1000 /bin/true >/dev/null
  done
done

# measure NAME KIND LOADGEN-ARGS...: one round of load on server NAME;
# records the rate as KIND-NAME and the server's CPU microseconds per
# request (or job) as KIND-NAME.cpu (loadgen says how many: count= for jobs,
# n= for requests).
measure() {
  local name=$1 kind=$2 pid=${server_pids[$1]} before after line
  shift 2
  before=$(cpu_ticks "$pid")
  line=$("$load" "$kind" "$@")
  after=$(cpu_ticks "$pid")
  record "$kind-${name%-*}" "${name##*-}" "$(echo "$line" | field per_second)"
  record "$kind-${name%-*}.cpu" "${name##*-}" "$(echo "$line" | awk -v t=$((after - before)) -v us="$tick_us" '
    { for (i = 1; i <= NF; i++) if ($i ~ /^(count|n)=/) { split($i, kv, "="); n = kv[2] } }
    END { printf "%.2f\n", t * us / n }')"
}

for round in $(seq "$rounds"); do
  for which in $(round_order "$round"); do
    order="plain metrics"
    [ $((round % 2)) = 0 ] && order="metrics plain"
    for kind in $order; do
      name=$kind-$which
      measure "$name" status "$certs/status-$name" "${server_addrs[$name]}" 8 "$secs" 1000
      measure "$name" throughput "$(client_dir "jobs-$name-$round")" "${server_addrs[$name]}" 8 "$secs"
    done
  done
done

f=$tmp/figures
for which in "${labels[@]}"; do
  for kind in status throughput; do
    echo "   $which, per round, $kind/s without:         $(tr '\n' ' ' <"$f/$kind-plain/$which")" >&2
    echo "   $which, per round, $kind/s with:            $(tr '\n' ' ' <"$f/$kind-metrics/$which")" >&2
    echo "   $which, per round, CPU us per $kind without: $(tr '\n' ' ' <"$f/$kind-plain.cpu/$which")" >&2
    echo "   $which, per round, CPU us per $kind with:    $(tr '\n' ' ' <"$f/$kind-metrics.cpu/$which")" >&2
  done
done
say "metrics, server CPU us per status request ($rounds rounds): without $(figure status-plain.cpu) || with --metrics-listen $(figure status-metrics.cpu)"
say "metrics, server CPU us per job: without $(figure throughput-plain.cpu) || with $(figure throughput-metrics.cpu)"
say "metrics, status req/s: without $(figure status-plain) || with $(figure status-metrics)"
say "metrics, jobs/s: without $(figure throughput-plain) || with $(figure throughput-metrics)"
for which in "${labels[@]}"; do
  say "metrics cost, $which, median of per-round ratios with/without: CPU per status request $(paired "$f/status-metrics.cpu/$which" "$f/status-plain.cpu/$which" 3) | CPU per job $(paired "$f/throughput-metrics.cpu/$which" "$f/throughput-plain.cpu/$which" 3) | status req/s $(paired "$f/status-metrics/$which" "$f/status-plain/$which" 3) | jobs/s $(paired "$f/throughput-metrics/$which" "$f/throughput-plain/$which" 3)"
done
