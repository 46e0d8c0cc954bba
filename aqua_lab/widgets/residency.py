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


def memory_bar(m: ModelMemory | None, state: str | None = None) -> str:
    """HTML: planned vs measured on one scale, and a key to the colours; "" when nothing was measured
    (not local, no process).  Asleep, the engine's buffers are freed: the second bar is what the
    sleeping process still holds."""
    if m is None or not m.rss_mib:
        return ""
    asleep = state == "SLEEPING"
    planned = m.planned_mib or 0.0
    # on a GPU the plan is GPU memory, which the driver counts and RSS does not see
    on_gpu = not asleep and bool(m.gpu_mib)
    held = (m.gpu_mib or 0.0) if on_gpu else m.rss_mib
    source = "GPU (driver)" if on_gpu else "RSS"
    scale = max(planned, held, 1.0)
    engine = 0 if asleep else (m.weights_mib or 0) + (m.kv_cache_mib or 0) + (m.compute_mib or 0)
    error = f" · plan {m.error_pct:+g}%" if m.error_pct is not None else ""
    rows = []
    if planned:
        other = planned - (m.planned_weights_mib or 0) - (m.planned_kv_cache_mib or 0)
        parts = [
            ("weights", m.planned_weights_mib, "weights"),
            ("kv", m.planned_kv_cache_mib, "KV cache"),
            ("other", other, "engine: compute and output buffers, runtime"),
        ]
        rows.append(f"planned {_bar(parts, scale)} {round(planned)} MiB")
    if asleep:
        held = f" ({100 * m.rss_mib / planned:.0f} % of the plan)" if planned else ""
        rows.append(f"asleep {_bar([('other', m.rss_mib, 'held asleep (RSS)')], scale)} {round(m.rss_mib)} MiB{held}")
    else:
        measured = [
            ("weights", m.weights_mib, "weights (engine)"),
            ("kv", m.kv_cache_mib, "KV cache (engine)"),
            ("compute", m.compute_mib, "compute buffers (engine)"),
            ("other", held - engine, f"rest of the process ({source})"),
        ]
        rows.append(f"{'GPU' if on_gpu else 'measured'} {_bar(measured, scale)} {round(held)} MiB {source}{error}")
    key = " ".join(
        f"<span style='display:inline-block;width:8px;height:8px;background:{colour}'></span> {label}"
        for kind, colour in _COLOURS.items()
        if not (asleep and kind == "compute")
        for label in [{"kv": "KV cache"}.get(kind, kind)]
    )
    return "<div class='aqua-memory' style='font-size:11px'>" + "<br>".join([*rows, key]) + "</div>"


def model_cell(s: ModelState) -> str:
    """One model of a deployment's row: name, state, its residency and its memory (HTML)."""
    note = residency_note(s)
    return (
        f"<div>{esc(s.model_name)} <b>{esc(s.state)}</b>"
        + (f" <span style='color:#757575'>{esc(note)}</span>" if note else "")
        + f"{memory_bar(s.memory, s.state)}</div>"
    )
