#!/usr/bin/env bash
# Builds GnuGk (the reference H.323 gatekeeper) and H323Plus's sample endpoint from ../shared/peers/gnugk once:
# about 7 minutes on 2 cores the first time, then cached in ~/.cache/crossway-peers and back at once.
# Used by test/h323/gnugk-neighbour.test.ts (neighbor zones both ways) and bench/h323-ras-gnugk.ts.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$here/../shared/peers/gnugk/build.sh"
if [[ ! -f "$build" ]]; then
  echo "== gnugk: $build not found, the GnuGk neighbor test will be skipped" >&2
  exit 0
fi
if dir="$(bash "$build")"; then
  echo "== gnugk peer: $dir"
else
  echo "== gnugk: BUILD FAILED (see the log named above); the GnuGk tests will be skipped" >&2
fi
