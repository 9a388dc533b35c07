#!/usr/bin/env bash
# The test command: installs what is missing (tools/setup.sh), then runs every
# test under test/ and ends with two lines: the skipped tests with their reasons,
# then the plain line "N passed, N failed".
# Extra arguments go to `deno test` (e.g. a file or --filter).
#
# Skips are not successes. A test may be skipped (deno `ignore`) only with its
# reason in its name, "... [skip: <reason>]", and only for a reason that holds on
# this machine, re-checked here:
#   "no libdnnl-dev"  oneDNN's headers are absent (the engine's shim cannot be built)
#   "no <compiler>"   g++, c++, clang++ or $CXX is not on PATH
#   "no AVX-512"      /proc/cpuinfo has no avx512f
#   "no bf16 dot products"  /proc/cpuinfo has neither avx512_bf16 nor amx_bf16
# Any other skip, and a failed set-up (e.g. the engine's shim not building where
# oneDNN and g++ are present), is counted as failed.
set -uo pipefail
cd "$(dirname "$0")/.."

setup_failed=0
if ! bash tools/setup.sh; then
  setup_failed=1
  echo "[test] FAILED: tools/setup.sh (see its output above; counted as 1 failed test)"
fi
# The browser test's Chromium, chromedriver and Selenium (silent when installed;
# test/notebook_browser.test.ts runs it again and fails, never skips, without them).
bash tools/setup_browser.sh || echo "[test] tools/setup_browser.sh failed: the browser tests will fail"
if ! command -v deno >/dev/null 2>&1; then
  echo "[test] deno is not installed: no test could run"
  echo "0 skipped"
  echo "0 passed, 1 failed"
  exit 1
fi

# True when a skip reason holds on this machine.
reason_holds() {
  local r="$1"
  case "$r" in
    "no libdnnl-dev") [ ! -f /usr/include/oneapi/dnnl/dnnl.hpp ] && [ ! -f /usr/include/dnnl.hpp ] ;;
    "no AVX-512") ! grep -qw avx512f /proc/cpuinfo 2>/dev/null ;;
    "no bf16 dot products") ! grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null ;;
    "no g++" | "no c++" | "no clang++") ! command -v "${r#no }" >/dev/null 2>&1 ;;
    *)
      if [ -n "${CXX:-}" ] && [ "$r" = "no ${CXX}" ]; then
        ! command -v "$CXX" >/dev/null 2>&1
      else
        return 1
      fi
      ;;
  esac
}

log=$(mktemp)
NO_COLOR=1 deno test -A --v8-flags=--max-old-space-size=16384 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
line=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -1)
passed=$(echo "$line" | sed -nE 's/.*\| ([0-9]+) passed.*/\1/p')
failed=$(echo "$line" | sed -nE 's/.*\| ([0-9]+) failed.*/\1/p')
ignored=$(echo "$line" | sed -nE 's/.*\| ([0-9]+) ignored.*/\1/p')
if [ -z "$passed" ]; then passed=0; failed=${failed:-1}; [ "$rc" = 0 ] && rc=1; fi
failed=${failed:-0}
ignored=${ignored:-0}

# Every ignored test: "<name> ... ignored (<time>)".
declare -A by_reason=()
skipped=0
bad=0
seen=0
while IFS= read -r name; do
  [ -z "$name" ] && continue
  seen=$((seen + 1))
  reason=$(printf '%s\n' "$name" | sed -nE 's/.*\[skip: ([^]]+)\][[:space:]]*$/\1/p')
  if [ -z "$reason" ]; then
    echo "[test] FAILED: skipped without a stated reason: $name"
    bad=$((bad + 1))
  elif ! reason_holds "$reason"; then
    echo "[test] FAILED: skipped for \"$reason\", which does not hold on this machine: $name"
    bad=$((bad + 1))
  else
    skipped=$((skipped + 1))
    by_reason["$reason"]=$((${by_reason["$reason"]:-0} + 1))
  fi
done < <(grep -E ' \.\.\. ignored \([^)]*\)[[:space:]]*$' "$log" | sed -E 's/ \.\.\. ignored \([^)]*\)[[:space:]]*$//')
rm -f "$log"
if [ "$ignored" -gt "$seen" ]; then
  echo "[test] FAILED: $((ignored - seen)) ignored test(s) whose names could not be read"
  bad=$((bad + ignored - seen))
fi

failed=$((failed + bad + setup_failed))
if [ "$bad" -gt 0 ] || [ "$setup_failed" -gt 0 ]; then rc=1; fi
summary="$skipped skipped"
if [ "$skipped" -gt 0 ]; then
  parts=()
  for r in "${!by_reason[@]}"; do parts+=("$r: ${by_reason[$r]}"); done
  summary="$summary ($(IFS=';'; echo "${parts[*]}" | sed 's/;/; /g'))"
fi
echo "$summary"
echo "${passed} passed, ${failed} failed"
exit "$rc"
