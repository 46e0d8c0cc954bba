"""How OCI's evaluation records read: states, console and log links, the metrics a job was given and a
model's hyperparameters (pure functions of the SDK's records, shared by the create, read and report
parts)."""

from __future__ import annotations

import json
import re
from typing import Any

from ...domain import MetricSpec
from ...planning.evaluation import (
    HYPERPARAMETERS,
)

CONSOLE = "https://cloud.oracle.com/data-science"
#: console paths per OCID kind (ADS's CONSOLE_LINK_RESOURCE_TYPE_MAPPING)
CONSOLE_KINDS = {
    "datasciencemodel": "models",
    "datasciencemodeldeployment": "model-deployments",
    "datasciencejob": "jobs",
    "datasciencejobrun": "job-runs",
    "datasciencemodelversionset": "model-version-sets",
}
RUNNING = ("ACCEPTED", "IN_PROGRESS", "CANCELING")
OBJECT_URI = re.compile(r"^oci://([^@/]+)@([^/]+)/?(.*)$")


def console_url(ocid: str | None, region: str | None) -> str:
    """ADS's ``get_console_link`` for the OCID's kind ('' for an unknown kind or no id)."""
    kind = CONSOLE_KINDS.get((ocid or "").split(".")[1] if (ocid or "").count(".") > 1 else "")
    return f"{CONSOLE}/{kind}/{ocid}?region={region or ''}" if kind else ""


def log_url(region: str | None, group: str | None, log: str | None, compartment: str | None, source: str) -> str:
    """ADS's ``get_log_links``: a log search for the job run, or the log group's page."""
    if group and log:
        query = f"search \"{compartment}/{group}/{log}\" | source='{source}' | sort by datetime desc"
        return f"https://cloud.oracle.com/logging/search?searchQuery={query}&regions={region or ''}"
    return f"https://cloud.oracle.com/logging/log-groups/{group}?region={region or ''}" if group else ""


def evaluation_state(model_state: str | None, run_state: str | None) -> str:
    """ADS's ``LifecycleStatus.get_status``: the job run's state while the model is ACTIVE (a run
    that NEEDS_ATTENTION reads FAILED), else the model's; no run at all reads NEEDS_ATTENTION.
    ACCEPTED is kept as such (ADS folds it into IN_PROGRESS) so a queued run can be told apart."""
    if not run_state:
        return "NEEDS_ATTENTION"
    if model_state != "ACTIVE":
        return model_state or "UNKNOWN"
    return "FAILED" if run_state == "NEEDS_ATTENTION" else run_state


def comparison_state(states: list[str]) -> str:
    """One state for a comparison: running while any member runs, SUCCEEDED when all did."""
    if all(s == states[0] for s in states):
        return states[0]
    if any(s in ("ACCEPTED", "IN_PROGRESS") for s in states):
        return "IN_PROGRESS"
    if "CANCELING" in states:
        return "CANCELING"
    return "FAILED" if "FAILED" in states else "CANCELED"


def metrics_of_job(job: Any) -> list[MetricSpec]:
    """The metrics a job was given (its AIP_SMC_EVALUATION_ARGUMENTS); [] when unreadable."""
    try:
        env = job.job_configuration_details.environment_variables or {}
        return [MetricSpec.model_validate(m) for m in json.loads(env["AIP_SMC_EVALUATION_ARGUMENTS"])["metrics"]]
    except (KeyError, ValueError, AttributeError, TypeError):
        return []


def hyperparameters(model: Any) -> dict[str, Any]:
    for m in model.defined_metadata_list or []:
        if m.key == HYPERPARAMETERS and m.value:
            try:
                return dict(json.loads(m.value).get("model_params") or {})
            except (ValueError, AttributeError):
                return {}
    return {}
