"""The service facade: the one implementation behind the REST handlers, the widgets and the CLI.

It resolves model ids through the platform, plans and validates with the pure planning core, and
hands validated requests to the platform.  Planning inputs are cached per platform and model id
(an explicit cache: configs do not change while a session runs; ``clear_cache`` drops it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

from .domain import CatalogModel, Deployment, DeploymentSpec, ModelInput, ModelState, Plan, Shape, ValidatedDeployment
from .errors import InvalidInput, NotFound, Problem
from .planning import ShapeCatalog, plan, validate_deployment
from .planning.shapes import shape_order
from .platforms.base import Platform

PLATFORMS = ("local", "bundled")


@cache
def get_platform(name: str) -> Platform:
    """One platform object per name and process (platforms hold no request state)."""
    if name == "local":
        from .platforms.local import LocalPlatform

        return LocalPlatform()
    if name == "bundled":
        from .platforms.bundled import BundledPlatform

        return BundledPlatform()
    raise InvalidInput(Problem("platform", f"unknown platform {name!r}", f"use one of {list(PLATFORMS)}"))


class AquaLab:
    def __init__(self, platform: Platform | str = "local"):
        self.platform = get_platform(platform) if isinstance(platform, str) else platform
        self._inputs: dict[str, ModelInput] = {}

    # catalog --------------------------------------------------------------------------------------

    def shapes(self) -> list[Shape]:
        return sorted(self.platform.list_shapes(), key=shape_order)

    def shape_catalog(self) -> ShapeCatalog:
        return ShapeCatalog(self.shapes())

    def models(self) -> list[CatalogModel]:
        return self.platform.list_models()

    def model_input(self, model_id: str) -> ModelInput:
        model = self.platform.get_model(model_id)
        if model.id not in self._inputs:
            self._inputs[model.id] = ModelInput.from_catalog(model, self.platform.get_model_config(model.id))
        return self._inputs[model.id]

    def clear_cache(self) -> None:
        self._inputs.clear()

    def _inputs_for(self, ids: Sequence[str], field: str) -> list[ModelInput]:
        problems, inputs = [], []
        for i, model_id in enumerate(ids):
            try:
                inputs.append(self.model_input(model_id))
            except NotFound as exc:
                problems.append(Problem(f"{field}[{i}]", f"unknown model {model_id!r}", exc.hint))
        if problems:
            raise InvalidInput(problems)
        return inputs

    # planning -------------------------------------------------------------------------------------

    def plan(
        self,
        model_ids: Sequence[str],
        primary_model_id: str | None = None,
        shape: str | None = None,
        extra: Sequence[ModelInput] = (),
    ) -> Plan:
        """Where can these models run together and how do the GPUs split.  ``extra`` adds models
        the platform does not know (e.g. one with a deployment_config.json given by path)."""
        own = {m.model_id: m for m in extra}
        inputs = [own[i] if i in own else self._inputs_for([i], "model_ids")[0] for i in model_ids]
        if primary_model_id is not None and primary_model_id not in own:
            try:
                primary_model_id = self.platform.get_model(primary_model_id).id
            except NotFound:
                pass  # plan() names the problem with the list of valid ids
        shapes = self.shape_catalog()
        if shape:
            shapes = ShapeCatalog([shapes.get(shape)])
        result = plan(inputs, shapes, primary_model_id)
        warn = getattr(self.platform, "config_warnings", None)
        if warn:
            result.warnings += [w for m in inputs if m.model_id not in own for w in warn(m.model_id)]
        return result

    def validate(self, spec: DeploymentSpec, extra: Sequence[ModelInput] = ()) -> ValidatedDeployment:
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
        suggest = getattr(self.platform, "suggest", None)
        return validate_deployment(spec, known, self.shape_catalog(), suggest, params_key=self.platform.params_key)

    # deployments ----------------------------------------------------------------------------------

    def create_deployment(self, spec: DeploymentSpec) -> Deployment:
        return self.platform.create_deployment(self.validate(spec))

    def list_deployments(self) -> list[Deployment]:
        return self.platform.list_deployments()

    def get_deployment(self, deployment_id: str) -> Deployment:
        return self.platform.get_deployment(deployment_id)

    def activate(self, deployment_id: str) -> Deployment:
        return self.platform.activate(deployment_id)

    def deactivate(self, deployment_id: str) -> Deployment:
        return self.platform.deactivate(deployment_id)

    def delete(self, deployment_id: str) -> Deployment:
        return self.platform.delete(deployment_id)

    def model_states(self, deployment_id: str) -> list[ModelState]:
        return self.platform.model_states(deployment_id)

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        return self.platform.logs(deployment_id, model_name, lines)

    def wait(
        self,
        deployment_id: str,
        timeout: float = 600,
        until: tuple[str, ...] = ("ACTIVE", "FAILED", "NEEDS_ATTENTION"),
        progress: Callable[[Deployment], None] | None = None,
        interval: float = 0.5,
    ) -> Deployment:
        """Poll until the deployment reaches one of ``until`` (or the timeout), reporting progress."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            d = self.get_deployment(deployment_id)
            if progress:
                progress(d)
            if d.state in until or time.monotonic() > deadline:
                return d
            time.sleep(interval)
