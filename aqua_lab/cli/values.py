"""What an option's value may be, checked where argparse reads it (one line naming the option, exit
2), and how numbers print: as people write them."""

from __future__ import annotations

import argparse
import math

from ..errors import shown

#: no count or size a platform, an engine or SQLite takes is beyond a signed 64-bit integer
INT64 = 1 << 63


def whole_arg(text: str) -> int:
    """An integer option: a whole number a platform can carry (``10**400`` is refused here, by name,
    not deep in a request model or an engine)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {shown(text)}") from None
    if not -INT64 <= value < INT64:
        raise argparse.ArgumentTypeError(f"{shown(text)} is beyond any count or size: give a smaller whole number")
    return value


def count_arg(text: str) -> int:
    """A how-many option (``--lines``): a whole number ≥ 0."""
    value = whole_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {shown(text)}")
    return value


def real_arg(text: str) -> float:
    """A number option: finite (``nan``, ``inf`` and ``1e400`` are no temperature, share or size)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {shown(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {shown(text)}")
    return value


def seconds_arg(text: str) -> float:
    """``--timeout``: seconds, a finite number ≥ 0 (NaN or inf would wait forever without saying so)."""
    try:
        value = real_arg(text)
    except argparse.ArgumentTypeError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds, a number ≥ 0 such as 600, got {shown(text)}")
    return value


def number(value: float | int) -> str:
    """A number as people write it: ``1048576``, ``16.06``, ``0.00005`` — never ``1.04858e+06``
    (``:g`` switches to exponents from a million on)."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value.is_integer():
        return str(int(value))
    if abs(value) >= 1e6:
        return f"{value:.0f}"
    text = f"{value:g}"
    return f"{value:.10f}".rstrip("0") if "e" in text else text
