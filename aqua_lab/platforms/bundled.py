"""OCI's service models and GPU shapes as bundled with aqua_lab: a platform to *plan* with when no
OCI account is at hand.  It deploys nothing and says so."""

from __future__ import annotations

from ..catalog import bundled_catalog
from ..domain import CatalogModel, Deployment, DeploymentConfig, ModelState, Shape
from ..errors import AquaLabError, NotFound
from ..planning.params import VLLM_PARAMS
from .base import Platform

PLAN_ONLY = "the bundled catalog only plans; deploy on the local platform (this machine) or on OCI"


class BundledPlatform(Platform):
    name = "bundled"
    params_key = VLLM_PARAMS

    def __init__(self) -> None:
        self.catalog = bundled_catalog()

    def list_shapes(self) -> list[Shape]:
        # shipped, not asked of any region: whether OCI offers them to this user is unknown
        return [s.model_copy(update={"available": False}) for s in self.catalog.shapes]

    def list_models(self) -> list[CatalogModel]:
        return list(self.catalog.models)

    def get_model(self, model_id: str) -> CatalogModel:
        return self.catalog.get_model(model_id)

    def get_model_config(self, model_id: str) -> DeploymentConfig | None:
        return self.catalog.configs.get(self.get_model(model_id).id)

    def config_warnings(self, model_id: str) -> list[str]:
        prefix = f"service model {self.get_model(model_id).id}:"
        return [w for w in self.catalog.config_warnings if w.startswith(prefix)]

    def suggest(self, model_id: str) -> str:
        return self.catalog.suggest(model_id)

    def _no(self, *_: object, **__: object):
        raise AquaLabError(PLAN_ONLY)

    create_deployment = activate = deactivate = delete = inference_request = _no

    def list_deployments(self) -> list[Deployment]:
        return []

    def get_deployment(self, deployment_id: str) -> Deployment:
        raise NotFound("deployment", deployment_id, PLAN_ONLY)

    def model_states(self, deployment_id: str) -> list[ModelState]:
        raise NotFound("deployment", deployment_id, PLAN_ONLY)

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        raise NotFound("deployment", deployment_id, PLAN_ONLY)
