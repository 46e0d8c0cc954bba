"""Evaluate a deployment's models on a dataset: a progress bar per model, then the comparison
table, one chart per metric, and the path of the HTML report."""

from __future__ import annotations

import html
import json
import tempfile
import time
from pathlib import Path

import ipywidgets as w
from pydantic import ValidationError

from ..domain import Evaluation, EvaluationSpec
from ..errors import AquaLabError, InvalidInput, Problem
from ..service import AquaLabService
from .common import esc, full_width, in_background, message

FINISHED = ("SUCCEEDED", "FAILED", "CANCELED")
ALL = "every model (one comparison)"
#: an upload travels through the kernel's websocket as one message (tornado refuses those over 10 MiB)
UPLOAD_LIMIT = 8 << 20


class EvaluationPanel(w.VBox):
    """Deployment and models, dataset (``sample``, a path or an uploaded .jsonl), metrics, model
    parameters; progress per model while it runs; the comparison and its HTML report when done."""

    def __init__(self, service: AquaLabService, deployment_id: str | None = None, poll_s: float = 0.5, **kwargs):
        self.service, self.poll_s = service, poll_s
        self.deployment = w.Dropdown(description="Deployment", options=[], layout=full_width())
        self.model = w.Dropdown(description="Models", options=[ALL])
        self.dataset = w.Text(value="sample", description="Dataset", placeholder="sample or a .jsonl path")
        self.upload = w.FileUpload(accept=".jsonl", multiple=False, description="Upload .jsonl")
        self.report_path = w.Text(value=tempfile.mkdtemp(prefix="aqua_lab_eval_"), description="Reports to")
        self.metrics = {
            m.name: w.Checkbox(value=m.name in ("rouge", "bertscore"), description=m.label)
            for m in service.supported_metrics()
        }
        self.params = w.Text(value='{"max_tokens": 64}', description="Parameters", layout=full_width())
        self.button = w.Button(description="Evaluate", button_style="primary", icon="check")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.progress = w.VBox()
        self.status = w.HTML()
        self.result = w.VBox()
        self.evaluation: Evaluation | None = None
        self.worker = None
        self.deployment.observe(lambda _: self._models(), names="value")
        self.button.on_click(lambda _: self.evaluate())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.upload.observe(lambda _: self._uploaded(), names="value")
        self.report_button = w.ToggleButton(description="Show the HTML report", icon="file-text-o")
        self.report_button.observe(lambda _: self._toggle_report(), names="value")
        self.report_view = w.HTML()
        self.refresh(deployment_id)
        super().__init__(
            [
                self.deployment,
                self.model,
                w.HBox([self.dataset, self.upload], layout=w.Layout(flex_flow="row wrap")),
                self.report_path,
                w.HBox(list(self.metrics.values()), layout=w.Layout(flex_flow="row wrap")),
                self.params,
                w.HBox([self.button, self.cancel_button]),
                self.progress,
                self.status,
                self.result,
            ],
            **kwargs,
        )

    def refresh(self, deployment_id: str | None = None) -> None:
        active = [d for d in self.service.list_deployments() if d.state == "ACTIVE"]
        self.deployment.options = [(f"{d.display_name} ({d.id})", d.id) for d in active]
        if deployment_id in [d.id for d in active]:
            self.deployment.value = deployment_id
        self._models()

    def _models(self) -> None:
        if not self.deployment.value:
            self.model.options = [ALL]
            return
        names = self.service.get_deployment(self.deployment.value).served_names()
        self.model.options = [ALL, *names]

    def spec(self) -> EvaluationSpec:
        try:
            params = json.loads(self.params.value or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidInput(Problem("model_parameters", f"not valid JSON ({exc.msg})")) from None
        if self.model.value != ALL:
            params = {**params, "model": self.model.value}
        chosen = [{"name": n, "args": {}} for n, box in self.metrics.items() if box.value]
        try:
            return EvaluationSpec(
                evaluation_source_id=self.deployment.value or "",
                evaluation_name=f"evaluation {time.strftime('%H:%M:%S')}",
                dataset_path=self.dataset.value,
                report_path=self.report_path.value,
                model_parameters=params,
                metrics=chosen,
                force_overwrite=True,
            )
        except ValidationError as exc:
            raise InvalidInput.from_validation(exc) from None

    def _uploaded(self) -> None:
        """Keep an uploaded dataset next to the reports (where ADS puts a local dataset too) and
        evaluate that file; its rows are checked, line by line, when the evaluation is created."""
        if not self.upload.value:
            return
        item = self.upload.value[0]
        name = Path(item["name"]).name
        if not name.endswith(".jsonl"):
            self.status.value = message(f"dataset: {name} is not a .jsonl file — upload one object per line", "error")
            return
        if item["size"] > UPLOAD_LIMIT:
            self.status.value = message(
                f"dataset: {name} is {item['size']} bytes — keep an uploaded dataset under {UPLOAD_LIMIT} bytes, "
                "or type its path on the server",
                "error",
            )
            return
        target = Path(self.report_path.value).expanduser() / name
        target.parent.mkdir(parents=True, exist_ok=True)
        data = bytes(item["content"])
        target.write_bytes(data)
        self.dataset.value = str(target)
        lines = len(data.splitlines())
        self.status.value = message(f"uploaded {name} ({lines} line{'s' * (lines != 1)}) to {target}", "ok")

    def _toggle_report(self) -> None:
        """The self-contained comparison report (plots are inline SVG) shown in the panel itself:
        a path on the server is no link in a notebook."""
        if not self.report_button.value or self.evaluation is None:
            self.report_view.value = ""
            return
        page = self.service.evaluation_report(self.evaluation.id, fmt="html")
        self.report_view.value = (
            f'<iframe title="evaluation report" srcdoc="{html.escape(page)}" '
            'style="width:100%;height:640px;border:1px solid var(--jp-border-color2, #ccc)"></iframe>'
        )

    def evaluate(self) -> None:
        self.result.children = []
        self.report_button.value = False
        try:
            self.evaluation = self.service.create_evaluation(self.spec())
        except AquaLabError as exc:
            problems = exc.problems if isinstance(exc, InvalidInput) else [exc]
            self.status.value = "".join(message(str(p), "error") for p in problems)
            return
        self.button.disabled, self.cancel_button.disabled = True, False
        self.bars = {
            m.model: w.IntProgress(min=0, max=max(1, m.rows_total), description=m.model) for m in self.evaluation.models
        }
        self.progress.children = list(self.bars.values())
        self.worker = in_background(self._watch, self._failed)

    def _watch(self) -> None:
        while True:
            e = self.service.get_evaluation(self.evaluation.id)
            self.evaluation = e
            for m in e.models:
                bar = self.bars[m.model]
                bar.value = m.rows_done
                bar.bar_style = {"FAILED": "danger", "SUCCEEDED": "success"}.get(m.state, "info")
            done = sum(m.rows_done for m in e.models)
            eta = max((m.eta_s or 0 for m in e.models), default=0)
            self.status.value = message(f"{e.state} · {done} answers" + (f" · about {eta:.0f} s left" if eta else ""))
            if e.state in FINISHED:
                break
            time.sleep(self.poll_s)
        self.button.disabled, self.cancel_button.disabled = False, True
        kind = {"SUCCEEDED": "ok", "FAILED": "error"}.get(e.state, "warning")
        self.status.value = message(f"{e.state}" + (f": {e.details}" if e.details else ""), kind)
        if e.state == "SUCCEEDED":
            self.show(e)

    def show(self, e: Evaluation) -> None:
        comparison = json.loads(self.service.evaluation_report(e.id))
        models = comparison["models"]
        head = "".join(f"<th>{esc(m)}</th>" for m in models)
        rows = "".join(
            f"<tr><td>{esc(key)}</td>"
            + "".join(f"<td>{_fmt(entry['models'][m]['median'])}</td>" for m in models)
            + "</tr>"
            for key, entry in comparison["metrics"].items()
        )
        table = w.HTML(f"<table><tr><th>median</th>{head}</tr>{rows}</table>")
        charts = self.service.evaluation_charts(e.id)
        link = w.HTML(message(f"HTML report: {e.comparison_report}", "info"))
        self.result.children = [table, w.HTML("".join(charts.values())), link, self.report_button, self.report_view]

    def wait(self, timeout: float = 600) -> Evaluation | None:
        """Block until the running evaluation has finished (for scripts and notebooks)."""
        if self.worker is not None:
            self.worker.join(timeout)
        return self.evaluation

    def cancel(self) -> None:
        if self.evaluation is not None:
            self.service.cancel_evaluation(self.evaluation.id)

    def _failed(self, exc: BaseException) -> None:
        self.button.disabled, self.cancel_button.disabled = False, True
        self.status.value = message(str(exc), "error")


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"
