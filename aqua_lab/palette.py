"""A model's colour by its served name: the same in the sidebar, the widgets and the HTML reports.

The colours are ``aqua_lab/data/palette.json``; the rule, which ``labextension/src/palette.ts``
implements identically (``tests/test_palette.py`` runs both on the same names): each name's first
choice is its FNV-1a hash (of its UTF-8 bytes) modulo the palette's size, and names taken in code
point order move to the next free colour while one is free.  So a served name keeps its colour
whatever order a front lists the models in, and the models of one deployment never share a colour
until there are more of them than colours.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib.resources import files


@cache
def colours() -> tuple[str, ...]:
    return tuple(json.loads(files("aqua_lab.data").joinpath("palette.json").read_text("utf-8"))["colours"])


def _fnv1a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def colour_map(served_names: Iterable[str]) -> dict[str, str]:
    """A colour per distinct served name, in the order the names come."""
    palette = colours()
    names = list(dict.fromkeys(served_names))
    used: set[int] = set()
    chosen: dict[str, str] = {}
    for name in sorted(names):
        slot = _fnv1a(name) % len(palette)
        while len(used) < len(palette) and slot in used:
            slot = (slot + 1) % len(palette)
        used.add(slot)
        chosen[name] = palette[slot]
    return {name: chosen[name] for name in names}
