#!/usr/bin/env bash
# The tests.  Sets everything up on first use, then runs pytest (arguments are passed through:
#   ./test.sh -m planning    runs one capability's tests).
# pytest's own exit status is kept: 5 ("no tests ran") fails like any other failure.
set -euo pipefail
AQUA_LAB_EXTRAS="local,evaluation,test" . "$(dirname "$0")/scripts/venv.sh"
# The browser test drives JupyterLab in headless Chromium through playwright-core (no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium for the browser test" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "==> chromium is missing: the browser test will fail (install Debian's chromium)" >&2
  fi
fi
if [ ! -d ui-tests/node_modules/playwright-core ]; then
  (cd ui-tests && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
# llama.cpp's own view of this CPU (the engine is built by venv.sh above): which kernels it will use
if [ -n "${CI:-}" ]; then
  echo "==> llama.cpp system_info: $(python -c 'from aqua_lab.platforms.local.engine_build import system_info; print(system_info())')"
fi
exec python -m pytest "$@"
