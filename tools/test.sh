#!/usr/bin/env bash
# The test command: installs what is missing (tools/setup.sh), then runs every
# test under test/ and ends with the plain line "N passed, N failed".
# Extra arguments go to `deno test` (e.g. a file or --filter).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
log=$(mktemp)
NO_COLOR=1 deno test -A --v8-flags=--max-old-space-size=16384 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
line=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -1)
passed=$(echo "$line" | sed -nE 's/.*\| ([0-9]+) passed.*/\1/p')
failed=$(echo "$line" | sed -nE 's/.*\| ([0-9]+) failed.*/\1/p')
rm -f "$log"
if [ -z "$passed" ]; then passed=0; failed=${failed:-1}; [ "$rc" = 0 ] && rc=1; fi
echo "${passed} passed, ${failed:-0} failed"
exit "$rc"
