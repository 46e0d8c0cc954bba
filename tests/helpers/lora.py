"""Tests make their LoRA adapters with the package's demo writer (no hub, no torch)."""

from aqua_lab.platforms.local.demo_lora import write_lora_gguf

__all__ = ["write_lora_gguf"]
