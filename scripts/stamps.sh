# Sourced by venv.sh (and its test): which installs of aqua_lab into .venv are still good.
# An install is stamped .venv/.aqua_lab-installed-<extras> (comma-separated); one with more extras
# serves a request for fewer (./run.sh after ./test.sh needs nothing new), while pyproject.toml
# is older than its stamp.

# installed_for EXTRAS -> exit 0 when some stamp covers every extra in EXTRAS and is newer than pyproject.toml
installed_for() {
  local wanted="${1:-core}" stamp have extra missing
  for stamp in .venv/.aqua_lab-installed-*; do
    [ -f "$stamp" ] || continue
    [ pyproject.toml -nt "$stamp" ] && continue
    have=",${stamp#.venv/.aqua_lab-installed-},"
    missing=0
    for extra in ${wanted//,/ }; do
      [ "$extra" = core ] && continue
      case "$have" in *",$extra,"*) ;; *) missing=1 ;; esac
    done
    [ "$missing" = 0 ] && return 0
  done
  return 1
}

# install_note -> what the install about to happen will be like, in one line
install_note() {
  if compgen -G ".venv/.aqua_lab-installed-*" >/dev/null; then
    echo "updating: pyproject.toml changed or new extras; usually under a minute"
  else
    echo "first time: a few minutes"
  fi
}
