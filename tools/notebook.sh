#!/usr/bin/env bash
# `deno task notebook`: classic Jupyter Notebook on notebooks/ with the Deno kernel
# committed in tools/kernel/deno (found through a temporary JUPYTER_PATH entry, so
# nothing is installed under the user's home). Extra arguments go to jupyter.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jp=$(mktemp -d -t noiselab-jupyter-XXXXXX)
trap 'rm -rf "$jp"' EXIT
mkdir -p "$jp/kernels"
ln -s "$root/tools/kernel/deno" "$jp/kernels/deno"
export JUPYTER_PATH="$jp${JUPYTER_PATH:+:$JUPYTER_PATH}"
export NO_COLOR=1
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)
jupyter notebook "${extra[@]}" --ip 127.0.0.1 --no-browser --notebook-dir "$root/notebooks" \
  --MappingKernelManager.default_kernel_name=deno "$@"
