"""What ADS calls besides models and deployments, so ``ads aqua`` works on the emulator as on OCI:
the service containers (``GET /containers``), a work request's logs and errors, and Resource Search
(``POST /20180409/resources``, a different API version), which ADS lists models and evaluations with.

The route functions take ``(handler, request, **path parameters)`` like the handler's own methods.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .common import Reply, lookup

SEARCH = "/20180409"

#: the latest service containers, as ADS's own test fixtures describe them
#: (tests/unitary/with_extras/aqua/utils.py: ServiceManagedContainers)
_METRICS = [
    {"task": ["text-generation"], "key": key, "name": name, "description": description, "args": {}, "tags": []}
    for key, name, description in (
        ("bertscore", "BERTScore", "similarity of contextual token embeddings of answer and reference"),
        ("rouge", "ROUGE Score", "n-gram and longest-common-subsequence overlap with the reference"),
        ("bleu", "BLEU Score", "n-gram precision against the reference"),
        ("perplexity_score", "Perplexity Score", "how well the model predicts the reference text"),
        ("text_readability", "Text Readability", "readability of the answers"),
    )
]
_EVALUATION_SHAPES = [
    {"name": name, "ocpu": 8, "memory_in_gbs": 128, "block_storage_size": 200, "filter": {}}
    for name in ("VM.Standard.E3.Flex", "VM.Standard.E4.Flex", "VM.Standard3.Flex", "VM.Optimized3.Flex")
]


def _container(name: str, tag: str, usages: list[str], workload: dict | None) -> dict:
    return {
        "containerName": name,
        "displayName": f"{name}:{tag}",
        "familyName": name,
        "description": f"AI Quick Actions service container {name}",
        "isLatest": True,
        "targetWorkloads": ["MODEL_DEPLOYMENT", "JOB_RUN"] if workload and "cmd" in workload else ["JOB_RUN"],
        "usages": usages,
        "tag": tag,
        "lifecycleState": "ACTIVE",
        "workloadConfigurationDetailsList": [workload] if workload else [],
        "tagConfigurationList": [],
        "freeformTags": None,
        "definedTags": None,
    }


CONTAINERS = [
    _container(
        "odsc-vllm-serving",
        "0.8.1.2",
        ["INFERENCE", "BATCH_INFERENCE", "OTHER"],  # OTHER: what ADS's multi-model create accepts
        {
            "workloadType": "MODEL_DEPLOYMENT",
            "cmd": "--served-model-name odsc-llm --seed 42",
            "serverPort": 8080,
            "healthCheckPort": 8080,
            "additionalConfigurations": {
                "HEALTH_CHECK_PORT": "8080",
                "MODEL_DEPLOY_PREDICT_ENDPOINT": "/v1/completions",
                "PORT": "8080",
                "modelFormats": "SAFETENSORS",
                "platforms": "NVIDIA_GPU",
                "restrictedParams": '["--port","--host","--served-model-name","--seed"]',
            },
        },
    ),
    _container("odsc-llm-fine-tuning", "2.2.62.70", ["FINE_TUNE"], None),
    _container(
        "odsc-llm-evaluate",
        "0.1.3.4",
        ["EVALUATION"],
        {
            "workloadType": "JOB_RUN",
            "useCaseConfiguration": {
                "useCaseType": "GENERIC",
                "additionalConfigurations": {
                    "metrics": json.dumps(_METRICS),
                    "shapes": json.dumps(_EVALUATION_SHAPES),
                },
            },
        },
    ),
]


def list_containers(h: Any, r: Any) -> None:
    q = r.query
    rows = [
        c
        for c in CONTAINERS
        if (not q.get("containerName") or c["containerName"] == q["containerName"])
        and (q.get("isLatest") in (None, "true") or not c["isLatest"])
        and (not q.get("usageQueryParam") or q["usageQueryParam"] in c["usages"])
    ]
    h._send(200, rows)


# work requests -------------------------------------------------------------------------------------


def work_request_logs(h: Any, r: Any, work_request_id: str) -> None:
    """What OCI tells of a work request's steps: one line per state it went through."""
    wr = lookup(h.emu.state.work_requests, work_request_id)
    lines = [(wr["timeAccepted"], f"{wr['operationType']} accepted")]
    if wr.get("timeStarted"):
        lines.append((wr["timeStarted"], f"{wr['operationType']} in progress"))
    if wr.get("timeFinished"):
        lines.append((wr["timeFinished"], f"{wr['operationType']} {wr['status'].lower()}"))
    h._send(200, [{"message": message, "timestamp": at} for at, message in lines])


def work_request_errors(h: Any, r: Any, work_request_id: str) -> None:
    wr = lookup(h.emu.state.work_requests, work_request_id)
    target = h.emu.state.deployments.get(wr["_target"]) or {}
    errors = []
    if wr["status"] == "FAILED":
        reason = target.get("lifecycleDetails") or "The operation failed."
        errors.append({"code": "InternalError", "message": reason, "timestamp": wr.get("timeFinished")})
    h._send(200, errors)


# Resource Search ---------------------------------------------------------------------------------------

#: search resource type → (the emulator's table, the OCI resource type ADS filters on)
_TYPES = {
    "datasciencemodel": ("models", "DataScienceModel"),
    "datasciencemodeldeployment": ("deployments", "DataScienceModelDeployment"),
    "datasciencemodelgroup": ("groups", "DataScienceModelGroup"),
    "datasciencejob": ("jobs", "DataScienceJob"),
    "datasciencejobrun": ("job_runs", "DataScienceJobRun"),
    "datasciencemodelversionset": ("version_sets", "DataScienceModelVersionSet"),
}
_QUERY = re.compile(r"^\s*query\s+(?P<types>[\w,\s]+?)\s+resources(?:\s+where\s+(?P<where>.+?))?\s*$", re.I | re.S)
_CONDITION = re.compile(r"(?P<field>[\w.]+)\s*(?P<op>!?=)\s*'(?P<value>[^']*)'")


def _value(record: dict, field: str) -> Any:
    if field.lower().startswith("freeformtags.key"):
        return list(record.get("freeformTags") or {})
    if field.lower().startswith("freeformtags.value"):
        return list((record.get("freeformTags") or {}).values())
    value: Any = record
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(record: dict, where: str | None) -> bool:
    """ADS's structured queries: ``field = 'value'`` (and ``!=``) joined by ``&&``/``and``; a tag
    key or value matches when any of the record's does."""
    if not where:
        return True
    for found in _CONDITION.finditer(where):
        value = _value(record, found["field"])
        hit = found["value"] in value if isinstance(value, list) else str(value) == found["value"]
        if hit != (found["op"] == "="):
            return False
    return True


def search_resources(h: Any, r: Any) -> None:
    try:
        request = json.loads(r.body or b"{}")
    except json.JSONDecodeError:
        raise Reply(400, "InvalidParameter", "The request body is not JSON.") from None
    query = _QUERY.match(request.get("query") or "")
    if request.get("type", "Structured") != "Structured" or query is None:
        raise Reply(400, "InvalidParameter", "Only structured queries 'query <type> resources where …' are supported.")
    wanted = [t.strip().lower() for t in query["types"].split(",")]
    types = list(_TYPES) if wanted == ["all"] else [t for t in wanted if t in _TYPES]
    items = []
    for kind in types:
        table, resource_type = _TYPES[kind]
        for record in getattr(h.emu.state, table).values():
            if record.get("lifecycleState") == "DELETED" or not _matches(record, query["where"]):
                continue
            items.append(
                {
                    "resourceType": resource_type,
                    "identifier": record["id"],
                    "compartmentId": record.get("compartmentId"),
                    "timeCreated": record.get("timeCreated"),
                    "displayName": record.get("displayName") or record.get("name"),
                    "lifecycleState": record.get("lifecycleState"),
                    "freeformTags": record.get("freeformTags") or {},
                    "definedTags": record.get("definedTags") or {},
                    "systemTags": {},
                    "identityContext": {},
                    "additionalDetails": {},
                }
            )
    h._send(200, {"items": items})
