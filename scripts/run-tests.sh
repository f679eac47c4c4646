#!/usr/bin/env bash
# Runs the test files given (default: every test/**/*.test.ts) with node's test runner through tsx.
# Tests use ephemeral ports or their own port offsets, so files run two at a time (the machine has 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if (($# == 0)); then
  mapfile -t files < <(find test -name '*.test.ts' | sort)
else
  files=("$@")
fi
mkdir -p test-artifacts
exec node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-300000}" "${files[@]}"
