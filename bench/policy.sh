# The cost of a policy (issue 12): status queries and `run true` against a
# server with no policy and one with a 100-client policy, in the same run,
# alternating the two so that drift on a noisy machine hits both alike.
#
# Sourced by bench/run.sh (it uses its helpers: start_server, stop_server,
# client_dir, say, field, median_of, ratio, and $load, $rcmd, $tmp, $quick).

pol_rounds=$([ "$quick" = 1 ] && echo 1 || echo 5)
pol_jobs=$([ "$quick" = 1 ] && echo 20 || echo 200)

# 99 clients that never connect, and the one that measures, whose jobs run
# as this user and may run only `true`: every request is judged by it.
pol_file=$tmp/policy.toml
: >"$pol_file"
for i in $(seq -w 1 99); do
  printf '[clients.pol-%s]\nrun_as = "%s"\nallow_root = true\n\n' "$i" "$(id -un)" >>"$pol_file"
done
printf '[clients.polbench]\nrun_as = "%s"\nallow_root = true\ncommands = ["/bin/true", "/usr/bin/true"]\n' \
  "$(id -un)" >>"$pol_file"
pol_client=$(client_dir polbench)

pol_status=(); pol_run=(); open_status=(); open_run=()
for round in $(seq "$pol_rounds"); do
  for mode in open policy; do
    if [ $mode = policy ]; then
      start_server "policy-$round" --policy "$pol_file"
    else
      start_server "open-$round"
    fi
    "$load" fill "$pol_client" "$addr" "$pol_jobs" true >/dev/null
    rps=$("$load" status "$pol_client" "$addr" 8 "$secs" "$pol_jobs" | field per_second)
    ms=$("$load" latency "$runs" "$rcmd" "$pol_client" "$addr" run true | median_of)
    stop_server
    if [ $mode = policy ]; then pol_status+=("$rps"); pol_run+=("$ms"); else open_status+=("$rps"); open_run+=("$ms"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
s_open=$(median "${open_status[@]}"); s_pol=$(median "${pol_status[@]}")
r_open=$(median "${open_run[@]}"); r_pol=$(median "${pol_run[@]}")
say "9. policy cost ($pol_rounds rounds, medians): status req/s no policy $s_open | 100-client policy $s_pol | ratio $(ratio "$s_pol" "$s_open"); run true ms no policy $r_open | policy $r_pol | ratio $(ratio "$r_pol" "$r_open")"
