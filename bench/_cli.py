"""The command line every bench script shares: its options with their defaults, and ``--quick`` (the
same code path on small inputs, what ``tests/test_benches.py`` runs), plus the percentile they print.

Not a bench itself (the leading underscore keeps it out of the list of scripts the tests run)."""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
from typing import Any


def arguments(doc: str, quick: dict[str, Any], argv: list[str] | None = None, **options: Any) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv``) for the script whose docstring is ``doc``.  Each option is
    ``name=default`` or ``name=(default, help)``, spelt ``--name`` or with dashes: a list default takes
    one or more values, a ``False`` one is a flag, ``None`` a text; ``--quick`` sets the values in ``quick``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, given in options.items():
        default, text = given if isinstance(given, tuple) else (given, None)
        flags = dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}"])
        if default is False:
            parser.add_argument(*flags, action="store_true", help=text)
        elif isinstance(default, list):
            parser.add_argument(*flags, type=type(default[0]), nargs="+", default=default, help=text)
        else:
            parser.add_argument(*flags, type=str if default is None else type(default), default=default, help=text)
    shown = ", ".join(f"{k} {v}" for k, v in quick.items())
    parser.add_argument("--quick", action="store_true", help=f"{shown} (what the test runs)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    # a bench stopped with SIGTERM (a test's timeout, kill) must still run its finally blocks and
    # delete the deployments it made, as it does on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        for name, value in quick.items():
            setattr(args, name, value)
    return args


def print_result(result: dict[str, Any], width: int) -> None:
    """A bench's result: one JSON object with ``--json`` (what a test reads), else a line per key."""
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:{width}} {value}")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (one value is its own percentile)."""
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]
