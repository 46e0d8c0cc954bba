"""Per-model metrics of a deployment over a window (the local router's counts, OCI Monitoring)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MetricPoint(BaseModel):
    time: float = Field(description="end of the bucket, seconds since the epoch")
    requests: int = 0
    errors: int = 0
    ttft_p95_ms: float | None = None
    tokens_per_s: float | None = None
    value: float | None = Field(default=None, description="the value of a deployment-wide series' metric")


class ModelMetrics(BaseModel):
    """One served model of a deployment over a window."""

    model_name: str
    requests: int | None = None
    errors: int | None = None
    generated_tokens: int | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    tokens_per_s: float | None = None
    in_flight: int | None = None
    replicas: int | None = None
    per_replica: dict[str, int] = Field(default_factory=dict, description="requests per replica in the window")
    series: list[MetricPoint] = Field(default_factory=list)


class DeploymentMetrics(BaseModel):
    deployment_id: str
    platform: str
    window_s: float
    source: str = Field(description="where the numbers come from (the local router, OCI Monitoring, …)")
    models: list[ModelMetrics]
    deployment: dict[str, list[MetricPoint]] = Field(
        default_factory=dict, description="deployment-wide series (OCI Monitoring: PredictRequestCount, …)"
    )
