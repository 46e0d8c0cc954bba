"""Creating an OCI evaluation the way ``ads aqua evaluation create`` does: the request checked (the
deployment, the dataset, the experiment) before anything is made, then the evaluation model, its job
and run per served model; a failed step deletes what the create made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...domain import Deployment, EvaluationSpec
from ...errors import AquaLabError, InvalidInput, NotFound, Problem, shown
from ...planning.evaluation import (
    EVALUATION_TAG,
    evaluation_job_requests,
    evaluation_model_request,
    evaluation_model_update,
    validate_evaluation,
)
from .artifacts import SERVICE_MODELS_NAMESPACE
from .clients import OciClients
from .evaluation_records import OBJECT_URI


@dataclass
class _Made:
    """What one create made so far, deleted again if a later step fails."""

    version_set: str | None = None
    models: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


def quietly(c: OciClients, fn: Any, *args: Any, **kwargs: Any) -> None:
    """A clean-up call whose failure must not hide the error that made it necessary."""
    try:
        c.call("clean up", fn, *args, **kwargs)
    except AquaLabError:
        pass


class Deployments(Protocol):
    """What evaluations need of the deployments they evaluate."""

    def get_deployment(self, deployment_id: str) -> Deployment: ...

    def where(self, compartment_id: str | None, project_id: str | None) -> tuple[str, str]: ...


class EvaluationCreation:
    """Makes the OCI records of one create (with the platform's clients and deployments)."""

    def __init__(self, clients: OciClients, deployments: Deployments):
        self.c, self.deployments = clients, deployments

    def create(self, spec: EvaluationSpec) -> tuple[str, Deployment, str | None]:
        """(the first evaluation model's OCID, the evaluated deployment, the experiment's OCID or None)."""
        deployment = self._evaluated_deployment(spec.evaluation_source_id)
        local = not spec.dataset_path.startswith("oci://")
        models = validate_evaluation(
            spec, deployment, local_dataset=local and self._is_local_dataset(spec.dataset_path)
        )
        if local:
            spec = self._upload_dataset(spec)
        else:
            self._check_dataset_exists(spec.dataset_path)
        # ADS: the evaluation goes where the evaluated deployment is, unless told otherwise
        compartment, project = self.deployments.where(
            spec.compartment_id or deployment.compartment_id, spec.project_id or deployment.project_id
        )
        made = _Made()
        try:
            version_set = self._experiment(spec, compartment, project, made)
            for model in models:
                self._create_one(spec, deployment, model, compartment, project, version_set, made, len(models) > 1)
        except AquaLabError:
            self._undo(made)
            raise
        return made.models[0], deployment, version_set

    def _evaluated_deployment(self, source_id: str) -> Deployment:
        """The deployment to evaluate; anything else is a problem on ``evaluation_source_id`` (ADS also
        takes a model OCID; aqua_lab evaluates what is deployed)."""
        if not source_id.startswith("ocid1.datasciencemodeldeployment."):
            raise InvalidInput(
                Problem(
                    "evaluation_source_id",
                    f"{shown(source_id)} is not a model deployment OCID",
                    "evaluate a deployment (ocid1.datasciencemodeldeployment.…, `aqua-lab deployment list "
                    "--platform oci`); deploy a model first to evaluate it",
                )
            )
        try:
            return self.deployments.get_deployment(source_id)
        except NotFound:
            raise InvalidInput(
                Problem(
                    "evaluation_source_id",
                    f"no deployment {source_id} (or no permission to read it)",
                    "check the OCID with `aqua-lab deployment list --platform oci --compartment_id <its compartment>`",
                )
            ) from None

    def _check_dataset_exists(self, uri: str) -> None:
        """The job would fail minutes later on a dataset it cannot read: say so now, naming the path
        (a wrong namespace is the usual slip: `oci os ns get` prints the tenancy's)."""
        found = OBJECT_URI.match(uri)
        if not found:
            return  # validate_evaluation named it
        bucket, namespace, key = found.groups()
        try:
            self.c.call("get object", self.c.os.head_object, namespace, bucket, key)
        except NotFound:
            raise InvalidInput(
                Problem(
                    "dataset_path",
                    f"{uri} is not in Object Storage (bucket {bucket!r}, namespace {namespace!r}, object {key!r})",
                    "upload it first, or pass a .jsonl file on this machine (uploaded next to the report); "
                    "`oci os ns get` prints your namespace",
                )
            ) from None

    @staticmethod
    def _is_local_dataset(path: str) -> bool:
        from ...evaluation.datasets import SAMPLE

        return path == SAMPLE or Path(path).expanduser().is_file()

    def _upload_dataset(self, spec: EvaluationSpec) -> EvaluationSpec:
        """ADS's rule for a dataset on this machine: checked here (every bad row named at once, before
        anything is submitted), then uploaded as ``<report_path>/<file name>``; an object already
        there is refused unless ``force_overwrite``."""
        from ...evaluation.datasets import SAMPLE, load_dataset, sample_path

        load_dataset(spec.dataset_path)  # every bad row refused here, before anything is made
        file = sample_path() if spec.dataset_path == SAMPLE else Path(spec.dataset_path).expanduser()
        bucket, namespace, prefix = OBJECT_URI.match(spec.report_path).groups()
        file_name = file.name
        key = "/".join(p for p in (prefix.strip("/"), file_name) if p)
        uri = f"oci://{bucket}@{namespace}/{key}"
        data = file.read_bytes()
        if not spec.force_overwrite:
            try:
                self.c.call("get object", self.c.os.head_object, namespace, bucket, key)
            except NotFound:
                pass
            else:
                raise InvalidInput(
                    Problem(
                        "dataset_path",
                        f"{file_name} already exists in {spec.report_path}",
                        "use a new dataset file name or report path, or set force_overwrite (--force_overwrite True)",
                    )
                )
        self.c.call("put object", self.c.os.put_object, namespace, bucket, key, data)
        return spec.model_copy(update={"dataset_path": uri})

    def _create_one(
        self,
        spec: EvaluationSpec,
        deployment: Deployment,
        model: str,
        compartment: str,
        project: str,
        version_set: str | None,
        made: _Made,
        grouped: bool,
    ) -> None:
        """ADS's order: the evaluation model, the job and its run, then the model's metadata updated
        with their ids and its provenance (``training_id``) pointing at the run."""
        comparison = made.models[0] if grouped and made.models else None
        body = evaluation_model_request(spec, deployment, model, compartment, project, version_set, comparison)
        created = self.c.call("create model", self.c.ds.create_model, self.c.sdk(body, "CreateModelDetails")).data
        made.models.append(created.id)
        job_body, run_body = evaluation_job_requests(
            spec, deployment, model, compartment, project, created.id, conda_namespace=SERVICE_MODELS_NAMESPACE
        )
        job = self.c.call("create job", self.c.ds.create_job, self.c.sdk(job_body, "CreateJobDetails")).data
        made.jobs.append(job.id)
        run = self.c.call(
            "create job run", self.c.ds.create_job_run, self.c.sdk({**run_body, "jobId": job.id}, "CreateJobRunDetails")
        ).data
        update = evaluation_model_update(body, job.id, run.id, made.models[0] if grouped else None)
        self.c.call("update model", self.c.ds.update_model, created.id, self.c.sdk(update, "UpdateModelDetails"))
        self.c.call(  # a new model has no provenance yet: ADS makes it with the model, then updates it
            "create model provenance",
            self.c.ds.create_model_provenance,
            created.id,
            self.c.sdk({"trainingId": run.id}, "CreateModelProvenanceDetails"),
        )

    def _experiment(self, spec: EvaluationSpec, compartment: str, project: str, made: _Made) -> str | None:
        """The model version set: ``experiment_id`` as given, or the one named ``experiment_name``
        (made, tagged ``aqua_evaluation``, when there is none).  Either must be an evaluation
        experiment (ADS refuses others).  Neither: none (ADS requires one; the seed's own example
        passes neither, so aqua_lab accepts that)."""
        if spec.experiment_id:
            try:
                mvs = self.c.call("get model version set", self.c.ds.get_model_version_set, spec.experiment_id).data
            except NotFound:
                raise InvalidInput(
                    Problem(
                        "experiment_id",
                        f"no model version set {spec.experiment_id} (or no permission to read it)",
                        "check the OCID, or pass --experiment_name to find or make the experiment by name",
                    )
                ) from None
            self._check_experiment(mvs, "experiment_id")
            return mvs.id
        if not spec.experiment_name:
            return None
        found = self.c.list_all(
            "list model version sets", self.c.ds.list_model_version_sets, compartment, name=spec.experiment_name
        )
        found = [v for v in found if v.lifecycle_state != "DELETED"]
        if found:
            self._check_experiment(found[0], "experiment_name")
            return found[0].id
        body = {
            "compartmentId": compartment,
            "projectId": project,
            "name": spec.experiment_name,
            "freeformTags": {EVALUATION_TAG: EVALUATION_TAG},
        }
        if spec.experiment_description:
            body["description"] = spec.experiment_description
        mvs = self.c.call(
            "create model version set",
            self.c.ds.create_model_version_set,
            self.c.sdk(body, "CreateModelVersionSetDetails"),
        ).data
        made.version_set = mvs.id
        return mvs.id

    @staticmethod
    def _check_experiment(mvs: Any, option: str) -> None:
        if EVALUATION_TAG not in (mvs.freeform_tags or {}):
            raise InvalidInput(
                Problem(
                    option,
                    f"the model version set {mvs.name!r} ({mvs.id}) is not an evaluation experiment "
                    f"(no {EVALUATION_TAG} tag)",
                    "name a new experiment (--experiment_name makes it) or one made for evaluations",
                )
            )

    def _undo(self, made: _Made) -> None:
        """Best effort: a failed create leaves nothing it made behind (its first error is the one shown)."""
        for job_id in made.jobs:
            quietly(self.c, self.c.ds.delete_job, job_id, delete_related_job_runs=True)
        for model_id in made.models:
            quietly(self.c, self.c.ds.delete_model, model_id)
        if made.version_set:
            quietly(self.c, self.c.ds.delete_model_version_set, made.version_set)
