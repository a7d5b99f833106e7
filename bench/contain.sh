#!/usr/bin/env bash
# Containment benchmarks, side by side in one run:
#   a. jobs/s through the API: cgroups off (a server that is not root) vs
#      cgroups on and no limits asked vs all four limits on every job;
#   b. killing a job of 500 processes: `rcmd delete` vs `rcmd status` (the
#      CLI's own cost) on the same server;
#   c. the spawn path's cost per job with a 1 GiB server RSS: rcmd's pool
#      vs std's posix_spawn vs fork (examples/spawn_rss.rs; this tree only).
#
#   bench/contain.sh                   6 rounds (a few minutes)
#   bench/contain.sh --quick           one short round (CI runs it via bench/run.sh)
#   bench/contain.sh --baseline PATH   also the rcmd binary PATH in a and b,
#                                      alternating with this tree's round by round
#
# Needs root (cgroups, and a second user, removed after); says so and
# exits 0 without it. Every process it starts is stopped by pid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "quick baseline" "$@"
if [ "$quick" = 1 ]; then
  secs=0.5; rounds=1; kills=2; procs=50; rss_mib=64; spawns=20
else
  secs=4; rounds=6; kills=16; procs=500; rss_mib=1024; spawns=300
fi
if [ "$(id -u)" != 0 ]; then say "8. containment: needs root (cgroups, a second user)"; exit 0; fi
bench_build spawn_rss

# The server that is not root reads the PKI and its data dir as that user.
user=rcmdb$$
add_user "$user" /usr/sbin/nologin --user-group
chmod 755 "$tmp"
chown -R "$user:$user" "$certs"

# --- a. throughput --------------------------------------------------------
declare -A at
limits=(--job-memory 1G --job-cpus 1 --job-pids 1000 --job-io-write-bps 100M)
for which in "${labels[@]}"; do
  bin=$(bin_of "$which")
  server_start "$bin" "$tmp/data-on-$which"
  at[on-$which]=$addr
  server_start "$bin" "$tmp/data-limited-$which" "${limits[@]}"
  at[limited-$which]=$addr
  mkdir -p "$tmp/data-off-$which"
  chown "$user:$user" "$tmp/data-off-$which"
  server_launch setpriv --reuid="$user" --regid="$user" --clear-groups env RUST_LOG=warn "$bin" serve \
    --certs "$certs" --listen 127.0.0.1:0 --data-dir "$tmp/data-off-$which/jobs" --max-running 5000 --max-jobs 1000000
  at[off-$which]=$addr
  grep -q "no cgroups" "$server_out.err" || { say "the non-root server has cgroups: $(cat "$server_out.err")"; exit 1; }
done
c=$(client_dir throughput)
# Each round measures the three servers of each binary one after the other,
# in the opposite order every other round.
for round in $(seq "$rounds"); do
  order="off on limited"
  [ $((round % 2)) = 0 ] && order="limited on off"
  for which in $(round_order "$round"); do
    for server in $order; do
      record "$server" "$which" "$("$load" throughput "$c" "${at[$server-$which]}" 8 "$secs" | field per_second)"
    done
  done
done
f=$tmp/figures
say "8. jobs/s, 8 clients ($rounds rounds): cgroups off $(figure off) || cgroups on, no limits $(figure on) || all four limits $(figure limited)"
for which in "${labels[@]}"; do
  say "8. $which: on/off $(ratio "$(value on "$which")" "$(value off "$which")") (paired $(paired "$f/on/$which" "$f/off/$which" 3)) | limited/off $(ratio "$(value limited "$which")" "$(value off "$which")") (paired $(paired "$f/limited/$which" "$f/off/$which" 3))"
  say "8. $which, jobs/s per round (off on limited): $(paste "$f/off/$which" "$f/on/$which" "$f/limited/$which" | tr '\t\n' ' |')"
done

# --- b. killing a job of $procs processes ---------------------------------
k=$(client_dir kill)
script="i=1; while [ \$i -lt $procs ]; do sleep 1000 & i=\$((i+1)); done; echo ready; wait"
for _ in $(seq "$kills"); do
  for which in "${labels[@]}"; do
    bin=$(bin_of "$which") on=${at[on-$which]}
    id=$("$bin" "$k" "$on" exec sh -c "$script")
    # The job says when all its processes are there.
    until [ "$("$bin" "$k" "$on" output "$id")" = ready ]; do sleep 0.05; done
    t0=$(ms_now); "$bin" "$k" "$on" status "$id" >/dev/null; t1=$(ms_now)
    "$bin" "$k" "$on" delete "$id"; t2=$(ms_now)
    record kill-status "$which" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
    record kill-delete "$which" "$(awk -v b="$t1" -v c="$t2" 'BEGIN { printf "%.2f", c - b }')"
  done
done
say "8. kill a job of $procs processes, ms ($kills kills): rcmd delete $(figure kill-delete) || rcmd status $(figure kill-status) | the kill itself ~$(awk -v d="$(value kill-delete now)" -v s="$(value kill-status now)" 'BEGIN { printf "%.1f", d - s }')"

# --- c. the spawn path with a large RSS -----------------------------------
out=$("$examples/spawn_rss" "$rss_mib" "$spawns")
r=$(echo "$out" | field rcmd_us); p=$(echo "$out" | field posix_spawn_us); fk=$(echo "$out" | field fork_us)
say "8. one job with a $rss_mib MiB server RSS (median us): rcmd (clone VM|VFORK + cgroup, start to reaped) $r | posix_spawn + wait $p | fork + wait $fk | fork/rcmd $(ratio "$fk" "$r")"
