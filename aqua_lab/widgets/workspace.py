"""``AquaLabWidget()``: the whole job in one notebook cell — pick, plan, deploy, manage, chat, evaluate."""

from __future__ import annotations

import ipywidgets as w

from ..service import AquaLabService
from .chat import ChatPanel
from .common import message
from .deploy import DeploymentsPanel, DeployPanel
from .evaluation import EvaluationPanel
from .planning import GpuSplit, ModelPicker


class AquaLabWidget(w.VBox):
    """Tabs over the panels, sharing one service (``platform``: "local", "oci" or "bundled")."""

    def __init__(self, platform: str | AquaLabService = "local", **kwargs):
        self.service = platform if isinstance(platform, AquaLabService) else AquaLabService(platform)
        self.picker = ModelPicker(self.service)
        self.split = GpuSplit(self.service, self.picker)
        self.deploy = DeployPanel(self.service, self.split)
        self.deployments = DeploymentsPanel(self.service)
        self.chat_box = w.VBox([w.HTML(message("Pick an ACTIVE deployment in Deployments, then Open chat."))])
        open_chat = w.Button(description="Open chat", icon="comments")
        open_chat.on_click(lambda _: self.open_chat(self.deployments.choice.value))
        self.deployments.children = (*self.deployments.children, open_chat)
        self.evaluation_box = w.VBox([w.HTML(message("Pick an ACTIVE deployment in Deployments, then Evaluate."))])
        evaluate = w.Button(description="Evaluate", icon="check")
        evaluate.on_click(lambda _: self.open_evaluation(self.deployments.choice.value))
        self.deployments.children = (*self.deployments.children, evaluate)
        self.tabs = w.Tab(
            [w.VBox([self.picker, self.split]), self.deploy, self.deployments, self.chat_box, self.evaluation_box]
        )
        for i, title in enumerate(("Models & GPU split", "Deploy", "Deployments", "Chat", "Evaluate")):
            self.tabs.set_title(i, title)
        super().__init__([self.tabs], **kwargs)

    def open_chat(self, deployment_id: str | None) -> ChatPanel | None:
        if not deployment_id:
            self.chat_box.children = [w.HTML(message("Pick a deployment first.", "warning"))]
            return None
        panel = ChatPanel(self.service, deployment_id)
        self.chat_box.children = [panel]
        self.tabs.selected_index = 3
        return panel

    def open_evaluation(self, deployment_id: str | None) -> EvaluationPanel:
        panel = EvaluationPanel(self.service, deployment_id)
        self.evaluation_box.children = [panel]
        self.tabs.selected_index = 4
        return panel
