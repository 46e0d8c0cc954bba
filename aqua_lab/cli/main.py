"""``aqua-lab`` — the command line, with the verbs and option names of ``ads aqua deployment …``.

Every verb goes through the service facade.  ``--platform`` picks where: ``oci`` (OCI Data
Science), ``bundled`` (OCI's service models and shapes as shipped — plans only) or ``local`` (this
machine); without it, ``$AQUA_LAB_PLATFORM`` decides, else an ``ocid1.`` id means ``oci``, else
``local`` — the server's default too, so a plan is made where its deployment goes.  Bad input —
any value of any option — ends with a one-line ``aqua-lab: error: …`` on stderr and exit status 2;
nothing is half-done.  A deployment that ends FAILED or NEEDS_ATTENTION exits 1, one still not
settled at ``--timeout`` exits 3; an error no check foresaw is one line and exit 70.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from .. import __version__
from ..errors import AquaLabError, InvalidInput, Problem, shown
from . import arena, catalog, deployments, evaluation, planning, scaling
from .common import DEBUG_ENV, EXIT_BUG, CommandFailed, Parser, add_deployment_id, cli_problems, on_options
from .hints import platform_note


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="aqua-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"aqua-lab {__version__}")
    verbs = parser.add_subparsers(dest="group", required=True, parser_class=Parser)
    deployment = verbs.add_parser("deployment", help="shapes, plans, deployments")
    dverbs = deployment.add_subparsers(dest="verb", required=True, parser_class=Parser)
    planning.add_deployment_verbs(dverbs)
    deployments.add_deployment_verbs(dverbs)
    scaling.add_commands(dverbs, add_deployment_id)
    arena.add_deployment_verbs(dverbs)
    deployments.add_top_verbs(verbs)
    deployments.add_model_group_verbs(verbs)
    planning.add_top_verbs(verbs)
    evaluation.add_top_verbs(verbs)
    arena.add_top_verbs(verbs)
    catalog.add_top_verbs(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        output = args.run(args)
    except CommandFailed as exc:
        if exc.output:
            print(exc.output)
        print(f"aqua-lab: error: {exc}", file=sys.stderr)
        return exc.code
    except ValidationError as exc:  # a request model refused an option's value: the option, not a traceback
        return _refused(args, cli_problems(exc))
    except AquaLabError as exc:
        return _refused(args, exc)
    except BrokenPipeError:  # a streamed answer piped into `head`: the reader's choice, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.filename is None:
            return _bug(exc)
        # a path given on the command line that the system refuses (too long, a directory, …)
        return _refused(args, InvalidInput(Problem("", f"{exc.strerror}: {shown(str(exc.filename))}", None)))
    except KeyboardInterrupt:
        print("\naqua-lab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 — the last resort: one line, not a traceback
        return _bug(exc)
    if output:
        try:
            print(output, flush=True)
        except BrokenPipeError:  # `… | head` stopped reading: that is the reader's choice, not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


def _refused(args: argparse.Namespace, exc: AquaLabError) -> int:
    if isinstance(exc, InvalidInput) and (options := getattr(args, "field_options", None)):
        exc = on_options(exc, options)  # the verb's options, not the REST fields the service names
    if isinstance(exc, InvalidInput) and len(exc.problems) > 1:
        text = "; ".join(str(p) for p in exc.problems)
    else:
        text = str(exc)
    print(f"aqua-lab: error: {text}{platform_note(args, exc)}", file=sys.stderr)
    return 2


def _bug(exc: BaseException) -> int:
    """An error no check foresaw is a bug of aqua-lab: one line and EXIT_BUG; the traceback only
    with AQUA_LAB_DEBUG=1 (then it goes on to Python's own handler)."""
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        raise exc
    what = " ".join(str(exc).split())[:300]
    print(
        f"aqua-lab: internal error: {type(exc).__name__}: {what} — a bug of aqua-lab; {DEBUG_ENV}=1 shows where",
        file=sys.stderr,
    )
    return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
