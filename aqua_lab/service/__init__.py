"""The service: what every front (REST, widgets, CLI) calls, and the only thing it calls.

:class:`AquaLabService` (blocking, for kernels and the CLI) and :class:`AsyncAquaLabService` (its
coroutine face, for the Jupyter server); the platform list, for a front's ``--platform`` choice.
"""

from ..platforms.registry import PLATFORMS, PlatformSettings, check_platform, default_data_dir, descriptions
from .aio import AsyncAquaLabService
from .facade import MAX_LOG_LINES, AquaLabService, window_seconds

__all__ = [
    "MAX_LOG_LINES",
    "PLATFORMS",
    "AquaLabService",
    "AsyncAquaLabService",
    "PlatformSettings",
    "check_platform",
    "default_data_dir",
    "descriptions",
    "window_seconds",
]
