#!/usr/bin/env bash
# The whole test suite, with what it needs: `bash scripts/test.sh [cargo test args...]`.
# Tests drive real components (etcd, chromium, promtool, h2load, curl); scripts/deps.sh installs
# the missing ones first (root, or sudo without a password), and under CI=true a test whose tool
# is missing fails rather than skipping.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

exec cargo test --workspace "$@"
