"""Evaluation jobs: check an ``ads aqua evaluation create`` request against the deployment it
evaluates, and build the OCI job + job run bodies (wire JSON) — the metrics run in the job."""

from __future__ import annotations

import json
import re
from typing import Any

from ..domain import Deployment, EvaluationSpec
from ..errors import InvalidInput, Problem

OCI_PATH = re.compile(r"^oci://[^@/\s]+@[^/\s]+/.+")
DEFAULT_EVALUATION_IMAGE = "dsmc://odsc-llm-evaluate:0.1.3.4"


def validate_evaluation(spec: EvaluationSpec, deployment: Deployment) -> str:
    """The served name to evaluate; every problem reported at once."""
    problems = []
    for field in ("dataset_path", "report_path"):
        if not OCI_PATH.match(getattr(spec, field)):
            problems.append(
                Problem(
                    field,
                    f"{getattr(spec, field)!r} is not an Object Storage path",
                    "use oci://<bucket>@<namespace>/<path>",
                )
            )
    if spec.dataset_path.startswith("oci://") and not spec.dataset_path.endswith(".jsonl"):
        problems.append(
            Problem(
                "dataset_path",
                "the dataset must be a .jsonl file",
                'one {"prompt": …, "completion": …} object per line',
            )
        )
    names = deployment.served_names()
    model = spec.model_parameters.get("model")
    if model is None and len(names) > 1:
        problems.append(
            Problem(
                "model_parameters.model",
                "required for a multi-model deployment",
                f"name the model to evaluate: one of {names}",
            )
        )
    elif model is not None and model not in names:
        problems.append(
            Problem("model_parameters.model", f"{model!r} is not served by {deployment.id}", f"use one of {names}")
        )
    if deployment.state != "ACTIVE":
        problems.append(
            Problem("evaluation_source_id", f"the deployment is {deployment.state}", "evaluate an ACTIVE deployment")
        )
    if spec.shape_name.startswith(("BM.GPU", "VM.GPU")):
        problems.append(
            Problem(
                "shape_name",
                "the evaluation job only calls the deployment: a GPU shape is wasted",
                "use a CPU shape such as VM.Standard.E4.Flex",
            )
        )
    if problems:
        raise InvalidInput(problems)
    return model or names[0]


def evaluation_job_requests(
    spec: EvaluationSpec,
    deployment: Deployment,
    model: str,
    compartment_id: str,
    project_id: str,
    evaluation_id: str,
    image: str = DEFAULT_EVALUATION_IMAGE,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(CreateJobDetails, CreateJobRunDetails without jobId) as OCI wire JSON."""
    arguments = {
        "evaluation_id": evaluation_id,
        "evaluation_target_id": deployment.id,
        "input_data": {"format": ".jsonl", "url": spec.dataset_path},
        "metrics": [m.model_dump() for m in spec.metrics],
        "output_dir": spec.report_path,
        "params": {**spec.model_parameters, "model": model},
        "force_overwrite": spec.force_overwrite,
    }
    infrastructure: dict[str, Any] = {
        "jobInfrastructureType": "ME_STANDALONE",
        "shapeName": spec.shape_name,
        "blockStorageSizeInGBs": spec.block_storage_size,
    }
    if spec.shape_name.endswith("Flex"):
        infrastructure["jobShapeConfigDetails"] = {"ocpus": spec.ocpus or 1, "memoryInGBs": spec.memory_in_gbs or 16}
    job: dict[str, Any] = {
        "projectId": project_id,
        "compartmentId": compartment_id,
        "displayName": spec.evaluation_name,
        "jobConfigurationDetails": {
            "jobType": "DEFAULT",
            "environmentVariables": {"AIP_SMC_EVALUATION_ARGUMENTS": json.dumps(arguments)},
        },
        "jobInfrastructureConfigurationDetails": infrastructure,
        "jobEnvironmentConfigurationDetails": {
            "jobEnvironmentType": "OCIR_CONTAINER",
            "image": spec.container_image_uri or image,
        },
        "freeformTags": {
            "aqua_evaluation": "true",
            "OCI_AQUA": "active",
            "aqua_evaluation_model": model,
            "aqua_evaluation_source": deployment.id,
        },
    }
    if spec.evaluation_description:
        job["description"] = spec.evaluation_description
    if spec.log_group_id:
        job["jobLogConfigurationDetails"] = {
            "enableLogging": True,
            "logGroupId": spec.log_group_id,
            **({"logId": spec.log_id} if spec.log_id else {"enableAutoLogCreation": True}),
        }
    run = {"projectId": project_id, "compartmentId": compartment_id, "displayName": f"{spec.evaluation_name} ({model})"}
    return job, run
