#!/usr/bin/env bash
# Build the JupyterLab sidebar (TypeScript in labextension/ → aqua_lab/labextension/) when it is
# missing or its sources changed, then make the active virtual environment's JupyterLab load this
# checkout's build.  Run by scripts/venv.sh (so by ./run.sh and ./test.sh) and, with --build-only,
# by the editable install's build hook (`jlpm build:if-stale`, see pyproject.toml).
# Without node it builds nothing and says so: JupyterLab then starts without the sidebar.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=aqua_lab/labextension
stamp=lib/.aqua-lab-sources.sha256
sources() {
  ls package.json yarn.lock tsconfig.json .yarnrc.yml install.json 2>/dev/null
  find labextension/src labextension/style schema -type f | LC_ALL=C sort
}
digest="$(sources | xargs sha256sum | sha256sum | cut -d' ' -f1)"

if [ -f "$out/static/style.js" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
  : # up to date
elif ! command -v node >/dev/null 2>&1; then
  if [ -f "$out/package.json" ]; then
    echo "==> node not found: keeping the sidebar already built in $out (its sources changed since)" >&2
  else
    echo "==> node not found: JupyterLab will start without the AQUA Lab sidebar (the REST API, the" \
         "notebook widgets and the CLI all work). Install Node.js 20+ and rerun to build it." >&2
  fi
  exit 0
else
  mkdir -p build
  echo "==> building the AQUA Lab sidebar (labextension/ → $out)" >&2
  jlpm=(jlpm)
  command -v jlpm >/dev/null 2>&1 || jlpm=(python -c "from jupyter_builder.jlpm import main; main()")
  "${jlpm[@]}" install --mode=skip-build >/dev/null 2>build/labextension.log || { cat build/labextension.log >&2; exit 1; }
  "${jlpm[@]}" run build:prod >build/labextension.log 2>&1 || { tail -40 build/labextension.log >&2; exit 1; }
  rm -f build/labextension.log
  mkdir -p lib && echo "$digest" >"$stamp"
fi

[ "${1:-}" = "--build-only" ] && exit 0
# JupyterLab finds federated extensions under <prefix>/share/jupyter/labextensions: point the
# environment's entry at this checkout's build so a rebuild shows after a page reload.
if [ -n "${VIRTUAL_ENV:-}" ] && [ -f "$out/package.json" ]; then
  dest="$VIRTUAL_ENV/share/jupyter/labextensions/aqua-lab"
  if [ "$(readlink "$dest" 2>/dev/null)" != "$PWD/$out" ]; then
    mkdir -p "$(dirname "$dest")"
    rm -rf "$dest"
    ln -s "$PWD/$out" "$dest"
  fi
fi
