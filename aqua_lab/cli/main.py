"""``aqua-lab`` — the command line, with the verbs and option names of ``ads aqua deployment …``.

Every verb goes through the service facade.  ``--platform`` picks where: ``bundled`` (OCI's service
models and shapes as shipped — plans only; the default for planning verbs) or ``local`` (this
machine — the default for deployment verbs).  Bad input ends with a one-line
``aqua-lab: error: …`` on stderr and exit status 2; nothing is half-done.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import AquaLabError, InvalidInput
from . import catalog, deployments, evaluation, planning, scaling
from .common import Parser, add_deployment_id


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
    planning.add_top_verbs(verbs)
    evaluation.add_top_verbs(verbs)
    catalog.add_top_verbs(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        output = args.run(args)
    except InvalidInput as exc:
        text = "; ".join(str(p) for p in exc.problems) if len(exc.problems) > 1 else str(exc)
        print(f"aqua-lab: error: {text}", file=sys.stderr)
        return 2
    except AquaLabError as exc:
        print(f"aqua-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\naqua-lab: interrupted", file=sys.stderr)
        return 130
    if output:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
