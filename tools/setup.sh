#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine of this project's kind (root, npm
# registry + Debian archive only). Quick (about a second) when everything is there.
#   - Deno 2.9.x from npm
#   - Debian packages: oneDNN (the fast engine), Jupyter/nbclient (notebooks),
#     librsvg2-bin (PDF figures), libimage-exiftool-perl (title and provenance
#     in the PNG/PDF figures' metadata); python3-torch (the benchmark's peer) only with
#     NOISELAB_WITH_TORCH=1 (`tools/noiselab bench` sets it)
#   - npm modules for the project (deno install, honouring deno.lock)
#   - the engine's native shim (C++ over oneDNN), built with g++ (exit 1 if it
#     fails to build where oneDNN's headers and g++ are present)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

DENO_VERSION=2.9.6
if ! command -v deno >/dev/null 2>&1 || ! deno --version 2>/dev/null | grep -q "^deno 2\.9\."; then
  log "installing deno@$DENO_VERSION from npm"
  npm install -g "deno@$DENO_VERSION" >&2
fi

APT_PKGS=(libdnnl-dev g++ python3-nbclient python3-nbformat jupyter-client jupyter-nbconvert jupyter-notebook python3-ipykernel librsvg2-bin libimage-exiftool-perl)
if [ "${NOISELAB_WITH_TORCH:-0}" = 1 ]; then APT_PKGS+=(python3-torch); fi
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    apt-get install -y -qq "${missing[@]}" >&2 || log "WARNING: some Debian packages failed to install: ${missing[*]} (the project falls back where it can)"
  else
    log "WARNING: not root; missing Debian packages: ${missing[*]}"
  fi
fi

# npm modules (node_modules/ via nodeModulesDir=auto), pinned by deno.lock
if [ ! -f node_modules/.deno/.setup-stamp ] || [ deno.lock -nt node_modules/.deno/.setup-stamp ] || [ deno.json -nt node_modules/.deno/.setup-stamp ]; then
  log "installing npm modules (deno install)"
  deno install >&2
  mkdir -p node_modules/.deno && touch node_modules/.deno/.setup-stamp
fi

# The engine's native shim. Where it can be built (oneDNN's headers and the C++
# compiler are here) it must build: a failure is an error (exit 1), never a quiet
# fall-back to a 12x slower backend. Without oneDNN or g++ (e.g. not root, so the
# Debian packages could not be installed) the project falls back to the wasm
# backend and the engine's tests are skipped for that stated reason.
if [ -f lib/backend/engine/native/build.sh ]; then
  if ! bash lib/backend/engine/native/build.sh >&2; then
    cxx="${CXX:-g++}"
    if { [ -f /usr/include/oneapi/dnnl/dnnl.hpp ] || [ -f /usr/include/dnnl.hpp ]; } && command -v "$cxx" >/dev/null 2>&1; then
      log "ERROR: the engine's shim did not build although oneDNN's headers and $cxx are present (compiler output above)"
      exit 1
    fi
    log "WARNING: engine shim not built (no oneDNN headers or no $cxx); the project falls back to the wasm backend"
  fi
fi
