#!/usr/bin/env bash
# Benchmarks rcmd against ssh and the machine's own limits, side by side in
# one run (these machines are noisy: only ratios from the same run count).
#
#   bench/run.sh           full run (about 10 minutes), results on stdout
#   bench/run.sh --quick   tiny sizes: proves the harness works (CI runs it)
#
# It sets up everything itself in a temp dir: a fresh PKI, rcmd servers on
# loopback, and an OpenSSH server on a loopback port with its own config and
# keys (openssh-server is installed with apt if missing). It stops every
# process it started, by pid. Each figure is a median with its spread.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ $quick = 1 ]; then
  runs=3; secs=0.5; big=$((16 << 20)); sizes="100"; many=200; sleepers=50; stamps=20
else
  runs=30; secs=5; big=$((1 << 30)); sizes="100 1000 10000"; many=10000; sleepers=1000; stamps=200
fi

cargo build --release -q --bin rcmd --example loadgen
rcmd=$PWD/target/release/rcmd
load=$PWD/target/release/examples/loadgen

tmp=$(mktemp -d /tmp/rcmd-bench.XXXXXX)
pids=()
ssh_user=$(id -un)
made_user=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$made_user" ] && userdel "$made_user" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

say() { printf '%s\n' "$*"; }
median_of() { sed -n 's/.* median=\([0-9.]*\).*/\1/p'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

say "# rcmd benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r)$([ $quick = 1 ] && echo ', QUICK MODE')"

"$rcmd" pki init --dir "$tmp/certs" --client bench >/dev/null
certs=$tmp/certs
client_dir() { # a fresh client identity, so that its job ids start at 1
  "$rcmd" pki client "$1" --dir "$certs" >/dev/null
  echo "$certs/$1"
}

server_pid=
addr=
start_server() { # NAME [EXTRA SERVE ARGS...]
  local out=$tmp/serve-$1.out
  : >"$out" # before the server writes it: the loop below reads it at once
  RUST_LOG=warn "$rcmd" serve --certs "$certs" --listen 127.0.0.1:0 --data-dir "$tmp/data-$1" \
    --max-running 5000 --max-jobs 50000 "${@:2}" >"$out" 2>"$tmp/serve-$1.err" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    addr=$(sed -n 's/^rcmd listening on \([^ ]*\).*/\1/p' "$out")
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  say "server did not start: $(cat "$tmp/serve-$1.err")"; exit 1
}
stop_server() { kill -TERM "$server_pid"; wait "$server_pid" || true; }

# --- OpenSSH on loopback -------------------------------------------------
if ! [ -x /usr/sbin/sshd ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi
ssh_port=$(free_port)
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/user_key"
cp "$tmp/user_key.pub" "$tmp/authorized_keys"
cat >"$tmp/sshd_config" <<CONF
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $tmp/sshd.pid
CONF
# ssh runs commands through the login shell, and root's .bashrc on these
# machines is slow (pyenv init): as root, log in as a throwaway user whose
# shell is /bin/sh, so that the baseline measures ssh, not a shell profile.
if [ "$(id -u)" = 0 ]; then
  ssh_user=rcmd-bench-$$
  useradd --no-create-home --home-dir "$tmp" --shell /bin/sh --password "*" "$ssh_user"
  made_user=$ssh_user
  # sshd reads authorized_keys as that user; everything else stays private.
  chmod 711 "$tmp"
  chmod 644 "$tmp/authorized_keys"
fi
mkdir -p /run/sshd
/usr/sbin/sshd -D -f "$tmp/sshd_config" -E "$tmp/sshd.log" &
pids+=($!)
ssh_opts=(-p "$ssh_port" -l "$ssh_user" -i "$tmp/user_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o BatchMode=yes)
for _ in $(seq 50); do ssh "${ssh_opts[@]}" 127.0.0.1 true 2>/dev/null && break; sleep 0.1; done
ssh "${ssh_opts[@]}" -o ControlMaster=yes -o ControlPath="$tmp/cm" -o ControlPersist=600 -f -N 127.0.0.1
cm_opts=("${ssh_opts[@]}" -o ControlPath="$tmp/cm")

# --- 1. One remote command ----------------------------------------------------
start_server main
c=$(client_dir latency)
r=$("$load" latency "$runs" "$rcmd" "$c" "$addr" run true | median_of)
s=$("$load" latency "$runs" ssh "${ssh_opts[@]}" 127.0.0.1 true | median_of)
m=$("$load" latency "$runs" ssh "${cm_opts[@]}" 127.0.0.1 true | median_of)
say "1. one remote command (median ms of $runs): rcmd run true $r | ssh fresh $s | ssh ControlMaster $m | rcmd/ssh-fresh $(ratio "$r" "$s") | rcmd/ssh-CM $(ratio "$r" "$m")"

# --- 2. Job throughput ----------------------------------------------------------
for n in 1 8 64; do
  c=$(client_dir "throughput$n")
  p=$("$load" throughput "$c" "$addr" "$n" "$secs" | field per_second)
  b=$("$load" spawn "$n" "$secs" | field per_second)
  say "2. job throughput, $n clients (jobs/s): rcmd $p | raw spawn+wait $b | ratio $(ratio "$p" "$b")"
done

# --- 3. Status queries with 1,000 jobs ---------------------------------------
c=$(client_dir status)
"$load" fill "$c" "$addr" 1000 /bin/true >/dev/null
out=$("$load" status "$c" "$addr" 8 "$secs" 1000)
say "3. status queries, 8 clients, 1000 jobs: $(echo "$out" | field per_second) req/s, p50 $(echo "$out" | field median) ms, p99 $(echo "$out" | field p99) ms"

# --- 4. Output: 1 GiB through the CLI vs ssh vs a local pipe -----------------
c=$(client_dir output)
id=$("$rcmd" "$c" "$addr" exec head -c "$big" /dev/zero)
"$rcmd" "$c" "$addr" wait "$id" >/dev/null
out_runs=$([ $quick = 1 ] && echo 2 || echo 5)
r=$("$load" latency "$out_runs" sh -c "'$rcmd' '$c' '$addr' output $id > /dev/null" | median_of)
# Spool files are page cache over disk: keep only one job's output at a time,
# as ext4 throttles writers once several GiB are dirty.
"$rcmd" "$c" "$addr" delete "$id"
f=$("$load" latency "$out_runs" sh -c "'$rcmd' '$c' '$addr' run --rm head -c $big /dev/zero > /dev/null" | median_of)
s=$("$load" latency "$out_runs" sh -c "ssh ${ssh_opts[*]} 127.0.0.1 'head -c $big /dev/zero' > /dev/null" | median_of)
l=$("$load" latency "$out_runs" sh -c "head -c $big /dev/zero | cat > /dev/null" | median_of)
gib=$(awk -v b="$big" 'BEGIN { print b / 1073741824 }')
rate() { awk -v g="$gib" -v ms="$1" 'BEGIN { printf "%.2f", g / (ms / 1000) }'; }
say "4. output of $gib GiB (GiB/s): rcmd output $(rate "$r") | rcmd run (live follow) $(rate "$f") | ssh $(rate "$s") | local pipe $(rate "$l") | rcmd/ssh $(ratio "$s" "$r") | follow/ssh $(ratio "$s" "$f")"
say "4. server peak RSS after it: $(( $(kib "$server_pid" VmHWM) / 1024 )) MiB"

# --- Follow latency (issue 5) -------------------------------------------------
c=$(client_dir follow)
out=$("$rcmd" "$c" "$addr" run sh -c "i=0; while [ \$i -lt $stamps ]; do date +%s%N; i=\$((i+1)); sleep 0.02; done" | "$load" stamps)
say "5. follow latency, job line -> CLI stdout (ms): median $(echo "$out" | field median), p99 $(echo "$out" | field p99)"
stop_server

# --- 5. Memory ----------------------------------------------------------------
start_server memory
say "6. idle RSS: $(( $(kib "$server_pid" VmRSS) / 1024 )) MiB"
c=$(client_dir sleepers)
"$load" fill "$c" "$addr" "$sleepers" sleep 1000 >/dev/null
say "6. RSS with $sleepers running sleep jobs: $(( $(kib "$server_pid" VmRSS) / 1024 )) MiB"
stop_server
start_server finished
c=$(client_dir finished)
"$load" fill "$c" "$addr" "$many" /bin/true >/dev/null
say "6. RSS after $many finished jobs: $(( $(kib "$server_pid" VmRSS) / 1024 )) MiB"
stop_server

# --- 6. Scale of cost: 100 -> 10,000 jobs -------------------------------------
for n in $sizes; do
  start_server "scale$n"
  c=$(client_dir "scale$n")
  "$rcmd" "$c" "$addr" run true >/dev/null
  before=$(kib "$server_pid" VmRSS)
  "$load" fill "$c" "$addr" "$n" /bin/true >/dev/null
  after=$(kib "$server_pid" VmRSS)
  out=$("$load" status "$c" "$addr" 8 "$secs" "$n")
  per_job=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.2f", (a - b) / n }')
  say "7. $n jobs: status p50 $(echo "$out" | field median) ms, p99 $(echo "$out" | field p99) ms, $(echo "$out" | field per_second) req/s; $per_job KiB per job"
  stop_server
done

source bench/policy.sh

bash bench/ops.sh $([ $quick = 1 ] && echo --quick)

# --- 8. Stdin and pipelines -----------------------------------------------------
source bench/stdin.sh

ssh "${cm_opts[@]}" -O exit 127.0.0.1 2>/dev/null || true
bash bench/contain.sh $([ $quick = 1 ] && echo --quick)
RCMD_BASELINE=${RCMD_STATE_BASELINE:-} bash bench/state.sh $([ $quick = 1 ] && echo --quick)
RCMD_BASELINE=${RCMD_CONN_BASELINE:-} bash bench/conn.sh $([ $quick = 1 ] && echo --quick)
bash bench/fleet.sh $([ $quick = 1 ] && echo --quick)
say "done"
