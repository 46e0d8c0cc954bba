#!/usr/bin/env bash
# The main job.  First use sets everything up (.venv, the local llama.cpp engine, the default model).
#   ./run.sh           a live two-model deployment on this machine, then JupyterLab with aqua_lab
#                      (REST API under /aqua/, notebooks/quickstart_local.ipynb); Ctrl-C (or closing the
#                      terminal, or SIGTERM) stops JupyterLab within seconds, the deployment keeps running
#                      and is reused next time.  When another deployment holds the cores, JupyterLab starts
#                      anyway and the lines it prints say which one and how to pause it.
#   ./run.sh ARGS…     aqua-lab ARGS…  (e.g. ./run.sh plan --model_ids 'phi-4,gemma-2b')
set -euo pipefail
AQUA_LAB_EXTRAS="local,evaluation" . "$(dirname "$0")/scripts/venv.sh"
export AQUA_LAB_CLI=./run.sh  # the CLI's hints then print commands that work as shown
if [ "$#" -gt 0 ]; then
  exec aqua-lab "$@"
fi
# The demo is a bonus, never a gate: whatever keeps it down (cores another deployment of the user's
# holds, a model that failed), JupyterLab starts, and the note says why and how to bring it up.
demo_note=""
aqua-lab demo || {
  status=$?
  [ "$status" = 130 ] && exit 130  # Ctrl-C while the demo came up: the user wants out, not JupyterLab
  demo_note="$(python scripts/demo_blocked.py)" || demo_note="==> the demo is not running (see above)"
  echo "$demo_note" >&2
}
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
# JupyterLab runs in a session of its own, so the terminal's Ctrl-C and hang-up reach this script
# only, which stops it with SIGTERM (JupyterLab's clean shutdown).  Started with `&` from a script it
# ignores SIGINT: forwarding ^C never stopped it.
lab=""
waiter=""
stop_lab() {
  trap '' INT TERM HUP  # a second ^C does not cut the shutdown short
  [ -z "$waiter" ] || kill "$waiter" 2>/dev/null || true
  [ -z "$lab" ] || kill -TERM "$lab" 2>/dev/null || true
  for _ in $(seq 50); do  # its own shutdown takes a second or two; past 10 s it is killed
    [ -n "$lab" ] && kill -0 "$lab" 2>/dev/null || break
    sleep 0.2
  done
  [ -z "$lab" ] || kill -KILL "$lab" 2>/dev/null || true
  # (|| true: a closed terminal takes no more output)
  echo "==> JupyterLab stopped; deployments keep running (./run.sh deployment list --table)" >&2 || true
  exit "$1"
}
trap 'stop_lab 130' INT
trap 'stop_lab 143' TERM
trap 'stop_lab 129' HUP
python -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' jupyter lab "${args[@]}" </dev/null &
lab=$!
# the "next" lines come once JupyterLab answers, so its start-up log does not scroll them away; the
# wait runs in the background because this script handles a signal only between commands
python - "$port" "$lab" <<'PY' &
import os, sys, time, urllib.request
for _ in range(240):
    try:
        os.kill(int(sys.argv[2]), 0)
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api", timeout=1)
        break
    except ProcessLookupError:
        break  # JupyterLab did not start: its own log says why
    except Exception:
        time.sleep(0.25)
PY
waiter=$!
wait "$waiter" || true
waiter=""
if kill -0 "$lab" 2>/dev/null; then
  {
    echo
    echo "==> next: open http://127.0.0.1:$port/lab/tree/quickstart_local.ipynb?token=$token"
    echo "    aqua_lab's REST API: http://127.0.0.1:$port/aqua/openapi.json (header: Authorization: token $token)"
    echo "    the CLI: ./run.sh deployment list --table    (Ctrl-C stops JupyterLab; deployments keep running)"
    [ -z "$demo_note" ] || printf '%s\n' "$demo_note"
    echo
  } >&2
fi
wait "$lab"
