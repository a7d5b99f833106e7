# Job stdin and `run` in pipelines (issue 15). Sourced by bench/run.sh, whose
# pieces it uses: $rcmd, $load, start_server/stop_server, client_dir,
# ssh_opts, median_of, ratio, $quick, $big, $runs.
#
#   RCMD_BASELINE=/path/to/older/rcmd bash bench/run.sh
#
# also times `run true` with that binary, interleaved with this one, against
# the same server: the "no slower than before" comparison of the same run.

start_server stdin
c=$(client_dir stdin)
sin_runs=$([ $quick = 1 ] && echo 2 || echo 5)
sin_gib=$(awk -v b="$big" 'BEGIN { print b / 1073741824 }')
sin_rate() { awk -v g="$sin_gib" -v ms="$1" 'BEGIN { printf "%.2f", g / (ms / 1000) }'; }
# Wall time of a shell pipeline fed $big zero bytes, median of $sin_runs.
sin_time() { "$load" latency "$sin_runs" sh -c "head -c $big /dev/zero | $1" | median_of; }

for job in cat "sh -c 'cat > /dev/null'" sha256sum; do
  r=$(sin_time "'$rcmd' '$c' '$addr' run --rm $job > /dev/null")
  s=$(sin_time "ssh ${ssh_opts[*]} 127.0.0.1 \"$job\" > /dev/null")
  say "8. stdin, $sin_gib GiB into $job (GiB/s): rcmd run $(sin_rate "$r") | ssh $(sin_rate "$s") | rcmd/ssh $(ratio "$s" "$r")"
done
l=$(sin_time "sha256sum > /dev/null")
say "8. local sha256sum of the same (GiB/s): $(sin_rate "$l")"

# `run true`: without stdin (what section 1 measures), and with an empty pipe
# for stdin, which costs the upload.
lat() { "$load" latency "$runs" "$@" | median_of; }
say "8. run true (median ms of $runs): stdin /dev/null $(lat "$rcmd" "$c" "$addr" run true) | run -n $(lat "$rcmd" "$c" "$addr" run -n true) | stdin an empty pipe $(lat sh -c ": | '$rcmd' '$c' '$addr' run true")"
if [ -n "${RCMD_BASELINE:-}" ]; then
  for round in 1 2; do
    b=$(lat "$RCMD_BASELINE" "$c" "$addr" run true)
    n=$(lat "$rcmd" "$c" "$addr" run true)
    say "8. run true, round $round (median ms of $runs): before $b | now $n | now/before $(ratio "$n" "$b")"
  done
fi

# A pipeline's reader that goes away: `run` must stop the job and leave.
h=$("$load" latency "$runs" bash -c "'$rcmd' '$c' '$addr' run yes | head -1 > /dev/null" | median_of)
say "8. run yes | head -1 (median ms of $runs): $h"
say "8. server peak RSS after it all: $(($(kib "$server_pid" VmHWM) / 1024)) MiB"
stop_server
