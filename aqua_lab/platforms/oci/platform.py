"""The OCI platform: Data Science model groups and model deployments through the real ``oci`` SDK.

:class:`OciPlatform` is the :class:`Platform` contract over parts that each say one thing, sharing one
:class:`~.clients.OciClients` (every SDK call, its retries and its errors): :mod:`.artifacts` (the
catalog, model records, configs and architectures read from Object Storage), :mod:`.deployments`
(deployments and model groups), :mod:`.scaling` (scaling policies and OCI Monitoring) and
:mod:`.evaluations` (evaluation jobs, stored as ADS stores them).  The service caches what configs
give per region + compartment + model id (:meth:`OciPlatform.cache_scope`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ...domain import (
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
from ...errors import InvalidInput, Problem
from ...planning.evaluation import oci_evaluation_form
from ...planning.params import VLLM_PARAMS
from ..base import FetchedConfig, Platform

# names importers read from here since before the split
from .artifacts import (  # noqa: F401
    SERVICE_MODELS_BUCKET,
    SERVICE_MODELS_NAMESPACE,
    OciModels,
    artifact_location,
    artifact_uri,
    fine_tune_source,
    is_fine_tuned,
)
from .auth import OciAuth
from .byoc import model_key
from .clients import NAME, OciClients, Settings, make_clients  # noqa: F401
from .deployments import OciDeployments
from .evaluations import OciEvaluations
from .scaling import OciScaling


class OciPlatform(Platform):
    name = NAME
    params_key = VLLM_PARAMS

    def __init__(self, auth: OciAuth, settings: Settings, clients: tuple[Any, Any] | None = None):
        self.clients = OciClients(auth, settings, clients)
        self.auth, self.settings = auth, settings
        self.ds, self.os = self.clients.ds, self.clients.os
        self._call, self._list_all, self._sdk = self.clients.call, self.clients.list_all, self.clients.sdk
        self.models = OciModels(self.clients)
        self.scaling = OciScaling(self.clients)
        self.deployments = OciDeployments(self.clients, self.models, self.scaling)
        self.evaluations = OciEvaluations(self.clients, self.deployments)

    @classmethod
    def from_environment(cls, auth: OciAuth, env: dict[str, str] | None = None, **overrides: Any) -> OciPlatform:
        """Compartment/project defaults from a notebook session's variables, then aqua_lab's own."""
        env = dict(os.environ if env is None else env)
        compartment = (
            overrides.pop("compartment_id", None)
            or env.get("AQUA_LAB_COMPARTMENT_OCID")
            or env.get("NB_SESSION_COMPARTMENT_OCID")
            or env.get("PROJECT_COMPARTMENT_OCID")
            or auth.compartment_id
        )
        if not compartment:
            raise InvalidInput(
                Problem(
                    "compartment_id",
                    "no compartment to work in",
                    "pass --compartment_id, set c.AquaLab.compartment_id or AQUA_LAB_COMPARTMENT_OCID",
                )
            )
        settings = Settings(
            compartment_id=compartment,
            project_id=overrides.pop("project_id", None) or env.get("AQUA_LAB_PROJECT_OCID") or env.get("PROJECT_OCID"),
            service_compartment_id=overrides.pop("service_compartment_id", None)
            or env.get("AQUA_LAB_SERVICE_COMPARTMENT_OCID")
            or env.get("ODSC_MODEL_COMPARTMENT_OCID"),
            endpoint=overrides.pop("endpoint", None) or env.get("AQUA_LAB_OCI_ENDPOINT"),
            **overrides,
        )
        return cls(auth, settings)

    def cache_scope(self) -> tuple[str, ...]:
        return (self.name, self.auth.region or "", self.settings.compartment_id)

    # models ---------------------------------------------------------------------------------------

    def list_shapes(self) -> list[Shape]:
        return self.models.list_shapes()

    def list_models(self) -> list[CatalogModel]:
        return self.models.list_models()

    def get_model(self, model_id: str) -> CatalogModel:
        return self.models.get_model(model_id)

    def suggest(self, model_id: str) -> str | None:
        return self.models.suggest(model_id)

    def get_model_config(self, model_id: str) -> DeploymentConfig | None:
        return self.models.get_model_config(model_id)

    def config_warnings(self, model_id: str) -> list[str]:
        return self.models.config_warnings(model_id)

    def fetch_configs(self, model_ids: Sequence[str]) -> dict[str, FetchedConfig]:
        return self.models.fetch_configs(model_ids)

    def get_model_architecture(self, model_id: str) -> Architecture | None:
        return self.models.get_model_architecture(model_id)

    def check_models(self, deployment: ValidatedDeployment) -> None:
        self.models.check_models(deployment)

    # deployments and model groups -----------------------------------------------------------------

    def create_deployment(self, deployment: ValidatedDeployment) -> Deployment:
        return self.deployments.create_deployment(deployment)

    def list_deployments(self) -> list[Deployment]:
        return self.deployments.list_deployments()

    def get_deployment(self, deployment_id: str) -> Deployment:
        return self.deployments.get_deployment(deployment_id)

    def model_states(self, deployment_id: str) -> list[ModelState]:
        return self.deployments.model_states(deployment_id)

    def activate(self, deployment_id: str) -> Deployment:
        return self.deployments.activate(deployment_id)

    def deactivate(self, deployment_id: str) -> Deployment:
        return self.deployments.deactivate(deployment_id)

    def delete(self, deployment_id: str) -> Deployment:
        return self.deployments.delete(deployment_id)

    def update_models(self, deployment_id: str, deployment: ValidatedDeployment) -> Deployment:
        return self.deployments.update_models(deployment_id, deployment)

    def deployment_versions(self, deployment_id: str) -> list[ModelGroupVersion]:
        return self.deployments.versions(deployment_id)

    def rollback(self, deployment_id: str, version: int) -> Deployment:
        return self.deployments.rollback(deployment_id, version)

    def list_model_groups(self) -> list[dict]:
        return self.deployments.list_model_groups()

    def delete_model_group(self, group_id: str) -> dict:
        return self.deployments.delete_model_group(group_id)

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        return self.deployments.logs(deployment_id, model_name, lines)

    # scaling and metrics --------------------------------------------------------------------------

    def scaling_refusal(self, spec: DeploymentSpec) -> None:
        return None  # OCI Model Deployment runs every policy the planning core accepts

    def update_scaling(
        self, deployment_id: str, scaling_policy: dict[str, Any] | None, bandwidth_mbps: int | None = None
    ) -> Deployment:
        self.scaling.update(deployment_id, scaling_policy, bandwidth_mbps)
        return self.get_deployment(deployment_id)

    def deployment_metrics(self, deployment_id: str, window_s: float = 300) -> DeploymentMetrics:
        return self.scaling.metrics(self.get_deployment(deployment_id), window_s)

    # evaluations ----------------------------------------------------------------------------------

    def evaluation_form(self) -> dict[str, Any]:
        return oci_evaluation_form()

    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        return self.evaluations.create_evaluation(spec)

    def list_evaluations(self) -> list[Evaluation]:
        return self.evaluations.list_evaluations()

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        return self.evaluations.get_evaluation(evaluation_id)

    def cancel_evaluation(self, evaluation_id: str) -> Evaluation:
        return self.evaluations.cancel_evaluation(evaluation_id)

    def delete_evaluation(self, evaluation_id: str) -> Evaluation:
        return self.evaluations.delete_evaluation(evaluation_id)

    def evaluation_report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        return self.evaluations.evaluation_report(evaluation_id, model, fmt)

    # inference ------------------------------------------------------------------------------------

    def inference_request(self, deployment: Deployment, route: str, body: bytes, stream: bool) -> tuple[str, dict]:
        """``<endpoint>/predict`` signed by our signer, the OpenAI route in the ``route`` header."""
        from oci._vendor import requests

        url = f"{deployment.endpoint}/predict"
        headers = {
            "content-type": "application/json",
            "route": route,
            "enable-streaming": str(stream).lower(),
            "accept": "text/event-stream" if stream else "application/json",
        }
        if deployment.deployment_type == "HETEROGENEOUS" and (key := model_key(deployment, body)):
            headers["model-key"] = key  # OCI routes a heterogeneous group's request by the member's key
        prepared = requests.Request("POST", url, headers=headers, data=body).prepare()
        self.auth.signer(prepared)
        return url, dict(prepared.headers)
