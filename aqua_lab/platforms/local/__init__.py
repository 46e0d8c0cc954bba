"""The local platform: llama.cpp on CPU, vLLM on GPU, one process per model, a router in front."""

from .platform import LocalPlatform

__all__ = ["LocalPlatform"]
