"""Fill an emulator with what a real tenancy would show: OCI's GPU shapes, the AQUA service models
with their deployment configs, and an API-key profile the SDK can sign with."""

from __future__ import annotations

import json
from pathlib import Path

from ..catalog import bundled_catalog
from ..domain import Architecture
from .server import Emulator, new_api_key

SERVICE_BUCKET = "service-managed-models"
TENANCY = "ocid1.tenancy.oc1..emutenancy"
USER = "ocid1.user.oc1..emuuser"


def seed_from_bundled(emulator: Emulator, service_compartment: str) -> dict[str, str]:
    """Shapes from the bundled GPU index (plus two CPU shapes) and the 52 service models, each with
    its ``DeploymentConfiguration`` defined metadata.  Returns model name → OCID."""
    catalog = bundled_catalog()
    for shape in catalog.shapes:
        emulator.add_shape(shape.name, shape.core_count or 0, shape.memory_in_gbs or 0)
    emulator.add_shape("VM.Standard.E4.Flex", 64, 1024, "AMD_ROME")
    emulator.add_shape("VM.Standard3.Flex", 32, 512, "INTEL_SKYLAKE")
    ids = {}
    for model in catalog.models:
        config = catalog.configs[model.id].model_dump(mode="json", exclude_defaults=True)
        short = model.id.split("/")[-1]
        arch = catalog.architectures.find(model.id)
        if arch is not None:  # the config.json beside the weights, as a real artifact has it
            emulator.put_object(
                SERVICE_BUCKET, f"service_models/{short}/artifact/config.json", json.dumps(hf_config(arch)).encode()
            )
        prefix = f"service_models/{short}/artifact"
        ids[model.id] = emulator.add_model(
            model.id,
            service_compartment,
            deployment_config=config,
            tags={"OCI_AQUA": "active", "aqua_service_model": "true", "task": model.task, "ready_to_deploy": "true"},
            custom={
                "artifact_location": f"oci://{SERVICE_BUCKET}@{emulator.namespace}/{prefix}",
                "deployment-container": "odsc-vllm-serving",
                "modelDescription": "true",  # a model by reference, as AQUA's service models are
            },
        )
        by_reference(emulator, ids[model.id], SERVICE_BUCKET, prefix)
    return ids


def by_reference(emulator: Emulator, model_id: str, bucket: str, prefix: str) -> None:
    """The artifact of a model registered by reference: ``model_description.json`` listing its
    objects in Object Storage (ADS reads it for ``model_file_description``, which its multi-model
    create requires), served as ``<id>.json`` — the file name is how ADS tells it from a zip."""
    objects = [
        {"name": name.removeprefix(prefix + "/"), "version": "1", "sizeInBytes": len(data)}
        for (namespace, b, name), data in emulator.state.objects.items()
        if namespace == emulator.namespace and b == bucket and name.startswith(prefix + "/")
    ]
    description = {
        "version": "1.0",
        "type": "modelOSSReferenceDescription",
        "models": [{"namespace": emulator.namespace, "bucketName": bucket, "prefix": prefix, "objects": objects}],
    }
    emulator.state.artifacts[model_id] = json.dumps(description).encode()
    emulator.state.artifact_names[model_id] = f"{model_id}.json"


def hf_config(arch: Architecture) -> dict:
    """A Hugging Face ``config.json`` carrying the architecture facts (the keys transformers uses)."""
    config = {
        "architectures": [arch.architecture] if arch.architecture else [],
        "num_hidden_layers": arch.layers,
        "hidden_size": arch.hidden_size,
        "num_attention_heads": arch.attention_heads,
        "num_key_value_heads": arch.kv_heads,
        "head_dim": arch.head_dim,
        "max_position_embeddings": arch.max_position_embeddings,
        "torch_dtype": arch.dtype,
        "vocab_size": arch.vocab_size,
        "intermediate_size": arch.intermediate_size,
    }
    if arch.tie_word_embeddings is not None:
        config["tie_word_embeddings"] = arch.tie_word_embeddings
    if arch.experts:
        config["num_local_experts"] = arch.experts
    return {k: v for k, v in config.items() if v is not None}


def write_api_key_config(
    emulator: Emulator, directory: Path, region: str = "us-ashburn-1", profile: str = "DEFAULT"
) -> Path:
    """An ``~/.oci/config``-style file and key the emulator trusts; returns the config path."""
    key, pem, fingerprint = new_api_key()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "key.pem").write_text(pem)
    (directory / "key.pem").chmod(0o600)
    config = directory / "config"
    config.write_text(
        f"[{profile}]\nuser={USER}\nfingerprint={fingerprint}\ntenancy={TENANCY}\n"
        f"region={region}\nkey_file={directory / 'key.pem'}\n"
    )
    emulator.add_api_key(f"{TENANCY}/{USER}/{fingerprint}", key.public_key())
    return config
