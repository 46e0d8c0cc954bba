"""ipywidgets panels: usable alone, or together as ``AquaLabWidget()``.  They call the service directly
(no HTTP round trip), so they work in any kernel, including an OCI notebook session."""

from .arena import LeaderboardView
from .chat import ChatPanel
from .deploy import DeploymentsPanel, DeployPanel
from .evaluation import EvaluationPanel
from .metrics import MetricsPanel
from .planning import GpuSplit, ModelPicker
from .workspace import AquaLabWidget

__all__ = [
    "AquaLabWidget",
    "ChatPanel",
    "DeployPanel",
    "DeploymentsPanel",
    "EvaluationPanel",
    "GpuSplit",
    "LeaderboardView",
    "MetricsPanel",
    "ModelPicker",
]
