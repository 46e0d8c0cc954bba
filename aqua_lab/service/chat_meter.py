"""What the service's own chat path measures per model: time to first token, tokens, errors.

OCI Monitoring reports a model deployment's requests and latency per deployment, not per model, and
knows nothing of first tokens; every chat that goes through this service (REST, widgets, CLI) is
timed here instead, so a deployment's metrics can say per model what its users saw.  In memory, per
process: a restarted server starts counting again.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from ..domain import DeploymentMetrics, MetricPoint

MAX_SAMPLES = 20_000
POINTS = 30


@dataclass(slots=True)
class ChatSample:
    end: float
    deployment_id: str
    model: str
    ttft_s: float | None
    tokens: int
    error: bool


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class ChatMeter:
    def __init__(self) -> None:
        self.samples: deque[ChatSample] = deque(maxlen=MAX_SAMPLES)
        self._lock = threading.Lock()

    def record(self, deployment_id: str, model: str, ttft_s: float | None, tokens: int, error: bool) -> None:
        with self._lock:
            self.samples.append(ChatSample(time.time(), deployment_id, model, ttft_s, tokens, error))

    def fill(self, metrics: DeploymentMetrics) -> DeploymentMetrics:
        """``metrics`` with the chat path's numbers in each model the platform could not measure
        itself (``requests`` unknown); models it did measure (the local router) are left alone."""
        if all(m.requests is not None for m in metrics.models):
            return metrics
        now = time.time()
        since = now - metrics.window_s
        step = metrics.window_s / POINTS
        with self._lock:
            mine = [s for s in self.samples if s.deployment_id == metrics.deployment_id and s.end >= since]
        models = []
        for m in metrics.models:
            if m.requests is not None:
                models.append(m)
                continue
            rows = [s for s in mine if s.model == m.model_name]
            ttfts = [s.ttft_s for s in rows if s.ttft_s is not None]
            series = []
            for i in range(POINTS):
                bucket = [s for s in rows if since + i * step <= s.end < since + (i + 1) * step]
                series.append(
                    MetricPoint(
                        time=since + (i + 1) * step,
                        requests=len(bucket),
                        errors=sum(s.error for s in bucket),
                        ttft_p95_ms=_ms(_quantile([s.ttft_s for s in bucket if s.ttft_s is not None], 0.95)),
                        tokens_per_s=sum(s.tokens for s in bucket) / step,
                    )
                )
            models.append(
                m.model_copy(
                    update={
                        "requests": len(rows),
                        "errors": sum(s.error for s in rows),
                        "generated_tokens": sum(s.tokens for s in rows),
                        "ttft_p50_ms": _ms(_quantile(ttfts, 0.5)),
                        "ttft_p95_ms": _ms(_quantile(ttfts, 0.95)),
                        "tokens_per_s": sum(s.tokens for s in rows) / metrics.window_s,
                        "series": series,
                    }
                )
            )
        source = f"{metrics.source}; per model: the chats this server relayed"
        return metrics.model_copy(update={"models": models, "source": source})
