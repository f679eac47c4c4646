#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh Debian machine, idempotently
# and quickly when everything is there, then runs lint, type check and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== lint"
npx --no-install biome ci .
echo "== typecheck"
npx --no-install tsc -p tsconfig.json --noEmit
echo "== tests"
bash scripts/run-tests.sh "$@"
