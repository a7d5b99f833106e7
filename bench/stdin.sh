#!/usr/bin/env bash
# Job stdin and `run` in pipelines: 1 GiB through `rcmd run`'s stdin into
# three commands against ssh into the same, `run true` with and without
# stdin, and a pipeline whose reader goes away (`run yes | head -1`), on
# real servers on loopback and an OpenSSH server on a loopback port
# (openssh-server is installed with apt if missing).
#
#   bench/stdin.sh                   4 rounds (a few minutes)
#   bench/stdin.sh --quick           16 MiB, one round (CI runs it via bench/run.sh)
#   bench/stdin.sh --baseline PATH   also the rcmd binary PATH, alternating
#                                    with this tree's round by round
#
# Every process it starts is stopped by pid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "quick baseline" "$@"
if [ "$quick" = 1 ]; then
  rounds=1; runs=3; big_runs=1; big=$((16 << 20))
else
  rounds=4; runs=8; big_runs=1; big=$((1 << 30))
fi
bench_build

ssh_init
sshd_start
ssh_to="ssh ${ssh_opts[*]} -p $ssh_port -l $ssh_user 127.0.0.1"
gib=$(awk -v b="$big" 'BEGIN { print b / 1073741824 }')
jobs=(cat "sh -c 'cat > /dev/null'" sha256sum)
lat() { "$load" latency "$@" | field median; }
# into PIPELINE: GiB/s of a shell pipeline fed $big zero bytes, its median time.
into() {
  awk -v g="$gib" -v ms="$(lat "$big_runs" sh -c "head -c $big /dev/zero | $1")" 'BEGIN { printf "%.2f", g / (ms / 1000) }'
}
c=$(client_dir stdin)

for round in $(seq "$rounds"); do
  for i in "${!jobs[@]}"; do record "ssh$i" ref "$(into "$ssh_to \"${jobs[$i]}\" > /dev/null")"; done
  record sha256sum ref "$(into "sha256sum > /dev/null")"
  for which in $(round_order "$round"); do
    bin=$(bin_of "$which")
    server_start "$bin" "$tmp/data-$which-$round"
    for i in "${!jobs[@]}"; do record "rcmd$i" "$which" "$(into "'$bin' '$c' '$addr' run --rm ${jobs[$i]} > /dev/null")"; done
    # `run true`: without stdin (what bench/run.sh's section 1 measures), and
    # with an empty pipe for stdin, which costs the upload.
    record true-null "$which" "$(lat "$runs" "$bin" "$c" "$addr" run true)"
    record true-n "$which" "$(lat "$runs" "$bin" "$c" "$addr" run -n true)"
    record true-pipe "$which" "$(lat "$runs" sh -c ": | '$bin' '$c' '$addr' run true")"
    # A pipeline's reader that goes away: `run` must stop the job and leave.
    record yes-head "$which" "$(lat "$runs" bash -c "'$bin' '$c' '$addr' run yes | head -1 > /dev/null")"
    record peak "$which" "$(mib "$server_pid" VmHWM)"
    server_stop
  done
done

for i in "${!jobs[@]}"; do
  say "8. stdin, $gib GiB into ${jobs[$i]}, GiB/s ($rounds rounds): rcmd run $(figure "rcmd$i") || ssh $(value "ssh$i" ref) | rcmd/ssh $(ratio "$(value "rcmd$i" now)" "$(value "ssh$i" ref)")"
done
say "8. local sha256sum of the same, GiB/s: $(value sha256sum ref)"
say "8. run true, ms: stdin /dev/null $(figure true-null) || run -n $(figure true-n) || stdin an empty pipe $(figure true-pipe)"
say "8. run yes | head -1, ms: $(figure yes-head)"
say "8. server peak RSS after it all, MiB: $(figure peak)"
