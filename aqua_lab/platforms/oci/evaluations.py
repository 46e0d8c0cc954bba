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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ...domain import Deployment, Evaluation, EvaluationSpec, MetricSpec, ModelProgress, ResourceRef
from ...errors import Conflict, InvalidInput, NotFound, Problem, UpstreamError
from ...planning.evaluation import (
    COMPARISON_TAG,
    EVALUATION_TAG,
    JOB_ID,
    JOB_RUN_ID,
    OUTPUT_PATH,
    SOURCE,
    SOURCE_NAME,
)
from .clients import OciClients
from .evaluation_create import Deployments, EvaluationCreation, quietly
from .evaluation_records import (
    comparison_state,
    console_url,
    evaluation_state,
    hyperparameters,
    log_url,
    metrics_of_job,
)
from .evaluation_reports import EvaluationReports
from .wire import custom_metadata


@dataclass(frozen=True)
class _Source:
    """What an evaluation shows of the deployment it evaluated."""

    endpoint: str | None
    aqua_service_model: bool

    @classmethod
    def of(cls, deployment: Deployment) -> _Source:
        return cls(deployment.endpoint, deployment.aqua_service_model)


class OciEvaluations:
    """The evaluation verbs of :class:`~aqua_lab.platforms.oci.OciPlatform`, which hands them its
    clients and its deployments: reading and status here, creating in :mod:`.evaluation_create`,
    reports in :mod:`.evaluation_reports`."""

    def __init__(self, clients: OciClients, deployments: Deployments):
        self.c, self.deployments = clients, deployments
        self.creation = EvaluationCreation(clients, deployments)
        self.reports = EvaluationReports(clients, self.get_evaluation)

    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        head, deployment, version_set = self.creation.create(spec)
        evaluation = self.get_evaluation(head, _Source.of(deployment))
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

    def evaluation_report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        return self.reports.report(evaluation_id, model, fmt)

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
                quietly(self.c, self.c.ds.cancel_job_run, run.id)
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
