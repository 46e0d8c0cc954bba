"""``aqua-lab`` — the command line, with the verbs and option names of ``ads aqua deployment …``.

Every verb goes through the service facade.  ``--platform`` picks where: ``oci`` (OCI Data
Science), ``bundled`` (OCI's service models and shapes as shipped — plans only; the default for
planning verbs) or ``local`` (this machine — the default for deployment verbs); without it,
``$AQUA_LAB_PLATFORM`` decides, else an ``ocid1.`` id means ``oci``.  Bad input ends with a
one-line ``aqua-lab: error: …`` on stderr and exit status 2; nothing is half-done.  A deployment
that ends FAILED or NEEDS_ATTENTION exits 1, one still not settled at ``--timeout`` exits 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import AquaLabError, InvalidInput
from . import catalog, deployments, evaluation, planning, scaling
from .common import PLATFORM_ENV, CommandFailed, Parser, add_deployment_id


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="aqua-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"aqua-lab {__version__}")
    verbs = parser.add_subparsers(dest="group", required=True, parser_class=Parser)
    deployment = verbs.add_parser("deployment", help="shapes, plans, deployments")
    dverbs = deployment.add_subparsers(dest="verb", required=True, parser_class=Parser)
    planning.add_deployment_verbs(dverbs)
    deployments.add_deployment_verbs(dverbs)
    scaling.add_commands(dverbs, add_deployment_id)
    deployments.add_top_verbs(verbs)
    deployments.add_model_group_verbs(verbs)
    planning.add_top_verbs(verbs)
    evaluation.add_top_verbs(verbs)
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
    except InvalidInput as exc:
        text = "; ".join(str(p) for p in exc.problems) if len(exc.problems) > 1 else str(exc)
        print(f"aqua-lab: error: {text}{_platform_note(args)}", file=sys.stderr)
        return 2
    except AquaLabError as exc:
        print(f"aqua-lab: error: {exc}{_platform_note(args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\naqua-lab: interrupted", file=sys.stderr)
        return 130
    if output:
        try:
            print(output, flush=True)
        except BrokenPipeError:  # `… | head` stopped reading: that is the reader's choice, not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


def _platform_note(args) -> str:  # noqa: ANN001
    """Which platform ran a deployment verb that failed when nothing on the command line chose it:
    the seed's commands, run verbatim on the local default, otherwise fail with no hint."""
    if getattr(args, "platform_reason", None) == "default" and args.platform == "local":
        return (
            f" (ran on the local platform, this verb's default: for OCI pass --platform oci or set {PLATFORM_ENV}=oci)"
        )
    return ""


if __name__ == "__main__":
    sys.exit(main())
