#!/usr/bin/env bash
# Scans a freshly started rcmd server with sslyze (from PyPI, in a private
# virtualenv: SSLYZE_VENV, /tmp/rcmd-sslyze-venv by default, kept for the
# next run) and prints only what matters: the protocol versions accepted,
# the cipher suites, the curves, and whether a client certificate is
# required. Not part of CI (it installs sslyze and takes a minute).
#
#   bench/tls-scan.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_start "" "$@"
bench_build

venv=${SSLYZE_VENV:-/tmp/rcmd-sslyze-venv}
if ! [ -x "$venv/bin/sslyze" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q sslyze
fi

server_start "$rcmd" "$tmp/data"

# Without a client certificate: what the server offers, and that it requires one.
"$venv/bin/sslyze" --json_out="$tmp/anon.json" --quiet \
  --sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 --elliptic_curves --certinfo "localhost:${addr##*:}{127.0.0.1}" >/dev/null || true
# With one: the cipher suites actually accepted.
"$venv/bin/sslyze" --json_out="$tmp/auth.json" --quiet \
  --cert "$certs/client.crt" --key "$certs/client.key" --keyform PEM \
  --tlsv1_2 --tlsv1_3 --elliptic_curves "localhost:${addr##*:}{127.0.0.1}" >/dev/null || true

python3 - "$tmp/anon.json" "$tmp/auth.json" <<'PY'
import json, sys

def scan(path):
    with open(path) as f:
        return json.load(f)["server_scan_results"][0]

def accepted(result, key):
    attempt = result["scan_result"].get(key) or {}
    suites = (attempt.get("result") or {}).get("accepted_cipher_suites") or []
    return [s["cipher_suite"]["name"] for s in suites]

anon, auth = scan(sys.argv[1]), scan(sys.argv[2])
print("connectivity:", anon.get("connectivity_status"), "| client certificate:",
      (anon.get("connectivity_result") or {}).get("client_auth_requirement"))
for key, name in [("ssl_2_0_cipher_suites", "SSL 2.0"), ("ssl_3_0_cipher_suites", "SSL 3.0"),
                  ("tls_1_0_cipher_suites", "TLS 1.0"), ("tls_1_1_cipher_suites", "TLS 1.1"),
                  ("tls_1_2_cipher_suites", "TLS 1.2"), ("tls_1_3_cipher_suites", "TLS 1.3")]:
    suites = accepted(auth, key) if key in ("tls_1_2_cipher_suites", "tls_1_3_cipher_suites") else accepted(anon, key)
    print(f"{name}: {'accepted: ' + ', '.join(suites) if suites else 'refused'}")
curves = ((auth["scan_result"].get("elliptic_curves") or {}).get("result") or {})
print("curves accepted:", ", ".join(c["name"] for c in curves.get("supported_curves") or []) or "none reported")
PY
