#!/usr/bin/env bash
# The main job.  First use sets everything up (.venv, the local llama.cpp engine, the default model).
#   ./run.sh           a live two-model deployment on this machine, then JupyterLab with aqua_lab
#                      (REST API under /aqua/, notebooks/quickstart_local.ipynb); Ctrl-C stops JupyterLab,
#                      the deployment keeps running and is reused next time
#   ./run.sh ARGS…     aqua-lab ARGS…  (e.g. ./run.sh plan --model_ids 'phi-4,gemma-2b')
set -euo pipefail
AQUA_LAB_EXTRAS="local,evaluation" . "$(dirname "$0")/scripts/venv.sh"
if [ "$#" -gt 0 ]; then
  exec aqua-lab "$@"
fi
aqua-lab demo
port="${AQUA_LAB_PORT:-8888}"
# JupyterLab's "receive official news?" toast is stopped by this setting, not by --LabApp.news_url=None;
# written into this project's .venv only (the user's own settings are left alone)
overrides=.venv/share/jupyter/lab/settings/overrides.json
if [ ! -f "$overrides" ]; then
  mkdir -p "$(dirname "$overrides")"
  echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > "$overrides"
fi
args=(--no-browser --ip=127.0.0.1 --port="$port" --ServerApp.root_dir="$PWD/notebooks"
      --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate)
if [ "$(id -u)" = 0 ]; then
  args+=(--allow-root)
fi
echo "==> JupyterLab on http://127.0.0.1:$port/lab (token below); aqua_lab's API at /aqua/ (see /aqua/openapi.json)" >&2
exec jupyter lab "${args[@]}"
