"""A larger llama GGUF than the bundled SmolLM2, for the planner-vs-measured memory check (issue 28):
SmolLM2's tokenizer and chat template (so llama-server serves it as it serves SmolLM2) on a wider,
deeper random F16 network — about 0.67 GB of weights, seven times SmolLM2's file.  It answers
nonsense; what it is for is its memory, which follows its shape and not its weights' values."""

from __future__ import annotations

from pathlib import Path

from aqua_lab.platforms.local.models import smollm2_path
from aqua_lab.platforms.local.random_gguf import WIDE_SHAPE, write_llama_gguf


def write_wide_gguf(path: Path | str, seed: int = 7) -> Path:
    return write_llama_gguf(path, WIDE_SHAPE, smollm2_path(), seed)


__all__ = ["write_wide_gguf"]
