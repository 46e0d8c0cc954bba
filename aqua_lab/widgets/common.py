"""Shared bits of the panels: colours that read in light and dark themes, small HTML helpers, and
running a service call off the kernel's event loop."""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w

from ..errors import AquaLabError
from ..service import AquaLabService, colour_map, palette_colours

# the one palette (aqua_lab/data/palette.json): the sidebar and the reports colour models alike
PALETTE = list(palette_colours())
IDLE = "var(--jp-layout-color3, #bbb)"


#: a label up to this many characters shows whole; a longer one ends in "…" (the whole of it in the tooltip)
LABEL_CH = 48


def scrolling(table_html: str) -> str:
    """A table that scrolls sideways inside the output area instead of cutting its last columns."""
    return f"<div class='aqua-scroll' style='overflow-x:auto;max-width:100%'>{table_html}</div>"


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def palette(served_names: Iterable[str]) -> dict[str, str]:
    """A colour per served name, keyed by the name: two copies of one model are two served names, so
    two colours, and a model has the same colour here as in the sidebar and the reports."""
    return colour_map(served_names)


def label_width(labels: Iterable[str]) -> str:
    """The description width that shows the longest of ``labels`` whole (up to :data:`LABEL_CH`), so
    "SmolLM2-135M-Instruct" and "SmolLM2-135M-Instruct-2" are not both cut to "SmolLM2-…"."""
    return f"{min(LABEL_CH, max((len(label) for label in labels), default=0)) + 2}ch"


def gone(service: AquaLabService, deployment_id: str) -> str | None:
    """Why ``deployment_id`` can no longer be shown or asked (deleted, even from another cell), else None."""
    try:
        state = service.get_deployment(deployment_id).state
    except AquaLabError:
        state = None
    return gone_reason(deployment_id, state)


def gone_reason(deployment_id: str, state: str | None) -> str | None:
    """The same, from a state already at hand (None: the platform no longer lists it)."""
    if state is None:
        return f"{deployment_id} is gone: pick another deployment in Deployments."
    if state == "DELETED":
        return f"{deployment_id} was deleted: pick another deployment in Deployments."
    return None


def esc(text: Any) -> str:
    return html.escape(str(text))


def message(text: str, kind: str = "info") -> str:
    """A one-line notice styled with Jupyter's own variables (so themes apply)."""
    colours = {
        "error": "var(--jp-error-color1, #d32f2f)",
        "warning": "var(--jp-warn-color1, #f57c00)",
        "info": "var(--jp-ui-font-color2, #555)",
        "ok": "var(--jp-success-color1, #388e3c)",
    }
    return f'<div class="aqua-msg aqua-{kind}" style="color:{colours[kind]};white-space:pre-wrap">{esc(text)}</div>'


def full_width(**kwargs: Any) -> w.Layout:
    return w.Layout(width="100%", **kwargs)


def fits(**kwargs: Any) -> w.Layout:
    """As wide as the panel and never wider (a 100%-wide input plus its margin overflows it)."""
    return w.Layout(width="auto", max_width="100%", flex="1 1 auto", **kwargs)


def wrap(**kwargs: Any) -> w.Layout:
    """A row that wraps on a narrow panel instead of running off its edge."""
    return w.Layout(flex_flow="row wrap", max_width="100%", **kwargs)


def in_background(fn: Callable[[], Any], on_error: Callable[[BaseException], None]) -> threading.Thread:
    """Run ``fn`` in a thread: the kernel stays responsive (and a Stop button works) while a
    deployment comes up or a model streams."""

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # shown in the panel, never lost in a thread
            on_error(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def run_async(coro_factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from a worker thread (the kernel's own loop is busy)."""
    return asyncio.run(coro_factory())
