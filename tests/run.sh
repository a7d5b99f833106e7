#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Rust: as root, it
# installs the tools the tests call that are missing (apt, and pip for one
# Python module), then runs every test, the ones ignored for needing root or
# a tool included (`cargo test -- --include-ignored`). As another user it
# installs nothing and runs plain `cargo test`, whose root and tool tests
# stay ignored with their reason. Arguments go to the test harness, e.g.
# `tests/run.sh fleet::` for one module.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh: not root, so the tests that need root or a tool stay ignored" >&2
  exec cargo test --no-fail-fast -- "$@"
fi

# The tools the tests call, by the package that has them.
need=()
want() { command -v "$1" >/dev/null || need+=("$2"); }
want pgrep procps           # processes found by a marker
want openssl openssl        # TLS handshakes from another implementation
want mount mount            # a small tmpfs that fills up
want useradd passwd         # users of one test each (policy_users)
want zsh zsh                # the completion scripts, checked by their shells
want fish fish
want man man-db             # the man page, rendered by man
want groff groff-base
want systemd-analyze systemd # the systemd unit, checked by systemd-analyze
want ip iproute2            # network namespaces (fleet_netns)
want nft nftables           # a namespace that drops every packet
want python3 python3
if [ ${#need[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The metrics test parses /metrics with Prometheus' own Python parser.
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  echo "tests/run.sh: installing prometheus_client" >&2
  python3 -m pip install -q prometheus_client 2>/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-prometheus-client >/dev/null
  }
fi

# Two ignored tests need more than root, which not every host has.
skip=()
v2_root=$(awk '/ - cgroup2 / && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
passed=$(cat "${v2_root:-/nonexistent}/cgroup.subtree_control" 2>/dev/null || true)
if ! [[ " $passed " == *" memory "* && " $passed " == *" pids "* ]]; then
  echo "tests/run.sh: skipping delegated:: (this host's cgroup v2 root does not pass memory and pids down)" >&2
  skip+=(--skip delegated::)
fi
cap_eff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
if (((0x$cap_eff >> 24 & 1) == 0)); then
  oom=spawn::no_job_keeps_the_protection_from_the_oom_killer_that_the_server_gave_itself
  echo "tests/run.sh: skipping $oom (root here lacks CAP_SYS_RESOURCE)" >&2
  skip+=(--skip "$oom")
fi

cargo test --no-fail-fast -- --include-ignored "${skip[@]}" "$@"
