"""Self-contained SVG for a leaderboard in a report: the strengths on the Elo scale with their 95 %
intervals as error bars, and the win-rate matrix as a heat map with the comparisons per pair."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from .svg import PALETTE, nice_ticks

#: below one half (the row model lost more often) → white → above one half
LOSS_RGB, WIN_RGB = (214, 96, 77), (33, 113, 181)


def strength_bars(standings: Sequence[Any], title: str = "Strength (Elo scale, 95 % interval)") -> str:
    """One row per model, best first: a dot at its strength and a bar over its interval; models never
    compared are listed without a mark.  ``standings`` are leaderboard Standings (attributes)."""
    width, label, right, row, top = 560, 170, 56, 24, 30
    height = top + row * len(standings) + 34
    rated = [s for s in standings if s.elo is not None]
    ends = [v for s in rated for v in (s.elo_low, s.elo_high, s.elo) if v is not None] or [1000.0]
    ticks = nice_ticks(min(*ends, 1000.0), max(*ends, 1000.0), 5)
    lo, hi = ticks[0], ticks[-1]

    def x(v: float) -> float:
        return label + (v - lo) / (hi - lo) * (width - label - right)

    axis = top + row * len(standings)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="strengths" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" font-family="sans-serif" '
        'font-size="11">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{axis}" y2="{axis}" stroke="#888"/>',
    ]
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 6}" y2="{axis}" stroke="#eee"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{axis + 14}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{(label + width - right) / 2}" y="{axis + 28}" text-anchor="middle" fill="#555">')
    parts.append("Elo (1000 = the rated models' mean)</text>")
    for i, s in enumerate(standings):
        y = top + row * i + row / 2
        name = s.model if len(s.model) <= 26 else s.model[:25] + "…"
        parts.append(f'<text x="{label - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(name)}</text>')
        if s.elo is None:
            parts.append(f'<text x="{label}" y="{y + 4:.1f}" fill="#888">not compared</text>')
            continue
        color = PALETTE[i % len(PALETTE)]
        tip = f"{s.model}: {s.elo:.0f}"
        if s.elo_low is not None and s.elo_high is not None:
            a, b = x(s.elo_low), x(s.elo_high)
            tip += f" (95 % {s.elo_low:.0f}–{s.elo_high:.0f})"
            parts.append(
                f'<g class="interval" data-low="{s.elo_low:.1f}" data-high="{s.elo_high:.1f}" stroke="{color}" '
                f'stroke-width="2"><line x1="{a:.1f}" x2="{b:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<line x1="{a:.1f}" x2="{a:.1f}" y1="{y - 6:.1f}" y2="{y + 6:.1f}"/>'
                f'<line x1="{b:.1f}" x2="{b:.1f}" y1="{y - 6:.1f}" y2="{y + 6:.1f}"/></g>'
            )
        parts.append(
            f'<circle cx="{x(s.elo):.1f}" cy="{y:.1f}" r="4" fill="{color}"><title>{escape(tip)}</title></circle>'
            f'<text x="{width - 4}" y="{y + 4:.1f}" text-anchor="end">{s.elo:.0f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def heat_colour(rate: float) -> str:
    """White at one half, toward blue as the row model wins more, toward red as it loses more."""
    rgb = WIN_RGB if rate >= 0.5 else LOSS_RGB
    t = min(1.0, abs(rate - 0.5) * 2)
    mixed = (round(255 + (c - 255) * t * 0.85) for c in rgb)
    return "#{:02x}{:02x}{:02x}".format(*mixed)


def win_rate_heat_map(
    models: Sequence[str], win_rate: Sequence[Sequence[float | None]], comparisons: Sequence[Sequence[int]]
) -> str:
    """An HTML table: cell [i][j] is the share of i's comparisons with j that i won, coloured, with n."""
    head = "".join(f"<th title='{escape(m)}'>{escape(m)}</th>" for m in models)
    parts = [f"<table class='heatmap'><tr><th>won against →</th>{head}</tr>"]
    for i, m in enumerate(models):
        cells = []
        for j in range(len(models)):
            rate, n = win_rate[i][j], comparisons[i][j]
            if i == j:
                cells.append("<td class='self'></td>")
            elif rate is None:
                cells.append(f"<td data-n='{n}'>—</td>")
            else:
                cells.append(
                    f"<td data-rate='{rate:.3f}' data-n='{n}' style='background:{heat_colour(rate)}'>"
                    f"{rate:.0%}<br><small>n={n}</small></td>"
                )
        parts.append(f"<tr><th title='{escape(m)}'>{escape(m)}</th>{''.join(cells)}</tr>")
    parts.append("</table>")
    return "".join(parts)
