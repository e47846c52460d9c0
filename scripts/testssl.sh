#!/usr/bin/env bash
# testssl.sh: runs Debian's testssl.sh (package `testssl.sh`, command `testssl`) against an lb
# TLS listener and fails when it reports a HIGH or CRITICAL finding.
#
# Usage:
#   scripts/testssl.sh               builds target/debug/lb, starts it on 127.0.0.1 with a fresh
#                                    ECDSA P-256 certificate for lb.test from a CA made for the
#                                    run (given to testssl) behind an `lb echo` backend, scans
#                                    it as lb.test, stops everything
#   scripts/testssl.sh HOST:PORT     scans an lb that is already running (nothing is started)
# Settings (environment): LB_BIN (an lb binary to use instead of target/debug/lb), OUT (where the
# JSON findings go; default target/testssl/findings.json), EXTRA (more testssl flags, e.g. --fast).
#
# Output: testssl's own report on stdout, then every finding of severity MEDIUM or above as
# `SEVERITY id: finding`; exit 1 when one is HIGH or CRITICAL. Every process it starts is stopped
# by its PID when it exits, fails or is interrupted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v testssl >/dev/null || { echo "testssl is missing: apt-get install testssl.sh (or scripts/deps.sh)" >&2; exit 2; }
OUT="${OUT:-$PWD/target/testssl/findings.json}"
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"

PIDS=()
WORK=""
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

CA_FLAGS=()
if [ $# -ge 1 ]; then
    TARGET="$1"
else
    LB="${LB_BIN:-}"
    if [ -z "$LB" ]; then
        cargo build -q -p lb
        LB="$PWD/target/debug/lb"
    fi
    WORK="$(mktemp -d)"
    # A CA of our own (passed to testssl with --add-ca) and a leaf for lb.test naming OCSP and
    # CRL locations, as a public certificate would: the findings are then about lb, not about a
    # self-signed test certificate.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 400 \
        -subj "/CN=lb test CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=lb.test \
        -keyout "$WORK/lb.key" -out "$WORK/lb.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:lb.test" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
        "authorityInfoAccess=OCSP;URI:http://ocsp.lb.test/" \
        "crlDistributionPoints=URI:http://crl.lb.test/ca.crl" >"$WORK/leaf.ext"
    openssl x509 -req -in "$WORK/lb.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
        -CAcreateserial -days 365 -extfile "$WORK/leaf.ext" -out "$WORK/leaf.crt" 2>/dev/null
    cat "$WORK/leaf.crt" "$WORK/ca.crt" >"$WORK/lb.crt"
    CA_FLAGS=(--add-ca "$WORK/ca.crt")
    "$LB" echo --listen 127.0.0.1:0 --name origin >"$WORK/echo.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q "listening on" "$WORK/echo.out" && break; sleep 0.1; done
    ORIGIN="$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$WORK/echo.out" | head -1)"
    "$LB" run --listen 127.0.0.1:0 --admin 127.0.0.1:0 --workers 1 --no-pin \
        --route "/=$ORIGIN" --tls-listen 127.0.0.1:0 \
        --tls-cert "$WORK/lb.crt" --tls-key "$WORK/lb.key" >"$WORK/lb.out" 2>"$WORK/lb.err" &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q "listening on" "$WORK/lb.out" && break; sleep 0.1; done
    ADDR="$(sed -n 's/.*, tls \([0-9.:]*\) .*/\1/p' "$WORK/lb.out")"
    [ -n "$ADDR" ] || { echo "lb did not start:" >&2; cat "$WORK/lb.err" >&2; exit 1; }
    # Scanned by the certificate's name, on the loopback address.
    TARGET="lb.test:${ADDR##*:}"
    CA_FLAGS+=(--ip 127.0.0.1)
fi

echo "testssl against $TARGET (findings: $OUT)"
# testssl exits non-zero for many reasons of its own; the findings file decides.
testssl --quiet --color 0 --warnings off --jsonfile "$OUT" "${CA_FLAGS[@]}" ${EXTRA:-} "$TARGET" || true

python3 - "$OUT" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
order = {"MEDIUM": 1, "HIGH": 2, "CRITICAL": 3}
worst = 0
for f in findings:
    level = order.get(f.get("severity", ""), 0)
    if level:
        print(f"{f['severity']} {f['id']}: {f['finding']}")
        worst = max(worst, level)
print("no HIGH or CRITICAL finding" if worst < 2 else "HIGH or CRITICAL findings above")
sys.exit(1 if worst >= 2 else 0)
PY
