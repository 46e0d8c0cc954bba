"""Evaluate a deployment's models on a dataset: progress per model, then the comparison table, one
chart per metric, and the HTML report.  The form follows the platform's ``evaluation_config``: on
OCI the job shape, storage and experiment appear, the report path is an ``oci://`` one, and progress
is the job run's state per model (OCI reports no rows done), never a made-up percentage."""

from __future__ import annotations

import html
import json
import re
import tempfile
import time
from pathlib import Path

import ipywidgets as w
from pydantic import ValidationError

from ..domain import Evaluation, EvaluationSpec
from ..errors import AquaLabError, InvalidInput, Problem
from ..service import AquaLabService
from .common import esc, full_width, in_background, label_width, message, scrolling

FINISHED = ("SUCCEEDED", "FAILED", "CANCELED")
ALL = "every model (one comparison)"
#: the form field that shows a problem of each EvaluationSpec field (model_parameters.model: the Models choice)
FIELD_OF = {"model_parameters.model": "model", "evaluation_source_id": "deployment"}
#: colours of a state chip (Jupyter's own variables, so both themes read)
CHIP = {
    "SUCCEEDED": "var(--jp-success-color1, #388e3c)",
    "FAILED": "var(--jp-error-color1, #d32f2f)",
    "CANCELED": "var(--jp-warn-color1, #f57c00)",
}
#: an upload travels through the kernel's websocket as one message (tornado refuses those over 10 MiB)
UPLOAD_LIMIT = 8 << 20
#: the metrics a judge model computes: the judge fields show while one is ticked
JUDGED = ("pairwise_judge", "judge_score")
#: a judge metric's problem (``metrics[2].args.judge.url``) goes under the judge's or the rubric's field
JUDGE_FIELD = re.compile(r"^metrics\[\d+\]\.args\.(judge|rubric)\b")
#: who runs an OCI evaluation: AQUA's container job (its metrics only), or aqua_lab's runner in this
#: kernel calling the deployment through its signed predict (every metric, the judge's included)
RUNNERS = [
    ("OCI job (AQUA's container)", "service"),
    ("this notebook (aqua_lab's runner: judge metrics, leaderboard)", "notebook"),
]
NEEDS_NOTEBOOK = "aqua_lab's runner: choose Run on “this notebook” (AQUA's container cannot call a judge model)"


class EvaluationPanel(w.VBox):
    """Deployment and models, dataset (``sample``, a path or an uploaded .jsonl), metrics, model
    parameters; progress per model while it runs; the comparison and its HTML report when done."""

    def __init__(self, service: AquaLabService, deployment_id: str | None = None, poll_s: float = 0.5, **kwargs):
        self.service, self.poll_s = service, poll_s
        self.config = config = service.evaluation_config()
        self.deployment = w.Dropdown(description="Deployment", options=[], layout=full_width())
        self.model = w.Dropdown(description="Models", options=[ALL])
        self.dataset = w.Text(
            value="sample", description="Dataset", placeholder=config.dataset_hint, layout=w.Layout(width="60%")
        )
        self.upload = w.FileUpload(accept=".jsonl", multiple=False, description="Upload .jsonl")
        # a folder here where the platform writes reports here; else the user's own bucket (no guess)
        here = config.reports_dir is not None
        self.report_path = w.Text(
            value=tempfile.mkdtemp(prefix="aqua_lab_eval_") if here else "",
            description="Reports to",
            placeholder=config.report_path_hint,
            layout=w.Layout(width="60%"),
        )
        default = config.default
        self.shape = w.Dropdown(
            description="Job shape",
            options=list(config.shape) or [default.get("shape_name", "")],
            value=default.get("shape_name") or next(iter(config.shape), None),
        )
        self.block_storage = w.BoundedIntText(
            value=default.get("block_storage_size", 50), min=50, max=10240, description="Storage GB"
        )
        self.experiment = w.Text(description="Experiment", placeholder="groups evaluations; made when new")
        self.log_group = w.Text(description="Log group", placeholder="ocid1.loggroup.oc1… (optional)")
        self.log_ocid = w.Text(description="Log", placeholder="ocid1.log.oc1… (optional, with its group)")
        self.overwrite = w.Checkbox(value=False, description="replace a dataset of that name in the report folder")
        self.errors = {
            f: w.HTML()
            for f in (
                "deployment",
                "model",
                "dataset_path",
                "report_path",
                "metrics",
                "model_parameters",
                "shape_name",
                "block_storage_size",
                "experiment_name",
                "log_group_id",
                "log_id",
                "judge",
                "rubric",
            )
        }
        # the judge of pairwise_judge / judge_score: a served name (default: the first), "model @ deployment"
        # for another deployment's, or a model at an external OpenAI-compatible URL with its key's variable
        self.judge = w.Combobox(
            description="Judge", placeholder="default: the deployment's first model", ensure_option=False
        )
        self.judge_url = w.Text(description="Judge URL", placeholder="external endpoint, e.g. https://host/v1")
        self.judge_key_env = w.Text(description="Key env", placeholder="its API key's environment variable")
        self.rubric = w.Textarea(
            description="Rubric",
            placeholder="default: helpfulness, and correctness against the reference (at most 8 KiB)",
            layout=full_width(),
        )
        self.judge_box = w.VBox(
            [
                w.HBox([self.judge, self.judge_url, self.judge_key_env], layout=w.Layout(flex_flow="row wrap")),
                self.errors["judge"],
                self.rubric,
                self.errors["rubric"],
            ]
        )
        self.metrics = {
            m.name: w.Checkbox(value=m.name in ("rouge", "bertscore"), description=m.label)
            for m in service.supported_metrics()
        }
        for name in JUDGED:
            if name in self.metrics:
                self.metrics[name].observe(lambda _: self._judge_shown(), names="value")
        self._judge_shown()
        # only where the platform has a job of its own (OCI): locally aqua_lab's runner always runs it
        self.runner = w.RadioButtons(
            options=RUNNERS, value="service", description="Run on", layout=w.Layout(width="auto")
        )
        self.runner_note = w.HTML()
        self.params = w.Text(value='{"max_tokens": 64}', description="Parameters", layout=full_width())
        self.button = w.Button(description="Evaluate", button_style="primary", icon="check")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.progress = w.VBox()
        self.status = w.HTML()
        self.result = w.VBox()
        self.evaluation: Evaluation | None = None
        self.worker = None
        self.bars: dict[str, w.IntProgress] = {}
        self.rows_counted = config.progress == "rows"
        self.chips: dict[str, w.HTML] = {}
        self.deployment.observe(lambda _: self._models(), names="value")
        self.button.on_click(lambda _: self.evaluate())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.upload.observe(lambda _: self._uploaded(), names="value")
        self.report_button = w.ToggleButton(description="Show the HTML report", icon="file-text-o")
        self.report_button.observe(lambda _: self._toggle_report(), names="value")
        self.report_view = w.HTML()
        self.refresh(deployment_id)
        only_here = {  # the fields only this platform takes, shown only where they matter
            "shape_name": [self.shape, self.errors["shape_name"]],
            "block_storage_size": [self.block_storage, self.errors["block_storage_size"]],
            "experiment_name": [self.experiment, self.errors["experiment_name"]],
            "log_group_id": [self.log_group, self.errors["log_group_id"]],
            "log_id": [self.log_ocid, self.errors["log_id"]],
            "force_overwrite": [self.overwrite],
        }
        self.dataset_notes = [w.HTML(message(config.dataset_note))] if config.dataset_note else []
        self.job_only = [x for f in config.fields for x in only_here.get(f, [])]
        runner = [self.runner, self.runner_note] if config.platform == "oci" else []
        super().__init__(
            [
                self.deployment,
                self.errors["deployment"],
                self.model,
                self.errors["model"],
                *runner,
                w.HBox([self.dataset, self.upload], layout=w.Layout(flex_flow="row wrap")),
                *self.dataset_notes,
                self.errors["dataset_path"],
                self.report_path,
                self.errors["report_path"],
                *self.job_only,
                w.HBox(list(self.metrics.values()), layout=w.Layout(flex_flow="row wrap")),
                self.errors["metrics"],
                self.judge_box,
                self.params,
                self.errors["model_parameters"],
                w.HBox([self.button, self.cancel_button]),
                self.progress,
                self.status,
                self.result,
            ],
            **kwargs,
        )
        self._job_report_path = self.report_path.value
        self._notebook_report_path = ""
        self.runner.observe(lambda _: self._runner_chosen(), names="value")
        if runner:
            self._runner_chosen()

    @property
    def in_notebook(self) -> bool:
        """aqua_lab's runner runs it here: always locally, on OCI when the user chose it."""
        return self.config.platform != "oci" or self.runner.value == "notebook"

    def _runner_chosen(self) -> None:
        """The notebook runner takes every metric and paths on this machine; AQUA's job takes its own
        fields (shape, storage, experiment, logs) and cannot call a judge model."""
        here = self.runner.value == "notebook"
        for x in self.job_only + self.dataset_notes:
            x.layout.display = "none" if here else None
        for name in JUDGED:
            box = self.metrics.get(name)
            if box is not None:
                box.disabled = not here
                box.tooltip = "" if here else f"{box.description} needs {NEEDS_NOTEBOOK}"
                box.value = box.value and here
        names = [self.metrics[n].description.split(" (")[0] for n in JUDGED if n in self.metrics]
        need = f"{' and '.join(names)} need{'s' * (len(names) == 1)} {NEEDS_NOTEBOOK}"
        self.runner_note.value = "" if here or not names else message(need, "warning")
        if here:
            self._job_report_path = self.report_path.value
            self._notebook_report_path = self._notebook_report_path or tempfile.mkdtemp(prefix="aqua_lab_eval_")
            self.report_path.value, self.report_path.placeholder = self._notebook_report_path, "/path/for/reports"
            self.dataset.placeholder = "sample, or a .jsonl file on this machine"  # the runner here reads no bucket
        else:
            self._notebook_report_path = self.report_path.value
            self.report_path.value, self.report_path.placeholder = self._job_report_path, self.config.report_path_hint
            self.dataset.placeholder = self.config.dataset_hint

    def refresh(self, deployment_id: str | None = None) -> None:
        """Offer the ACTIVE deployments again (``deployment_id`` chosen when it is one, else the first),
        keeping the chosen model where it is still served."""
        active = [d for d in self.service.list_deployments() if d.state == "ACTIVE"]
        model = self.model.value
        self.deployment.options = [(f"{d.display_name} ({d.id})", d.id) for d in active]
        ids = [d.id for d in active]  # never an empty box while there is one to evaluate
        self.deployment.value = deployment_id if deployment_id in ids else (ids[0] if ids else None)
        self._models()
        if model in self.model.options:
            self.model.value = model
        none = "No ACTIVE deployment to evaluate: deploy one in Deploy, or activate one in Deployments."
        self.errors["deployment"].value = "" if active else message(none, "warning")

    def _models(self) -> None:
        if not self.deployment.value:
            self.model.options = [ALL]
            return
        names = self.service.get_deployment(self.deployment.value).served_names()
        self.model.options = [ALL, *names]
        others = [
            f"{m} @ {d.id}"
            for d in self.service.list_deployments()
            if d.state == "ACTIVE" and d.id != self.deployment.value
            for m in d.served_names()
        ]
        self.judge.options = [*names, *others]

    def _judge_shown(self) -> None:
        ticked = any(self.metrics[n].value for n in JUDGED if n in self.metrics)
        self.judge_box.layout.display = None if ticked else "none"

    def judge_args(self) -> dict[str, object]:
        """The judge fields as a judge metric's args (what is left empty keeps its default)."""
        name, url = self.judge.value.strip(), self.judge_url.value.strip()
        args: dict[str, object] = {}
        if url:
            args["judge"] = {"url": url, "model": name or None, "api_key_env": self.judge_key_env.value.strip() or None}
        elif " @ " in name:
            model, deployment_id = name.rsplit(" @ ", 1)
            args["judge"] = {"deployment_id": deployment_id.strip(), "model": model.strip()}
        elif name:
            args["judge"] = name
        if self.rubric.value.strip():
            args["rubric"] = self.rubric.value
        return args

    def spec(self) -> EvaluationSpec:
        try:
            params = json.loads(self.params.value or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidInput(Problem("model_parameters", f"not valid JSON ({exc.msg})")) from None
        if self.model.value != ALL:
            params = {**params, "model": self.model.value}
        judged = self.judge_args()
        chosen = [{"name": n, "args": judged if n in JUDGED else {}} for n, box in self.metrics.items() if box.value]
        # the notebook runner takes none of the job's fields; its report folder is the panel's own
        fields = [] if self.in_notebook else self.config.fields
        runner = {"runner": self.runner.value} if self.config.platform == "oci" else {}
        extra = {
            "shape_name": self.shape.value,
            "block_storage_size": self.block_storage.value,
            "experiment_name": self.experiment.value.strip() or None,
            "log_group_id": self.log_group.value.strip() or None,
            "log_id": self.log_ocid.value.strip() or None,
            "force_overwrite": self.overwrite.value,
        }
        try:
            return EvaluationSpec(
                evaluation_source_id=self.deployment.value or "",
                evaluation_name=f"evaluation {time.strftime('%H:%M:%S')}",
                dataset_path=self.dataset.value.strip(),
                report_path=self.report_path.value.strip(),
                model_parameters=params,
                metrics=chosen,
                # local: the panel's own fresh report folder, so an earlier report there is its own
                **runner,
                **{"force_overwrite": True, **{k: v for k, v in extra.items() if k in fields}},
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
        self.errors["dataset_path"].value = ""
        if self.config.reports_dir is None:
            self._stored(name, bytes(item["content"]))
            return
        target = Path(self.report_path.value).expanduser() / name
        target.parent.mkdir(parents=True, exist_ok=True)
        data = bytes(item["content"])
        target.write_bytes(data)
        self.dataset.value = str(target)
        lines = len(data.splitlines())
        self.status.value = message(f"uploaded {name} ({lines} line{'s' * (lines != 1)}) to {target}", "ok")

    def _stored(self, name: str, data: bytes) -> None:
        """Reports go to Object Storage: the file is checked and kept on this machine, and the
        platform uploads it next to the report when the evaluation is created (as ADS does)."""
        try:
            stored = self.service.upload_dataset(name, data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            text = f"dataset_path: {name} is not UTF-8 text ({exc.reason})"
            self.errors["dataset_path"].value = message(text, "error")
            return
        except InvalidInput as exc:
            self.errors["dataset_path"].value = "".join(
                message(str(p).replace("content", name, 1), "error") for p in exc.problems
            )
            return
        self.dataset.value = stored.dataset_path
        self.status.value = message(f"checked {name} ({stored.rows} rows); it is uploaded with the evaluation", "ok")

    def _show_problems(self, exc: AquaLabError) -> None:
        """Each problem under its field; the status line says what happened and lists the rest."""
        for slot in self.errors.values():
            slot.value = ""
        problems = exc.problems if isinstance(exc, InvalidInput) else []
        loose = []
        for p in problems:
            judged = JUDGE_FIELD.match(p.field)
            name = (
                FIELD_OF.get(p.field)
                or (judged and judged[1])
                or next(
                    (f for f in self.errors if p.field == f or p.field.startswith((f + " ", f + ".", f + "["))), None
                )
            )
            slot = self.errors.get(name) if name else None
            if slot is None:
                loose.append(p)
            else:
                slot.value += message(str(p), "error")
        if not problems:
            self.status.value = message(str(exc), "error")
            return
        placed = len(problems) - len(loose)
        where = "their fields" if placed > 1 else "its field"
        head = message(f"not started: {placed} problem{'s' * (placed != 1)} shown under {where}", "error")
        self.status.value = (head if placed else "") + "".join(message(str(p), "error") for p in loose)

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
            self._show_problems(exc)
            return
        for slot in self.errors.values():
            slot.value = ""
        self.button.disabled, self.cancel_button.disabled = True, False
        models = self.evaluation.models
        # aqua_lab's runner counts rows wherever it runs; AQUA's job reports only its run's state
        self.rows_counted = self.in_notebook or self.config.progress == "rows"
        if self.rows_counted:
            width = label_width(m.model for m in models)  # served names whole, the bars lined up after them
            self.bars = {
                m.model: w.IntProgress(
                    min=0,
                    max=max(1, m.rows_total),
                    description=m.model,
                    tooltip=m.model,
                    style={"description_width": width},
                    layout=w.Layout(width=f"calc({width} + 240px)", max_width="100%"),
                )
                for m in models
            }
            self.progress.children = list(self.bars.values())
        else:
            self.chips = {m.model: w.HTML(_chip(m.model, m.state, m.details)) for m in models}
            self.progress.children = list(self.chips.values())
        self.worker = in_background(self._watch, self._failed)

    def _watch(self) -> None:
        while True:
            e = self.service.get_evaluation(self.evaluation.id)
            self.evaluation = e
            if self.rows_counted:
                for m in e.models:
                    bar = self.bars[m.model]
                    bar.value = m.rows_done
                    bar.bar_style = {"FAILED": "danger", "SUCCEEDED": "success"}.get(m.state, "info")
                done = sum(m.rows_done for m in e.models)
                eta = max((m.eta_s or 0 for m in e.models), default=0)
                self.status.value = message(
                    f"{e.state} · {done} answers" + (f" · about {eta:.0f} s left" if eta else "")
                )
            else:
                for m in e.models:
                    self.chips[m.model].value = _chip(m.model, m.state, m.details)
                finished = sum(m.state in FINISHED for m in e.models)
                self.status.value = message(f"{e.state} · {finished} of {len(e.models)} models finished")
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
        table = w.HTML(scrolling(f"<table><tr><th>median</th>{head}</tr>{rows}</table>"))
        charts = self.service.evaluation_charts(e.id)
        if e.comparison_report:
            where = f"HTML report: {e.comparison_report}"
        else:  # OCI: each model's report, where its job wrote it; the comparison is built on request
            where = "reports: " + ", ".join(f"{m.model}: {(m.report or '').rsplit('/', 1)[0]}/" for m in e.models)
        link = w.HTML(message(where, "info"))
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


def _chip(model: str, state: str, details: str | None) -> str:
    """A model's state as a chip; while it runs, an indeterminate bar (the platform counts no rows)."""
    running = state not in FINISHED
    colour = CHIP.get(state, "var(--jp-brand-color1, #1976d2)")
    bar = f'<progress aria-label="{esc(model)} {esc(state)}" style="width:8em"></progress> ' if running else ""
    note = f' <span style="color:var(--jp-ui-font-color2, #555)">{esc(details)}</span>' if details else ""
    return (
        f'<div class="aqua-eval-chip" data-model="{esc(model)}" data-state="{esc(state)}">'
        f"<b>{esc(model)}</b> {bar}"
        f'<span style="border:1px solid {colour};color:{colour};border-radius:8px;padding:0 6px">{esc(state)}</span>'
        f"{note}</div>"
    )


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"
