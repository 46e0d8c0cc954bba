"""Scaling: instance counts, autoscaling rules, a live scaling change and what a deployment runs now."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

#: the answer to "can it scale to zero?" (issue 28 item 6), wherever a count of 0 is given
NO_ZERO_INSTANCES = (
    "0 instances: a model deployment cannot scale to zero (OCI Data Science refuses an instance count of 0, "
    "autoscaling included); use 1 or more, and deactivate the deployment to stop its instances (locally, "
    "idle models sleep instead: idle_sleep_s)"
)


def _not_zero(value: Any) -> Any:
    if value == 0 and not isinstance(value, bool):
        raise ValueError(NO_ZERO_INSTANCES)
    return value


Instances = Annotated[int, BeforeValidator(_not_zero), Field(ge=1)]


class Autoscaling(BaseModel):
    """``--autoscaling``: the shorthand for one predefined-metric rule (what most deployments need);
    ``scaling_policy`` takes the SDK's full ``AutoScalingPolicy`` instead."""

    model_config = ConfigDict(extra="forbid")

    minimum_instance_count: Instances = 1
    maximum_instance_count: Instances
    initial_instance_count: Instances | None = Field(default=None, description="defaults to the minimum")
    metric: Literal["CPU_UTILIZATION", "MEMORY_UTILIZATION"] = "CPU_UTILIZATION"
    scale_in_threshold: int = Field(default=20, description="percent; fewer instances below it")
    scale_out_threshold: int = Field(default=75, description="percent; more instances above it")
    cool_down_in_seconds: int = 600
    pending_duration: str = Field(default="PT5M", description="ISO 8601 duration the metric must stay over")
    instance_count_adjustment: int = Field(default=1, ge=1)
    is_enabled: bool = True


class ScalingChange(BaseModel):
    """``deployment update --instance_count/--autoscaling/--scaling_policy/--bandwidth_mbps``: one of
    the three scaling forms of :class:`DeploymentSpec`, for a live deployment."""

    model_config = ConfigDict(extra="forbid")

    instance_count: Instances | None = None
    autoscaling: Autoscaling | None = None
    scaling_policy: dict[str, Any] | None = None
    bandwidth_mbps: int | None = Field(default=None, ge=1)


class ScalingEvent(BaseModel):
    """One change of a deployment's instance count, and why."""

    time: str
    from_count: int
    to_count: int
    reason: str


class Scaling(BaseModel):
    """A deployment's scaling: the policy it runs (OCI wire JSON), its instances now, recent events."""

    policy: dict[str, Any]
    instance_count: int = Field(description="instances (OCI) or replicas of each model (local) running now")
    minimum_instance_count: int = 1
    maximum_instance_count: int = 1
    bandwidth_mbps: int | None = None
    events: list[ScalingEvent] = Field(default_factory=list)
