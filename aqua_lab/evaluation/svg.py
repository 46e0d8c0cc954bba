"""Self-contained SVG charts (no matplotlib, no CDN): box plots for score distributions, per
category or per model side by side."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from html import escape

from ..palette import colour_map, colours

#: the one palette's list, for charts coloured by position; a model is coloured by colour_map(names)
PALETTE = colours()


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0]
        return v, v, v
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Ticks on round steps (1, 2 or 5 × a power of ten) covering [lo, hi]: 0, 0.2, … 1, never 1.04 or 0.831."""
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    # rounded to the step's digits, so that 0.1 * 3 prints as 0.3
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(i * step, digits) for i in range(first, last + 1)]


def box_plot(groups: dict[str, Sequence[float]], title: str, y_label: str = "", width: int = 520) -> str:
    """One box (quartiles, whiskers at min/max, median line, mean dot) per group."""
    # the axis title goes on its own line under the title: turned along a 176 px axis a long one was clipped
    height, left, right, top, bottom = 276, 48, 12, 44, 56
    names = [n for n, v in groups.items() if v]
    values = [v for vs in groups.values() for v in vs]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    if not values:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no scores</text></svg>')
        return "".join(parts)
    lo, hi = min(values), max(values)
    ticks = nice_ticks(lo, hi)
    if lo >= 0 and ticks[0] < 0:  # scores that cannot be negative get no negative axis (ROUGE all 0)
        ticks = [t for t in ticks if t >= 0]
    lo, hi = ticks[0], ticks[-1]
    plot_h = height - top - bottom

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    for v in ticks:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    if y_label:
        parts.append(f'<text x="4" y="{top - 14}" fill="#555">{escape(y_label)}</text>')
    slot = (width - left - right) / max(1, len(names))
    tints = colour_map(names)  # a model's colour in the sidebar and the widgets too
    for i, name in enumerate(names):
        vs = sorted(groups[name])
        q1, q2, q3 = _quartiles(vs)
        cx = left + slot * (i + 0.5)
        half = min(28, slot * 0.3)
        color = tints[name]
        parts += [
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(vs[0]):.1f}" y2="{y(vs[-1]):.1f}" stroke="#555"/>',
            f'<rect x="{cx - half:.1f}" y="{y(q3):.1f}" width="{2 * half:.1f}" height="{max(1, y(q1) - y(q3)):.1f}" '
            f'fill="{color}" fill-opacity="0.55" stroke="{color}"><title>{escape(name)}: median {q2:.3f}, '
            f"n={len(vs)}</title></rect>",
            f'<line x1="{cx - half:.1f}" x2="{cx + half:.1f}" y1="{y(q2):.1f}" y2="{y(q2):.1f}" '
            'stroke="#222" stroke-width="2"/>',
            f'<circle cx="{cx:.1f}" cy="{y(statistics.fmean(vs)):.1f}" r="2.5" fill="#222"/>',
            f'<text x="{cx:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(_short(name))}</text>',
            f'<text x="{cx:.1f}" y="{height - bottom + 30}" text-anchor="middle" fill="#666">n={len(vs)}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def _short(name: str, limit: int = 22) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
