"""Scaling and monitoring of OCI model deployments: the policy and instance count a deployment
reports (with the changes this process has seen, as OCI keeps no history of them), a rescale in
place, and OCI Monitoring's metrics of a deployment."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from ...domain import Deployment, DeploymentMetrics, MetricPoint, ModelMetrics, Scaling
from ...errors import Conflict, UpstreamError
from ...planning import payloads
from ...planning import scaling as S
from .clients import NAME, OciClients


class OciScaling:
    def __init__(self, clients: OciClients):
        self.c = clients
        # instance counts seen per deployment: OCI's Data Science API reports the current count but
        # no history of autoscaling actions, so this process notes each change it sees
        self._seen_counts: dict[str, int] = {}
        self._scaling_events: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def observe(self, md: Any) -> Scaling | None:
        config = md.model_deployment_configuration_details
        details = (
            config.infrastructure_configuration_details
            if config.deployment_type == "MODEL_GROUP"
            else config.model_configuration_details
        )
        if details is None or details.scaling_policy is None:
            return None
        policy = self.c.ds.base_client.sanitize_for_serialization(details.scaling_policy)
        low, high = S.instance_bounds(policy)
        system = getattr(md, "model_deployment_system_data", None)
        count = getattr(system, "current_instance_count", None) or S.initial_instances(policy)
        with self._lock:
            before = self._seen_counts.get(md.id)
            if before is not None and before != count:
                events = self._scaling_events.setdefault(md.id, [])
                events.append(
                    {
                        "time": datetime.now(UTC).isoformat(),
                        "from_count": before,
                        "to_count": count,
                        "reason": "OCI changed the instance count"
                        + (" (autoscaling)" if policy.get("policyType") == "AUTOSCALING" else ""),
                    }
                )
                del events[:-20]
            self._seen_counts[md.id] = count
            events = list(self._scaling_events.get(md.id, []))
        return Scaling(
            policy=policy,
            instance_count=count,
            minimum_instance_count=low,
            maximum_instance_count=high,
            bandwidth_mbps=details.bandwidth_mbps,
            events=events,
        )

    def update(
        self, deployment_id: str, scaling_policy: dict[str, Any] | None, bandwidth_mbps: int | None = None
    ) -> None:
        """Instance count, autoscaling policy and load-balancer bandwidth change in place on OCI
        (UpdateModelDeploymentDetails; ZDT for model groups: the endpoint stays, instances are added
        or drained).  The shape, the models or the deployment type need a new model group (update)
        or a new deployment."""
        current = self.c.call("get deployment", self.c.ds.get_model_deployment, deployment_id).data
        if current.lifecycle_state not in ("ACTIVE", "NEEDS_ATTENTION"):
            raise Conflict(f"deployment {deployment_id} is {current.lifecycle_state}; only a running one is rescaled")
        self.observe(current)  # note the count before the change
        kind = current.model_deployment_configuration_details.deployment_type
        body = payloads.update_scaling_request(kind, scaling_policy, bandwidth_mbps)
        try:
            self.c.update_deployment(deployment_id, body)
        except UpstreamError as exc:
            if exc.status == 409:
                raise Conflict(str(exc)) from None
            raise

    def metrics(self, deployment: Deployment, window_s: float = 300) -> DeploymentMetrics:
        """OCI Monitoring's model-deployment metrics over the window: request counts, latency and
        utilisation are per deployment (OCI does not split them by model); each model row carries
        the instance count.  Time to first token and tokens/s are not among OCI's metrics."""
        import oci

        deployment_id = deployment.id
        end = time.time()
        start = end - window_s
        step = max(60, int(window_s // 30) // 60 * 60)  # ≤ 30 points, whole minutes (OCI's smallest interval)
        interval = f"{step // 60}m"
        queries = {
            "requests": f'PredictRequestCount[{interval}]{{resourceId = "{deployment_id}"}}.sum()',
            "latency_p95_ms": f'PredictLatency[{interval}]{{resourceId = "{deployment_id}"}}.percentile(0.95)',
            "cpu_utilization": f'CpuUtilization[{interval}]{{resourceId = "{deployment_id}"}}.mean()',
        }
        series: dict[str, list[MetricPoint]] = {}
        client = self.c.monitoring
        for key, query in queries.items():
            details = oci.monitoring.models.SummarizeMetricsDataDetails(
                namespace="oci_datascience_modeldeploy",
                query=query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
            )
            rows = self.c.call(
                "summarize metrics", client.summarize_metrics_data, self.c.settings.compartment_id, details
            )
            points = [p for row in rows.data for p in row.aggregated_datapoints or []]
            series[key] = [MetricPoint(time=p.timestamp.timestamp(), value=p.value) for p in points]
        requests = int(sum(p.value or 0 for p in series["requests"]))
        count = deployment.scaling.instance_count if deployment.scaling else None
        return DeploymentMetrics(
            deployment_id=deployment_id,
            platform=NAME,
            window_s=window_s,
            source="OCI Monitoring (oci_datascience_modeldeploy: PredictRequestCount, PredictLatency, "
            "CpuUtilization), per deployment",
            models=[ModelMetrics(model_name=name, replicas=count) for name in deployment.served_names()],
            deployment={**series, "total_requests": [MetricPoint(time=end, value=requests)]},
        )
