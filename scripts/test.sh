#!/usr/bin/env bash
# The whole test suite, with what it needs: `bash scripts/test.sh [cargo test args...]`.
# The metrics test pipes /metrics through `promtool check metrics` (Debian package
# `prometheus`); when promtool is missing it is installed first (root, or sudo without a
# password), and under CI=true a test whose tool is missing fails rather than skipping.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v promtool >/dev/null 2>&1; then
    echo "==> installing promtool (Debian package prometheus) for the metrics test"
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
    "${as_root[@]}" apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

exec cargo test --workspace "$@"
