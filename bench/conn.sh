#!/usr/bin/env bash
# Connections (issue 13): what the connection registry, the pre-auth budget
# and the response memory budget cost, and what they buy, on real servers on
# loopback with a fresh PKI.
#
#   bench/conn.sh           full run (a few minutes)
#   bench/conn.sh --quick   small sizes (CI runs it via bench/run.sh)
#   RCMD_BASELINE=/path/to/rcmd bench/conn.sh
#       compares with that binary (built from 4ebc5e1, the commit before the
#       connection series), alternating rounds with this one;
#   RCMD_CONN=/path/to/rcmd     (optional) also a binary built from f52ab4b,
#       the connection series alone, without what landed after it.
#
# 1. status queries/s (8 clients) and `run true` latency, each binary.
# 2. stalled streams: CONNECTIONS x STREAMS HTTP/2 GETs of a 16 MB output
#    with a zero flow-control window: server RSS idle, held, peak, after,
#    and how long an ordinary `output` of it takes while they are held.
# 3. rapid reset: GETs reset as soon as sent, as fast as one client can:
#    whether the server cuts the connections, its CPU time and RSS.
# Each binary is its own client in 1 (as its users would run it); 2 and 3
# use examples/h2flood.rs. Every process it starts is stopped by pid.
#
# bench/run.sh runs it with RCMD_BASELINE=$RCMD_CONN_BASELINE (its own RCMD_BASELINE
# is stdin.sh's). To build a baseline once:
#   git worktree add --detach /tmp/rcmd-base 4ebc5e1
#   (cd /tmp/rcmd-base && cargo build --release --bin rcmd)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--quick" ]; then
  quick=1; rounds=1; secs=0.5; runs=5; conns=2; streams=50; hold=2; resets=500
else
  quick=0; rounds=7; secs=3; runs=30; conns=10; streams=200; hold=4; resets=10000
fi

cargo build --release -q --bin rcmd --example loadgen --example h2flood
rcmd=$PWD/target/release/rcmd
load=$PWD/target/release/examples/loadgen
flood=$PWD/target/release/examples/h2flood

source bench/lib.sh
# CPU time of a process so far, user and system, in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) * 1000 / hz }' "/proc/$1/stat"; }

say "# connection benchmarks (issue 13), $(date -u +%Y-%m-%d), $(nproc) cores$([ $quick = 1 ] && echo ', QUICK MODE')"

binaries=now
[ -n "${RCMD_CONN:-}" ] && binaries="$binaries conn"
[ -n "${RCMD_BASELINE:-}" ] && binaries="$binaries before"
binary() {
  case $1 in
    now) echo "$rcmd" ;;
    conn) echo "$RCMD_CONN" ;;
    before) echo "$RCMD_BASELINE" ;;
  esac
}
label() {
  case $1 in
    now) echo "now (main)" ;;
    conn) echo "connection series alone (f52ab4b)" ;;
    before) echo "before it (4ebc5e1)" ;;
  esac
}
[ -z "${RCMD_BASELINE:-}" ] && say "13 comparison with the binary from before the connection series skipped (set RCMD_BASELINE to a binary built from 4ebc5e1)"

# --- 1. Status queries and `run true`, alternating ----------------------------
c=$(client_dir fast)
for round in $(seq "$rounds"); do
  order=$binaries
  [ $((round % 2)) = 0 ] && order=$(echo "$binaries" | awk '{ for (i = NF; i; i--) printf "%s ", $i }')
  for which in $order; do
    bin=$(binary "$which")
    start "$bin" "$tmp/data-fast-$which-$round"
    "$load" fill "$c" "$addr" 200 true >/dev/null
    "$load" status "$c" "$addr" 8 "$secs" 200 | field per_second >>"$tmp/status-$which"
    "$load" latency "$runs" "$bin" "$c" "$addr" run true | field median >>"$tmp/run-$which"
    stop
  done
done
for which in $binaries; do
  s=$(median <"$tmp/status-$which"); r=$(median <"$tmp/run-$which")
  line="13.1 $(label "$which") ($rounds rounds): status $s req/s ($(spread <"$tmp/status-$which")) | run true $r ms ($(spread <"$tmp/run-$which"))"
  if [ "$which" != before ] && [ -n "${RCMD_BASELINE:-}" ]; then
    line="$line | vs before: status $(ratio "$s" "$(median <"$tmp/status-before")") (per round $(paired "$tmp/status-$which" "$tmp/status-before")), run true $(ratio "$r" "$(median <"$tmp/run-before")") (per round $(paired "$tmp/run-$which" "$tmp/run-before"))"
  fi
  say "$line"
done

# --- 2. Stalled HTTP/2 output streams -------------------------------------------
for which in $binaries; do
  start "$(binary "$which")" "$tmp/data-stall-$which"
  id=$("$rcmd" "$c" "$addr" exec head -c 16000000 /dev/zero)
  "$rcmd" "$c" "$addr" wait "$id" >/dev/null
  idle=$(mib "$server_pid" VmRSS)
  echo 5 >"/proc/$server_pid/clear_refs" # the peak (VmHWM) from here on
  "$flood" stall "$c" "$addr" "$conns" "$streams" "/jobs/$id/output/stdout" "$hold" >"$tmp/stall-$which" &
  flood_pid=$!
  pids+=("$flood_pid")
  while ! grep -q opened "$tmp/stall-$which" && kill -0 "$flood_pid" 2>/dev/null; do sleep 0.05; done
  sleep 1 # the server fills what it buffers for them
  held=$(mib "$server_pid" VmRSS)
  peak=$(mib "$server_pid" VmHWM)
  peak=$(printf '%s\n' "$held" "$peak" | sort -n | tail -1) # the kernel updates VmHWM lazily
  # Another reader of the same output meanwhile: it may have to wait for
  # the response budget until the stalled streams go.
  other=$("$load" latency 1 "$rcmd" "$c" "$addr" output "$id" | field median)
  wait "$flood_pid"
  # Memory that comes back does so soon; sample it for a few seconds.
  for _ in $(seq 10); do sleep 0.5; mib "$server_pid" VmRSS >>"$tmp/after-$which"; done
  out=$(cat "$tmp/stall-$which")
  say "13.2 $(label "$which"): $conns x $streams stalled streams ($(echo "$out" | field opened) opened, $(echo "$out" | field refused) not taken): RSS idle $idle MiB | held $held MiB | peak $peak MiB | 5 s after they closed $(tail -1 "$tmp/after-$which") MiB | meanwhile another \`output\` of it took $other ms"
  stop
done

# --- 3. Rapid reset ---------------------------------------------------------------
for which in $binaries; do
  start "$(binary "$which")" "$tmp/data-reset-$which"
  id=$("$rcmd" "$c" "$addr" exec echo hello)
  "$rcmd" "$c" "$addr" wait "$id" >/dev/null
  echo 5 >"/proc/$server_pid/clear_refs"
  cpu=$(cpu_ms "$server_pid")
  out=$("$flood" reset "$c" "$addr" "$conns" "$resets" "/jobs/$id/output/stdout")
  used=$(awk -v a="$(cpu_ms "$server_pid")" -v b="$cpu" 'BEGIN { print a - b }')
  sent=$(echo "$out" | field sent)
  ok=$("$rcmd" "$c" "$addr" status "$id" >/dev/null && echo answers || echo "does NOT answer")
  say "13.3 $(label "$which"): rapid reset, $conns connections x $resets GETs reset at once ($sent queued by the client): the server closed $(echo "$out" | field cut) of $conns connections ($(echo "$out" | sed -n 's/.* reason=//p')) | server CPU for the whole flood $used ms | peak RSS $(mib "$server_pid" VmHWM) MiB | afterwards it $ok"
  stop
done
