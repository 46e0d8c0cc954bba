"""A model's residency in the widgets (issue 28), as the sidebar shows it: how long it has slept and
its last wake, and its memory planned (weights / KV cache / other) next to measured (the engine's
buffers and its process's RSS), with the planner's error in %."""

from __future__ import annotations

from datetime import UTC, datetime

from ..domain import ModelMemory, ModelState
from .common import esc

_COLOURS = {"weights": "#1976d2", "kv": "#7b1fa2", "compute": "#f57c00", "other": "#bdbdbd"}


def _ago(iso: str, now: datetime) -> str:
    seconds = max(0, round((now - datetime.fromisoformat(iso)).total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    return f"{round(seconds / 60)} min" if seconds < 5400 else f"{seconds // 3600} h"


def _clock(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S")


def residency_note(s: ModelState, now: datetime | None = None) -> str:
    """Says e.g. "asleep 42 s (since 10:01:21) · last wake 0.71 s at 10:02:03"; "" when it never slept."""
    now = now or datetime.now(UTC)
    parts = []
    if s.state == "SLEEPING" and s.asleep_since:
        parts.append(f"asleep {_ago(s.asleep_since, now)} (since {_clock(s.asleep_since)})")
    if s.state == "LOADING":
        parts.append("waking: loading its weights")
    if s.last_wake_s is not None and s.last_woke_at:
        parts.append(f"last wake {s.last_wake_s:.2f} s at {_clock(s.last_woke_at)}")
    return " · ".join(parts)


def _bar(parts: list[tuple[str, float | None, str]], scale: float) -> str:
    spans = "".join(
        f"<span title='{esc(label)}: {round(mib)} MiB' style='display:inline-block;height:7px;"
        f"width:{100 * mib / scale:.1f}%;background:{_COLOURS[kind]}'></span>"
        for kind, mib, label in parts
        if mib and mib > 0
    )
    return f"<span style='display:inline-flex;width:45%;background:#eee;vertical-align:middle'>{spans}</span>"


def memory_bar(m: ModelMemory | None) -> str:
    """HTML: planned vs measured on one scale; "" when nothing was measured (not resident, not local)."""
    if m is None or not m.rss_mib:
        return ""
    planned = m.planned_mib or 0.0
    scale = max(planned, m.rss_mib, 1.0)
    engine = (m.weights_mib or 0) + (m.kv_cache_mib or 0) + (m.compute_mib or 0)
    error = f" · plan {m.error_pct:+g}%" if m.error_pct is not None else ""
    rows = []
    if planned:
        other = planned - (m.planned_weights_mib or 0) - (m.planned_kv_cache_mib or 0)
        parts = [
            ("weights", m.planned_weights_mib, "weights"),
            ("kv", m.planned_kv_cache_mib, "KV cache"),
            ("other", other, "engine overhead"),
        ]
        rows.append(f"planned {_bar(parts, scale)} {round(planned)} MiB")
    measured = [
        ("weights", m.weights_mib, "weights (engine)"),
        ("kv", m.kv_cache_mib, "KV cache (engine)"),
        ("compute", m.compute_mib, "compute buffers (engine)"),
        ("other", m.rss_mib - engine, "rest of the process (RSS)"),
    ]
    rows.append(f"measured {_bar(measured, scale)} {round(m.rss_mib)} MiB RSS{error}")
    return "<div class='aqua-memory' style='font-size:11px'>" + "<br>".join(rows) + "</div>"


def model_cell(s: ModelState) -> str:
    """One model of a deployment's row: name, state, its residency and its memory (HTML)."""
    note = residency_note(s)
    return (
        f"<div>{esc(s.model_name)} <b>{esc(s.state)}</b>"
        + (f" <span style='color:#757575'>{esc(note)}</span>" if note else "")
        + f"{memory_bar(s.memory)}</div>"
    )
