#!/usr/bin/env bash
# Containment benchmarks (issue 11), side by side in one run:
#   a. jobs/s through the API: cgroups off (a server that is not root) vs
#      cgroups on and no limits asked vs all four limits on every job;
#   b. killing a job of 500 processes: `rcmd delete` vs `rcmd status` (the
#      CLI's own cost) on the same server;
#   c. the spawn path's cost per job with a 1 GiB server RSS: rcmd's pool
#      vs std's posix_spawn vs fork (examples/spawn_rss.rs).
#
#   bench/contain.sh [--quick]     (root; called by bench/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ $quick = 1 ]; then
  secs=0.5; rounds=1; kills=2; procs=50; mib=64; spawns=20
else
  secs=5; rounds=5; kills=15; procs=500; mib=1024; spawns=300
fi
if [ "$(id -u)" != 0 ]; then echo "8. containment: needs root (cgroups, a second user)"; exit 0; fi

cargo build --release -q --bin rcmd --example loadgen --example spawn_rss
rcmd=$PWD/target/release/rcmd
load=$PWD/target/release/examples/loadgen

tmp=$(mktemp -d /tmp/rcmd-bench-contain.XXXXXX)
chmod 755 "$tmp"
user=rcmdb$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  userdel "$user" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
useradd --no-create-home --home-dir "$tmp" --shell /usr/sbin/nologin --user-group "$user"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
now_ms() { date +%s%N | awk '{ printf "%.3f", $1 / 1e6 }'; }

"$rcmd" pki init --dir "$tmp/certs" >/dev/null
certs=$tmp/certs
client_dir() { "$rcmd" pki client "$1" --dir "$certs" >/dev/null; echo "$certs/$1"; }

addr=
start_server() { # NAME [setpriv...] -- [serve flags...]
  local name=$1; shift
  local wrap=()
  while [ "$1" != -- ]; do wrap+=("$1"); shift; done; shift
  mkdir -p "$tmp/data-$name"
  [ ${#wrap[@]} -gt 0 ] && chown -R "$user:$user" "$tmp/data-$name" "$certs"
  RUST_LOG=warn "${wrap[@]}" "$rcmd" serve --certs "$certs" --listen 127.0.0.1:0 --data-dir "$tmp/data-$name/jobs" \
    --max-running 5000 --max-jobs 100000 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 100); do
    addr=$(sed -n 's/^rcmd listening on \([^ ]*\).*/\1/p' "$tmp/$name.out")
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "server $name did not start: $(cat "$tmp/$name.err")"; exit 1
}

# --- a. throughput --------------------------------------------------------
c=$(client_dir throughput)
start_server on --; on=$addr
start_server limits -- --job-memory 1G --job-cpus 1 --job-pids 1000 --job-io-write-bps 100M; limited=$addr
start_server off setpriv --reuid="$user" --regid="$user" --clear-groups --; off=$addr
grep -q "no cgroups" "$tmp/off.err" || { echo "the non-root server has cgroups: $(cat "$tmp/off.err")"; exit 1; }
# Each round measures the three servers one after the other, in the
# opposite order every other round, so that a machine that speeds up or
# slows down during a round favours no server.
for round in $(seq $rounds); do
  order="off on limited"
  [ $((round % 2)) = 0 ] && order="limited on off"
  for server in $order; do
    echo "$round $server $("$load" throughput "$c" "${!server}" 8 "$secs" | field per_second)"
  done
done >"$tmp/rates"
rate() { awk -v s="$1" '$2 == s { print $3 }' "$tmp/rates" | median; }
# A round's ratios are paired in time: a machine that slows down for a
# while moves both sides.
paired() {
  awk -v s="$1" '$2 == "off" { o[$1] = $3 } $2 == s { r[$1] = $3 } END { for (i in r) printf "%.3f\n", r[i] / o[i] }' \
    "$tmp/rates" | median
}
o=$(rate off); n=$(rate on); l=$(rate limited)
echo "8. jobs/s, 8 clients (median of $rounds): cgroups off $o | cgroups on, no limits $n ($(ratio "$n" "$o"); paired $(paired on)) | all four limits $l ($(ratio "$l" "$o"); paired $(paired limited))"
per_round=$(awk '{ r[$1, $2] = $3; n = $1 } END { for (i = 1; i <= n; i++) printf "%s %s %s | ", r[i, "off"], r[i, "on"], r[i, "limited"] }' "$tmp/rates")
echo "8. jobs/s per round (off on limited): $per_round"

# --- b. killing a job of $procs processes ---------------------------------
k=$(client_dir kill)
script="i=1; while [ \$i -lt $procs ]; do sleep 1000 & i=\$((i+1)); done; echo ready; wait"
for _ in $(seq $kills); do
  id=$("$rcmd" "$k" "$on" exec sh -c "$script")
  until [ "$("$rcmd" "$k" "$on" output "$id")" = ready ]; do sleep 0.05; done
  t0=$(now_ms); "$rcmd" "$k" "$on" status "$id" >/dev/null; t1=$(now_ms)
  "$rcmd" "$k" "$on" delete "$id"; t2=$(now_ms)
  echo "$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { print b - a, c - b }')"
done >"$tmp/kills"
s=$(awk '{ print $1 }' "$tmp/kills" | median); d=$(awk '{ print $2 }' "$tmp/kills" | median)
echo "8. kill a job of $procs processes (median ms of $kills): rcmd delete $d | rcmd status $s | the kill itself ~$(awk -v d="$d" -v s="$s" 'BEGIN { printf "%.1f", d - s }')"

# --- c. the spawn path with a large RSS -----------------------------------
out=$(target/release/examples/spawn_rss "$mib" "$spawns")
r=$(echo "$out" | field rcmd_us); p=$(echo "$out" | field posix_spawn_us); f=$(echo "$out" | field fork_us)
echo "8. one job with a $mib MiB server RSS (median us): rcmd (clone VM|VFORK + cgroup, start to reaped) $r | posix_spawn + wait $p | fork + wait $f | fork/rcmd $(ratio "$f" "$r")"
