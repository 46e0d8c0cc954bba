"""A platform that lives in a dict: the whole contract of ``platforms/base.py`` with no model
servers, no emulator and no disk, so the service's own rules can be pinned in milliseconds.

It counts what it is asked (``calls``) and lets a test change a model's config behind the
service's back (``configs``), as an edited ``deployment_config.json`` on OCI would be.
"""

from __future__ import annotations

from collections import Counter

from aqua_lab.domain import (
    CatalogModel,
    DeployedModel,
    Deployment,
    DeploymentConfig,
    GpuSpec,
    ModelState,
    Shape,
    ValidatedDeployment,
)
from aqua_lab.errors import NotFound
from aqua_lab.platforms.base import Platform


def config(*counts: int, shape: str = "VM.GPU.A10.2") -> DeploymentConfig:
    return DeploymentConfig.model_validate(
        {"shape": [shape], "configuration": {shape: {"multi_model_deployment": [{"gpu_count": c} for c in counts]}}}
    )


class MemoryPlatform(Platform):
    name = "memory"
    params_key = "VLLM_PARAMS"

    def __init__(self, polls_to_active: int = 2, scope: str = "region-1") -> None:
        self.shapes = [
            Shape(name="VM.GPU.A10.2", gpu_specs=GpuSpec(gpu_count=2, gpu_memory_in_gbs=48, gpu_type="A10")),
            Shape(name="BM.GPU.A10.4", gpu_specs=GpuSpec(gpu_count=4, gpu_memory_in_gbs=96, gpu_type="A10")),
        ]
        self.models = {
            "m-a": CatalogModel(id="m-a", name="alpha-7b", parameter_count_b=7),
            "m-b": CatalogModel(id="m-b", name="beta-7b", parameter_count_b=7),
        }
        self.configs: dict[str, DeploymentConfig | None] = {"m-a": config(1), "m-b": config(1)}
        self.deployments: dict[str, Deployment] = {}
        self.polls: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.polls_to_active = polls_to_active
        self.scope = scope

    def cache_scope(self) -> tuple[str, ...]:
        return (self.name, self.scope)

    # catalog --------------------------------------------------------------------------------------

    def list_shapes(self) -> list[Shape]:
        self.calls["list_shapes"] += 1
        return list(self.shapes)

    def list_models(self) -> list[CatalogModel]:
        return list(self.models.values())

    def get_model(self, model_id: str) -> CatalogModel:
        self.calls["get_model"] += 1
        for m in self.models.values():
            if model_id in (m.id, m.name):
                return m
        raise NotFound("model", model_id, f"use one of {sorted(self.models)}")

    def get_model_config(self, model_id: str) -> DeploymentConfig | None:
        self.calls["get_model_config"] += 1
        return self.configs.get(self.get_model(model_id).id)

    # deployments ----------------------------------------------------------------------------------

    def create_deployment(self, deployment: ValidatedDeployment) -> Deployment:
        deployment_id = f"mem-{len(self.deployments) + 1}"
        self.deployments[deployment_id] = Deployment(
            id=deployment_id,
            display_name=deployment.spec.display_name,
            platform=self.name,
            state="CREATING",
            instance_shape=deployment.shape.name,
            deployment_type=deployment.spec.deployment_type,
            models=[
                DeployedModel(model_id=m.model_id, model_name=m.model_name, gpu_count=m.gpu_count)
                for m in deployment.models
            ],
        )
        return self.deployments[deployment_id]

    def _get(self, deployment_id: str) -> Deployment:
        if deployment_id not in self.deployments:
            raise NotFound("deployment", deployment_id, "list them first")
        return self.deployments[deployment_id]

    def list_deployments(self) -> list[Deployment]:
        return list(self.deployments.values())

    def get_deployment(self, deployment_id: str) -> Deployment:
        """Each poll of a CREATING deployment brings it closer to ACTIVE (as model servers come up)."""
        self.calls["get_deployment"] += 1
        d = self._get(deployment_id)
        if d.state == "CREATING":
            self.polls[deployment_id] += 1
            done = self.polls[deployment_id] >= self.polls_to_active
            d.state = "ACTIVE" if done else "CREATING"
            d.progress = 100 if done else int(100 * self.polls[deployment_id] / self.polls_to_active)
            d.endpoint = f"http://127.0.0.1:1/{deployment_id}/v1" if done else None
        return d.model_copy(deep=True)

    def _set(self, deployment_id: str, state: str) -> Deployment:
        d = self._get(deployment_id)
        d.state = state
        self.polls[deployment_id] = 0
        return d.model_copy(deep=True)

    def activate(self, deployment_id: str) -> Deployment:
        return self._set(deployment_id, "CREATING")

    def deactivate(self, deployment_id: str) -> Deployment:
        return self._set(deployment_id, "INACTIVE")

    def delete(self, deployment_id: str) -> Deployment:
        return self._set(deployment_id, "DELETED")

    def model_states(self, deployment_id: str) -> list[ModelState]:
        d = self._get(deployment_id)
        state = "ACTIVE" if d.state == "ACTIVE" else "STOPPED"
        return [ModelState(model_name=m.model_name, model_id=m.model_id, state=state) for m in d.models]

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        return f"{self._get(deployment_id).display_name}: no logs in memory"

    def inference_request(self, deployment: Deployment, route: str, body: bytes, stream: bool) -> tuple[str, dict]:
        self.calls["inference_request"] += 1
        return f"{deployment.endpoint}{route.removeprefix('/v1')}", {}
