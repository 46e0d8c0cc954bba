#!/usr/bin/env bash
# The tests.  Sets everything up on first use, then runs pytest (arguments are passed through:
#   ./test.sh -m planning    runs one capability's tests).
# pytest's own exit status is kept: 5 ("no tests ran") fails like any other failure.
set -euo pipefail
AQUA_LAB_EXTRAS="local,test" . "$(dirname "$0")/scripts/venv.sh"
exec python -m pytest "$@"
