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

from ..domain import (
    Architecture,
    CatalogModel,
    Deployment,
    DeploymentConfig,
    Evaluation,
    EvaluationSpec,
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
        """A hint for an unknown model id (the closest known ones)."""
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

    def update_models(self, deployment_id: str, deployment: ValidatedDeployment) -> Deployment:
        """Replace a deployment's models in place."""
        raise Unsupported(
            self.name,
            f"the {self.name} platform cannot update a deployment in place; create a new one and delete the old",
        )

    def create_evaluation_job(self, spec: EvaluationSpec) -> Evaluation:
        raise Unsupported(self.name, f"the {self.name} platform does not run evaluation jobs yet")

    # inference ------------------------------------------------------------------------------------

    @abstractmethod
    def inference_request(self, deployment: Deployment, route: str, body: bytes, stream: bool) -> tuple[str, dict]:
        """URL and headers for an OpenAI ``route`` call carrying exactly ``body`` (may sign, so may
        block on a token refresh: the service calls it off the event loop)."""
