"""Evaluation jobs: check an ``ads aqua evaluation create`` request against the deployment it
evaluates, and build the OCI bodies (wire JSON) ADS sends for one evaluation — the evaluation model
(``aqua_evaluation``-tagged DataScienceModel with its custom metadata and hyperparameters), the job
and its run, and the model update that records the job ids.  The metrics run in the job."""

from __future__ import annotations

import json
import re
from typing import Any

from ..domain import Deployment, EvaluationSpec
from ..errors import InvalidInput, Problem
from ..evaluation.metrics import pairwise_problems
from ..inference.protocol import model_parameter_problems

#: metrics a judge model computes in aqua_lab's runner (evaluation/metrics.JUDGED), which the AQUA container lacks
JUDGE_METRICS = ("pairwise_judge", "judge_score")
OCI_PATH = re.compile(r"^oci://[^@/\s]+@[^/\s]+/.+")
DEFAULT_EVALUATION_IMAGE = "dsmc://odsc-llm-evaluate:0.1.3.4"

#: ADS's CPU job shapes for the evaluation container, with what the job gets on them by default (1 OCPU,
#: 16 GB on a Flex shape; 50 GB is OCI's smallest volume)
OCI_JOB_SHAPES = ("VM.Standard.E4.Flex", "VM.Standard.E3.Flex", "VM.Standard3.Flex", "VM.Optimized3.Flex")
OCI_DEFAULT_SHAPE = "VM.Standard.E4.Flex"
OCI_JOB = {"ocpu": 1, "memory_in_gbs": 16, "block_storage_size": 50}


def oci_evaluation_form() -> dict[str, Any]:
    """What an evaluation form needs on OCI: each model's job run reports a lifecycle state and nothing
    finer, and reports go to the user's own bucket — the form gets the ``oci://`` form as a placeholder,
    never a made-up bucket that would fail at submit time."""
    return {
        "reports_here": False,
        "progress": "state",
        "fields": ["shape_name", "block_storage_size", "experiment_name", "log_group_id", "log_id", "force_overwrite"],
        "shape": {name: dict(OCI_JOB) for name in OCI_JOB_SHAPES},
        "default": {"shape_name": OCI_DEFAULT_SHAPE, **OCI_JOB},
        "report_path_hint": "oci://<bucket>@<namespace>/<prefix>/",
        "dataset_hint": "oci://<bucket>@<namespace>/<path>/dataset.jsonl, or a .jsonl file on the server",
        "dataset_note": "a dataset on this machine (the sample, an upload, a path here) is checked, then uploaded "
        "next to the reports as <report_path>/<file name>, as ADS does",
    }


def validate_evaluation(spec: EvaluationSpec, deployment: Deployment, local_dataset: bool = False) -> list[str]:
    """The served names to evaluate: ``model_parameters.model``, else every model of the deployment
    (one evaluation each, as ADS runs them); every problem reported at once.  ``local_dataset``: the
    dataset is a file here (the caller checked), which is uploaded next to the report as ADS does."""
    problems = []
    if not OCI_PATH.match(spec.report_path):
        problems.append(
            Problem(
                "report_path",
                f"{spec.report_path!r} is not an Object Storage path",
                "use oci://<bucket>@<namespace>/<path>",
            )
        )
    if not local_dataset and not OCI_PATH.match(spec.dataset_path):
        problems.append(
            Problem(
                "dataset_path",
                f"{spec.dataset_path!r} is neither an Object Storage path nor a file here",
                "use oci://<bucket>@<namespace>/<path>, or a local .jsonl file (uploaded next to the report, "
                "as ADS does)",
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
    problems += model_parameter_problems(spec.model_parameters)
    names = deployment.served_names()
    model = spec.model_parameters.get("model")
    if isinstance(model, str) and model not in names:
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
    for i, metric in enumerate(spec.metrics):
        if metric.name in JUDGE_METRICS:
            problems.append(
                Problem(
                    f"metrics[{i}].name",
                    f"{metric.name} needs aqua_lab's own evaluation runner: the AQUA evaluation container on OCI "
                    "cannot call a judge model",
                    "run it with aqua_lab's runner here (runner notebook, --runner notebook), or leave it out",
                )
            )
    problems += pairwise_problems(spec.metrics, [model] if isinstance(model, str) else names, model is not None)
    if problems:
        raise InvalidInput(problems)
    return [model] if model else names


#: ADS's names (ads/aqua/common/enums.py Tags, ads/aqua/evaluation/constants.py EvaluationCustomMetadata)
EVALUATION_TAG = "aqua_evaluation"
EVALUATION_MODEL_TAG = "evaluation_model_id"
#: aqua_lab's own: on each member of a comparison, the comparison's id (its first member's OCID)
COMPARISON_TAG = "aqua_lab_comparison"
SOURCE, OUTPUT_PATH, SOURCE_NAME = "evaluation_source", "evaluation_output_path", "evaluation_source_name"
JOB_ID, JOB_RUN_ID = "evaluation_job_id", "evaluation_job_run_id"
HYPERPARAMETERS = "Hyperparameters"


def _metadata(key: str, value: str) -> dict[str, str]:
    return {"key": key, "value": value, "category": "Other", "description": ""}


def evaluation_params(spec: EvaluationSpec, model: str) -> dict[str, Any]:
    """ADS's ``AquaEvalParams``: the job shape, dataset and report paths and the model parameters
    (with this member's ``model``), stored as ``{"model_params": …}`` in the Hyperparameters metadata."""
    return {
        "shape": spec.shape_name,
        "dataset_path": spec.dataset_path,
        "report_path": spec.report_path,
        **spec.model_parameters,
        "model": model,
    }


def evaluation_model_request(
    spec: EvaluationSpec,
    deployment: Deployment,
    model: str,
    compartment_id: str,
    project_id: str,
    version_set_id: str | None,
    comparison_id: str | None = None,
) -> dict[str, Any]:
    """CreateModelDetails of the evaluation model, as ADS's ``AquaEvaluationApp.create`` makes it."""
    tags = {EVALUATION_TAG: EVALUATION_TAG}
    if comparison_id:
        tags[COMPARISON_TAG] = comparison_id
    body: dict[str, Any] = {
        "compartmentId": compartment_id,
        "projectId": project_id,
        "displayName": spec.evaluation_name,
        "customMetadataList": [
            _metadata(SOURCE, deployment.id),
            _metadata(OUTPUT_PATH, spec.report_path),
            _metadata(SOURCE_NAME, deployment.display_name),
        ],
        "definedMetadataList": [
            {"key": HYPERPARAMETERS, "value": json.dumps({"model_params": evaluation_params(spec, model)})}
        ],
        "freeformTags": tags,
    }
    if spec.evaluation_description:
        body["description"] = spec.evaluation_description
    if version_set_id:
        body["modelVersionSetId"] = version_set_id
    return body


def evaluation_model_update(
    create_body: dict[str, Any], job_id: str, run_id: str, comparison_id: str | None
) -> dict[str, Any]:
    """UpdateModelDetails recording the job and job run (ADS updates the model once they exist)."""
    tags = dict(create_body["freeformTags"])
    if comparison_id:
        tags[COMPARISON_TAG] = comparison_id
    return {
        "customMetadataList": [
            *create_body["customMetadataList"],
            _metadata(JOB_ID, job_id),
            _metadata(JOB_RUN_ID, run_id),
        ],
        "freeformTags": tags,
    }


def evaluation_job_requests(
    spec: EvaluationSpec,
    deployment: Deployment,
    model: str,
    compartment_id: str,
    project_id: str,
    evaluation_id: str,
    image: str = DEFAULT_EVALUATION_IMAGE,
    conda_namespace: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(CreateJobDetails, CreateJobRunDetails without jobId) as OCI wire JSON; ``evaluation_id`` is the
    evaluation model's OCID, which the container writes its results back to."""
    arguments = {
        "evaluation_id": evaluation_id,
        "evaluation_target_id": deployment.id,
        "input_data": {"format": ".jsonl", "url": spec.dataset_path},
        "metrics": [m.model_dump() for m in spec.metrics],
        "output_dir": spec.report_path,
        "params": {**spec.model_parameters, "model": model},
    }
    infrastructure: dict[str, Any] = {
        "jobInfrastructureType": "ME_STANDALONE",
        "shapeName": spec.shape_name,
        "blockStorageSizeInGBs": spec.block_storage_size,
    }
    if spec.shape_name.endswith("Flex"):
        infrastructure["jobShapeConfigDetails"] = {
            "ocpus": spec.ocpus or OCI_JOB["ocpu"],
            "memoryInGBs": spec.memory_in_gbs or OCI_JOB["memory_in_gbs"],
        }
    tags = {EVALUATION_TAG: EVALUATION_TAG, EVALUATION_MODEL_TAG: evaluation_id}
    job: dict[str, Any] = {
        "projectId": project_id,
        "compartmentId": compartment_id,
        "displayName": spec.evaluation_name,
        "jobConfigurationDetails": {
            "jobType": "DEFAULT",
            "environmentVariables": {
                "AIP_SMC_EVALUATION_ARGUMENTS": json.dumps(arguments),
                "CONDA_BUCKET_NS": conda_namespace,
            },
        },
        "jobInfrastructureConfigurationDetails": infrastructure,
        "jobEnvironmentConfigurationDetails": {
            "jobEnvironmentType": "OCIR_CONTAINER",
            "image": spec.container_image_uri or image,
        },
        "freeformTags": tags,
    }
    if spec.evaluation_description:
        job["description"] = spec.evaluation_description
    if spec.log_group_id:
        job["jobLogConfigurationDetails"] = {
            "enableLogging": True,
            "logGroupId": spec.log_group_id,
            **({"logId": spec.log_id} if spec.log_id else {"enableAutoLogCreation": True}),
        }
    run = {
        "projectId": project_id,
        "compartmentId": compartment_id,
        "displayName": spec.evaluation_name,
        "freeformTags": tags,
    }
    return job, run
