#!/usr/bin/env bash
# Rebuilds web/onnxgan.js + web/onnxgan.wasm from cpp/ with Debian's emscripten (apt-get install emscripten).
# The committed copies must equal this build byte for byte (.ci/run checks): run it after changing cpp/src.
#   cpp/wasm/build.sh            build into build/wasm and copy into web/
#   cpp/wasm/build.sh --check    build into build/wasm and fail if web/ differs
set -euo pipefail
cd "$(dirname "$0")/../.."
export NODE_PATH=/usr/share/nodejs  # Debian's emscripten finds its JS optimizer's acorn module there
echo "$(em++ --version | head -n 1)"  # the committed build is Debian 12's emscripten 3.1.6
mkdir -p build
emcmake cmake -S cpp/wasm -B build/wasm > build/wasm-configure.log
cmake --build build/wasm -j2 > build/wasm-build.log
size=$(( $(stat -c %s build/wasm/onnxgan.js) + $(stat -c %s build/wasm/onnxgan.wasm) ))
echo "onnxgan.js + onnxgan.wasm: $size bytes (budget 300000)"
if (( size >= 300000 )); then echo "over the 300 KB budget"; exit 1; fi
if [[ "${1:-}" == "--check" ]]; then
  for file in onnxgan.js onnxgan.wasm; do
    cmp -s "build/wasm/$file" "web/$file" || { echo "web/$file differs from a fresh build: run cpp/wasm/build.sh and commit it"; exit 1; }
  done
  echo "web/onnxgan.js and web/onnxgan.wasm equal a fresh build"
else
  cp build/wasm/onnxgan.js build/wasm/onnxgan.wasm web/ && chmod 644 web/onnxgan.js web/onnxgan.wasm
fi
