"""``AquaLabWidget()``: the whole job in one notebook cell — pick, plan, deploy, manage, chat, evaluate —
on any platform, switched in place."""

from __future__ import annotations

import ipywidgets as w

from ..errors import AquaLabError
from ..service import PLATFORMS, AquaLabService, PlatformSettings
from .chat import ChatPanel
from .common import message
from .deploy import DeploymentsPanel, DeployPanel
from .evaluation import EvaluationPanel
from .planning import GpuSplit, ModelPicker

#: what each platform lets a user do, in the widgets' words
ABOUT = {
    "local": "This machine: deploy, chat, compare and evaluate for real; add model files of your own below the list.",
    "bundled": "Plan only: OCI's service models and GPU shapes as shipped. Switch to local or oci to deploy.",
    "oci": "OCI Data Science: deploy model groups in your compartment, then chat, compare and evaluate.",
}


class AquaLabWidget(w.VBox):
    """Tabs over the panels, sharing one service (``platform``: "local", "oci" or "bundled"); the
    Platform buttons switch it in place, keeping the picked models the other platform knows."""

    def __init__(self, platform: str | AquaLabService = "local", settings: PlatformSettings | None = None, **kwargs):
        self.settings = settings  # what another platform is built with when the user switches to it
        first = platform if isinstance(platform, AquaLabService) else AquaLabService(platform, settings)
        self._services: dict[str, AquaLabService] = {first.platform_name: first}
        self.platform_choice = w.ToggleButtons(
            options=list(dict.fromkeys([*PLATFORMS, first.platform_name])),
            value=first.platform_name,
            description="Platform",
            style={"button_width": "auto"},
        )
        self.about = w.HTML()
        self.tabs = w.Tab()
        self._build(first)
        self.platform_choice.observe(lambda change: self.switch(change["new"]), names="value")
        super().__init__([self.platform_choice, self.about, self.tabs], **kwargs)

    def _build(self, service: AquaLabService, picks: list[str] | None = None, primary: str | None = None) -> None:
        self.service = service
        self.picker = ModelPicker(service)
        self.split = GpuSplit(service, self.picker)
        self.deployments = DeploymentsPanel(service)
        self.deploy = DeployPanel(service, self.split, on_created=lambda d: self.deployments.refresh(select=d.id))
        self.chat_box = w.VBox([w.HTML(message("Pick an ACTIVE deployment in Deployments, then Open chat."))])
        open_chat = w.Button(description="Open chat", icon="comments")
        open_chat.on_click(lambda _: self.open_chat(self.deployments.choice.value))
        self.deployments.children = (*self.deployments.children, open_chat)
        self.evaluation_box = w.VBox()  # the form is built when the tab is first shown
        evaluate = w.Button(description="Evaluate", icon="check")
        evaluate.on_click(lambda _: self.open_evaluation(self.deployments.choice.value))
        self.deployments.children = (*self.deployments.children, evaluate)
        self.tabs.children = [
            w.VBox([self.picker, self.split]),
            self.deploy,
            self.deployments,
            self.chat_box,
            self.evaluation_box,
        ]
        for i, title in enumerate(("Models & GPU split", "Deploy", "Deployments", "Chat", "Evaluate")):
            self.tabs.set_title(i, title)
        self.tabs.unobserve_all("selected_index")
        self.tabs.observe(lambda change: self._tab_shown(change["new"]), names="selected_index")
        if self.tabs.selected_index == 4:  # switched platform on the Evaluate tab: its form, not a blank
            self._evaluation_shown()
        if picks:
            self.picker.pick(*picks, primary=primary if primary in picks else None)
        self.about.value = message(ABOUT.get(service.platform_name, service.platform_name))

    def switch(self, name: str) -> AquaLabService | None:
        """Move the app to platform ``name``: picks it knows stay picked, the rest are named."""
        if name == self.service.platform_name:
            return self.service
        try:
            service = self._services.get(name) or AquaLabService(name, self.settings)
        except AquaLabError as exc:
            back = self.service.platform_name
            self.about.value = message(f"{name} is not available here: {exc}", "error")
            self.platform_choice.unobserve_all("value")
            self.platform_choice.value = back
            self.platform_choice.observe(lambda change: self.switch(change["new"]), names="value")
            return None
        self._services[name] = service
        kept, dropped, same = [], [], {}
        for model_id in self.picker.selected:
            try:
                same[model_id] = service.resolve_model(model_id).id
                kept.append(same[model_id])
            except AquaLabError:
                dropped.append(model_id)
        self._build(service, kept, same.get(self.picker.primary or ""))
        if self.platform_choice.value != name:
            self.platform_choice.value = name
        if dropped:
            names = ", ".join(dict.fromkeys(dropped))
            self.about.value += message(f"not on {name}, so no longer picked: {names}", "warning")
        return service

    def _tab_shown(self, index: int | None) -> None:
        """Deployments, Chat and Evaluate show what is true now (a cell may have deleted a deployment)."""
        if index == 2:
            self.deployments.refresh()
        elif index == 3 and isinstance(panel := self.chat_box.children[0], ChatPanel) and (why := panel.gone()):
            self.chat_box.children = [w.HTML(message(why, "warning"))]
        elif index == 4:
            self._evaluation_shown()

    def _evaluation_shown(self) -> None:
        """Opened directly (not from Deployments), the tab still shows its form: the deployment picker
        offers every ACTIVE one, the Deployments choice first. Built on first show: its metrics'
        scorers are not imported for a user who never evaluates."""
        panel = self.evaluation_box.children[0] if self.evaluation_box.children else None
        if isinstance(panel, EvaluationPanel):
            panel.refresh(panel.deployment.value)
            return
        try:
            panel = EvaluationPanel(self.service, self.deployments.choice.value)
        except AquaLabError as exc:
            self.evaluation_box.children = [w.HTML(message(str(exc), "error"))]
            return
        self.evaluation_box.children = [panel]

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
