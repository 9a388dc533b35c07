#!/usr/bin/env bash
# Idempotent set-up for the browser test (test/notebook_browser.test.ts): Debian's
# headless Chromium, its WebDriver and Selenium for Debian's python3. Silent when
# they are installed already (a dpkg query, well under a second). When it installs,
# it says what it downloaded and how long it took. Exit 1 when they are missing
# and cannot be installed (not root, or apt-get failed): the browser test then
# fails with this script's message, it is never skipped.
set -euo pipefail
log() { printf '[setup-browser] %s\n' "$*" >&2; }

PKGS=(chromium chromium-driver python3-selenium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" != 0 ]; then
  log "ERROR: not root; cannot install the missing Debian packages: ${missing[*]}"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
log "installing Debian packages: ${missing[*]}"
t0=$(date +%s)
# The package lists may be stale (a security update replaced the candidate):
# refresh them once, quietly, before installing.
apt-get "${apt_opts[@]}" update -qq >&2 || log "WARNING: apt-get update failed; trying the cached lists"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >"$out" 2>&1; then
  tail -n 30 "$out" >&2
  log "ERROR: apt-get install ${missing[*]} failed (output above)"
  exit 1
fi
t1=$(date +%s)
# apt-get's own account: "Need to get 98.1 MB of archives." / "... will be used."
got=$(sed -nE 's/^Need to get ([^ ]+ [kMG]?B)(\/[^ ]+ [kMG]?B)? of archives.*/\1/p' "$out" | tail -1)
used=$(sed -nE 's/^After this operation, ([^ ]+ [kMG]?B) of additional disk space will be used.*/\1/p' "$out" | tail -1)
n=$(grep -c '^Setting up ' "$out" || true)
log "installed ${missing[*]} ($n packages with dependencies) in $((t1 - t0)) s: downloaded ${got:-0 B}, ${used:-? B} on disk"
for p in "${missing[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    log "ERROR: $p is still not installed after apt-get"
    exit 1
  fi
done
