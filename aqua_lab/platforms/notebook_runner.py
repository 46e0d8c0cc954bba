"""Evaluations of another platform's deployments (OCI) run by aqua_lab's own runner on this machine
(``runner: notebook``): the local evaluation job, with its progress, reports, metrics and judge, whose
model calls go through that platform's ``inference_request`` (on OCI the signed ``/predict`` its chat
uses).  AQUA's evaluation container cannot call a judge model; this runner can, so the judge and the
leaderboard exist for OCI deployments too.

The job is a detached process, as a local evaluation's is, so it outlives the Jupyter server, kernel or
CLI that started it; it rebuilds the platform from the settings the service was built with (the auth
mode, config file, profile, region, compartment and endpoint: names of secrets, never secrets).
These evaluations live in their own store under ``<data dir>/notebook-evaluations/``, so the local
platform never lists, restarts or deletes them; their ids start ``nbeval-``, so the service hands a
verb to them before the platform sees an id it would refuse.  The judge's verdicts go to the vote
store the service's leaderboard reads, keyed by the deployment's OCID."""

from __future__ import annotations

import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..domain import Deployment, Evaluation, EvaluationSpec
from ..errors import InvalidInput, Problem
from .base import Platform
from .local.evaluations import EvaluationStore, LocalEvaluations
from .registry import PlatformSettings

PREFIX = "nbeval-"
FOLDER = "notebook-evaluations"


def is_notebook_evaluation(evaluation_id: str) -> bool:
    return evaluation_id.startswith(PREFIX)


class NotebookEvaluations(LocalEvaluations):
    """The evaluation verbs of ``runner: notebook`` for the deployments of ``platform``."""

    evaluation_prefix = PREFIX

    def __init__(self, platform: Platform, settings: PlatformSettings | None, files_dir: Path):
        self.platform, self.settings = platform, settings
        self.data_dir = Path(files_dir) / FOLDER
        #: the job opens ``<data_dir>/local.sqlite`` as a local evaluation's job does
        self.store_path = self.data_dir / "local.sqlite"
        #: the vote store the service's leaderboard reads (verdicts keyed by the deployment's OCID)
        self.votes_path = Path(files_dir) / "local.sqlite"
        self._store: EvaluationStore | None = None
        self._store_lock = threading.Lock()

    @property
    def evaluation_store(self) -> EvaluationStore:
        # opened on first use, not here: opening makes the folder and file, and a list alone should not;
        # under a lock, as the service's executor threads may ask at once
        with self._store_lock:
            if self._store is None:
                self._store = EvaluationStore(self.store_path)
            return self._store

    def get_deployment(self, deployment_id: str) -> Deployment:
        return self.platform.get_deployment(deployment_id)

    def _job_record(self) -> dict[str, Any]:
        return {
            "platform": {"name": self.platform.name, "settings": asdict(self.settings)},
            "votes_path": str(self.votes_path),
        }

    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        if self.settings is None:
            # the job rebuilds the platform in its own process: a platform object handed to the service
            # cannot be rebuilt there
            raise InvalidInput(
                Problem(
                    "runner",
                    "the notebook runner rebuilds the platform in its own job from the service's settings, and "
                    "this service was given a platform object",
                    "build the service by name: AquaLabService('oci', PlatformSettings(...))",
                )
            )
        if spec.dataset_path.startswith("oci://"):
            raise InvalidInput(
                Problem(
                    "dataset_path",
                    "the notebook runner reads a dataset on this machine",
                    "give a .jsonl file here (or sample, or an uploaded dataset), or use runner service",
                )
            )
        return super().create_evaluation(spec)

    def list_evaluations(self) -> list[Evaluation]:
        if not self.store_path.exists():
            return []
        name = self.platform.name
        mine = [r for r in self.evaluation_store.all() if r["record"].get("platform", {}).get("name") == name]
        return [self._to_evaluation(self._reconcile_evaluation(r)) for r in mine]
