"""Per-model metrics of one deployment: a table and small time-series plots (inline SVG: no
plotting library in the kernel), refreshed on a click or every few seconds."""

from __future__ import annotations

import threading

import ipywidgets as w

from ..domain import DeploymentMetrics, MetricPoint
from ..errors import AquaLabError
from ..service import AquaLabService
from .common import colour, esc, full_width, gone, message, palette

WINDOWS = [("5 minutes", 300.0), ("15 minutes", 900.0), ("1 hour", 3600.0), ("1 day", 86400.0)]
SERIES = [("requests", "requests"), ("ttft_p95_ms", "TTFT p95 ms"), ("tokens_per_s", "tokens/s")]


def sparkline(values: list[float | None], stroke: str, width: int = 140, height: int = 30) -> str:
    """An SVG polyline of ``values`` (gaps where None), scaled to its own maximum."""
    known = [v for v in values if v is not None]
    top = max(known, default=0) or 1.0
    step = width / max(1, len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values) if v is not None
    )
    label = f"max {top:g}" if known else "no data"
    return (
        f'<svg class="aqua-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(label)}"><polyline fill="none" stroke="{stroke}" stroke-width="1.5" points="{points}"/>'
        f"<title>{esc(label)}</title></svg>"
    )


def _cell(value: float | int | None, fmt: str = "{}") -> str:
    return "–" if value is None else esc(fmt.format(value))


def render(metrics: DeploymentMetrics) -> str:
    header = "".join(
        f"<th>{h}</th>"
        for h in ("model", "requests", "errors", "TTFT p50", "TTFT p95", "tokens/s", "in flight", "replicas")
    )
    header += "".join(f"<th>{esc(title)}</th>" for _, title in SERIES)
    rows = []
    tints = palette(m.model_name for m in metrics.models)
    for m in metrics.models:
        plots = "".join(
            f"<td>{sparkline([getattr(p, key) for p in m.series], tints[m.model_name])}</td>"
            if m.series
            else "<td>–</td>"
            for key, _ in SERIES
        )
        rows.append(
            f'<tr><td><span style="color:{tints[m.model_name]}">■</span> {esc(m.model_name)}</td>'
            f"<td>{_cell(m.requests)}</td><td>{_cell(m.errors)}</td>"
            f"<td>{_cell(m.ttft_p50_ms, '{:.0f} ms')}</td><td>{_cell(m.ttft_p95_ms, '{:.0f} ms')}</td>"
            f"<td>{_cell(m.tokens_per_s, '{:.1f}')}</td><td>{_cell(m.in_flight)}</td><td>{_cell(m.replicas)}</td>"
            f"{plots}</tr>"
        )
    deployment = "".join(
        f"<div>{esc(name)} {sparkline(_values(points), colour(len(tints) + j))}</div>"
        for j, (name, points) in enumerate(metrics.deployment.items())
        if len(points) > 1
    )
    return (
        f"<div class='aqua-metrics-source'>{esc(metrics.source)} · last {metrics.window_s:g} s</div>"
        f"<table class='aqua-metrics' style='width:100%'><tr>{header}</tr>{''.join(rows)}</table>{deployment}"
    )


def _values(points: list[MetricPoint]) -> list[float | None]:
    return [p.value for p in points]


class MetricsPanel(w.VBox):
    """Metrics of ``deployment_id``; ``auto`` refreshes every ``every_s`` seconds while shown."""

    def __init__(self, service: AquaLabService, deployment_id: str, every_s: float = 5.0, **kwargs):
        self.service, self.deployment_id, self.every_s = service, deployment_id, every_s
        self.window = w.Dropdown(options=WINDOWS, value=300.0, description="Window")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.auto = w.Checkbox(value=False, description="every 5 s")
        self.view = w.HTML(layout=full_width())
        self.metrics: DeploymentMetrics | None = None
        self._stop = threading.Event()
        self.refresh_button.on_click(lambda _: self.refresh())
        self.window.observe(lambda _: self.refresh(), names="value")
        self.auto.observe(self._auto_changed, names="value")
        super().__init__([w.HBox([self.window, self.refresh_button, self.auto]), self.view], **kwargs)
        self.refresh()

    def refresh(self) -> DeploymentMetrics | None:
        # a deleted deployment's numbers may still be kept (OCI Monitoring): they no longer describe anything
        if why := gone(self.service, self.deployment_id):
            self.forget(why)
            return None
        try:
            self.metrics = self.service.deployment_metrics(self.deployment_id, self.window.value)
        except AquaLabError as exc:
            self.view.value = message(str(exc), "error")
            return None
        self.view.value = render(self.metrics)
        return self.metrics

    def _auto_changed(self, change) -> None:
        if not change["new"]:
            self._stop.set()
            return
        self._stop = threading.Event()
        stop = self._stop

        def loop() -> None:
            while not stop.wait(self.every_s):
                self.refresh()

        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        """Ends the automatic refresh (the panel is being replaced)."""
        self._stop.set()

    def forget(self, why: str) -> None:
        """The deployment is gone: its numbers leave the view, which says why."""
        self.stop()
        self.auto.value = False
        self.metrics = None
        self.view.value = message(why, "warning")
