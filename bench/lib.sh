# Pieces shared by bench/state.sh, bench/conn.sh, bench/ops.sh and bench/fleet.sh
# (sourced, after $rcmd is set). It makes a temp dir with a fresh PKI ($tmp,
# $tmp/certs), removed at exit, and stops at exit every process whose pid is
# in $pids: nothing else. A script that makes a user names it in $made_user,
# and it is removed at exit too.

tmp=$(mktemp -d "/tmp/rcmd-bench-$(basename "$0" .sh).XXXXXX")
pids=()
bench_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${made_user:-}" ]; then userdel "$made_user" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap bench_cleanup EXIT

say() { printf '%s\n' "$*"; }
# The value of NAME=... in a loadgen/h2flood line.
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
# Median and min-max of numbers, one a line.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# The median of per-round ratios of two files of one figure a round each:
# each pair ran back to back, so it sees the same machine. A third argument
# asks for that many decimals (2 by default).
paired() { paste "$1" "$2" | awk '{ print $1 / $2 }' | median | awk -v d="${3:-2}" '{ printf "%." d "f", $1 }'; }
# MiB of a process's VmRSS or VmHWM (its peak).
mib() { awk -v k="$2" '$1 == k":" { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }

"$rcmd" pki init --dir "$tmp/certs" --client bench >/dev/null
client_dir() { # a fresh client identity, so that its job ids start at 1
  "$rcmd" pki client "$1" --dir "$tmp/certs" >/dev/null
  echo "$tmp/certs/$1"
}

# start BINARY DATADIR [FLAGS...]: a server on a free loopback port; sets
# server_pid, addr and server_out (the file of its stdout).
server_pid=
addr=
server_out=
start() {
  local out
  out=$(mktemp "$tmp/serve.XXXXXX")
  server_out=$out
  RUST_LOG=warn "$1" serve --certs "$tmp/certs" --listen 127.0.0.1:0 --data-dir "$2" \
    --max-running 5000 --max-jobs 1000000 "${@:3}" >"$out" 2>"$out.err" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 300); do
    addr=$(sed -n 's/^rcmd listening on \([^ ]*\).*/\1/p' "$out")
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  say "server did not start: $(cat "$out.err")"
  exit 1
}
stop() { kill -TERM "$server_pid"; wait "$server_pid" || true; }
