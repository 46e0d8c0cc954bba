#!/usr/bin/env bash
# The main job.  Sets everything up on first use, then runs the aqua-lab CLI.
#   ./run.sh                 a demo: how three service models split the GPU shapes they share
#   ./run.sh ARGS…           aqua-lab ARGS… (e.g. ./run.sh plan --model_ids 'phi-4,gemma-2b')
set -euo pipefail
AQUA_LAB_EXTRAS="local" . "$(dirname "$0")/scripts/venv.sh"
if [ "$#" -eq 0 ]; then
  set -- plan --model_ids '["meta-llama/Meta-Llama-3.1-8B-Instruct", "microsoft/phi-4", "google/gemma-2b"]' \
         --primary_model_id microsoft/phi-4
  echo "==> aqua-lab $*" >&2
fi
exec aqua-lab "$@"
