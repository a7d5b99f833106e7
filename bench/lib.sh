# shellcheck shell=bash disable=SC2034 # (it sets variables for the scripts)
# bench/lib.sh: the one library of the scripts in bench/. Every script is
# standalone on it: it sources this file and nothing else, and reads no
# variable of another script. Sourcing defines functions (and turns on
# inherit_errexit) and nothing more; a script then calls, in this order:
#
#   bench_start "quick baseline" "$@"  goes to the repository's root, parses
#                                      the flags the script takes, of --quick
#                                      and --baseline PATH (and --help, always),
#                                      makes $tmp and the cleanup at exit
#   bench_build [EXAMPLE...]           builds this tree's release binary and
#                                      examples, makes a fresh PKI in $tmp
#
# What a script then has:
#   $quick        1 with --quick (tiny sizes, to prove the harness), else 0
#   $tmp          a private temp dir, removed at exit
#   $certs        a fresh PKI in $tmp: CA, a server for 127.0.0.1 and
#                 localhost, a first client `bench`; client_dir makes more
#   $rcmd, $load  this tree's release rcmd (or RCMD_BENCH_NOW) and examples/loadgen
#   $examples     the folder of the release examples
#   labels        the binaries compared: `now` ($rcmd) and, with --baseline
#                 PATH (or RCMD_BASELINE=PATH), `base`; bin_of LABEL is its
#                 path. round_order alternates them round by round; record
#                 and figure keep and report a figure of each.
#   pids          every background process the script started: launch adds
#                 its own; a script adds any other. At exit exactly these
#                 are stopped, by pid, and the users add_user made removed.
#
# Set RCMD_BENCH_PREBUILT=1 when target/release is already current (bench/run.sh
# sets it for the scripts it runs): then bench_build runs no cargo. Set
# RCMD_BENCH_NOW=PATH to measure the binary PATH as `now` instead of this
# tree's (with --baseline PATH too, a run shows the noise of the machine).

# A command that fails inside $(...) fails the substitution too.
shopt -s inherit_errexit

say() { printf '%s\n' "$*"; }

# --- Flags ---------------------------------------------------------------

# The script's header comment (after the #! line, up to the first line that
# is not a comment): its usage.
bench_usage() { sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//p}' "$0"; }

# bench_args TAKES "$@": parses the script's flags; TAKES lists the ones it
# has, of `quick` and `baseline`. Sets quick and baseline.
bench_args() {
  local takes=" $1 " flag
  shift
  quick=0
  baseline=
  [[ $takes != *" baseline "* ]] || baseline=${RCMD_BASELINE:-}
  while [ $# -gt 0 ]; do
    flag=$1
    case $flag in
      -h | --help) bench_usage; exit 0 ;;
      --quick) [[ $takes == *" quick "* ]] || bench_bad_flag "$flag"; quick=1 ;;
      --baseline)
        if [[ $takes != *" baseline "* ]] || [ $# -lt 2 ]; then bench_bad_flag "$flag"; fi
        baseline=$2
        shift
        ;;
      --baseline=*) [[ $takes == *" baseline "* ]] || bench_bad_flag "$flag"; baseline=${flag#--baseline=} ;;
      *) bench_bad_flag "$flag" ;;
    esac
    shift
  done
  if [ -n "$baseline" ] && ! [ -x "$baseline" ]; then
    say "$(basename "$0"): the baseline $baseline is not an executable file" >&2
    exit 2
  fi
  [ -z "$baseline" ] || baseline=$(realpath "$baseline")
}
bench_bad_flag() {
  say "$(basename "$0"): unknown or incomplete flag $1" >&2
  bench_usage >&2
  exit 2
}

# --- Set-up and cleanup ----------------------------------------------------

# bench_start TAKES "$@": the start of every script (see the top of this file).
bench_start() {
  bench_args "$@"
  cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit
  bench_init
}

bench_init() {
  pids=()
  users=()
  tmp=$(mktemp -d "/tmp/rcmd-bench-$(basename "$0" .sh).XXXXXX")
  trap bench_cleanup EXIT
}
bench_cleanup() {
  stop_started
  local user
  for user in "${users[@]}"; do userdel "$user" 2>/dev/null || true; done
  rm -rf "$tmp"
}
# Stops every process the script started, by pid, and waits for them.
stop_started() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# add_user NAME SHELL [USERADD FLAGS...]: a throwaway user, home $tmp,
# removed at exit.
add_user() {
  useradd --no-create-home --home-dir "$tmp" --shell "$2" "${@:3}" "$1"
  users+=("$1")
}

# need COMMAND=PACKAGE...: installs with apt the packages whose command is
# missing.
need() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  [ ${#missing[@]} = 0 ] && return 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# bench_build [EXAMPLE...]: this tree's release rcmd (and those examples, and
# loadgen), then the PKI in $tmp; sets rcmd, load, examples and the binaries
# compared.
bench_build() {
  local example build=(--bin rcmd --example loadgen)
  for example in "$@"; do build+=(--example "$example"); done
  [ "${RCMD_BENCH_PREBUILT:-}" = 1 ] || cargo build --release -q "${build[@]}"
  examples=$PWD/target/release/examples
  rcmd=${RCMD_BENCH_NOW:-$PWD/target/release/rcmd}
  load=$examples/loadgen
  labels=(now)
  declare -gA bin_path=([now]=$rcmd)
  if [ -n "$baseline" ]; then
    labels+=(base)
    bin_path[base]=$baseline
  fi
  certs=$tmp/certs
  "$rcmd" pki init --dir "$certs" --client bench >/dev/null
}

# client_dir NAME: a fresh client identity (its job ids start at 1 on every
# server); prints its folder.
client_dir() {
  "$rcmd" pki client "$1" --dir "$certs" >/dev/null
  echo "$certs/$1"
}

# --- Processes that say when they are ready ----------------------------------

# launch READY OUT COMMAND...: starts COMMAND in the background and returns
# once a line of its stdout matches the extended regex READY: a condition,
# not a sleep. Its stdout goes to OUT (the lines so far, then the rest), its
# stderr to OUT.err. If COMMAND closes its stdout first (it exited), or says
# nothing for 60 s, the script stops with that stderr. Sets launched_pid.
launch() {
  local ready=$1 out=$2 fifo line fd
  shift 2
  fifo=$(mktemp -u "$tmp/fifo.XXXXXX")
  mkfifo "$fifo"
  "$@" >"$fifo" 2>"$out.err" &
  launched_pid=$!
  pids+=("$launched_pid")
  exec {fd}<"$fifo"
  rm "$fifo"
  : >"$out"
  while IFS= read -r -t 60 line <&"$fd"; do
    say "$line" >>"$out"
    if [[ $line =~ $ready ]]; then
      cat <&"$fd" >>"$out" &
      pids+=($!)
      exec {fd}<&-
      return 0
    fi
  done
  exec {fd}<&-
  say "$1 did not start: $(cat "$out.err" "$out")" >&2
  exit 1
}

# server_launch [--ready REGEX] COMMAND...: launch a COMMAND that is an rcmd
# server; returns once it listens (with --ready, once a line of its stdout
# matches REGEX instead: one it prints after the listening line). Sets
# server_pid, addr and server_out.
server_launch() {
  local ready='^rcmd listening on '
  if [ "$1" = --ready ]; then ready=$2; shift 2; fi
  server_out=$(mktemp "$tmp/serve.XXXXXX")
  launch "$ready" "$server_out" "$@"
  server_pid=$launched_pid
  addr=$(sed -n 's/^rcmd listening on \([^ ]*\).*/\1/p' "$server_out")
}

# server_start [--ready REGEX] BINARY DATADIR [SERVE FLAGS...]: `BINARY serve`
# with $certs on a free loopback port, with room for many jobs.
server_start() {
  local ready=()
  if [ "$1" = --ready ]; then ready=(--ready "$2"); shift 2; fi
  server_launch "${ready[@]}" env RUST_LOG=warn "$1" serve --certs "$certs" --listen 127.0.0.1:0 \
    --data-dir "$2" --max-running 5000 --max-jobs 1000000 "${@:3}"
}

# server_stop [PID]: the server (by default the last started), and waits for it.
server_stop() {
  local pid=${1:-$server_pid}
  kill -TERM "$pid"
  wait "$pid" || true
}

# --- OpenSSH on loopback ----------------------------------------------------

# ssh_init: keys and an sshd config in $tmp, for sshd_start (openssh-server
# is installed with apt if missing). ssh runs commands through the login
# shell, and root's .bashrc on these machines runs `pyenv init` (~110 ms a
# command): as root, ssh logs in as a throwaway user whose shell is /bin/sh,
# so that the baseline measures ssh, not a shell profile. Sets ssh_port (free
# on loopback), ssh_user, and ssh_opts: the client's options but for port and
# user (pssh and pdsh take those apart).
ssh_init() {
  need /usr/sbin/sshd=openssh-server
  ssh_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$tmp/user_key"
  cp "$tmp/user_key.pub" "$tmp/authorized_keys"
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
  ssh_user=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    ssh_user=rcmd-bench-$$
    add_user "$ssh_user" /bin/sh --password '*'
    # sshd reads authorized_keys as that user; everything else stays private.
    chmod 711 "$tmp"
    chmod 644 "$tmp/authorized_keys"
  fi
  mkdir -p /run/sshd
  ssh_opts=(-i "$tmp/user_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o BatchMode=yes)
}

# sshd_start [IP]: an sshd on IP (127.0.0.1 by default) and $ssh_port;
# returns once it listens.
sshd_start() {
  local ip=${1:-127.0.0.1}
  # sshd -e logs to stderr, where it says when it listens.
  launch '^Server listening on ' "$tmp/sshd-$ip.log" sh -c 'exec "$@" 2>&1' sshd \
    /usr/sbin/sshd -D -e -f "$tmp/sshd_config" -o ListenAddress="$ip:$ssh_port" -o PidFile="$tmp/sshd-$ip.pid"
}

# ssh_master: a ControlMaster connection to the sshd on 127.0.0.1, stopped
# at exit like any other process; returns once it takes sessions. Sets
# cm_opts: ssh's options to go through it.
ssh_master() {
  cm_opts=("${ssh_opts[@]}" -p "$ssh_port" -l "$ssh_user" -o ControlPath="$tmp/cm")
  # The local command runs once the master listens for sessions.
  launch '^ready$' "$tmp/cm.out" ssh "${cm_opts[@]}" -o ControlMaster=yes -o ControlPersist=no \
    -o PermitLocalCommand=yes -o LocalCommand='echo ready' -n -N 127.0.0.1
}

# --- Numbers -----------------------------------------------------------------

# field NAME: the value of NAME=... in a line of loadgen or h2flood.
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
# Median and min-max of numbers, one a line.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }
# ratio A B [DECIMALS]: A / B, 2 decimals by default.
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { printf "%." d "f", a / b }'; }
# paired A B [DECIMALS]: the median of per-round ratios of two files of one
# figure a round each: each pair ran back to back, on the same machine.
paired() { paste "$1" "$2" | awk '{ print $1 / $2 }' | median | awk -v d="${3:-2}" '{ printf "%." d "f", $1 }'; }
# mib PID VmRSS|VmHWM: MiB of a process's resident set, or of its peak.
mib() { awk -v k="$2" '$1 == k":" { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }
# ms_now: a clock in milliseconds.
ms_now() { date +%s%N | awk '{ printf "%.3f", $1 / 1e6 }'; }

# --- Comparing binaries, round by round ----------------------------------------

# bin_of LABEL: the binary of a label of $labels.
bin_of() { echo "${bin_path[$1]}"; }

# round_order ROUND: the labels in the order of that round: reversed every
# other round, so that a machine that speeds up or slows down during a round
# favours no binary (with an even number of rounds, each goes first as often).
round_order() {
  if [ $(($1 % 2)) = 1 ]; then
    echo "${labels[@]}"
  else
    printf '%s\n' "${labels[@]}" | tac | tr '\n' ' '
  fi
}

# record KEY LABEL VALUE: one round's value of figure KEY for a binary (or
# for anything else the script names, such as ssh).
record() {
  # A failed measurement leaves no number: stop there, not with a hole.
  [[ $3 =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || { say "$(basename "$0"): no number for $1 ($2): '$3'" >&2; exit 1; }
  mkdir -p "$tmp/figures/$1"
  say "$3" >>"$tmp/figures/$1/$2"
}
# value KEY LABEL: the median over rounds of what record kept.
value() { median <"$tmp/figures/$1/$2"; }
# figure KEY: the median of KEY over rounds, with its spread, for each binary
# compared; then each one's ratio to the baseline, of the medians and (the
# median of per-round ratios) round by round.
figure() {
  local dir=$tmp/figures/$1 label parts=()
  for label in "${labels[@]}"; do
    local v
    v=$(median <"$dir/$label")
    [ "$(wc -l <"$dir/$label")" -gt 1 ] && v="$v ($(spread <"$dir/$label"))"
    if [ ${#labels[@]} = 1 ]; then parts+=("$v"); else parts+=("$label $v"); fi
  done
  for label in "${labels[@]}"; do
    [ "$label" = base ] && continue
    [ -f "$dir/base" ] || continue
    parts+=("$label/base $(ratio "$(value "$1" "$label")" "$(value "$1" base)" 3), per round $(paired "$dir/$label" "$dir/base" 3)")
  done
  local IFS='|'
  say "${parts[*]}" | sed 's/|/ | /g'
}
