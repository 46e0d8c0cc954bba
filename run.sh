#!/usr/bin/env bash
# The main job.  First use sets everything up (.venv, the local llama.cpp engine, the default model).
#   ./run.sh           a live two-model deployment on this machine, then JupyterLab with aqua_lab
#                      (REST API under /aqua/, notebooks/quickstart_local.ipynb); Ctrl-C stops JupyterLab,
#                      the deployment keeps running and is reused next time
#   ./run.sh ARGS…     aqua-lab ARGS…  (e.g. ./run.sh plan --model_ids 'phi-4,gemma-2b')
set -euo pipefail
AQUA_LAB_EXTRAS="local,evaluation" . "$(dirname "$0")/scripts/venv.sh"
export AQUA_LAB_CLI=./run.sh  # the CLI's hints then print commands that work as shown
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
token="${JUPYTER_TOKEN:-$(python -c 'import secrets; print(secrets.token_hex(24))')}"
args+=(--IdentityProvider.token="$token")
jupyter lab "${args[@]}" &
lab=$!
trap 'kill -INT "$lab" 2>/dev/null || true; wait "$lab"' INT TERM
# the "next" lines come once JupyterLab answers, so its start-up log does not scroll them away
python - "$port" <<'PY' || true
import sys, time, urllib.request
for _ in range(240):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api", timeout=1)
        break
    except Exception:
        time.sleep(0.25)
PY
{
  echo
  echo "==> next: open http://127.0.0.1:$port/lab/tree/quickstart_local.ipynb?token=$token"
  echo "    aqua_lab's REST API: http://127.0.0.1:$port/aqua/openapi.json (header: Authorization: token $token)"
  echo "    the CLI: ./run.sh deployment list --table    (Ctrl-C stops JupyterLab; deployments keep running)"
  echo
} >&2
wait "$lab"
