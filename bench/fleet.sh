#!/usr/bin/env bash
# Fan-out: `rcmd @INVENTORY run hostname` on N rcmd servers, one process
# each on its own loopback address (127.0.0.2, .3, ...), against
# parallel-ssh (pssh) and `pdsh -R ssh` on N sshd instances on the same
# addresses, and against a shell loop of single-host `rcmd run`, all in
# the same rounds; then the client's peak RSS with 1 host and with the most.
#
#   bench/fleet.sh                   N = 1, 10, 50; 4 rounds of 3 runs (about 4 minutes)
#   bench/fleet.sh --quick           N = 1, 3; 2 runs (CI runs it via bench/run.sh)
#   bench/fleet.sh --baseline PATH   also the rcmd binary PATH as the client,
#                                    alternating with this tree's round by round
#
# Then bulk output: every one of 10 hosts (3 when quick) prints 32 MiB
# (8 MiB) of 100-byte lines; the fan-out's throughput into /dev/null, and
# the client's peak RSS behind a slow reader, for each binary, once a round.
#
# pssh, pdsh and openssh-server are installed with apt if missing. Every
# process it starts is stopped by pid; as root, ssh logs in as a throwaway
# user whose shell is /bin/sh (root's profile here is slow), removed after.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "quick baseline" "$@"
if [ "$quick" = 1 ]; then
  sizes="1 3"; rounds=1; runs=2; bulk_n=3; bulk_mib=8
else
  sizes="1 10 50"; rounds=4; runs=3; bulk_n=10; bulk_mib=32
fi
most=${sizes##* }
bench_build
need parallel-ssh=pssh pdsh=pdsh

lat() { "$load" latency "$runs" sh -c "$1 >/dev/null 2>&1" | field median; }
# Peak RSS (KiB) of a command, as its parent sees it.
peak_kib() {
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}

# --- sshd and rcmd serve on each address -----------------------------------
ssh_init
ssh_args="${ssh_opts[*]}" # for pssh's -x and PDSH_SSH_ARGS: one string
: >"$tmp/addrs"
for i in $(seq 2 $((most + 1))); do
  ip=127.0.0.$i
  sshd_start "$ip"
  "$rcmd" pki server "h$i" --san "$ip" --dir "$certs" >/dev/null
  server_launch env RUST_LOG=warn "$rcmd" serve --certs "$certs/servers/h$i" --listen "$ip:0" --data-dir "$tmp/data-$i"
  echo "h$i $addr" >>"$tmp/addrs"
done

# inventory N: the first N hosts, for rcmd (TOML), pssh (host:port) and pdsh.
inventory() {
  head -n "$1" "$tmp/addrs" | awk '{ printf "[hosts.%s]\naddr = \"%s\"\n\n", $1, $2 }' >"$tmp/inv-$1.toml"
  head -n "$1" "$tmp/addrs" | awk -v p="$ssh_port" '{ split($2, a, ":"); print a[1] ":" p }' >"$tmp/pssh-$1"
  head -n "$1" "$tmp/addrs" | awk '{ split($2, a, ":"); print a[1] }' >"$tmp/hosts-$1"
  echo "$tmp/inv-$1.toml"
}

say "# fleet: run hostname on N hosts (rcmd servers and sshd instances, one per loopback address), median ms of $rounds rounds of $runs, $(nproc) cores$([ "$quick" = 1 ] && echo ', QUICK MODE')"
for n in $sizes; do
  inv=$(inventory "$n")
  for round in $(seq "$rounds"); do
    record "loop$n" ref "$(lat "head -n $n '$tmp/addrs' | while read -r _ a; do '$rcmd' '$certs' \"\$a\" run -n hostname; done")"
    record "pssh$n" ref "$(lat "parallel-ssh -h '$tmp/pssh-$n' -l '$ssh_user' -p 64 -t 0 -x '$ssh_args' hostname")"
    record "pdsh$n" ref "$(lat "PDSH_SSH_ARGS='-p $ssh_port $ssh_args -l%u %h' pdsh -R ssh -l '$ssh_user' -f 64 -w ^'$tmp/hosts-$n' hostname")"
    for which in $(round_order "$round"); do
      record "rcmd$n" "$which" "$(lat "'$(bin_of "$which")' '$certs' @'$inv' --fanout 64 run hostname")"
    done
  done
  r=$(value "rcmd$n" now) p=$(value "pssh$n" ref) d=$(value "pdsh$n" ref)
  say "fleet. $n hosts: rcmd $(figure "rcmd$n") || rcmd one host at a time (shell loop) $(value "loop$n" ref) | pssh $p | pdsh -R ssh $d | pssh/rcmd $(ratio "$p" "$r") | pdsh/rcmd $(ratio "$d" "$r") | rcmd vs its 1-host run $(ratio "$r" "$(value rcmd1 now)")"
done

# Client memory: peak RSS of one fleet run on 1 host and on the most.
one_kib=$(peak_kib "$rcmd" "$certs" @"$tmp/inv-1.toml" run hostname)
most_kib=$(peak_kib "$rcmd" "$certs" @"$tmp/inv-$most.toml" --fanout 64 run hostname)
say "fleet. client peak RSS: 1 host $one_kib KiB | $most hosts $most_kib KiB | difference $(( (most_kib - one_kib) / 1024 )) MiB"

# --- Bulk output ------------------------------------------------------------
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
for round in $(seq "$rounds"); do
  for which in $(round_order "$round"); do
    record bulk-rate "$which" "$(bulk_rate "$(bin_of "$which")")"
    record bulk-rss "$which" "$(slow_peak_mib "$(bin_of "$which")")"
  done
done
say "fleet. bulk, $bulk_n hosts x $bulk_mib MiB of 100-byte lines: MiB/s into /dev/null $(figure bulk-rate) || peak RSS behind a slow reader, MiB $(figure bulk-rss)"
