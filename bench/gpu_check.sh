#!/usr/bin/env bash
# The GPU check of issue 29, in one run (≤ 10 min on one H100): build llama-server for CUDA, run the local
# platform's GPU path end to end, and measure planned vs real GPU memory, decode speed alone and beside
# a busy neighbour, and CUDA vs CPU on the same model.  Writes OUT_DIR/gpu_check.json.
#
#   bench/gpu_check.sh --prepare            # here (with PyPI): .gpu_carry/ = trimmed llama.cpp source + GGUFs
#   bench/gpu_check.sh OUT_DIR              # on the GPU machine (the tree and .gpu_carry/ carried there)
#   bench/gpu_check.sh --dry-run OUT_DIR    # anywhere: print what it would do, change nothing
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CARRY="$ROOT/.gpu_carry"
MODE=run
case "${1:-}" in
  --dry-run) MODE=dry; shift ;;
  --prepare) MODE=prepare; shift ;;
esac
OUT="${1:-}"
say() { echo "==> $*"; }
if [ "$MODE" != prepare ] && [ -z "$OUT" ]; then
  echo "usage: bench/gpu_check.sh [--dry-run] OUT_DIR | --prepare" >&2
  exit 2
fi
PY="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}"

if [ "$MODE" = prepare ]; then
  # the vendored llama.cpp minus what the build never reads: well under the 64 MiB that travels
  sdist="$("$PY" -c 'from aqua_lab.platforms.local import engine_build as E; print(E.cache_root()/"src"/E.SDIST_FILE)')"
  [ -f "$sdist" ] || "$PY" -m aqua_lab.platforms.local.engine_build ensure >/dev/null
  rm -rf "$CARRY" && mkdir -p "$CARRY"
  tar -xzf "$sdist" -C "$CARRY" --wildcards '*/vendor/llama.cpp/*' \
    --exclude='*/models/*' --exclude='*/docs/*' --exclude='*/tests/*' --exclude='*/examples/*' \
    --exclude='*/tools/mtmd/*' --exclude='*/gguf-py/*' --exclude='*/.devops/*' --exclude='*/media/*'
  mv "$CARRY"/llama_cpp_python-*/vendor/llama.cpp "$CARRY/llama.cpp" && rm -rf "$CARRY"/llama_cpp_python-*
  "$PY" - "$CARRY" <<'EOF'
import shutil, sys
from pathlib import Path
from aqua_lab.platforms.local.models import smollm2_path
shutil.copy2(smollm2_path(), Path(sys.argv[1]) / "smollm2.gguf")
EOF
  du -sh "$CARRY"
  exit 0
fi

SOURCE="${AQUA_LAB_LLAMA_SOURCE:-$CARRY/llama.cpp}"
cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d . || true)"
if [ "$MODE" = dry ]; then
  cat <<EOF
dry run: nothing is built, started or written.
1. build llama-server for CUDA from $SOURCE (the vendored llama.cpp of the llama-cpp-python sdist):
   cmake ... -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${cc:-<nvidia-smi compute_cap, e.g. 90>} -DCMAKE_CUDA_COMPILER=\$(which nvcc) -G Ninja
   cmake --build ... --target llama-server -j \$(nproc)      (timed: the CUDA build time)
2. plan: the local planner packs a three-model deployment (a larger GGUF and SmolLM2 twice) onto the
   GPUs, the two small models on one GPU with explicit budgets ("shares GPU 0 with ...";
   --max-model-len/--max-num-seqs/--batch-size/--ubatch-size, --fit off)
3. create the three-model deployment on the local platform (llama.cpp-CUDA engine), chat with each model, delete it
4. read each model server's GPU memory (nvidia-smi --query-compute-apps=pid,used_memory) and print
   planned vs measured per model (%)
5. decode tokens/s per model alone and with its GPU neighbour busy (ratio; goal ≥ 0.8)
6. llama.cpp-CUDA vs the CPU build on the same model (the same binary with --device none)
7. cold start to first token on the GPU
8. write $OUT/gpu_check.json
EOF
  exit 0
fi

mkdir -p "$OUT"
command -v nvcc >/dev/null || { echo "gpu_check: nvcc is not on PATH (try PATH=/usr/local/cuda/bin:\$PATH)" >&2; exit 1; }
[ -d "$SOURCE" ] || { echo "gpu_check: no llama.cpp source at $SOURCE: run bench/gpu_check.sh --prepare first" >&2; exit 1; }
export AQUA_LAB_LLAMA_SOURCE="$SOURCE" AQUA_LAB_ENGINE_CACHE="$OUT/engine-cache" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
say "building llama-server for CUDA sm_$cc"
start=$(date +%s)
"$PY" -c 'from aqua_lab.platforms.local import engine_build as E; print(E.build())' 2>&1 | tail -3
build_s=$(( $(date +%s) - start ))
say "built in ${build_s}s"
"$PY" "$ROOT/bench/gpu_check_run.py" "$OUT" "$build_s" "$CARRY"
