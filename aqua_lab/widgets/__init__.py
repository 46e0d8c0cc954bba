"""ipywidgets panels: usable alone, or together as ``AquaLab()``.  They call the service directly
(no HTTP round trip), so they work in any kernel, including an OCI notebook session."""

from .app import AquaLab
from .chat import ChatPanel
from .deploy import DeploymentsPanel, DeployPanel
from .metrics import MetricsPanel
from .planning import GpuSplit, ModelPicker

__all__ = ["AquaLab", "ChatPanel", "DeployPanel", "DeploymentsPanel", "GpuSplit", "MetricsPanel", "ModelPicker"]
