"""The contract between the service and a platform: everything a platform can be asked.

:class:`Platform` names every verb.  The core ones (catalog, deployments, inference) each platform
implements; the optional capabilities have defaults here that either do nothing where nothing is
the right answer (no prefetch, no config warnings, no model suggestion, no default shape) or refuse
with :class:`~aqua_lab.errors.Unsupported` (409) naming what this platform cannot do.  The service
calls the contract and never probes a platform for attributes, so a new capability is one method
here and one override where it exists.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..domain import (
    Architecture,
    CatalogModel,
    Deployment,
    DeploymentConfig,
    DeploymentMetrics,
    DeploymentSpec,
    Evaluation,
    EvaluationSpec,
    ModelGroupVersion,
    ModelState,
    Shape,
    ValidatedDeployment,
)
from ..errors import NotFound, Unsupported


@dataclass(frozen=True)
class FetchedConfig:
    """What planning needs of one model: its catalog entry, its config (None: none) and the
    problems found in that config."""

    model: CatalogModel
    config: DeploymentConfig | None
    warnings: list[str] = field(default_factory=list)


class Platform(ABC):
    name: str
    #: key of the container parameters in this platform's deployment configs (VLLM_PARAMS …)
    params_key: str
    #: where this platform keeps its state on this machine (the local platform's data dir); the
    #: service puts uploaded datasets and default report folders beside it.  None: the default dir
    data_dir: Path | None = None

    # catalog --------------------------------------------------------------------------------------

    @abstractmethod
    def list_shapes(self) -> list[Shape]: ...

    @abstractmethod
    def list_models(self) -> list[CatalogModel]: ...

    @abstractmethod
    def get_model(self, model_id: str) -> CatalogModel:
        """The model with this id or name; :class:`NotFound` with a hint otherwise."""

    @abstractmethod
    def get_model_config(self, model_id: str) -> DeploymentConfig | None: ...

    def fetch_configs(self, model_ids: Sequence[str]) -> dict[str, FetchedConfig]:
        """Catalog entry, deployment_config.json and its warnings for each model (by id or name),
        keyed by the id as given; models the platform does not know are left out.  A platform
        whose fetches are slow overrides this to fetch them all in one concurrent round."""
        found = {}
        for model_id in dict.fromkeys(model_ids):
            try:
                model = self.get_model(model_id)
            except NotFound:
                continue
            found[model_id] = FetchedConfig(model, self.get_model_config(model.id), self.config_warnings(model.id))
        return found

    def config_warnings(self, model_id: str) -> list[str]:
        """Problems found in the model's deployment_config.json that planning works around."""
        return []

    def get_model_architecture(self, model_id: str) -> Architecture | None:
        """The model's architecture read from its files (``config.json``, GGUF or safetensors
        headers) for the memory model; None where the platform cannot read them (the service then
        uses the bundled service-model facts by name)."""
        return None

    def suggest(self, model_id: str) -> str | None:
        """A hint for an unknown model id (the closest known ones): by default the one the
        platform's own lookup gives, so that no unknown id is reported without a fix."""
        try:
            self.get_model(model_id)
        except NotFound as exc:
            return exc.hint
        return None

    def cache_scope(self) -> tuple[str, ...]:
        """What a cached catalog answer depends on besides the model id (OCI: region, compartment)."""
        return (self.name,)

    def planning_shapes(self) -> list[Shape]:
        """The shapes as plans should see them: a machine shared with running deployments offers
        only what they leave free (the local platform); a cloud's shapes are all on offer."""
        return self.list_shapes()

    def capacity_note(self) -> str | None:
        """What running deployments hold of the shapes, when that limits a plan (else None)."""
        return None

    def shared_gpu_engine(self) -> tuple[str, str] | None:
        """(memory-model engine, parameters key) where several models may share one GPU, each held to a
        memory budget by its engine's flags (the local platform on GPUs); None: whole GPUs per model."""
        return None

    def default_shape(self) -> str | None:
        """The shape a deployment gets when the request names none (a machine that is one shape)."""
        return None

    #: whether :meth:`register_model` adds models (fronts offer registration only then)
    registers_models = False

    def register_model(self, path: str, name: str | None = None, base_model_id: str | None = None) -> CatalogModel:
        raise Unsupported(self.name, f"the {self.name} platform cannot register model files; the local platform can")

    def unregister_model(self, model_id: str) -> CatalogModel:
        """Forget a registered model (its files stay where they are)."""
        raise Unsupported(self.name, f"the {self.name} platform has no registered model files to remove")

    # deployments ----------------------------------------------------------------------------------

    @abstractmethod
    def create_deployment(self, deployment: ValidatedDeployment) -> Deployment: ...

    @abstractmethod
    def list_deployments(self) -> list[Deployment]: ...

    @abstractmethod
    def get_deployment(self, deployment_id: str) -> Deployment: ...

    @abstractmethod
    def activate(self, deployment_id: str) -> Deployment: ...

    @abstractmethod
    def deactivate(self, deployment_id: str) -> Deployment: ...

    @abstractmethod
    def delete(self, deployment_id: str) -> Deployment: ...

    @abstractmethod
    def model_states(self, deployment_id: str) -> list[ModelState]: ...

    @abstractmethod
    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str: ...

    def check_models(self, deployment: ValidatedDeployment) -> None:
        """What only the platform's records can tell about a checked request (OCI: which models are
        fine-tuned, and from which base); raises :class:`InvalidInput`.  Nothing by default."""
        return None

    def update_models(self, deployment_id: str, deployment: ValidatedDeployment) -> Deployment:
        """Replace a deployment's models in place."""
        raise Unsupported(
            self.name,
            f"the {self.name} platform cannot update a deployment in place; create a new one and delete the old",
        )

    # evaluations ----------------------------------------------------------------------------------

    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        """Evaluate a deployment's models on a dataset: ``model_parameters.model``, else every model
        of the deployment as one comparison (local: a detached job here; OCI: one evaluation model,
        job and job run per model, as ADS stores them)."""
        raise Unsupported(
            self.name, f"the {self.name} platform does not run evaluation jobs; use --platform local or oci"
        )

    def deployment_versions(self, deployment_id: str) -> list[ModelGroupVersion]:
        """The versions of the model group a deployment runs (OCI: CLONE-made, in a version history)."""
        raise Unsupported(self.name, f"{self._no_versions} a deployment's models are replaced, not versioned")

    def rollback(self, deployment_id: str, version: int) -> Deployment:
        """Move a deployment back to an earlier version of its model group."""
        raise Unsupported(self.name, f"{self._no_versions} to go back, update it with the earlier models")

    @property
    def _no_versions(self) -> str:
        return f"model-group versions are not supported on {self.name} (they are an OCI model-group feature):"

    def list_model_groups(self) -> list[dict]:
        """Model groups (OCI: what multi-model deployments are made of), each with ``in_use_by``."""
        raise Unsupported(self.name, f"the {self.name} platform has no model groups; use --platform oci")

    def delete_model_group(self, group_id: str) -> dict:
        raise Unsupported(self.name, f"the {self.name} platform has no model groups; use --platform oci")

    def _no_evaluation_runs(self) -> Unsupported:
        return Unsupported(
            self.name,
            f"the {self.name} platform cannot list, read or cancel evaluations here; "
            "use --platform local or --platform oci",
        )

    def evaluation_form(self) -> dict[str, Any]:
        """What an evaluation form needs to know here (``EvaluationConfig``'s platform part): whether
        progress comes as rows or only as a state, the fields only this platform uses, what the report
        path and dataset fields take, whether reports land on this machine.  The default: evaluations
        that run here."""
        return {
            "reports_here": True,
            "progress": "rows",
            "fields": [],
            "report_path_hint": "/path/for/reports",
            "dataset_hint": "sample, or a .jsonl file on the server",
            "dataset_note": "",
        }

    def list_evaluations(self) -> list[Evaluation]:
        raise self._no_evaluation_runs()

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        """State and per-model progress of an evaluation this platform runs."""
        raise self._no_evaluation_runs()

    def cancel_evaluation(self, evaluation_id: str) -> Evaluation:
        raise self._no_evaluation_runs()

    def delete_evaluation(self, evaluation_id: str) -> Evaluation:
        """Stop and forget an evaluation (the report files in its ``report_path`` stay)."""
        raise self._no_evaluation_runs()

    def evaluation_report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        """A model's report (``fmt``: json or html), or without ``model`` the comparison of all."""
        raise self._no_evaluation_runs()

    # scaling and metrics --------------------------------------------------------------------------

    #: the longest ``deployment_metrics`` window this platform can answer (the service refuses longer
    #: ones with 422 before asking): OCI Monitoring keeps far more, 14 days is what a chart can show
    max_metrics_window_s: float = 14 * 86400
    #: the same, as people say it in an error
    max_metrics_window_text: str = "14d"

    def inference_key_refusal(self, spec: DeploymentSpec) -> Unsupported | None:
        """Why this platform cannot take ``spec``'s inference keys (None: it can, or none are set).
        A planning-only platform previews OCI's bodies, so the default takes them."""
        return None

    def scaling_refusal(self, spec: DeploymentSpec) -> Unsupported | None:
        """Why this platform cannot run ``spec``'s instance count or autoscaling policy (None: it
        can).  A planning-only platform previews OCI's bodies, so the default takes every policy."""
        return None

    def update_scaling(
        self, deployment_id: str, scaling_policy: dict[str, Any] | None, bandwidth_mbps: int | None = None
    ) -> Deployment:
        """Change a live deployment's scaling policy (wire JSON) and/or its load balancer's bandwidth."""
        raise Unsupported(
            self.name, f"the {self.name} platform cannot change a deployment's scaling: it runs no deployments"
        )

    def deployment_metrics(self, deployment_id: str, window_s: float) -> DeploymentMetrics:
        """Per-model requests, errors, TTFT p50/p95, tokens/s, in-flight and replicas over a window."""
        raise Unsupported(
            self.name, f"the {self.name} platform cannot report deployment metrics: it runs no deployments"
        )

    # inference ------------------------------------------------------------------------------------

    #: whether :meth:`inference_request` may block (sign, refresh a token, read a disk): then the service
    #: calls it in the executor; a platform whose call only joins a URL and a key says False, and its
    #: chats skip that thread hop (a measurable share of a chat's time to first token)
    inference_request_blocks = True

    @abstractmethod
    def inference_request(self, deployment: Deployment, route: str, body: bytes, stream: bool) -> tuple[str, dict]:
        """URL and headers for an OpenAI ``route`` call carrying exactly ``body`` (may sign, so may
        block on a token refresh: the service calls it off the event loop)."""
