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
  # (other GPU backends and benchmarks too; the server links mtmd, whose CMake wants miniaudio)
  tar -xzf "$sdist" -C "$CARRY" --wildcards '*/vendor/llama.cpp/*' \
    --exclude='*/llama.cpp/models/*' --exclude='*/llama.cpp/docs/*' --exclude='*/llama.cpp/tests/*' \
    --exclude='*/llama.cpp/examples/*' --exclude='*/.devops/*' --exclude='*/media/*' --exclude='*/benches/*' \
    --exclude='*/ggml-opencl/*' --exclude='*/ggml-sycl/*' \
    --exclude='*/ggml-vulkan/*' --exclude='*/ggml-hexagon/*' --exclude='*/ggml-metal/*' --exclude='*/ggml-cann/*'
  mv "$CARRY"/llama_cpp_python-*/vendor/llama.cpp "$CARRY/llama.cpp" && rm -rf "$CARRY"/llama_cpp_python-*
  # SmolLM2's GGUF (94 MiB) is more than travels: its tokenizer goes, and the models are made there
  # from their shapes (aqua_lab.platforms.local.random_gguf, with the carried gguf-py and numpy)
  "$PY" -c 'import sys; from aqua_lab.platforms.local.models import smollm2_path as s
from aqua_lab.platforms.local.random_gguf import write_tokenizer_gguf as w; w(sys.argv[1], s())' "$CARRY/tokenizer.gguf"
  # the pure-Python and small compiled packages aqua_lab imports that a bare GPU machine may lack (numpy
  # comes with its PyTorch); last on PYTHONPATH there, so the machine's own copies win
  "$PY" - "$CARRY/site" <<'PY'
import importlib.util, shutil, sys
from pathlib import Path
site = Path(sys.argv[1])
site.mkdir()
for name in ("pydantic", "pydantic_core", "annotated_types", "typing_extensions", "typing_inspection", "tornado", "colorama"):
    spec = importlib.util.find_spec(name)
    if spec.submodule_search_locations:
        shutil.copytree(spec.submodule_search_locations[0], site / name, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(spec.origin, site)
PY
  du -sh --apparent-size "$CARRY"
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
2. make the models from $CARRY/tokenizer.gguf: a wide 0.33B llama and a SmolLM2-135M-shaped one (random
   F16 weights), and plan a three-model deployment of them (the wide one and SmolLM2 twice) with the
   local planner, models sharing a GPU each within its budget (llama.cpp-CUDA sizes, --fit off):
EOF
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$ROOT/bench/gpu_check_run.py" --dry-run
  cat <<EOF
3. create the three-model deployment on the local platform (llama.cpp-CUDA engine) from that plan: each model on
   its gpu_indices with the plan's parameters (validation checks the budgets on each GPU again), the servers
   started as above; chat with each model, delete it
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
export AQUA_LAB_LLAMA_SOURCE="$SOURCE" AQUA_LAB_ENGINE_CACHE="$OUT/engine-cache"
export PYTHONPATH="$ROOT:$SOURCE/gguf-py${PYTHONPATH:+:$PYTHONPATH}:$CARRY/site"
say "building llama-server for CUDA sm_$cc"
start=$(date +%s)
"$PY" -c 'from aqua_lab.platforms.local import engine_build as E; print(E.build())' 2>&1 | tail -3
build_s=$(( $(date +%s) - start ))
say "built in ${build_s}s"
"$PY" "$ROOT/bench/gpu_check_run.py" "$OUT" "$build_s" "$CARRY"
