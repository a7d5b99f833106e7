#!/usr/bin/env bash
# The cost of a policy: status queries and `run true` against a server with
# no policy and one with a 100-client policy, in the same run, alternating
# the two so that drift on a noisy machine hits both alike.
#
#   bench/policy.sh                   6 rounds (about two minutes)
#   bench/policy.sh --quick           one short round (CI runs it via bench/run.sh)
#   bench/policy.sh --baseline PATH   also the rcmd binary PATH, alternating
#                                     with this tree's round by round
#
# Every process it starts is stopped by pid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "quick baseline" "$@"
if [ "$quick" = 1 ]; then rounds=1; secs=0.5; runs=3; jobs=20; else rounds=6; secs=4; runs=24; jobs=200; fi
bench_build

# 99 clients that never connect, and the one that measures, whose jobs run
# as this user and may run only `true`: every request is judged by it.
policy=$tmp/policy.toml
for i in $(seq -w 1 99); do
  printf '[clients.pol-%s]\nrun_as = "%s"\nallow_root = true\n\n' "$i" "$(id -un)"
done >"$policy"
printf '[clients.polbench]\nrun_as = "%s"\nallow_root = true\ncommands = ["/bin/true", "/usr/bin/true"]\n' \
  "$(id -un)" >>"$policy"
c=$(client_dir polbench)

for round in $(seq "$rounds"); do
  for which in $(round_order "$round"); do
    bin=$(bin_of "$which")
    for mode in open policy; do
      flags=()
      [ $mode = policy ] && flags=(--policy "$policy")
      server_start "$bin" "$tmp/data-$mode-$which-$round" "${flags[@]}"
      "$load" fill "$c" "$addr" "$jobs" true >/dev/null
      record "status-$mode" "$which" "$("$load" status "$c" "$addr" 8 "$secs" "$jobs" | field per_second)"
      record "run-$mode" "$which" "$("$load" latency "$runs" "$bin" "$c" "$addr" run true | field median)"
      server_stop
    done
  done
done
for mode in open policy; do
  say "9. $([ $mode = open ] && echo "no policy" || echo "100-client policy") ($rounds rounds, medians): status req/s $(figure "status-$mode") || run true ms $(figure "run-$mode")"
done
say "9. policy cost: status policy/open $(ratio "$(value status-policy now)" "$(value status-open now)") | run true policy/open $(ratio "$(value run-policy now)" "$(value run-open now)")"
