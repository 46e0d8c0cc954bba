"""The service facade: the one implementation behind the REST handlers, the widgets and the CLI.

It resolves model ids through the platform, plans and validates with the pure planning core, and
hands validated requests to the platform.  Fronts use only this class (and its async face,
:class:`~aqua_lab.service.aio.AsyncAquaLabService`): they never reach the platform, the planner
or the catalog themselves.  Planning inputs are cached here, per platform scope (OCI: region and
compartment) and model id, for ``input_ttl_s`` (an explicit cache: a plan asks for the same
configs many times; a changed ``deployment_config.json`` is seen once the entry expires;
``clear_cache`` drops everything).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from ..arena.models import BlindPair, BlindPairRequest, Leaderboard, Vote, VoteRequest, VoteSource
from ..catalog import bundled_catalog, load_deployment_config_file
from ..domain import (
    DEFAULT_CONTAINER_IMAGE,
    CapacityInputs,
    CatalogModel,
    ChatRequest,
    CompareRequest,
    Deployment,
    DeploymentMetrics,
    DeploymentSpec,
    Evaluation,
    EvaluationConfig,
    EvaluationMetrics,
    EvaluationSpec,
    EvaluationStatus,
    MetricDescription,
    MetricScores,
    ModelEvaluationMetrics,
    ModelGroupVersion,
    ModelInput,
    ModelState,
    Plan,
    ScalingChange,
    Shape,
    UploadedDataset,
    ValidatedDeployment,
    machine_words,
)
from ..errors import AquaLabError, InvalidInput, NotFound, Problem, shown
from ..planning import ShapeCatalog, is_power_of_two, payloads, plan, scaling, validate_deployment
from ..planning.gpu_sharing import share_gpus, whole_gpus_only
from ..planning.shapes import shape_order
from ..planning.sizing import parameter_count_from_name
from ..platforms.base import FetchedConfig, Platform
from ..platforms.notebook_runner import NotebookEvaluations, is_notebook_evaluation
from ..platforms.registry import PlatformSettings, build_platform, default_data_dir
from . import datasets, verbs
from .arena import Arena
from .cache import TTLCache
from .chat import ChatRelay
from .datasets import DatasetRow, SavedDataset

#: states a deployment settles in: waiting stops there (it never leaves them by itself)
SETTLED = ("ACTIVE", "FAILED", "NEEDS_ATTENTION", "DELETED")
#: states an evaluation ends in
EVALUATION_SETTLED = ("SUCCEEDED", "FAILED", "CANCELED")
#: what an evaluation form starts from (the local runner sends them as the model's sampling parameters)
EVALUATION_MODEL_PARAMS = {"max_tokens": 64, "temperature": 0.0, "top_p": 1.0}
DEFAULT_METRICS = ("rouge", "bleu")
PLACEHOLDER_COMPARTMENT = "<compartment_ocid>"
PLACEHOLDER_PROJECT = "<project_ocid>"


class AquaLabService:
    #: how long planning trusts a model's catalog entry and deployment_config.json
    INPUT_TTL_S = 300.0

    def __init__(
        self,
        platform: Platform | str = "local",
        settings: PlatformSettings | None = None,
        input_ttl_s: float | None = None,
    ):
        self.platform = (
            build_platform(platform, settings or PlatformSettings()) if isinstance(platform, str) else platform
        )
        # uploaded datasets and default report folders: beside the platform's state on this machine
        self._data_dir = settings.data_dir if settings and settings.data_dir else self.platform.data_dir
        # what a notebook evaluation's job rebuilds the platform from (None: given a platform object)
        self._settings = (settings or PlatformSettings()) if isinstance(platform, str) else None
        self._inputs: TTLCache[FetchedConfig] = TTLCache(self.INPUT_TTL_S if input_ttl_s is None else input_ttl_s)
        self.chats = ChatRelay(self.platform)
        self._chat_deployments = self.chats.targets  # dropped when a verb changes the deployment
        self.arena = Arena(self.platform, self.chats, self._files_dir())
        #: the evaluations aqua_lab's runner makes here of this platform's deployments (``runner: notebook``);
        #: built once, so concurrent verbs share one store
        self.notebook_evaluations = NotebookEvaluations(self.platform, self._settings, self._files_dir())

    @property
    def platform_name(self) -> str:
        return self.platform.name

    # catalog --------------------------------------------------------------------------------------

    @verbs.shared_read
    def shapes(self) -> list[Shape]:
        return sorted(self.platform.list_shapes(), key=shape_order)

    @verbs.read
    def shape_catalog(self) -> ShapeCatalog:
        return ShapeCatalog(self.shapes())

    @verbs.read
    def default_shape(self) -> str | None:
        """The shape a request gets when it names none (the local machine), else None."""
        return self.platform.default_shape()

    @verbs.shared_read
    def models(self) -> list[CatalogModel]:
        return self.platform.list_models()

    @verbs.read
    def resolve_model(self, model_id: str) -> CatalogModel:
        """The catalog entry for an id or a name (:class:`NotFound` with a hint otherwise)."""
        return self.platform.get_model(model_id)

    def _fetched(self, model_ids: Sequence[str]) -> dict[str, FetchedConfig]:
        """What planning knows of each model, from the cache while fresh, the rest in one platform
        round; the ids the platform does not know are left out."""
        scope = self.platform.cache_scope()
        found = {i: hit for i in dict.fromkeys(model_ids) if (hit := self._inputs.get((scope, i))) is not None}
        missing = [i for i in dict.fromkeys(model_ids) if i not in found]
        if missing:
            for given, fetched in self.platform.fetch_configs(missing).items():
                self._inputs.put((scope, given), fetched)
                self._inputs.put((scope, fetched.model.id), fetched)  # a later ask by id finds it too
                found[given] = fetched
        return found

    @verbs.read
    def model_input(self, model_id: str) -> ModelInput:
        found = self._fetched([model_id]).get(model_id)
        if found is None:
            self.platform.get_model(model_id)  # raises the platform's NotFound, with its hint
            raise NotFound("model", model_id)
        return self._with_architecture(ModelInput.from_catalog(found.model, found.config))

    def _with_architecture(self, model: ModelInput) -> ModelInput:
        """The model with its architecture for the memory model: the platform's reading of its files,
        else the bundled service-model facts by name (OCI names service models as the bundled table
        does).  A ``config.json`` has no parameter count: it is taken from the bundled row, else from
        the model's name, and the source says which."""
        if model.architecture is not None:
            return model
        table = bundled_catalog().architectures
        known = table.find(model.name) or table.find(model.model_id)
        arch = self.platform.get_model_architecture(model.model_id)
        if arch is None:
            arch = known
        elif arch.parameters_b is None and arch.weight_bytes is None:
            if known is not None and known.parameters_b:
                update = {"parameters_b": known.parameters_b, "weight_bytes": known.weight_bytes}
                arch = arch.model_copy(update={**update, "source": f"{arch.source}; parameters: {known.source}"})
            elif model.parameter_count_b:
                note = f"{arch.source}; parameters ≈{model.parameter_count_b:g}B read from the model's name"
                arch = arch.model_copy(update={"parameters_b": model.parameter_count_b, "source": note})
        return model.model_copy(update={"architecture": arch}) if arch is not None else model

    @verbs.read
    def model_inputs(self, model_ids: Sequence[str]) -> list[ModelInput]:
        """Planning inputs of many models, fetched in one round (every unknown id is one problem)."""
        return [m for m, _ in self._load(model_ids, "model_ids")]

    @verbs.write
    def clear_cache(self) -> None:
        self._inputs.clear()
        self._chat_deployments.clear()

    @property
    @verbs.read
    def can_register_models(self) -> bool:
        return self.platform.registers_models

    @verbs.write
    def register_model(self, path: str, name: str | None = None, base_model_id: str | None = None) -> CatalogModel:
        """Add a model file or folder of your own (the local platform; others refuse with 409)."""
        model = self.platform.register_model(path, name, base_model_id)
        self._inputs.clear()  # a re-registered id must not plan with the old file's facts
        return model

    @verbs.write
    def unregister_model(self, model_id: str) -> CatalogModel:
        """Forget a model registered with :meth:`register_model` (its files are left alone)."""
        model = self.platform.unregister_model(model_id)
        self._inputs.clear()
        return model

    @staticmethod
    @verbs.read
    def custom_model(model_id: str, path: str) -> tuple[ModelInput, list[str]]:
        """A model the platform does not know, planned with the deployment_config.json at ``path``
        (checked against OCI's shapes): the planning input and the warnings the file gave."""
        loaded = load_deployment_config_file(path, bundled_catalog().shapes)
        model = ModelInput(
            model_id=model_id,
            name=model_id,
            config=loaded.config,
            parameter_count_b=parameter_count_from_name(model_id),
        )
        return model, loaded.warnings

    @staticmethod
    @verbs.read
    def check_config_file(path: str) -> tuple[dict[str, list[int]], list[str]]:
        """Per shape, the GPU counts a deployment_config.json offers multi-model deployments; and its warnings."""
        loaded = load_deployment_config_file(path, bundled_catalog().shapes)
        counts = {s: [e.gpu_count for e in c.multi_model_deployment] for s, c in loaded.config.configuration.items()}
        return counts, loaded.warnings

    def _load(
        self, ids: Sequence[str], field: str, own: dict[str, ModelInput] | None = None
    ) -> list[tuple[ModelInput, list[str]]]:
        """(input, config warnings) for ``ids`` (``own`` ones as given, without warnings)."""
        own = own or {}
        fetched = self._fetched([i for i in ids if i not in own])
        problems, inputs = [], []
        for i, model_id in enumerate(ids):
            if model_id in own:
                inputs.append((self._with_architecture(own[model_id]), []))
            elif model_id in fetched:
                found = fetched[model_id]
                model = self._with_architecture(ModelInput.from_catalog(found.model, found.config))
                inputs.append((model, found.warnings))
            else:
                try:
                    inputs.append((self.model_input(model_id), []))
                except NotFound as exc:
                    problems.append(Problem(f"{field}[{i}]", f"unknown model {shown(model_id)}", exc.hint))
        if problems:
            raise InvalidInput(problems)
        return inputs

    # planning -------------------------------------------------------------------------------------

    @verbs.read
    def plan(
        self,
        model_ids: Sequence[str],
        primary_model_id: str | None = None,
        shape: str | None = None,
        extra: Sequence[ModelInput] = (),
        capacity: CapacityInputs | None = None,
    ) -> Plan:
        """Where can these models run together and how do the GPUs split.  ``extra`` adds models
        the platform does not know (e.g. one with a deployment_config.json given by path);
        ``capacity`` holds the what-if inputs of the memory model."""
        own = {m.model_id: m for m in extra}
        problems: list[Problem] = []  # every problem at once: a model typo and a shape typo are two
        try:
            loaded = self._load(model_ids, "model_ids", own)  # one round of config fetches, not one per model
        except InvalidInput as exc:
            problems += exc.problems
            loaded = []
        inputs = [m for m, _ in loaded]
        if primary_model_id is not None and primary_model_id not in own:
            try:
                primary_model_id = self.platform.get_model(primary_model_id).id
            except NotFound:
                pass  # plan() names the problem with the list of valid ids
        shapes = ShapeCatalog(sorted(self.platform.planning_shapes(), key=shape_order))  # what is free
        if shape:
            try:
                shapes = ShapeCatalog([shapes.get(shape)])
            except NotFound as exc:
                problems.append(Problem("shape", f"unknown shape {shape!r}", exc.hint))
        if problems:
            raise InvalidInput(problems)
        result = plan(inputs, shapes, primary_model_id, capacity)
        if sharing := self.platform.shared_gpu_engine():
            result = share_gpus(result, inputs, shapes, *sharing, capacity)
        else:
            result = whole_gpus_only(result, shapes)
        if shape:  # the shapes --shape left out were not asked about: they are not "not offered"
            asked = {s.name for s in shapes}
            result.incompatible_shapes = {k: v for k, v in result.incompatible_shapes.items() if k in asked}
        result.warnings += [w for _, warnings in loaded for w in warnings]
        if note := self.platform.capacity_note():
            result.warnings.append(note)
        return _in_machine_words(result, shapes)

    @staticmethod
    @verbs.read
    def gpu_count_choices(total_gpus: int) -> list[int]:
        """The GPU counts a model may get on a shape of ``total_gpus`` (powers of two, planning's rule)."""
        return [n for n in range(1, total_gpus + 1) if is_power_of_two(n)]

    @verbs.read
    def validate(
        self, spec: DeploymentSpec, extra: Sequence[ModelInput] = (), updating: bool = False
    ) -> ValidatedDeployment:
        own = {m.model_id: m for m in extra}
        known: dict[str, ModelInput] = dict(own)
        models = []
        for entry in spec.models:
            if entry.model_id not in own:
                try:
                    found = self.model_input(entry.model_id)
                    known[found.model_id] = found
                    entry = entry.model_copy(update={"model_id": found.model_id})
                except NotFound:
                    pass  # validate_deployment reports it with the suggestion
            models.append(entry)
        spec = spec.model_copy(update={"models": models})
        if spec.instance_shape is None and (machine := self.default_shape()):
            spec = spec.model_copy(update={"instance_shape": machine})  # local: this machine, as the CLI does
        shapes = self.shape_catalog()
        shape = shapes.find(spec.instance_shape) if spec.instance_shape else None
        try:
            validated = validate_deployment(
                spec,
                known,
                shapes,
                self.platform.suggest,
                params_key=self.platform.params_key,
                updating=updating,
                sharing=(self.platform.shared_gpu_engine() or (None,))[0],  # models may share a GPU here
            )
        except InvalidInput as exc:
            if shape is None or not shape.is_cpu:
                raise
            raise InvalidInput(
                [
                    Problem(p.field, machine_words(p.message, shape), machine_words(p.fix or "", shape) or None)
                    for p in exc.problems
                ]
            ) from None
        validated.warnings[:] = [machine_words(w, shape) for w in validated.warnings]
        self.platform.check_models(validated)
        # a policy the platform cannot run is refused at validate time, not after a create
        refusal = self.platform.scaling_refusal(validated.spec) or self.platform.inference_key_refusal(validated.spec)
        if refusal:
            raise refusal
        validated.refused_now = self._refused_now(validated)
        return validated

    def _refused_now(self, validated: ValidatedDeployment) -> str | None:
        """Why a create of a valid request would be refused now: the slots running deployments hold
        (the local platform) leave fewer free than it needs.  A front says "valid" only without it."""
        note = self.platform.capacity_note()
        if note is None:
            return None  # nothing is held: what validated fits
        free = next((s for s in self.platform.planning_shapes() if s.name == validated.shape.name), None)
        if free is None or validated.used_gpus <= free.gpu_count:
            return None
        unit = validated.shape.unit
        return (
            f"a create now would be refused: it needs {validated.used_gpus} {unit(validated.used_gpus)} and {note}. "
            f"Deactivate or delete a deployment that holds them, or ask for fewer {unit()}"
        )

    @verbs.read
    def payload_preview(self, validated: ValidatedDeployment) -> dict[str, Any]:
        """The OCI request bodies a validated deployment becomes, without sending them.  What only
        OCI knows (artifact paths, OCIDs not given) stays a named placeholder."""
        spec = validated.spec
        paths = {m.model_id: f"<artifact path of {m.model_id}>" for m in validated.models}
        compartment = spec.compartment_id or PLACEHOLDER_COMPARTMENT
        project = spec.project_id or PLACEHOLDER_PROJECT
        image = spec.container_image_uri or DEFAULT_CONTAINER_IMAGE
        out: dict[str, Any] = {
            "warnings": validated.warnings,
            "served_params": {m.model_name: m.served_params for m in validated.models},
        }
        if spec.deployment_type == "SINGLE":
            out["model_deployment"] = payloads.model_deployment_request(validated, image, compartment, project)
        else:
            if spec.deployment_type == "MULTI":
                out["multi_model_config"] = payloads.multi_model_config(validated, paths)
            out["model_group"] = payloads.model_group_request(validated, paths, compartment, project)
            out["model_deployment"] = payloads.model_deployment_request(
                validated, image, compartment, project, model_group_id="<model_group_ocid from the model_group call>"
            )
        return out

    # deployments ----------------------------------------------------------------------------------

    @verbs.write
    def create_deployment(self, request: DeploymentSpec | ValidatedDeployment) -> Deployment:
        """Deploy a request (validated here unless it comes from :meth:`validate` already)."""
        validated = request if isinstance(request, ValidatedDeployment) else self.validate(request)
        created = self.platform.create_deployment(validated)
        # what validation noted (a GPU count only estimated, GPUs left idle) is part of the create's answer
        created.warnings[:0] = [w for w in validated.warnings if w not in created.warnings]
        return created

    @verbs.shared_read
    def list_deployments(self) -> list[Deployment]:
        return self.platform.list_deployments()

    @verbs.shared_read
    def get_deployment(self, deployment_id: str) -> Deployment:
        return self.platform.get_deployment(deployment_id)

    @verbs.write
    def update_deployment(self, deployment_id: str, spec: DeploymentSpec) -> Deployment:
        """Replace a deployment's models in place (OCI: a new model group, LIVE for stacked)."""
        if spec.ocpus is None and spec.memory_in_gbs is None:
            # an update keeps its flex size: check the models against it, not against the default size
            try:
                info = self.platform.get_deployment(deployment_id).shape_info
            except AquaLabError:  # unknown, or a platform without updates: its update_models says which
                info = None
            if info is not None and (info.ocpus or info.memory_in_gbs):
                spec = spec.model_copy(update={"ocpus": info.ocpus, "memory_in_gbs": info.memory_in_gbs})
        validated = self.validate(spec, updating=True)
        self._chat_deployments.drop(deployment_id)
        return self.platform.update_models(deployment_id, validated)

    # scaling and metrics ----------------------------------------------------------------------------

    @verbs.write
    def update_scaling(self, deployment_id: str, change: ScalingChange) -> Deployment:
        """Change a live deployment's instance count, autoscaling policy or bandwidth."""
        policy = scaling.change_policy(change)
        self._chat_deployments.drop(deployment_id)
        return self.platform.update_scaling(deployment_id, policy, change.bandwidth_mbps)

    @verbs.read
    def deployment_metrics(self, deployment_id: str, window_s: float = 300) -> DeploymentMetrics:
        """Per-model requests, errors, TTFT p50/p95, tokens/s, in-flight and replicas over a window."""
        longest = self.platform.max_metrics_window_s
        if not 1 <= window_s <= longest:
            raise InvalidInput(
                Problem(
                    "window",
                    f"{window_s:.0f} s is out of range: the {self.platform.name} platform answers 1 s to "
                    f"{longest:.0f} s ({self.platform.max_metrics_window_text})",
                    "give a shorter window (e.g. 5m, 1h)",
                )
            )
        return self.chats.meter.fill(self.platform.deployment_metrics(deployment_id, window_s))

    @verbs.write
    def activate(self, deployment_id: str) -> Deployment:
        self._chat_deployments.drop(deployment_id)
        return self.platform.activate(deployment_id)

    @verbs.write
    def deactivate(self, deployment_id: str) -> Deployment:
        self._chat_deployments.drop(deployment_id)
        return self.platform.deactivate(deployment_id)

    @verbs.write
    def delete(self, deployment_id: str) -> Deployment:
        self._chat_deployments.drop(deployment_id)
        return self.platform.delete(deployment_id)

    @verbs.read
    def deployment_versions(self, deployment_id: str) -> list[ModelGroupVersion]:
        """The versions of a deployment's model group, oldest first, the live one marked."""
        return self.platform.deployment_versions(deployment_id)

    @verbs.write
    def rollback(self, deployment_id: str, version: int) -> Deployment:
        """Back to an earlier version of the deployment's model group (a LIVE update to it)."""
        self._chat_deployments.drop(deployment_id)
        return self.platform.rollback(deployment_id, version)

    @verbs.read
    def list_model_groups(self) -> list[dict[str, Any]]:
        return self.platform.list_model_groups()

    @verbs.write
    def delete_model_group(self, group_id: str) -> dict[str, Any]:
        return self.platform.delete_model_group(group_id)

    @verbs.shared_read
    def model_states(self, deployment_id: str) -> list[ModelState]:
        return self.platform.model_states(deployment_id)

    @verbs.read
    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        if not 0 <= lines <= MAX_LOG_LINES:  # checked here, so the CLI and widgets meet REST's limit
            raise InvalidInput(Problem("lines", f"{lines} is out of range", f"give 0 to {MAX_LOG_LINES} lines"))
        return self.platform.logs(deployment_id, model_name, lines)

    @verbs.blocking_only
    def wait(
        self,
        deployment_id: str,
        on_progress: Callable[[Deployment], None] | None = None,
        *,
        timeout: float | None = 600,
        until: tuple[str, ...] = SETTLED,
        interval: float = 0.5,
        stop: Callable[[], bool] | None = None,
        max_interval: float | None = None,
    ) -> Deployment:
        """Poll until the deployment reaches one of ``until`` (or the timeout, or ``stop()``),
        telling ``on_progress`` each state seen; the last state seen is returned.  With
        ``max_interval`` the pause grows 1.5× a poll up to it (a real create takes many minutes and
        a tenancy throttles callers that poll fast)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            d = self.get_deployment(deployment_id)
            if on_progress:
                on_progress(d)
            if d.state in until or (deadline is not None and time.monotonic() > deadline) or (stop and stop()):
                return d
            if deadline is not None:
                time.sleep(max(0.0, min(interval, deadline - time.monotonic() + 0.01)))
            else:
                time.sleep(interval)
            if max_interval is not None:
                interval = min(max_interval, interval * 1.5)

    # evaluations ----------------------------------------------------------------------------------

    @verbs.write
    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        """Evaluate a deployment's models on a dataset: run here where the platform runs evaluations
        itself (local: every model, or ``model_parameters.model``), otherwise one job on the platform.
        Judge metrics name their judge now (checked, default filled in); a judge that is one of the
        judged models is allowed, with a warning in ``details``.  ``runner: notebook`` on OCI runs
        aqua_lab's runner here against the deployment (judge metrics included), as locally."""
        warnings: list[str] = []
        ours = self.platform.name == "local" or spec.runner == "notebook"
        try:
            if ours:  # aqua_lab's own runner judges; AQUA's container on OCI refuses judge metrics
                spec, warnings = self.arena.resolve_judges(spec)
            runs = self.notebook_evaluations if ours and self.platform.name != "local" else self.platform
            created = runs.create_evaluation(spec)
        except NotFound as exc:
            if exc.kind != "deployment" or exc.ident != spec.evaluation_source_id:
                raise
            # the id came in a field: name it, with where to find the ones there are
            raise InvalidInput(
                Problem(
                    "evaluation_source_id",
                    f"no deployment {shown(exc.ident)} (or no permission to read it)",
                    f"check the OCID with `aqua-lab deployment list` (--platform {self.platform.name})",
                )
            ) from None
        missing = [w for w in warnings if w not in (created.details or "")]  # aqua_lab's runner keeps its own
        if missing:
            created.details = "; ".join(filter(None, [created.details, *missing]))
        return created

    def _evaluations_of(self, evaluation_id: str) -> Any:
        """Who answers for an evaluation: the notebook runner's store (``nbeval-…`` on another
        platform), else the platform."""
        notebook = self.platform.name != "local" and is_notebook_evaluation(evaluation_id)
        return self.notebook_evaluations if notebook else self.platform

    @verbs.read
    def list_evaluations(self) -> list[Evaluation]:
        found = self.platform.list_evaluations()
        return found + (self.notebook_evaluations.list_evaluations() if self.platform.name != "local" else [])

    @verbs.read
    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        return self._evaluations_of(evaluation_id).get_evaluation(evaluation_id)

    @verbs.write
    def cancel_evaluation(self, evaluation_id: str) -> Evaluation:
        return self._evaluations_of(evaluation_id).cancel_evaluation(evaluation_id)

    @verbs.write
    def delete_evaluation(self, evaluation_id: str) -> Evaluation:
        return self._evaluations_of(evaluation_id).delete_evaluation(evaluation_id)

    @verbs.read
    def evaluation_report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        """A model's report.json/report.html, or without ``model`` the comparison of every model."""
        return self._evaluations_of(evaluation_id).evaluation_report(evaluation_id, model, fmt)

    @verbs.read
    def evaluation_charts(self, evaluation_id: str) -> dict[str, str]:
        """Per metric key, a box plot (inline SVG) of every model's scores side by side, as the
        comparison report draws them."""
        from ..evaluation.report import comparison_charts

        comp = json.loads(self.evaluation_report(evaluation_id))
        reports = [json.loads(self.evaluation_report(evaluation_id, m)) for m in comp["models"]]
        return comparison_charts(comp, reports)

    @verbs.read
    def evaluation_status(self, evaluation_id: str) -> EvaluationStatus:
        """State, per-model rows done/total and ETA: what a progress bar polls."""
        e = self.get_evaluation(evaluation_id)
        running = [m.eta_s for m in e.models if m.eta_s is not None and m.state not in EVALUATION_SETTLED]
        return EvaluationStatus(
            id=e.id,
            name=e.name,
            state=e.state,
            lifecycle_state=e.state,
            lifecycle_details=e.details,
            finished=e.state in EVALUATION_SETTLED,
            rows_done=sum(m.rows_done for m in e.models),
            rows_total=sum(m.rows_total for m in e.models),
            eta_s=max(running) if running else None,
            models=e.models,
            log_id=e.log.id if e.log else "",
            log_url=e.log.url if e.log else "",
            loggroup_id=e.log_group.id if e.log_group else "",
            loggroup_url=e.log_group.url if e.log_group else "",
        )

    @verbs.read
    def evaluation_metrics(self, evaluation_id: str, model: str | None = None) -> EvaluationMetrics:
        """Per model (or just ``model``) the scores of its report.json without the per-row data."""
        e = self.get_evaluation(evaluation_id)
        names = [m.model for m in e.models] or [e.model]
        if model is not None and model not in names:
            fix = f"use one of {names}"
            raise InvalidInput(Problem("model", f"{shown(model)} is not part of {evaluation_id}", fix))
        models = []
        for name in [model] if model else names:
            report = json.loads(self.evaluation_report(evaluation_id, name))
            models.append(
                ModelEvaluationMetrics(
                    model=report.get("model") or name,
                    metric_summary_result=report.get("metric_summary_result") or [],
                    metrics=_metric_scores(report.get("metric_results")),
                    generation=report.get("generation") or {},
                )
            )
        return EvaluationMetrics(id=e.id, name=e.name, state=e.state, models=models)

    def _files_dir(self) -> Path:
        return Path(self._data_dir or default_data_dir())

    @verbs.shared_read
    def evaluation_config(self) -> EvaluationConfig:
        """Defaults for an evaluation form on this platform: sampling parameters, metrics, where reports
        may go, what the dataset field takes, the fields only this platform uses."""
        from ..arena.judge import DEFAULT_RUBRIC, MAX_RUBRIC_BYTES
        from ..evaluation.datasets import load_dataset

        form = self.platform.evaluation_form()
        here = form.pop("reports_here")  # OCI's reports go to a bucket of the user's: no folder to offer
        return EvaluationConfig(
            model_params=dict(EVALUATION_MODEL_PARAMS),
            metrics=self.supported_metrics(),
            default_metrics=list(DEFAULT_METRICS),
            reports_dir=str(self._files_dir() / "evaluation-reports") if here else None,
            sample_rows=len(load_dataset("sample")),
            platform=self.platform_name,
            judge_rubric=DEFAULT_RUBRIC,
            judge_rubric_max_bytes=MAX_RUBRIC_BYTES,
            **form,
        )

    @verbs.write
    def upload_dataset(self, filename: str, content: str) -> UploadedDataset:
        """Check a JSONL dataset sent as text and store it on this machine for ``dataset_path``."""
        from ..evaluation.uploads import store_upload

        path, rows, categories = store_upload(self._files_dir() / "datasets", filename, content)
        return UploadedDataset(
            dataset_path=str(path),
            filename=filename,
            rows=rows,
            bytes=len(content.encode("utf-8")),
            categories=categories,
        )

    # datasets grown from chats ("Save as dataset row"), beside the uploads (service/datasets.py) -------

    @verbs.write
    def save_dataset_row(self, name: str, row: DatasetRow) -> SavedDataset:
        """Append a prompt and the answer kept as its reference to the dataset ``name`` (made on first use)."""
        return datasets.add_row(self._files_dir() / "datasets", name, row)

    @verbs.read
    def list_datasets(self) -> list[SavedDataset]:
        """Every dataset on this machine, saved or uploaded: rows, bytes, rows per category."""
        return datasets.list_datasets(self._files_dir() / "datasets")

    @verbs.read
    def get_dataset(self, name: str) -> str:
        """The dataset's JSONL file as text."""
        return datasets.dataset_text(self._files_dir() / "datasets", name)

    @staticmethod
    @verbs.read
    def supported_metrics() -> list[MetricDescription]:
        """The metrics an evaluation's ``metrics`` accepts, with their arguments and defaults."""
        from ..evaluation.metrics import METRICS  # numpy and the scorers: only when asked

        return [
            MetricDescription(
                name=m.name,
                label=m.label,
                keys=list(m.keys),
                args=m.args,
                higher_is_better=m.higher_is_better,
                description=m.description,
            )
            for m in METRICS.values()
        ]

    @verbs.blocking_only
    def wait_evaluation(
        self,
        evaluation_id: str,
        timeout: float = 600,
        progress: Callable[[Evaluation], None] | None = None,
        interval: float = 0.5,
    ) -> Evaluation:
        """Poll until the evaluation has finished (or the timeout), telling ``progress`` each state seen."""
        deadline = time.monotonic() + timeout
        while True:
            e = self.get_evaluation(evaluation_id)
            if progress:
                progress(e)
            if e.state in EVALUATION_SETTLED or time.monotonic() > deadline:
                return e
            time.sleep(interval)

    # chat: relayed by ChatRelay (streams, compare), which keeps the looked-up targets ------------

    @verbs.on_loop
    def chat_events(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[str]:
        return self.chats.events(deployment_id, request)

    @verbs.on_loop
    def chat_stream(self, deployment_id: str, request: ChatRequest) -> AsyncIterator[dict[str, Any]]:
        return self.chats.stream(deployment_id, request)

    @verbs.on_loop
    async def chat(self, deployment_id: str, request: ChatRequest) -> dict[str, Any]:
        return await self.chats.chat(deployment_id, request)

    @verbs.on_loop
    def compare(self, deployment_id: str, request: CompareRequest) -> AsyncIterator[dict[str, Any]]:
        return self.chats.compare(deployment_id, request)

    # choosing between models: blind pairs, votes, judge verdicts, the leaderboard (service/arena.py) --

    @verbs.on_loop
    async def blind_pair(self, deployment_id: str, request: BlindPairRequest) -> BlindPair:
        """Two of the deployment's models answer one prompt; the answers come back as A and B."""
        return await self.arena.blind_pair(deployment_id, request)

    @verbs.write
    def vote(self, deployment_id: str, request: VoteRequest, voter: str | None = None) -> Vote:
        """Record a verdict (on a blind pair, or on two named models); the answer reveals the models."""
        return self.arena.vote(deployment_id, request, voter)

    @verbs.read
    def get_vote(self, deployment_id: str, vote_id: str) -> Vote:
        return self.arena.get_vote(deployment_id, vote_id)

    @verbs.read
    def votes(self, deployment_id: str, source: VoteSource = "both") -> list[Vote]:
        return self.arena.votes(deployment_id, source)

    @verbs.read
    def leaderboard(self, deployment_id: str, source: VoteSource = "votes", resamples: int = 200) -> Leaderboard:
        """Bradley-Terry strengths (Elo scale) with 95 % bootstrap intervals, win rates, comparisons."""
        return self.arena.leaderboard(deployment_id, source, resamples)

    @verbs.read
    def export_votes(self, deployment_id: str, fmt: str = "jsonl", source: VoteSource = "both") -> str:
        return self.arena.export(deployment_id, fmt, source)


def _in_machine_words(result: Plan, shapes: ShapeCatalog) -> Plan:
    """A plan whose every shape is a CPU machine speaks of cores and RAM; per shape otherwise."""
    cpu = {
        name for name in [*result.gpu_allocation, *result.incompatible_shapes] if (s := shapes.find(name)) and s.is_cpu
    }
    if not cpu:
        return result
    for name in cpu & set(result.incompatible_shapes):
        result.incompatible_shapes[name] = [
            machine_words(r, shapes.find(name)) for r in result.incompatible_shapes[name]
        ]
    for name in cpu & set(result.gpu_allocation):
        shape_plan = result.gpu_allocation[name]
        shape_plan.notes[:] = [machine_words(n, shapes.find(name)) for n in shape_plan.notes]
    only = (
        shapes.find(next(iter(cpu))) if len(cpu) == len({*result.gpu_allocation, *result.incompatible_shapes}) else None
    )
    if only is not None:
        result.error_message = machine_words(result.error_message or "", only) or None
        result.warnings[:] = [machine_words(w, only) for w in result.warnings]
    return result


#: the most log lines one ``logs`` call returns (a tail: older lines are in the files themselves)
MAX_LOG_LINES = 10_000

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def window_seconds(raw: str | float | None, default: float = 300) -> float:
    """``?window=`` / ``--window``: seconds, or a number with s, m, h or d (``5m``, ``1h``)."""
    if raw is None or raw == "":
        return default
    if isinstance(raw, int | float):
        return float(raw)
    match = _WINDOW.match(raw)
    if not match:
        raise InvalidInput(Problem("window", f"{raw!r} is not a duration", "e.g. 300, 5m, 1h or 1d"))
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _metric_scores(results: Any) -> list[MetricScores]:
    """A report's ``metric_results`` (aqua_lab's: by metric name; ADS's: a list of ``{key, name}``)
    as typed entries; what a report lacks stays empty rather than failing the whole answer."""
    items = results.items() if isinstance(results, dict) else [(r.get("key"), r) for r in results or []]
    scores = []
    for name, result in items:
        if not isinstance(result, dict):
            continue
        name = str(name or result.get("name") or "metric")
        scores.append(
            MetricScores(
                name=name,
                label=result.get("label") or result.get("name") or name,
                keys=result.get("keys") or [],
                headline=result.get("headline"),
                higher_is_better=result.get("higher_is_better", True),
                summary=result.get("summary") or {},
                corpus=result.get("corpus") or None,
                note=result.get("note"),
            )
        )
    return scores
