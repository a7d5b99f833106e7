#!/usr/bin/env bash
# State on disk: what job records in SQLite cost and what they survive,
# measured on real servers on loopback with a fresh PKI.
#
#   bench/state.sh                   full run (a few minutes; 100,000 records)
#   bench/state.sh --quick           small sizes (CI runs it via bench/run.sh)
#   bench/state.sh --baseline PATH   also measures 1. with the rcmd binary PATH,
#                                    alternating rounds with this tree's
#                                    (BENCHMARKS.md's figures: one built from
#                                    d38e3b0, the commit before job records)
#
# 1. jobs/s through the API (1 and 8 clients) and status queries/s of
#    finished jobs, for each binary.
# 2. start-up with N finished job records vs an empty data directory.
# 3. server RSS with N finished jobs: after start-up, after `list` of all.
# 4. kill -9 of the server during 1,000 rapid completions: the database
#    opens, and every job the client saw finished is there with its output.
# 2-4 measure this tree's binary only.
#
# The N records of 2 and 3 are not made by running N jobs (100,000 would
# take minutes): a real server runs 100 `echo` jobs, and their rows and
# spool files are then copied, with new ids, by python3's sqlite3 (the
# columns are read from the database, not written down here). Every
# process it starts is stopped by pid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "quick baseline" "$@"
if [ "$quick" = 1 ]; then
  rounds=1; secs=0.5; records=2000; starts=3
else
  rounds=6; secs=3; records=100000; starts=10
fi
bench_build

say "# state benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores$([ "$quick" = 1 ] && echo ', QUICK MODE')"

# --- 1. Jobs/s through the API, for each binary ---------------------------------
for round in $(seq "$rounds"); do
  for which in $(round_order "$round"); do
    server_start "$(bin_of "$which")" "$tmp/data-tp-$which-$round"
    for n in 1 8; do
      c=$(client_dir "tp-$which-$round-$n")
      record "tp-$n" "$which" "$("$load" throughput "$c" "$addr" "$n" "$secs" | field per_second)"
    done
    # Reading finished jobs (from the records, where a binary has them).
    c=$(client_dir "st-$which-$round")
    "$load" fill "$c" "$addr" 200 true >/dev/null
    record tp-status "$which" "$("$load" status "$c" "$addr" 8 "$secs" 200 | field per_second)"
    server_stop
  done
done
say "14.1 jobs/s, 1 client ($rounds rounds): $(figure tp-1)"
say "14.1 jobs/s, 8 clients: $(figure tp-8)"
say "14.1 status queries/s of finished jobs, 8 clients: $(figure tp-status)"

# --- 2. Start-up with N finished job records -----------------------------------
# 100 real jobs, then copies of their rows and files up to N.
full=$tmp/data-full
server_start "$rcmd" "$full"
c=$(client_dir records)
"$load" fill "$c" "$addr" 100 echo rcmd-record >/dev/null
server_stop
python3 - "$full" "$records" 100 <<'PY'
import os, sqlite3, sys
data, total, template = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(os.path.join(data, "jobs.db"))
columns = [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
select = ", ".join("id + ?" if c == "id" else c for c in columns)
(client,) = db.execute("SELECT DISTINCT client FROM jobs").fetchone()
folder = os.path.join(data, "output", client.encode().hex())
files = {n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder)}
with db:
    for k in range(1, total // template):
        db.execute(f"INSERT INTO jobs ({', '.join(columns)}) SELECT {select} FROM jobs WHERE id <= ?",
                   (k * template, template))
        for name, body in files.items():
            job, stream = name.split(".")
            fd = os.open(os.path.join(folder, f"{int(job) + k * template}.{stream}"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            os.write(fd, body)
            os.close(fd)
(count,) = db.execute("SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL").fetchone()
db.close()
assert count == total, f"{count} finished records, not {total}"
PY
say "14.2 $records finished job records made: 100 real 'echo' jobs, their rows and spool files copied with new ids"

# startup BINARY DATADIR: ms from exec to the listening line, and to the first
# answered `status 1` (the CLI's own start included).
startup() {
  python3 - "$@" "$certs" "$c" "$rcmd" <<'PY'
import subprocess, sys, time
binary, data, certs, client, cli = sys.argv[1:]
t0 = time.monotonic()
server = subprocess.Popen([binary, "serve", "--certs", certs, "--listen", "127.0.0.1:0", "--data-dir", data,
                           "--max-jobs", "1000000"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    for line in server.stdout:
        if line.startswith("rcmd listening on "):
            addr = line.split()[3]
            break
    listening = time.monotonic()
    while subprocess.run([cli, client, addr, "status", "1"], capture_output=True).returncode != 0:
        if time.monotonic() - t0 > 60:
            sys.exit("no answer within 60 s")
    answered = time.monotonic()
    print(f"startup listen_ms={(listening - t0) * 1000:.1f} first_ms={(answered - t0) * 1000:.1f}")
finally:
    server.terminate()
    server.wait()
PY
}
empty=$tmp/data-empty
server_start "$rcmd" "$empty"
"$load" fill "$c" "$addr" 1 echo rcmd-record >/dev/null
server_stop
for _ in $(seq "$starts"); do
  for which in empty full; do
    out=$(startup "$rcmd" "$tmp/data-$which")
    echo "$out" | field listen_ms >>"$tmp/listen-$which"
    echo "$out" | field first_ms >>"$tmp/first-$which"
  done
done
say "14.2 start-up to the listening line (ms, median of $starts, spread): $records records $(median <"$tmp/listen-full") ($(spread <"$tmp/listen-full")) | 1 record $(median <"$tmp/listen-empty") ($(spread <"$tmp/listen-empty"))"
say "14.2 start-up to the first answered status (ms): $records records $(median <"$tmp/first-full") ($(spread <"$tmp/first-full")) | 1 record $(median <"$tmp/first-empty") ($(spread <"$tmp/first-empty"))"

# --- 3. RSS with N finished jobs ----------------------------------------------
server_start "$rcmd" "$full"
"$rcmd" "$c" "$addr" status 1 >/dev/null
started=$(mib "$server_pid" VmRSS)
listed=$("$rcmd" "$c" "$addr" list | wc -l)
after_list=$(mib "$server_pid" VmRSS)
for id in $(seq 1 $((records / 100)) "$records"); do "$rcmd" "$c" "$addr" output "$id" >/dev/null; done
say "14.3 server RSS with $records finished jobs (MiB): after start-up and a status $started | after a list of all ($listed lines) $after_list | after 100 outputs spread over them $(mib "$server_pid" VmRSS) | peak $(mib "$server_pid" VmHWM)"
server_stop

# --- 4. kill -9 during 1,000 rapid completions ---------------------------------
crash=$tmp/data-crash
server_start "$rcmd" "$crash"
c=$(client_dir crash)
: >"$tmp/done"
"$load" completions "$c" "$addr" 1000 16 >"$tmp/done" &
load_pid=$!
pids+=("$load_pid")
while [ "$(wc -l <"$tmp/done")" -lt 400 ] && kill -0 "$load_pid" 2>/dev/null; do sleep 0.005; done
# (bash reports a job killed by a signal on its own stderr: not news here.)
exec 3>&2 2>/dev/null
kill -9 "$server_pid"
wait "$server_pid" || true
wait "$load_pid" || true
exec 2>&3 3>&-
seen=$(wc -l <"$tmp/done")
# Check a copy, so that the restart below recovers from what the kill left.
mkdir "$tmp/crash-copy"
cp "$crash"/jobs.db* "$tmp/crash-copy/"
integrity=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' \
  "$tmp/crash-copy/jobs.db")
server_start "$rcmd" "$crash"
verified=$("$load" verify "$c" "$addr" "$tmp/done")
highest=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$tmp/done")
new_id=$("$rcmd" "$c" "$addr" exec true)
server_stop
say "14.4 kill -9 during 1,000 rapid completions (16 clients): $seen seen finished before the kill | integrity_check: $integrity | after restart: intact $(echo "$verified" | field intact), lost or changed $(echo "$verified" | field broken) | a new job got id $new_id (highest seen $highest)"
