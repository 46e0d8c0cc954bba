"""A small random LoRA adapter for SmolLM2-135M, written as GGUF — for trying stacked deployments
with no fine-tuning at hand (tests and the stacked notebook use it).  Needs ``gguf`` and ``numpy``
(the ``test`` extra)."""

from __future__ import annotations

from pathlib import Path

# SmolLM2-135M: 30 layers, hidden 576, 9 query heads and 3 KV heads of 64
LAYERS, HIDDEN, KV_OUT = 30, 576, 3 * 64


def write_lora_gguf(path: Path | str, rank: int = 8, alpha: float = 16.0, scale: float = 0.5, seed: int = 1) -> Path:
    try:
        import gguf
        import numpy as np
    except ImportError as exc:
        raise ImportError("writing a demo adapter needs `pip install gguf numpy`") from exc
    path = Path(path)
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    writer.add_string("general.name", f"smollm2-demo-lora-{seed}")
    for layer in range(LAYERS):
        for proj, out in (("attn_q", HIDDEN), ("attn_v", KV_OUT)):
            a = (rng.standard_normal((rank, HIDDEN)) * scale / np.sqrt(HIDDEN)).astype(np.float32)
            b = (rng.standard_normal((out, rank)) * scale).astype(np.float32)
            writer.add_tensor(f"blk.{layer}.{proj}.weight.lora_a", a)
            writer.add_tensor(f"blk.{layer}.{proj}.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
