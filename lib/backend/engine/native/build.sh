#!/usr/bin/env bash
# Builds the noiselab engine's native shim (C++ over oneDNN) into
# lib/backend/engine/native/build/libnoiselab_dnnl.so. Idempotent: does nothing
# when the library is newer than its source and this script.
# Needs g++ and Debian's libdnnl-dev (oneDNN 2.x). Env: CXX (default g++).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/noiselab_dnnl.cc"
out_dir="$here/build"
out="$out_dir/libnoiselab_dnnl.so"
if [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$0" ]; then
  exit 0
fi
if [ ! -f /usr/include/dnnl.hpp ] && [ ! -f /usr/include/oneapi/dnnl/dnnl.hpp ]; then
  echo "[engine] oneDNN headers not found (apt-get install libdnnl-dev); not building the shim" >&2
  exit 1
fi
mkdir -p "$out_dir"
tmp="$out.tmp-$$"
echo "[engine] building $out" >&2
"${CXX:-g++}" -std=c++17 -O3 -march=native -fopenmp -shared -fPIC -Wall -o "$tmp" "$src" -ldnnl
mv -f "$tmp" "$out"
