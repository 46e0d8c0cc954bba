"""Deploy the planned split with progress, and manage deployments."""

from __future__ import annotations

import json
from collections.abc import Callable

import ipywidgets as w
from pydantic import ValidationError

from ..domain import Deployment, ModelState
from ..errors import AquaLabError, InvalidInput, Problem
from ..service import AquaLabService
from .byoc import DEPLOYMENT_TYPES, ByocFields, number
from .common import esc, full_width, gone_reason, in_background, message
from .metrics import MetricsPanel
from .planning import GpuSplit
from .residency import model_cell, residency_note
from .versions import VersionsPanel

#: model states whose line in the table says more than the state column (residency, memory)
SHOWN = ("ACTIVE", "SLEEPING", "LOADING")


def state_line(d: Deployment) -> str:
    models = ", ".join(_model_state(s) for s in d.model_states) or "no model states yet"
    return f"{d.state} · {models}"


def _model_state(s: ModelState) -> str:
    note = residency_note(s)
    return f"{s.model_name}: {s.state.lower()}" + (f" ({note})" if note else "")


def scaling_cell(d: Deployment) -> str:
    s = d.scaling
    if s is None:
        return ""
    if s.minimum_instance_count == s.maximum_instance_count:
        return str(s.instance_count)
    return f"{s.instance_count} (auto {s.minimum_instance_count}–{s.maximum_instance_count})"


class DeployPanel(w.VBox):
    """Name, shape (from the split), advanced options; a progress bar and per-model states while
    the deployment comes up; errors in place."""

    def __init__(
        self,
        service: AquaLabService,
        split: GpuSplit,
        poll_s: float = 0.5,
        on_created: Callable[[Deployment], None] | None = None,
        **kwargs,
    ):
        self.service, self.split, self.poll_s = service, split, poll_s
        self.on_created = on_created  # told of the new deployment as soon as it exists (the Deployments picker)
        self.name = w.Text(value="aqua_lab deployment", description="Name")
        self.description = w.Text(description="Description")
        self.container = w.Text(description="Container", placeholder="default vLLM image (OCI)")
        self.instances = w.BoundedIntText(value=1, min=1, max=10, description="Instances")
        self.env = w.Textarea(
            description="Env (JSON)",
            placeholder='{"MODEL_DEPLOY_PREDICT_ENDPOINT": "/v1/chat/completions"}',
            layout=full_width(),
        )
        self.logs = w.Text(description="Log group", placeholder="OCI log group OCID")
        self.autoscaling = w.Textarea(
            description="Autoscaling",
            placeholder='OCI: {"minimum_instance_count": 1, "maximum_instance_count": 4, "metric": "CPU_UTILIZATION", '
            '"scale_in_threshold": 20, "scale_out_threshold": 75}',
            layout=full_width(),
        )
        self.oci = service.platform_name == "oci"
        self.byoc = ByocFields(self.container, self.env)
        self.deployment_type = w.Dropdown(options=DEPLOYMENT_TYPES, value="MULTI", description="Type")
        self.deployment_type.layout.display = None if self.oci else "none"
        self.ocpus = w.Text(description="OCPUs", placeholder="8")
        self.memory = w.Text(description="Memory GB", placeholder="128")
        self.flex_box = w.VBox([w.HTML(), *self.byoc.with_error("ocpus", self.ocpus, "memory_in_gbs", self.memory)])
        self.advanced_box = w.VBox()
        advanced = w.Accordion([self.advanced_box])
        advanced.set_title(0, "Advanced options")
        advanced.selected_index = None
        self.button = w.Button(description="Deploy", button_style="primary", icon="rocket")
        self.progress = w.IntProgress(value=0, min=0, max=100, layout=full_width())
        self.status = w.HTML()
        self.deployment: Deployment | None = None
        self.worker = None
        self.button.on_click(lambda _: self.deploy())
        self.deployment_type.observe(lambda _: self._place(), names="value")
        split.override_shape.observe(lambda _: self._place(), names="value")
        super().__init__(
            [
                self.name,
                self.deployment_type,
                self.byoc.box,
                self.flex_box,
                advanced,
                self.button,
                self.progress,
                self.status,
            ],
            **kwargs,
        )
        self._place()

    @property
    def errors(self) -> dict[str, w.HTML]:
        """The message under each field the server may name."""
        return self.byoc.errors

    def flex_shape(self) -> bool:
        """OCI's CPU flex shapes (VM.Standard.E4.Flex …) have no GPUs: OCPUs and memory size them."""
        name = self.split.override_shape.value or ""
        if not self.oci or ".Flex" not in name:
            return False
        shape = next((s for s in self.service.shapes() if s.name == name), None)
        return shape is None or shape.gpu_count == 0 or shape.is_cpu

    def _place(self) -> None:
        """A BYOC group's container fields in their own box; OCPUs and memory only for a flex shape."""
        byoc = self.oci and self.deployment_type.value == "HETEROGENEOUS"
        self.byoc.show(byoc)
        shared = [] if byoc else self.byoc.shared_rows()
        self.advanced_box.children = [self.description, *shared, self.instances, self.autoscaling, self.logs]
        flex = self.flex_shape()
        self.flex_box.layout.display = None if flex else "none"
        self.flex_box.children[0].value = (
            f"<b>Size of {esc(self.split.override_shape.value)}</b> (no GPUs: models split the OCPUs and memory)"
            if flex
            else ""
        )

    def _extra(self) -> dict:
        extra: dict = {"instance_count": self.instances.value}
        if self.description.value:
            extra["description"] = self.description.value
        if self.logs.value:
            extra["log_group_id"] = self.logs.value
        if self.oci:
            extra["deployment_type"] = self.deployment_type.value
        extra.update(self.byoc.values(self.oci and self.deployment_type.value == "HETEROGENEOUS"))
        if self.flex_shape():
            for field, box in (("ocpus", self.ocpus), ("memory_in_gbs", self.memory)):
                if box.value.strip():
                    extra[field] = number(field, box.value)
        if self.autoscaling.value.strip():
            try:
                extra["autoscaling"] = json.loads(self.autoscaling.value)
            except json.JSONDecodeError as exc:
                raise InvalidInput(Problem("Autoscaling", f"not valid JSON ({exc.msg})", "give a JSON object")) from exc
        return extra

    def _problems(self, invalid: InvalidInput) -> None:
        """Each problem under the field it names; those of no field shown here in the status."""
        rest = [p for p in invalid.problems if not self.byoc.mark(p)]
        self.status.value = "".join(message(str(p), "error") for p in rest) or message(
            "Not deployed: fix the fields marked above.", "error"
        )

    def deploy(self) -> None:
        self.byoc.clear_errors()
        try:
            spec = self.split.spec(self.name.value, **self._extra())
            validated = self.service.validate(spec)
        except (InvalidInput, ValidationError) as exc:
            self._problems(exc if isinstance(exc, InvalidInput) else InvalidInput.from_validation(exc))
            return
        except AquaLabError as exc:  # e.g. a scaling policy this platform cannot run
            self.status.value = message(str(exc), "error")
            return
        self.button.disabled = True
        flags = "\n".join(f"{m.model_name}: {m.served_params}" for m in validated.models)
        self.status.value = message(f"creating on {validated.shape.name}…\n{flags}")
        self.worker = in_background(lambda: self._create_and_watch(validated), self._failed)

    def _create_and_watch(self, validated) -> None:
        self.deployment = self.service.create_deployment(validated)
        if self.on_created is not None:
            self.on_created(self.deployment)
        deployment = self.service.wait(self.deployment.id, self._show, timeout=None, interval=self.poll_s)
        kind = "ok" if deployment.state == "ACTIVE" else "error"
        details = f"\n{deployment.lifecycle_details}" if deployment.lifecycle_details and kind == "error" else ""
        self.status.value = message(f"{state_line(deployment)} · endpoint {deployment.endpoint}{details}", kind)
        self.progress.bar_style = "success" if kind == "ok" else "danger"
        self.button.disabled = False

    def _show(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.progress.value = deployment.progress
        self.status.value = message(state_line(deployment))

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, InvalidInput):
            self._problems(exc)
        else:
            self.status.value = message(str(exc) if isinstance(exc, AquaLabError) else repr(exc), "error")
        self.button.disabled = False

    def wait(self, timeout: float = 120) -> Deployment | None:
        if self.worker is not None:
            self.worker.join(timeout)
        return self.deployment


class DeploymentsPanel(w.VBox):
    """Every deployment with state, endpoint and models; actions ask for a second click to confirm."""

    def __init__(self, service: AquaLabService, **kwargs):
        self.service = service
        self.table = w.HTML()
        self.choice = w.Dropdown(description="Deployment", layout=full_width())
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.actions = {name: w.Button(description=name.capitalize()) for name in ("activate", "deactivate", "delete")}
        self.actions["delete"].button_style = "danger"
        self.status = w.HTML()
        self.pending: str | None = None  # an action waiting for its confirming click
        self.refresh_button.on_click(lambda _: self.refresh())
        for name, button in self.actions.items():
            button.on_click(lambda _, name=name: self.act(name))
        self.metrics_button = w.Button(description="Metrics", icon="line-chart")
        self.metrics_button.on_click(lambda _: self.show_metrics())
        self.metrics_box = w.VBox()
        # model-group versions are OCI's: elsewhere an update replaces the models in place
        self.versions_button = w.Button(description="Versions", icon="history")
        self.versions_button.on_click(lambda _: self.show_versions())
        self.versions_button.layout.display = None if service.platform_name == "oci" else "none"
        self.versions_box = w.VBox()
        super().__init__(
            [
                w.HBox([self.refresh_button, *self.actions.values(), self.metrics_button, self.versions_button]),
                self.choice,
                self.table,
                self.status,
                self.versions_box,
                self.metrics_box,
            ],
            **kwargs,
        )
        self.refresh()

    def show_metrics(self) -> MetricsPanel | None:
        """Per-model requests, errors, TTFT, tokens/s, in-flight and replicas of the chosen deployment."""
        for old in self.metrics_box.children:
            if isinstance(old, MetricsPanel):
                old.stop()
            old.close()
        if not self.choice.value:
            self.metrics_box.children = [w.HTML(message("Pick a deployment first.", "warning"))]
            return None
        panel = MetricsPanel(self.service, self.choice.value)
        self.metrics_box.children = [panel]
        return panel

    def show_versions(self) -> VersionsPanel | None:
        """The chosen deployment's model-group versions, and a rollback to one of them."""
        for old in self.versions_box.children:
            old.close()
        if not self.choice.value:
            self.versions_box.children = [w.HTML(message("Pick a deployment first.", "warning"))]
            return None
        panel = VersionsPanel(self.service, self.choice.value, on_changed=self.refresh)
        self.versions_box.children = [panel]
        return panel

    def refresh(self, select: str | None = None) -> None:
        """List the deployments again; ``select``: the one to choose (one just made), else the user's
        choice stays, else the first — never an empty box."""
        try:
            deployments = self.service.list_deployments()
        except AquaLabError as exc:
            self.table.value = message(str(exc), "error")
            return
        self.deployments = deployments
        current = self.choice.value
        self.choice.options = [(f"{d.display_name} ({d.id})", d.id) for d in deployments]
        ids = [d.id for d in deployments]
        self.choice.value = next((i for i in (select, current) if i in ids), ids[0] if ids else None)
        shown = next((p for p in self.metrics_box.children if isinstance(p, MetricsPanel)), None)
        states = {d.id: d.state for d in deployments}
        if shown is not None and (why := gone_reason(shown.deployment_id, states.get(shown.deployment_id))):
            shown.forget(why)  # a deleted deployment's numbers would pass for a live one's
        rows = "".join(
            f"<tr><td>{esc(d.display_name)}</td><td>{esc(d.state)}</td><td>{esc(d.instance_shape)}</td>"
            f"<td>{esc(', '.join(f'{m.model_name} ×{m.gpu_count}' for m in d.models))}"
            f"{''.join(model_cell(m) for m in d.model_states if m.state in SHOWN)}</td>"
            f"<td>{esc(scaling_cell(d))}</td>"
            f"<td style='word-break:break-all'>{esc(d.endpoint or '')}</td></tr>"
            for d in deployments
        )
        self.table.value = (
            "<table class='aqua-deployments' style='width:100%'><tr><th>name</th><th>state</th><th>shape</th>"
            f"<th>models (GPUs)</th><th>instances</th><th>endpoint</th></tr>{rows}</table>"
            if deployments
            else message("No deployments yet.")
        )

    def act(self, action: str) -> None:
        deployment_id = self.choice.value
        if not deployment_id:
            self.status.value = message("Pick a deployment first.", "warning")
            return
        if self.pending != f"{action}:{deployment_id}":
            self.pending = f"{action}:{deployment_id}"
            self.status.value = message(f"Click {action.capitalize()} again to {action} {deployment_id}.", "warning")
            return
        self.pending = None
        try:
            result = getattr(self.service, action)(deployment_id)
        except AquaLabError as exc:
            self.status.value = message(str(exc), "error")
            return
        self.status.value = message(f"{deployment_id}: {result.state}", "ok")
        self.refresh()
