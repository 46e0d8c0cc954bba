"""What an evaluation form needs to know about the platform it submits to, so the sidebar and the
widgets ask one place instead of guessing: where reports may go, what the dataset field takes, which
fields only that platform uses, and whether progress comes as rows or only as a state.

OCI runs each model's evaluation as a job of ADS's evaluation container on a CPU shape; its job run
reports a lifecycle state and nothing finer, and its reports go to Object Storage, never to a folder
of this machine.  A report path there is the user's own bucket: the form gets the ``oci://`` form as
a placeholder, never a made-up bucket that would fail at submit time."""

from __future__ import annotations

from typing import Any

#: ADS's CPU job shapes for the evaluation container, with what aqua_lab's job gets on them by
#: default (planning/evaluation.py: 1 OCPU, 16 GB on a Flex shape; 50 GB is OCI's smallest volume)
OCI_JOB_SHAPES = ("VM.Standard.E4.Flex", "VM.Standard.E3.Flex", "VM.Standard3.Flex", "VM.Optimized3.Flex")
OCI_DEFAULT_SHAPE = "VM.Standard.E4.Flex"
OCI_JOB = {"ocpu": 1, "memory_in_gbs": 16, "block_storage_size": 50}


def form_defaults(platform: str) -> dict[str, Any]:
    """The platform-specific part of ``EvaluationConfig``."""
    if platform == "oci":
        return {
            "progress": "state",
            "fields": [
                "shape_name",
                "block_storage_size",
                "experiment_name",
                "log_group_id",
                "log_id",
                "force_overwrite",
            ],
            "shape": {name: dict(OCI_JOB) for name in OCI_JOB_SHAPES},
            "default": {"shape_name": OCI_DEFAULT_SHAPE, **OCI_JOB},
            "report_path_hint": "oci://<bucket>@<namespace>/<prefix>/",
            "dataset_hint": "oci://<bucket>@<namespace>/<path>/dataset.jsonl, or a .jsonl file on the server",
            "dataset_note": "a dataset on this machine (the sample, an upload, a path here) is checked, then uploaded "
            "next to the reports as <report_path>/<file name>, as ADS does",
        }
    return {
        "progress": "rows",
        "fields": [],
        "report_path_hint": "/path/for/reports",
        "dataset_hint": "sample, or a .jsonl file on the server",
        "dataset_note": "",
    }
