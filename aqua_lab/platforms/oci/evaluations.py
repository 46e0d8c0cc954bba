"""Evaluations on OCI, stored the way ``ads aqua evaluation`` stores them, so an evaluation made by
either tool is listed, read, cancelled and deleted by the other:

* the **evaluation model**: a DataScienceModel tagged ``aqua_evaluation``, in the experiment's model
  version set, with custom metadata ``evaluation_source`` (the deployment), ``evaluation_output_path``
  (``report_path``), ``evaluation_source_name``, ``evaluation_job_id`` and ``evaluation_job_run_id``,
  the Hyperparameters metadata ``{"model_params": {shape, dataset_path, report_path, …model_parameters}}``
  and the job run as its provenance ``training_id``.  Its OCID is the evaluation's id;
* the **job** and **job run** (tags ``aqua_evaluation`` and ``evaluation_model_id``) running the
  evaluation container with ``AIP_SMC_EVALUATION_ARGUMENTS`` whose ``evaluation_id`` is that OCID;
* the **reports**: ``report.json`` / ``report.html`` under ``<report_path>/<evaluation id>/`` in Object
  Storage (where ADS's ``download_report`` reads them when the model has no artifact), else in the
  evaluation model's artifact.

A request without ``model_parameters.model`` on a multi-model deployment makes one evaluation per
served model (ADS's rule) and groups them as one **comparison**: each member carries the freeform tag
``aqua_lab_comparison`` = the first member's OCID, which is the comparison's id.  ``get``/``report``
of that id answer for the whole comparison; a member's own id still reads as one ADS evaluation.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...domain import Deployment, Evaluation, EvaluationSpec, MetricSpec, ModelProgress, ResourceRef
from ...errors import AquaLabError, Conflict, InvalidInput, NotFound, Problem, UpstreamError, shown
from ...planning.evaluation import (
    COMPARISON_TAG,
    EVALUATION_TAG,
    HYPERPARAMETERS,
    JOB_ID,
    JOB_RUN_ID,
    OUTPUT_PATH,
    SOURCE,
    SOURCE_NAME,
    evaluation_job_requests,
    evaluation_model_request,
    evaluation_model_update,
    validate_evaluation,
)
from .artifacts import SERVICE_MODELS_NAMESPACE
from .clients import OciClients
from .wire import custom_metadata

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


@dataclass(frozen=True)
class _Source:
    """What an evaluation shows of the deployment it evaluated."""

    endpoint: str | None
    aqua_service_model: bool

    @classmethod
    def of(cls, deployment: Deployment) -> _Source:
        return cls(deployment.endpoint, deployment.aqua_service_model)


@dataclass
class _Made:
    """What one create made so far, deleted again if a later step fails."""

    version_set: str | None = None
    models: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


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


#: a container's summary line: ``Median F1: 0.598 (SD: 0.018)``
SCORE_LINE = re.compile(r"median\s*([^:]*):\s*(-?\d+(?:\.\d+)?)(?:\s*\(\s*sd:\s*(-?\d+(?:\.\d+)?)\s*\))?", re.I)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def comparable_report(report: dict[str, Any], model: str) -> dict[str, Any]:
    """A member's report.json in the shape the comparison reads.  aqua_lab's (the emulator's) is
    already; the AQUA container's own — an evaluation made by ``ads aqua`` — lists
    ``metric_results`` as ``{key, name, description, …}`` without per-key statistics, so the
    medians come from its ``metric_summary_result`` lines and rows keep what they carry."""
    results = report.get("metric_results") or {}
    ours = all(isinstance(r, dict) and "keys" in r and "summary" in r for r in results.values())
    if ours and "generation" in report and isinstance(report.get("data"), list):
        return {**report, "model": report.get("model") or model}
    lines = [x for x in report.get("metric_summary_result") or [] if isinstance(x, dict)]
    entries = {k: r for k, r in results.items() if isinstance(r, dict)} or {
        str(x.get("metric")): {"name": x.get("metric")} for x in lines if x.get("metric")
    }
    metric_results = {}
    for name, entry in entries.items():
        key = str(entry.get("key") or name)
        label = str(entry.get("name") or key)
        line = next((x for x in lines if x.get("metric") in (label, key, name)), {})
        found = SCORE_LINE.search(str(line.get("score") or ""))
        stats = {"count": None, "median": None, "mean": None, "sd": None, "min": None, "max": None}
        if found:
            stats.update(median=float(found.group(2)), sd=float(found.group(3)) if found.group(3) else None)
        metric_results[name] = {
            "label": label,
            "keys": [key],
            "headline": key,
            "higher_is_better": True,
            "summary": {key: stats},
            "corpus": {},
            "note": entry.get("description") or None,
        }
    data = []
    for i, row in enumerate(r for r in report.get("data") or [] if isinstance(r, dict)):
        item = {
            "index": row.get("index", i),
            "prompt": str(row.get("prompt") or ""),
            "reference": str(row.get("reference") or row.get("completion") or ""),
            "prediction": row.get("prediction") if isinstance(row.get("prediction"), str) else None,
            "category": row.get("category"),
        }
        item.update({e["headline"]: _number(row.get(e["headline"])) for e in metric_results.values()})
        data.append(item)
    return {
        "evaluation_id": report.get("evaluation_id"),
        "model": model,
        "metric_summary_result": lines,
        "metric_results": metric_results,
        "generation": {},
        "model_params": report.get("model_params") or {},
        "data": data,
    }


def comparable_reports(reports: list[dict[str, Any]], models: list[str]) -> list[dict[str, Any]]:
    """Every member's report for the comparison; per-row answers only when all have the same rows."""
    out = [comparable_report(r, m) for r, m in zip(reports, models, strict=True)]
    if len({len(r["data"]) for r in out}) > 1:
        out = [{**r, "data": []} for r in out]
    return out


def hyperparameters(model: Any) -> dict[str, Any]:
    for m in model.defined_metadata_list or []:
        if m.key == HYPERPARAMETERS and m.value:
            try:
                return dict(json.loads(m.value).get("model_params") or {})
            except (ValueError, AttributeError):
                return {}
    return {}


class Deployments(Protocol):
    """What evaluations need of the deployments they evaluate."""

    def get_deployment(self, deployment_id: str) -> Deployment: ...

    def where(self, compartment_id: str | None, project_id: str | None) -> tuple[str, str]: ...


class OciEvaluations:
    """The evaluation verbs of :class:`~aqua_lab.platforms.oci.OciPlatform`, which hands them its
    clients and its deployments."""

    def __init__(self, clients: OciClients, deployments: Deployments):
        self.c, self.deployments = clients, deployments

    # create ---------------------------------------------------------------------------------------

    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
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
        evaluation = self.get_evaluation(made.models[0], _Source.of(deployment))
        # ADS's create answer names the job (get and list then name its run) and adds these tags
        evaluation.job = ResourceRef(
            id=evaluation.job_id or "",
            name=spec.evaluation_name,
            url=console_url(evaluation.job_id, self.c.auth.region),
        )
        evaluation.tags.update(
            {
                "evaluation_job_id": evaluation.job_id,
                "evaluation_source": deployment.id,
                "evaluation_experiment_id": version_set or "",
            }
        )
        return evaluation

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
            self._quietly(self.c.ds.delete_job, job_id, delete_related_job_runs=True)
        for model_id in made.models:
            self._quietly(self.c.ds.delete_model, model_id)
        if made.version_set:
            self._quietly(self.c.ds.delete_model_version_set, made.version_set)

    def _quietly(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            self.c.call("clean up", fn, *args, **kwargs)
        except AquaLabError:
            pass

    # read -----------------------------------------------------------------------------------------

    def _evaluation_model(self, evaluation_id: str) -> Any:
        if not evaluation_id.startswith("ocid1.datasciencemodel."):
            raise InvalidInput(
                Problem(
                    "evaluation_id",
                    f"{evaluation_id!r} is not an evaluation model OCID",
                    "OCI evaluations are ocid1.datasciencemodel.… (`aqua-lab evaluation list --platform oci`)",
                )
            )
        hint = "list them with `aqua-lab evaluation list --platform oci` (REST: GET evaluations?platform=oci)"
        try:
            model = self.c.call("get evaluation", self.c.ds.get_model, evaluation_id).data
        except NotFound:
            raise NotFound("evaluation", evaluation_id, hint) from None
        if EVALUATION_TAG not in (model.freeform_tags or {}) or model.lifecycle_state == "DELETED":
            raise NotFound("evaluation", evaluation_id, hint)
        return model

    def _run_of(self, model: Any, runs: dict[str, Any] | None = None) -> Any | None:
        """The evaluation's job run: ``evaluation_job_run_id``, else the provenance's ``training_id``
        (what ADS reads); None when it is gone."""
        run_id = custom_metadata(model).get(JOB_RUN_ID)
        if not run_id:
            try:
                run_id = self.c.call("get model provenance", self.c.ds.get_model_provenance, model.id).data.training_id
            except (NotFound, UpstreamError):
                run_id = None
        if not run_id:
            return None
        if runs is not None and run_id in runs:
            return runs[run_id]
        try:
            return self.c.call("get job run", self.c.ds.get_job_run, run_id).data
        except (NotFound, UpstreamError):
            return None

    def _member(self, model: Any, run: Any | None, source: _Source | None = None, job: Any | None = None) -> Evaluation:
        """One evaluation model and its run as ADS's AquaEvaluationSummary fields (and ours); ``job``
        fills what a listed run (a JobRunSummary) lacks: the shape's OCPUs and memory, the metrics."""
        region = self.c.auth.region
        meta = custom_metadata(model)
        params = hyperparameters(model)
        state = evaluation_state(model.lifecycle_state, getattr(run, "lifecycle_state", None))
        details = getattr(run, "lifecycle_details", None) or (None if run else "Missing jobrun information.")
        infra = getattr(run, "job_infrastructure_configuration_details", None) or getattr(
            job, "job_infrastructure_configuration_details", None
        )
        flex = getattr(infra, "job_shape_config_details", None)
        logs = getattr(run, "log_details", None)
        group_id, log_id = getattr(logs, "log_group_id", None), getattr(logs, "log_id", None)
        source_id = meta.get(SOURCE, "")
        name = params.get("model") or meta.get(SOURCE_NAME) or source_id
        tags = {**(model.defined_tags or {}), **(model.freeform_tags or {})}
        evaluation = Evaluation(
            id=model.id,
            job_id=meta.get(JOB_ID),
            name=model.display_name,
            state=state,
            deployment_id=source_id,
            model=name,
            report_path=meta.get(OUTPUT_PATH, params.get("report_path", "")),
            created_on=str(model.time_created),
            dataset_path=params.get("dataset_path"),
            details=details,
            description=getattr(model, "description", None),
            created_by=model.created_by,
            compartment_id=model.compartment_id,
            project_id=model.project_id,
            console_url=console_url(model.id, region),
            endpoint=source.endpoint if source else None,
            shape_info={
                "instance_shape": getattr(infra, "shape_name", None) or params.get("shape"),
                "instance_count": 1,
                "ocpus": getattr(flex, "ocpus", None),
                "memory_in_gbs": getattr(flex, "memory_in_gbs", None),
            },
            tags=tags,
            parameters=params,
            experiment=ResourceRef(
                id=model.model_version_set_id or "",
                name=model.model_version_set_name or "",
                url=console_url(model.model_version_set_id, region),
            )
            if model.model_version_set_id
            else None,
            source=ResourceRef(id=source_id, name=meta.get(SOURCE_NAME, ""), url=console_url(source_id, region)),
            job=ResourceRef(id=run.id, name=run.display_name or "", url=console_url(run.id, region)) if run else None,
            log_group=ResourceRef(id=group_id, url=log_url(region, group_id, None, None, "")) if group_id else None,
            log=ResourceRef(id=log_id, url=log_url(region, group_id, log_id, run.compartment_id, run.id))
            if log_id
            else None,
        )
        evaluation.models = [
            ModelProgress(
                model=name,
                state=state,
                evaluation_id=model.id,
                details=details,
                report=f"{evaluation.report_path.rstrip('/')}/{model.id}/report.json" if state == "SUCCEEDED" else None,
            )
        ]
        if source is not None:
            evaluation.aqua_service_model = source.aqua_service_model
        if job is not None:
            evaluation.metrics = metrics_of_job(job)
        return evaluation

    def _members(self, head: Any) -> list[Any]:
        """The evaluation models of the comparison ``head`` leads, head first (creation order)."""
        rows = self.c.list_all(
            "list models",
            self.c.ds.list_models,
            head.compartment_id or self.c.settings.compartment_id,
            lifecycle_state="ACTIVE",
        )
        ids = [r.id for r in rows if (r.freeform_tags or {}).get(COMPARISON_TAG) == head.id and r.id != head.id]
        ordered = sorted((r for r in rows if r.id in ids), key=lambda r: (str(r.time_created), ids.index(r.id)))
        return [head, *self._get_models([r.id for r in ordered])]

    def _get_models(self, ids: list[str]) -> list[Any]:
        if not ids:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
            return list(pool.map(lambda i: self.c.call("get model", self.c.ds.get_model, i).data, ids))

    def _combined(self, members: list[Evaluation]) -> Evaluation:
        """A comparison: the first member's fields, every member's row, one state for all."""
        first = members[0]
        rows = [row for m in members for row in m.models]
        return first.model_copy(
            update={
                "state": comparison_state([m.state for m in members]),
                "models": rows,
                "details": "; ".join(f"{r.model}: {r.details}" for r in rows if r.details) or None,
                # built on request from the members' report.json (evaluation_report), not stored
                "comparison_report": None,
            }
        )

    def get_evaluation(self, evaluation_id: str, source: _Source | None = None) -> Evaluation:
        """An evaluation by its model OCID; a comparison's id (its first member's) reads as the whole."""
        model = self._evaluation_model(evaluation_id)
        if source is None:
            source = self._source(custom_metadata(model).get(SOURCE, ""))
        tag = (model.freeform_tags or {}).get(COMPARISON_TAG)
        models = self._members(model) if tag == model.id else [model]
        members = [self._member(m, self._run_of(m), source) for m in models]
        evaluation = self._combined(members) if len(members) > 1 else members[0]
        evaluation.metrics = self._metrics_of(evaluation.job_id)
        return evaluation

    def _source(self, deployment_id: str) -> _Source | None:
        """The evaluated deployment's endpoint and service-model tag: one read of its record (a
        status poll should not cost a full deployment read); None once it is gone."""
        if not deployment_id.startswith("ocid1.datasciencemodeldeployment"):
            return None
        try:
            md = self.c.call("get deployment", self.c.ds.get_model_deployment, deployment_id).data
        except (NotFound, UpstreamError):
            return None  # the evaluated deployment is gone: the evaluation still reads
        return _Source(md.model_deployment_url, bool((md.freeform_tags or {}).get("aqua_service_model")))

    def _metrics_of(self, job_id: str | None) -> list[MetricSpec]:
        """The metrics the job was given (its AIP_SMC_EVALUATION_ARGUMENTS); [] when unreadable."""
        job = self._get_jobs([job_id]).get(job_id or "")
        return metrics_of_job(job) if job is not None else []

    def _get_jobs(self, ids: list[str | None]) -> dict[str, Any]:
        """The jobs by id (those gone or unreadable left out), read in parallel."""

        def one(job_id: str) -> Any | None:
            try:
                return self.c.call("get job", self.c.ds.get_job, job_id).data
            except (NotFound, UpstreamError):
                return None

        wanted = sorted({i for i in ids if i})
        if not wanted:
            return {}
        with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
            return {i: job for i, job in zip(wanted, pool.map(one, wanted), strict=True) if job is not None}

    def list_evaluations(self) -> list[Evaluation]:
        """The compartment's evaluation models (ADS-made ones too), a comparison as one entry."""
        compartment = self.c.settings.compartment_id
        rows = self.c.list_all("list models", self.c.ds.list_models, compartment, lifecycle_state="ACTIVE")
        rows = [r for r in rows if EVALUATION_TAG in (r.freeform_tags or {})]
        runs = {r.id: r for r in self.c.list_all("list job runs", self.c.ds.list_job_runs, compartment)}
        models = self._get_models([r.id for r in rows])
        # what get shows, list shows: the deployment's endpoint, the job's shape and metrics
        jobs = self._get_jobs([custom_metadata(m).get(JOB_ID) for m in models])
        sources = {d: self._source(d) for d in {custom_metadata(m).get(SOURCE, "") for m in models}}
        members = {
            m.id: self._member(
                m,
                self._run_of(m, runs),
                sources.get(custom_metadata(m).get(SOURCE, "")),
                jobs.get(custom_metadata(m).get(JOB_ID) or ""),
            )
            for m in models
        }
        groups: dict[str, list[Evaluation]] = {}
        for m in models:
            head = (m.freeform_tags or {}).get(COMPARISON_TAG)
            groups.setdefault(head if head in members else m.id, []).append(members[m.id])
        out = []
        for head_id, group in groups.items():
            group.sort(key=lambda e: (e.id != head_id, e.created_on or ""))
            out.append(self._combined(group) if len(group) > 1 else group[0])
        return sorted(out, key=lambda e: e.created_on or "")

    # cancel, delete -------------------------------------------------------------------------------

    def _models_of(self, evaluation_id: str) -> list[Any]:
        model = self._evaluation_model(evaluation_id)
        return self._members(model) if (model.freeform_tags or {}).get(COMPARISON_TAG) == model.id else [model]

    def cancel_evaluation(self, evaluation_id: str) -> Evaluation:
        """Cancel the job run of every member still running (ADS: the run goes CANCELING)."""
        models = self._models_of(evaluation_id)
        cancelled = 0
        for m in models:
            run = self._run_of(m)
            if run is not None and run.lifecycle_state in ("ACCEPTED", "IN_PROGRESS", "NEEDS_ATTENTION"):
                try:
                    self.c.call("cancel job run", self.c.ds.cancel_job_run, run.id)
                    cancelled += 1
                except UpstreamError as exc:
                    if exc.status != 409:  # finished meanwhile
                        raise
        if not cancelled:
            state = self.get_evaluation(evaluation_id).state
            raise Conflict(f"evaluation {evaluation_id} is already {state}; nothing to cancel")
        return self.get_evaluation(evaluation_id)

    def delete_evaluation(self, evaluation_id: str) -> Evaluation:
        """Delete each member's job run, job and evaluation model (ADS deletes the job with its runs
        and the model); a running run is cancelled first.  The report files in Object Storage stay."""
        gone = self.get_evaluation(evaluation_id)
        for m in self._models_of(evaluation_id):
            run = self._run_of(m)
            meta = custom_metadata(m)
            if run is not None and run.lifecycle_state in ("ACCEPTED", "IN_PROGRESS", "NEEDS_ATTENTION"):
                self._quietly(self.c.ds.cancel_job_run, run.id)
            job_id = meta.get(JOB_ID) or getattr(run, "job_id", None)
            if job_id:
                try:
                    self.c.call("delete job", self.c.ds.delete_job, job_id, delete_related_job_runs=True)
                except NotFound:
                    pass
            self.c.call("delete model", self.c.ds.delete_model, m.id)
        rows = [r.model_copy(update={"state": "DELETED", "report": None}) for r in gone.models]
        return gone.model_copy(update={"state": "DELETED", "models": rows})

    # reports --------------------------------------------------------------------------------------

    def _read_report(self, model: Any, name: str) -> bytes:
        """``<evaluation_output_path>/<id>/<name>`` from Object Storage, else from the model artifact."""
        base = custom_metadata(model).get(OUTPUT_PATH) or hyperparameters(model).get("report_path") or ""
        found = OBJECT_URI.match(base)
        if found:
            bucket, namespace, prefix = found.groups()
            key = "/".join(p for p in (prefix.strip("/"), model.id, name) if p)
            try:
                return self.c.call("get object", self.c.os.get_object, namespace, bucket, key).data.content
            except NotFound:
                pass  # not written there: the artifact, as ADS reads it first
        try:
            artifact = self.c.call("get model artifact", self.c.ds.get_model_artifact_content, model.id).data.content
            with zipfile.ZipFile(io.BytesIO(artifact)) as z:
                for entry in z.namelist():
                    if entry.rsplit("/", 1)[-1] == name:
                        return z.read(entry)
        except (NotFound, UpstreamError, zipfile.BadZipFile):
            pass
        raise NotFound("report", f"{base.rstrip('/')}/{model.id}/{name}", "the evaluation has not written it (yet)")

    def _report_json(self, model: Any) -> dict[str, Any]:
        raw = self._read_report(model, "report.json")
        try:
            report = json.loads(raw)
        except ValueError:
            report = None
        if not isinstance(report, dict):
            raise UpstreamError(f"the report.json of evaluation {model.id} is not a JSON object", 502)
        return report

    def evaluation_report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        """A member's report.json/report.html as the container wrote it (``model``: its served name),
        or without ``model`` the comparison built from every member's report.json (as on the local
        platform; for a single evaluation, a comparison of one)."""
        from ...evaluation.report import comparison, comparison_html

        if fmt not in ("json", "html"):
            raise InvalidInput(Problem("format", f"{fmt!r}", "use json or html"))
        evaluation = self.get_evaluation(evaluation_id)
        rows = {r.model: r for r in evaluation.models}
        if model is not None and model not in rows:
            head = evaluation.tags.get(COMPARISON_TAG)
            whole = f", or the whole comparison: --evaluation_id {head}" if head and head != evaluation_id else ""
            raise InvalidInput(
                Problem("model", f"{shown(model)} is not part of {evaluation_id}", f"use one of {list(rows)}{whole}")
            )
        wanted = [rows[model]] if model else list(rows.values())
        not_done = [r for r in wanted if r.state != "SUCCEEDED"]
        if not_done:
            raise Conflict(
                f"evaluation {evaluation_id}: "
                + ", ".join(f"{r.model} is {r.state}" for r in not_done)
                + "; a report comes when it SUCCEEDED"
            )
        records = {r.evaluation_id: self.c.call("get model", self.c.ds.get_model, r.evaluation_id).data for r in wanted}
        if model is not None:
            return self._read_report(records[wanted[0].evaluation_id], f"report.{fmt}").decode()
        reports = comparable_reports(
            [self._report_json(records[r.evaluation_id]) for r in wanted], [r.model for r in wanted]
        )
        comp = comparison(reports)
        comp["evaluation_id"] = evaluation_id
        return json.dumps(comp, indent=1) if fmt == "json" else comparison_html(comp, reports)
