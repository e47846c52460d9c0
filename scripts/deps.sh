#!/usr/bin/env bash
# Installs what the build and the tests need when it is missing (Debian 12; root, or sudo
# without a password): `bash scripts/deps.sh`. Called by scripts/test.sh and .ci/run before
# anything is compiled, because protoc is a build dependency (etcd-client's gRPC code).
#   protoc    protobuf-compiler   etcd-client's build script
#   etcd      etcd-server         cluster-mode tests start real etcd members
#   chromium  chromium            the status page test drives a real headless browser
#   chromedriver chromium-driver  ... through WebDriver (lb-testkit's webdriver module)
#   promtool  prometheus          /metrics is checked with `promtool check metrics`
#   h2load    nghttp2-client      HTTP/2 tests and the h2 benchmark
#   testssl   testssl.sh          the TLS audit (scripts/testssl.sh)
#   curl      curl                HTTP/2 and TLS client in some tests
# h2spec is built from ../shared/tools/h2spec by scripts/h2spec.sh (it needs Go, installed there).
set -euo pipefail

declare -A package=(
    [protoc]=protobuf-compiler
    [etcd]=etcd-server
    [chromium]=chromium
    [chromedriver]=chromium-driver
    [promtool]=prometheus
    [h2load]=nghttp2-client
    [testssl]=testssl.sh
    [curl]=curl
)
missing=()
for tool in "${!package[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${package[$tool]}")
done
((${#missing[@]})) || exit 0

echo "==> installing ${missing[*]} (missing tools for the build and the tests)"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
