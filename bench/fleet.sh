#!/usr/bin/env bash
# Fan-out (issue 16): `rcmd @INVENTORY run hostname` on N rcmd servers, one
# process each on its own loopback address (127.0.0.2, .3, ...), against
# parallel-ssh (pssh) and `pdsh -R ssh` on N sshd instances on the same
# addresses, and against a shell loop of single-host `rcmd run`, all in
# the same run; then the client's peak RSS with 1 host and with the most.
#
#   bench/fleet.sh           N = 1, 10, 50; 10 runs each (about 3 minutes)
#   bench/fleet.sh --quick   N = 1, 3; 2 runs (CI runs it via bench/run.sh)
#
# Then bulk output: every one of 10 hosts (3 when quick) prints 32 MiB
# (8 MiB) of 100-byte lines; the fan-out's throughput into /dev/null, and
# the client's peak RSS behind a slow reader. FLEET_BASELINE=BINARY also
# measures another rcmd binary (one built before a change), alternating
# with this one round by round, and gives the median of per-round ratios.
#
# pssh, pdsh and openssh-server are installed with apt if missing. Every
# process it starts is stopped by pid; as root, ssh logs in as a throwaway
# user whose shell is /bin/sh (root's profile here is slow), removed after.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--quick" ]; then sizes="1 3"; runs=2; else sizes="1 10 50"; runs=10; fi
most=${sizes##* }

cargo build --release -q --bin rcmd --example loadgen
rcmd=$PWD/target/release/rcmd
load=$PWD/target/release/examples/loadgen

need=()
command -v parallel-ssh >/dev/null || need+=(pssh)
command -v pdsh >/dev/null || need+=(pdsh)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# $tmp with a fresh PKI, say, ratio, and the pids and user cleanup at exit.
source bench/lib.sh
made_user=
median_of() { sed -n 's/.* median=\([0-9.]*\).*/\1/p'; }
lat() { "$load" latency "$runs" sh -c "$1 >/dev/null 2>&1" | median_of; }
# Peak RSS (KiB) of a command, as its parent sees it.
peak_kib() {
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}

certs=$tmp/certs

# --- sshd and rcmd serve on each address -----------------------------------
ssh_user=$(id -un)
if [ "$(id -u)" = 0 ]; then
  ssh_user=rcmd-bfleet-$$
  useradd --no-create-home --home-dir "$tmp" --shell /bin/sh --password "*" "$ssh_user"
  made_user=$ssh_user
  chmod 711 "$tmp"
fi
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/user_key"
cp "$tmp/user_key.pub" "$tmp/authorized_keys"
chmod 644 "$tmp/authorized_keys"
ssh_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.2", 0)); print(s.getsockname()[1])')
cat >"$tmp/sshd_config" <<CONF
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 200
CONF
mkdir -p /run/sshd
ssh_opts="-i $tmp/user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes"

: >"$tmp/addrs"
for i in $(seq 2 $((most + 1))); do
  ip=127.0.0.$i
  /usr/sbin/sshd -D -f "$tmp/sshd_config" -o ListenAddress="$ip:$ssh_port" -o PidFile="$tmp/sshd-$i.pid" \
    -E "$tmp/sshd-$i.log" &
  pids+=($!)
  "$rcmd" pki server "h$i" --san "$ip" --dir "$certs" >/dev/null
  RUST_LOG=warn "$rcmd" serve --certs "$certs/servers/h$i" --listen "$ip:0" --data-dir "$tmp/data-$i" \
    >"$tmp/serve-$i.out" 2>"$tmp/serve-$i.err" &
  pids+=($!)
done
for i in $(seq 2 $((most + 1))); do
  addr=
  for _ in $(seq 100); do
    addr=$(sed -n 's/^rcmd listening on \([^ ]*\).*/\1/p' "$tmp/serve-$i.out")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { say "server h$i did not start: $(cat "$tmp/serve-$i.err")"; exit 1; }
  echo "h$i $addr" >>"$tmp/addrs"
done
for i in $(seq 2 $((most + 1))); do
  for _ in $(seq 50); do
    # shellcheck disable=SC2086
    ssh $ssh_opts -p "$ssh_port" -l "$ssh_user" "127.0.0.$i" true 2>/dev/null && break
    sleep 0.1
  done
done

# inventory N: the first N hosts, for rcmd (TOML), pssh (host:port) and pdsh.
inventory() {
  head -n "$1" "$tmp/addrs" | awk '{ printf "[hosts.%s]\naddr = \"%s\"\n\n", $1, $2 }' >"$tmp/inv-$1.toml"
  head -n "$1" "$tmp/addrs" | awk -v p="$ssh_port" '{ split($2, a, ":"); print a[1] ":" p }' >"$tmp/pssh-$1"
  head -n "$1" "$tmp/addrs" | awk '{ split($2, a, ":"); print a[1] }' >"$tmp/hosts-$1"
  echo "$tmp/inv-$1.toml"
}

say "# fleet: run hostname on N hosts (rcmd servers and sshd instances, one per loopback address), median ms of $runs, $(nproc) cores$([ "$runs" = 2 ] && echo ', QUICK MODE')"
one=
for n in $sizes; do
  inv=$(inventory "$n")
  r=$(lat "'$rcmd' '$certs' @'$inv' --fanout 64 run hostname")
  [ -z "$one" ] && one=$r
  loop=$(lat "head -n $n '$tmp/addrs' | while read -r _ a; do '$rcmd' '$certs' \"\$a\" run -n hostname; done")
  p=$(lat "parallel-ssh -h '$tmp/pssh-$n' -l '$ssh_user' -p 64 -t 0 -x '$ssh_opts' hostname")
  d=$(lat "PDSH_SSH_ARGS='-p $ssh_port $ssh_opts -l%u %h' pdsh -R ssh -l '$ssh_user' -f 64 -w ^'$tmp/hosts-$n' hostname")
  say "fleet. $n hosts: rcmd $r | rcmd one host at a time (shell loop) $loop | pssh $p | pdsh -R ssh $d | pssh/rcmd $(ratio "$p" "$r") | pdsh/rcmd $(ratio "$d" "$r") | rcmd vs its 1-host run $(ratio "$r" "$one")"
done

# Client memory: peak RSS of one fleet run on 1 host and on the most.
one_kib=$(peak_kib "$rcmd" "$certs" @"$tmp/inv-1.toml" run hostname)
most_kib=$(peak_kib "$rcmd" "$certs" @"$tmp/inv-$most.toml" --fanout 64 run hostname)
say "fleet. client peak RSS: 1 host $one_kib KiB | $most hosts $most_kib KiB | difference $(( (most_kib - one_kib) / 1024 )) MiB"

# --- Bulk output ------------------------------------------------------------
if [ "$runs" = 2 ]; then bulk_n=3; bulk_mib=8; else bulk_n=10; bulk_mib=32; fi
bulk_inv=$(inventory "$bulk_n")
bulk_script="yes \$(printf %099d 0) | head -c $((bulk_mib << 20))"
# MiB/s of one bulk run of binary $1 over all hosts, into /dev/null.
bulk_rate() {
  local t0 t1
  t0=$(date +%s%N)
  "$1" "$certs" @"$bulk_inv" --fanout 64 run --rm -n sh -c "$bulk_script" >/dev/null 2>"$tmp/bulk.err" ||
    { say "bulk run failed: $(cat "$tmp/bulk.err")"; exit 1; }
  t1=$(date +%s%N)
  awk -v b=$((bulk_n * bulk_mib)) -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", b / (ns / 1e9) }'
}
# Peak RSS (MiB) of one bulk run of binary $1 whose stdout is read slowly:
# 64 KiB at a time, 2 ms apart (at most 32 MiB/s), as a slow terminal does.
slow_peak_mib() {
  python3 -c 'import resource, subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
while p.stdout.read1(65536):
    time.sleep(0.002)
assert p.wait() == 0
print("%.1f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))' \
    "$1" "$certs" @"$bulk_inv" --fanout 64 run --rm -n sh -c "$bulk_script"
}
binaries=("$rcmd")
[ -n "${FLEET_BASELINE:-}" ] && binaries+=("$FLEET_BASELINE")
for _ in $(seq "$runs"); do
  for i in "${!binaries[@]}"; do
    bulk_rate "${binaries[$i]}" >>"$tmp/bulk-rate-$i"
    slow_peak_mib "${binaries[$i]}" >>"$tmp/bulk-rss-$i"
  done
done
line="fleet. bulk, $bulk_n hosts x $bulk_mib MiB of 100-byte lines: rcmd $(median <"$tmp/bulk-rate-0") MiB/s into /dev/null, peak RSS behind a slow reader $(median <"$tmp/bulk-rss-0") MiB"
if [ -n "${FLEET_BASELINE:-}" ]; then
  line+=" | baseline $(median <"$tmp/bulk-rate-1") MiB/s, $(median <"$tmp/bulk-rss-1") MiB | rate rcmd/baseline $(paired "$tmp/bulk-rate-0" "$tmp/bulk-rate-1") (median of per-round ratios), RSS rcmd/baseline $(paired "$tmp/bulk-rss-0" "$tmp/bulk-rss-1")"
fi
say "$line"
