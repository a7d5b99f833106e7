#!/usr/bin/env bash
# Connections: what the connection registry, the pre-auth budget and the
# response memory budget cost, and what they buy, on real servers on
# loopback with a fresh PKI.
#
#   bench/conn.sh                   full run (a few minutes)
#   bench/conn.sh --quick           small sizes (CI runs it via bench/run.sh)
#   bench/conn.sh --baseline PATH   also the rcmd binary PATH, alternating
#                                   rounds with this tree's (BENCHMARKS.md's
#                                   figures: one built from 4ebc5e1, the
#                                   commit before the connection series)
#   RCMD_CONN=PATH bench/conn.sh --baseline PATH
#                                   a third binary too (there: one built from
#                                   f52ab4b, the connection series alone)
#
# 1. status queries/s (8 clients) and `run true` latency, each binary.
# 2. stalled streams: CONNECTIONS x STREAMS HTTP/2 GETs of a 16 MB output
#    with a zero flow-control window: server RSS idle, held, peak, after,
#    and how long an ordinary `output` of it takes while they are held.
# 3. rapid reset: GETs reset as soon as sent, as fast as one client can:
#    whether the server cuts the connections, its CPU time and RSS.
# Each binary is its own client in 1 (as its users would run it); 2 and 3
# use examples/h2flood.rs. Every process it starts is stopped by pid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "quick baseline" "$@"
if [ "$quick" = 1 ]; then
  rounds=1; secs=0.5; runs=5; conns=2; streams=50; hold=2; resets=500
else
  rounds=8; secs=3; runs=30; conns=10; streams=200; hold=4; resets=10000
fi
bench_build h2flood
flood=$examples/h2flood
if [ -n "${RCMD_CONN:-}" ]; then
  labels=(now conn "${labels[@]:1}")
  bin_path[conn]=$RCMD_CONN
fi
# CPU time of a process so far, user and system, in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) * 1000 / hz }' "/proc/$1/stat"; }

say "# connection benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores$([ "$quick" = 1 ] && echo ', QUICK MODE')"

# --- 1. Status queries and `run true`, alternating ----------------------------
c=$(client_dir fast)
for round in $(seq "$rounds"); do
  for which in $(round_order "$round"); do
    bin=$(bin_of "$which")
    server_start "$bin" "$tmp/data-fast-$which-$round"
    "$load" fill "$c" "$addr" 200 true >/dev/null
    record status "$which" "$("$load" status "$c" "$addr" 8 "$secs" 200 | field per_second)"
    record run "$which" "$("$load" latency "$runs" "$bin" "$c" "$addr" run true | field median)"
    server_stop
  done
done
say "13.1 status req/s, 8 clients ($rounds rounds): $(figure status)"
say "13.1 run true ms: $(figure run)"

# --- 2. Stalled HTTP/2 output streams -------------------------------------------
for which in "${labels[@]}"; do
  server_start "$(bin_of "$which")" "$tmp/data-stall-$which"
  id=$("$rcmd" "$c" "$addr" exec head -c 16000000 /dev/zero)
  "$rcmd" "$c" "$addr" wait "$id" >/dev/null
  idle=$(mib "$server_pid" VmRSS)
  echo 5 >"/proc/$server_pid/clear_refs" # the peak (VmHWM) from here on
  # It says how many streams it opened, then holds them for $hold s.
  launch '^stall opened=' "$tmp/stall-$which" "$flood" stall "$c" "$addr" "$conns" "$streams" "/jobs/$id/output/stdout" "$hold"
  flood_pid=$launched_pid
  sleep 1 # a second of the hold for the server to fill what it buffers for them
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
  say "13.2 $which: $conns x $streams stalled streams ($(echo "$out" | field opened) opened, $(echo "$out" | field refused) not taken): RSS idle $idle MiB | held $held MiB | peak $peak MiB | 5 s after they closed $(tail -1 "$tmp/after-$which") MiB | meanwhile another \`output\` of it took $other ms"
  server_stop
done

# --- 3. Rapid reset ---------------------------------------------------------------
for which in "${labels[@]}"; do
  server_start "$(bin_of "$which")" "$tmp/data-reset-$which"
  id=$("$rcmd" "$c" "$addr" exec echo hello)
  "$rcmd" "$c" "$addr" wait "$id" >/dev/null
  echo 5 >"/proc/$server_pid/clear_refs"
  cpu=$(cpu_ms "$server_pid")
  out=$("$flood" reset "$c" "$addr" "$conns" "$resets" "/jobs/$id/output/stdout")
  used=$(awk -v a="$(cpu_ms "$server_pid")" -v b="$cpu" 'BEGIN { print a - b }')
  sent=$(echo "$out" | field sent)
  ok=$("$rcmd" "$c" "$addr" status "$id" >/dev/null && echo answers || echo "does NOT answer")
  say "13.3 $which: rapid reset, $conns connections x $resets GETs reset at once ($sent queued by the client): the server closed $(echo "$out" | field cut) of $conns connections ($(echo "$out" | sed -n 's/.* reason=//p')) | server CPU for the whole flood $used ms | peak RSS $(mib "$server_pid" VmHWM) MiB | afterwards it $ok"
  server_stop
done
