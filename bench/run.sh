#!/usr/bin/env bash
# Benchmarks rcmd against ssh and the machine's own limits, side by side in
# one run (these machines are noisy: only ratios from the same run count),
# then runs every other script of bench/ but tls-scan.sh with the same flags
# (RCMD_BENCH_OTHERS="" runs none of them; or name the ones to run).
#
#   bench/run.sh                   full run (about 15 minutes, 30 with a baseline), results on stdout
#   bench/run.sh --quick           tiny sizes: proves the harness works (CI runs it)
#   bench/run.sh --baseline PATH   also measures the rcmd binary PATH (one built
#                                  before a change; or RCMD_BASELINE=PATH),
#                                  alternating it with this tree's round by
#                                  round: each figure for both, and their ratio
#
# Sections 1-7 here: one remote command, job throughput, status queries,
# 1 GiB of output, follow latency, memory, scale. Each figure is the median
# over rounds, with its spread; ssh, raw spawn+wait and a local pipe are
# measured in the same rounds. It sets up everything itself in a temp dir (a
# fresh PKI, rcmd servers on loopback, an OpenSSH server on a loopback port
# with its own config and keys; openssh-server is installed with apt if
# missing) and stops every process it started, by pid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "quick baseline" "$@"

if [ "$quick" = 1 ]; then
  rounds=1; runs=3; secs=0.5; out_runs=1; big=$((16 << 20)); sizes="100"; many=200; sleepers=50; stamps=20
else
  rounds=4; runs=8; secs=2; out_runs=2; big=$((1 << 30)); sizes="100 1000 10000"; many=10000; sleepers=1000; stamps=200
fi

bench_build h2flood spawn_rss
export RCMD_BENCH_PREBUILT=1 # for the scripts run below

say "# rcmd benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r)$([ "$quick" = 1 ] && echo ', QUICK MODE')"
[ -n "$baseline" ] && say "# now: $rcmd | base: $baseline | $rounds rounds, the order of the two reversed every other round"

ssh_init
sshd_start
ssh_master
ssh_to=(ssh "${ssh_opts[@]}" -p "$ssh_port" -l "$ssh_user" 127.0.0.1)
gib=$(awk -v b="$big" 'BEGIN { print b / 1073741824 }')
# lat RUNS COMMAND...: the median ms of RUNS runs of COMMAND.
lat() { "$load" latency "$@" | field median; }
# gibps RUNS COMMAND...: GiB/s of COMMAND that moves $big bytes, its median time.
gibps() { awk -v g="$gib" -v ms="$(lat "$@")" 'BEGIN { printf "%.2f", g / (ms / 1000) }'; }

# The machine's own figures, once a round: what rcmd is compared with.
machine_round() {
  record ssh_fresh ref "$(lat "$runs" "${ssh_to[@]}" true)"
  record ssh_cm ref "$(lat "$runs" ssh "${cm_opts[@]}" 127.0.0.1 true)"
  local n
  for n in 1 8 64; do record "raw$n" ref "$("$load" spawn "$n" "$secs" | field per_second)"; done
  record ssh_output ref "$(gibps "$out_runs" sh -c "${ssh_to[*]} 'head -c $big /dev/zero' > /dev/null")"
  record pipe_output ref "$(gibps "$out_runs" sh -c "head -c $big /dev/zero | cat > /dev/null")"
}

# binary_round LABEL: sections 1-7 for one binary, on its own servers.
binary_round() {
  local which=$1 bin data=$tmp/data-$1-$round c id out n before after
  bin=$(bin_of "$which")
  server_start "$bin" "$data-main"
  # 1. One remote command.
  c=$certs/latency
  record run_true "$which" "$(lat "$runs" "$bin" "$c" "$addr" run true)"
  # 2. Job throughput.
  for n in 1 8 64; do
    c=$certs/throughput$n
    record "jobs$n" "$which" "$("$load" throughput "$c" "$addr" "$n" "$secs" | field per_second)"
  done
  # 3. Status queries with 1,000 jobs.
  c=$certs/status
  "$load" fill "$c" "$addr" 1000 /bin/true >/dev/null
  out=$("$load" status "$c" "$addr" 8 "$secs" 1000)
  record status_rate "$which" "$(echo "$out" | field per_second)"
  record status_p50 "$which" "$(echo "$out" | field median)"
  record status_p99 "$which" "$(echo "$out" | field p99)"
  # 4. Output through the CLI. Spool files are page cache over disk: keep
  # only one job's output at a time, as ext4 throttles writers once several
  # GiB are dirty.
  c=$certs/output
  id=$("$bin" "$c" "$addr" exec head -c "$big" /dev/zero)
  "$bin" "$c" "$addr" wait "$id" >/dev/null
  record output "$which" "$(gibps "$out_runs" sh -c "'$bin' '$c' '$addr' output $id > /dev/null")"
  "$bin" "$c" "$addr" delete "$id"
  record follow_output "$which" "$(gibps "$out_runs" sh -c "'$bin' '$c' '$addr' run --rm head -c $big /dev/zero > /dev/null")"
  record output_peak "$which" "$(mib "$server_pid" VmHWM)"
  # 5. Follow latency: a job line's delay until the CLI prints it.
  c=$certs/follow
  out=$("$bin" "$c" "$addr" run sh -c "i=0; while [ \$i -lt $stamps ]; do date +%s%N; i=\$((i+1)); sleep 0.02; done" | "$load" stamps)
  record follow_p50 "$which" "$(echo "$out" | field median)"
  record follow_p99 "$which" "$(echo "$out" | field p99)"
  server_stop
  # 6. Memory.
  server_start "$bin" "$data-memory"
  record idle_rss "$which" "$(mib "$server_pid" VmRSS)"
  c=$certs/sleepers
  "$load" fill "$c" "$addr" "$sleepers" sleep 1000 >/dev/null
  record sleepers_rss "$which" "$(mib "$server_pid" VmRSS)"
  server_stop
  server_start "$bin" "$data-finished"
  c=$certs/finished
  "$load" fill "$c" "$addr" "$many" /bin/true >/dev/null
  record finished_rss "$which" "$(mib "$server_pid" VmRSS)"
  server_stop
  # 7. Scale of cost.
  for n in $sizes; do
    server_start "$bin" "$data-scale$n"
    c=$certs/scale$n
    "$bin" "$c" "$addr" run true >/dev/null
    before=$(mib "$server_pid" VmRSS)
    "$load" fill "$c" "$addr" "$n" /bin/true >/dev/null
    after=$(mib "$server_pid" VmRSS)
    out=$("$load" status "$c" "$addr" 8 "$secs" "$n")
    record "scale${n}_p50" "$which" "$(echo "$out" | field median)"
    record "scale${n}_p99" "$which" "$(echo "$out" | field p99)"
    record "scale${n}_rate" "$which" "$(echo "$out" | field per_second)"
    record "scale${n}_kib" "$which" "$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.2f", (a - b) * 1024 / n }')"
    server_stop
  done
}

# Each server has its own data dir, so these identities' job ids start at 1 on each.
for name in latency throughput1 throughput8 throughput64 status output follow sleepers finished; do
  client_dir "$name" >/dev/null
done
for n in $sizes; do client_dir "scale$n" >/dev/null; done
for round in $(seq "$rounds"); do
  machine_round
  for which in $(round_order "$round"); do binary_round "$which"; done
done
of=" (median of $rounds rounds)"
say "1. one remote command, ms$of: rcmd run true $(figure run_true)"
say "1. the same with ssh, ms: fresh $(value ssh_fresh ref) | ControlMaster $(value ssh_cm ref) | rcmd/ssh-fresh $(ratio "$(value run_true now)" "$(value ssh_fresh ref)") | rcmd/ssh-CM $(ratio "$(value run_true now)" "$(value ssh_cm ref)")"
for n in 1 8 64; do
  say "2. job throughput, $n clients, jobs/s$of: rcmd $(figure "jobs$n") | raw spawn+wait $(value "raw$n" ref) | rcmd/raw $(ratio "$(value "jobs$n" now)" "$(value "raw$n" ref)")"
done
say "3. status queries, 8 clients, 1000 jobs$of: req/s $(figure status_rate) || p50 ms $(figure status_p50) || p99 ms $(figure status_p99)"
say "4. output of $gib GiB, GiB/s$of: rcmd output $(figure output) || rcmd run (live follow) $(figure follow_output)"
say "4. the same with ssh $(value ssh_output ref) | local pipe $(value pipe_output ref) | rcmd/ssh $(ratio "$(value output now)" "$(value ssh_output ref)") | follow/ssh $(ratio "$(value follow_output now)" "$(value ssh_output ref)")"
say "4. server peak RSS after it, MiB: $(figure output_peak)"
say "5. follow latency, job line -> CLI stdout, ms: median $(figure follow_p50) || p99 $(figure follow_p99)"
say "6. idle RSS, MiB: $(figure idle_rss)"
say "6. RSS with $sleepers running sleep jobs, MiB: $(figure sleepers_rss)"
say "6. RSS after $many finished jobs, MiB: $(figure finished_rss)"
for n in $sizes; do
  say "7. $n jobs: status p50 ms $(figure "scale${n}_p50") || p99 ms $(figure "scale${n}_p99") || req/s $(figure "scale${n}_rate") || KiB per job $(figure "scale${n}_kib")"
done

# --- The other scripts, each on its own -------------------------------------
stop_started
flags=()
[ "$quick" = 1 ] && flags+=(--quick)
[ -n "$baseline" ] && flags+=(--baseline "$baseline")
# RCMD_BENCH_OTHERS="" runs sections 1-7 alone (or names the scripts to run).
# shellcheck disable=SC2086 # the list is split into names on purpose
for script in ${RCMD_BENCH_OTHERS-policy ops stdin contain state conn fleet}; do
  bash "bench/$script.sh" "${flags[@]}"
done
say "done"
