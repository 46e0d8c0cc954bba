"""What the local router measures per model of a deployment, for Prometheus and for aqua_lab itself.

Counters (requests by replica and status, errors by kind, generated tokens) and a time-to-first-token
histogram are ``prometheus-client`` metrics in the router's own registry; in-flight requests,
replicas and the recent p50/p95 TTFT and tokens/s are read when scraped (a collector), so nothing
is updated per token.  The router records one sample per finished request (its time, TTFT, tokens,
whether it failed); ``recent`` turns the samples of a window into the per-model summary and time
series that ``GET deployments/{id}/metrics`` shows.

Time to first token is from the request reaching the router to the first body bytes it passes on
(the first SSE event of a stream; the whole answer of a non-streamed request).  Tokens are the
engine's own count: ``usage.completion_tokens``, else llama.cpp's ``timings.predicted_n`` (its
streamed chat answers carry no usage), else the number of streamed events.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from .supervisor import Server, Supervisor

#: the window of the p50/p95 and tokens/s gauges in /metrics
GAUGE_WINDOW_S = 60.0
#: the longest window ``recent`` answers (the router's samples do not reach further back); the local
#: platform declares it as its metrics limit, so REST, CLI and widgets refuse a longer one with 422
MAX_WINDOW_S = 86400.0
#: finished requests kept for `recent` (about an hour of a busy CPU deployment)
MAX_SAMPLES = 20_000
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(slots=True)
class Sample:
    end: float  # wall-clock time the request finished
    model: str
    replica: int
    ttft_s: float | None
    tokens: int
    duration_s: float
    error: str | None  # None when answered completely


def completion_tokens(data: bytes) -> int | None:
    """The engine's count of generated tokens in one JSON body or SSE event (None when it has none)."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    usage = body.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        return usage["completion_tokens"]
    timings = body.get("timings")
    if isinstance(timings, dict) and isinstance(timings.get("predicted_n"), int):
        return timings["predicted_n"]
    return None


def quantile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by nearest rank: exact on the samples, no interpolation to explain."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    return ordered[rank - 1]


class RouterMetrics:
    def __init__(self, supervisor: Supervisor):
        self.supervisor = supervisor
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "aqua_lab_requests",
            "Requests the router passed to a model, by replica and HTTP status",
            ["model", "replica", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "aqua_lab_request_errors",
            "Requests that did not end with a complete answer, by kind",
            ["model", "kind"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "aqua_lab_generated_tokens",
            "Tokens the model generated (the engine's count)",
            ["model"],
            registry=self.registry,
        )
        self.ttft = Histogram(
            "aqua_lab_time_to_first_token_seconds",
            "From the request reaching the router to the first bytes of the answer",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.samples: deque[Sample] = deque(maxlen=MAX_SAMPLES)
        self.started = time.time()
        # (model, replica, code) → its counters' children: ``labels()`` checks and locks on every call
        self._children: dict[tuple[str, int, int], tuple[Any, Any, Any]] = {}
        self.registry.register(_Live(self))

    def record(
        self,
        server: Server,
        name: str,
        code: int,
        ttft_s: float | None,
        tokens: int,
        duration_s: float,
        error: str | None,
    ) -> None:
        replica = server.spec.replica + 1
        children = self._children.get((name, replica, code))
        if children is None:
            children = self._children[(name, replica, code)] = (
                self.requests.labels(name, str(replica), str(code)),
                self.tokens.labels(name),
                self.ttft.labels(name),
            )
        requests, generated, ttft = children
        requests.inc()
        if error:
            self.errors.labels(name, error).inc()
        if tokens:
            generated.inc(tokens)
        if ttft_s is not None:
            ttft.observe(ttft_s)
        self.samples.append(Sample(time.time(), name, replica, ttft_s, tokens, duration_s, error))

    def refused(self, name: str, code: int, kind: str) -> None:
        """A request the router answered itself (429 queue full, 503 model down, 422 bad field)."""
        self.requests.labels(name, "", str(code)).inc()
        self.errors.labels(name, kind).inc()
        self.samples.append(Sample(time.time(), name, 0, None, 0, 0.0, kind))

    def prometheus(self) -> bytes:
        return generate_latest(self.registry)

    def recent(self, window_s: float, points: int = 30) -> dict[str, Any]:
        """Per served name over the last ``window_s``: totals, TTFT p50/p95, tokens/s, in-flight,
        replicas, and ``points`` buckets of the same for small plots."""
        now = time.time()
        since = now - window_s
        span = max(1e-9, min(window_s, now - self.started))
        step = window_s / points
        models = []
        for name, replicas in self.supervisor.by_name.items():
            mine = [s for s in self.samples if s.model == name and s.end >= since]
            series = []
            for i in range(points):
                lo, hi = since + i * step, since + (i + 1) * step
                bucket = [s for s in mine if lo <= s.end < hi]
                series.append(
                    {
                        "time": hi,
                        "requests": len(bucket),
                        "errors": sum(1 for s in bucket if s.error),
                        "ttft_p95_ms": _ms(quantile([s.ttft_s for s in bucket if s.ttft_s is not None], 0.95)),
                        "tokens_per_s": sum(s.tokens for s in bucket) / step,
                    }
                )
            ttfts = [s.ttft_s for s in mine if s.ttft_s is not None]
            models.append(
                {
                    "model_name": name,
                    "requests": len(mine),
                    "errors": sum(1 for s in mine if s.error),
                    "generated_tokens": sum(s.tokens for s in mine),
                    "ttft_p50_ms": _ms(quantile(ttfts, 0.5)),
                    "ttft_p95_ms": _ms(quantile(ttfts, 0.95)),
                    "tokens_per_s": sum(s.tokens for s in mine) / span,
                    "in_flight": sum(s.in_flight for s, _ in replicas),
                    "replicas": len(replicas),
                    "replicas_active": sum(1 for s, _ in replicas if s.state == "ACTIVE"),
                    "per_replica": {
                        str(s.spec.replica + 1): sum(1 for x in mine if x.replica == s.spec.replica + 1)
                        for s, _ in replicas
                    },
                    "series": series,
                }
            )
        return {"window_s": window_s, "time": now, "models": models}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class _Live:
    """Gauges read at scrape time from the supervisor and the recent samples."""

    def __init__(self, metrics: RouterMetrics):
        self.metrics = metrics

    def collect(self):
        supervisor = self.metrics.supervisor
        in_flight = GaugeMetricFamily(
            "aqua_lab_in_flight_requests", "Requests being answered now", labels=["model", "replica"]
        )
        replicas = GaugeMetricFamily("aqua_lab_replicas", "Replicas of the model, by state", labels=["model", "state"])
        p50 = GaugeMetricFamily(
            "aqua_lab_ttft_p50_seconds", f"Median TTFT over the last {GAUGE_WINDOW_S:.0f} s", labels=["model"]
        )
        p95 = GaugeMetricFamily(
            "aqua_lab_ttft_p95_seconds", f"95th percentile TTFT over the last {GAUGE_WINDOW_S:.0f} s", labels=["model"]
        )
        rate = GaugeMetricFamily(
            "aqua_lab_tokens_per_second",
            f"Tokens generated per second over the last {GAUGE_WINDOW_S:.0f} s",
            labels=["model"],
        )
        now = time.time()
        since = now - GAUGE_WINDOW_S
        span = max(1e-9, min(GAUGE_WINDOW_S, now - self.metrics.started))
        recent: dict[str, list[Sample]] = {}
        for s in self.metrics.samples:
            if s.end >= since:
                recent.setdefault(s.model, []).append(s)
        for name, group in supervisor.by_name.items():
            states: dict[str, int] = {}
            for server, _ in group:
                in_flight.add_metric([name, str(server.spec.replica + 1)], server.in_flight)
                states[server.state] = states.get(server.state, 0) + 1
            for state, count in states.items():
                replicas.add_metric([name, state], count)
            mine = recent.get(name, [])
            ttfts = [s.ttft_s for s in mine if s.ttft_s is not None]
            if ttfts:
                p50.add_metric([name], quantile(ttfts, 0.5))
                p95.add_metric([name], quantile(ttfts, 0.95))
            rate.add_metric([name], sum(s.tokens for s in mine) / span)
        yield from (in_flight, replicas, p50, p95, rate)
