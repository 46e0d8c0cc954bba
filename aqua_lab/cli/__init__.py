"""The ``aqua-lab`` command line, one module per verb group (:mod:`.main` builds the parser)."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
