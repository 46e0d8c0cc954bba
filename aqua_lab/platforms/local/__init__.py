"""The local platform: llama.cpp's llama-server on CPU, vLLM on GPU, one process per model, a router in front."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .platform import LocalPlatform

__all__ = ["LocalPlatform"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m aqua_lab.platforms.local.runtime` (and .engine_build) do not import
    # themselves twice through the platform (runpy warns "found in sys.modules", which then shows up
    # as the last line of a failed deployment's details).
    if name == "LocalPlatform":
        from .platform import LocalPlatform

        return LocalPlatform
    raise AttributeError(name)
