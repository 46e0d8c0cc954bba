"""An OCI evaluation's reports: each member's report.json/report.html (Object Storage, else the
evaluation model's artifact) and the comparison built from every member's report.json."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from typing import Any

from ...domain import Evaluation
from ...errors import Conflict, InvalidInput, NotFound, Problem, UpstreamError, shown
from ...planning.evaluation import (
    COMPARISON_TAG,
    OUTPUT_PATH,
)
from .clients import OciClients
from .evaluation_records import OBJECT_URI, hyperparameters
from .wire import custom_metadata

#: a container's summary line: ``Median F1: 0.598 (SD: 0.018)``
SCORE_LINE = re.compile(r"median\s*([^:]*):\s*(-?\d+(?:\.\d+)?)(?:\s*\(\s*sd:\s*(-?\d+(?:\.\d+)?)\s*\))?", re.I)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def comparable_report(report: dict[str, Any], model: str) -> dict[str, Any]:
    """A member's report.json in the shape the comparison reads.  aqua_lab's (the emulator's) is
    already; the AQUA container's own — an evaluation made by ``ads aqua`` — lists
    ``metric_results`` as ``{key, name, description, …}`` without per-key statistics, so the
    medians come from its ``metric_summary_result`` lines and rows keep what they carry."""
    results = report.get("metric_results") or {}
    ours = all(isinstance(r, dict) and "keys" in r and "summary" in r for r in results.values())
    if ours and "generation" in report and isinstance(report.get("data"), list):
        return {**report, "model": report.get("model") or model}
    lines = [x for x in report.get("metric_summary_result") or [] if isinstance(x, dict)]
    entries = {k: r for k, r in results.items() if isinstance(r, dict)} or {
        str(x.get("metric")): {"name": x.get("metric")} for x in lines if x.get("metric")
    }
    metric_results = {}
    for name, entry in entries.items():
        key = str(entry.get("key") or name)
        label = str(entry.get("name") or key)
        line = next((x for x in lines if x.get("metric") in (label, key, name)), {})
        found = SCORE_LINE.search(str(line.get("score") or ""))
        stats = {"count": None, "median": None, "mean": None, "sd": None, "min": None, "max": None}
        if found:
            stats.update(median=float(found.group(2)), sd=float(found.group(3)) if found.group(3) else None)
        metric_results[name] = {
            "label": label,
            "keys": [key],
            "headline": key,
            "higher_is_better": True,
            "summary": {key: stats},
            "corpus": {},
            "note": entry.get("description") or None,
        }
    data = []
    for i, row in enumerate(r for r in report.get("data") or [] if isinstance(r, dict)):
        item = {
            "index": row.get("index", i),
            "prompt": str(row.get("prompt") or ""),
            "reference": str(row.get("reference") or row.get("completion") or ""),
            "prediction": row.get("prediction") if isinstance(row.get("prediction"), str) else None,
            "category": row.get("category"),
        }
        item.update({e["headline"]: _number(row.get(e["headline"])) for e in metric_results.values()})
        data.append(item)
    return {
        "evaluation_id": report.get("evaluation_id"),
        "model": model,
        "metric_summary_result": lines,
        "metric_results": metric_results,
        "generation": {},
        "model_params": report.get("model_params") or {},
        "data": data,
    }


def comparable_reports(reports: list[dict[str, Any]], models: list[str]) -> list[dict[str, Any]]:
    """Every member's report for the comparison; per-row answers only when all have the same rows."""
    out = [comparable_report(r, m) for r, m in zip(reports, models, strict=True)]
    if len({len(r["data"]) for r in out}) > 1:
        out = [{**r, "data": []} for r in out]
    return out


class EvaluationReports:
    """Reads reports with the platform's clients; ``get_evaluation`` says which members there are
    and whether they finished."""

    def __init__(self, clients: OciClients, get_evaluation: Callable[[str], Evaluation]):
        self.c, self.get_evaluation = clients, get_evaluation

    def read_report(self, model: Any, name: str) -> bytes:
        """``<evaluation_output_path>/<id>/<name>`` from Object Storage, else from the model artifact."""
        base = custom_metadata(model).get(OUTPUT_PATH) or hyperparameters(model).get("report_path") or ""
        found = OBJECT_URI.match(base)
        if found:
            bucket, namespace, prefix = found.groups()
            key = "/".join(p for p in (prefix.strip("/"), model.id, name) if p)
            try:
                return self.c.call("get object", self.c.os.get_object, namespace, bucket, key).data.content
            except NotFound:
                pass  # not written there: the artifact, as ADS reads it first
        try:
            artifact = self.c.call("get model artifact", self.c.ds.get_model_artifact_content, model.id).data.content
            with zipfile.ZipFile(io.BytesIO(artifact)) as z:
                for entry in z.namelist():
                    if entry.rsplit("/", 1)[-1] == name:
                        return z.read(entry)
        except (NotFound, UpstreamError, zipfile.BadZipFile):
            pass
        raise NotFound("report", f"{base.rstrip('/')}/{model.id}/{name}", "the evaluation has not written it (yet)")

    def report_json(self, model: Any) -> dict[str, Any]:
        raw = self.read_report(model, "report.json")
        try:
            report = json.loads(raw)
        except ValueError:
            report = None
        if not isinstance(report, dict):
            raise UpstreamError(f"the report.json of evaluation {model.id} is not a JSON object", 502)
        return report

    def report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        """A member's report.json/report.html as the container wrote it (``model``: its served name),
        or without ``model`` the comparison built from every member's report.json (as on the local
        platform; for a single evaluation, a comparison of one)."""
        from ...evaluation.report import comparison, comparison_html

        if fmt not in ("json", "html"):
            raise InvalidInput(Problem("format", f"{fmt!r}", "use json or html"))
        evaluation = self.get_evaluation(evaluation_id)
        rows = {r.model: r for r in evaluation.models}
        if model is not None and model not in rows:
            head = evaluation.tags.get(COMPARISON_TAG)
            whole = f", or the whole comparison: --evaluation_id {head}" if head and head != evaluation_id else ""
            raise InvalidInput(
                Problem("model", f"{shown(model)} is not part of {evaluation_id}", f"use one of {list(rows)}{whole}")
            )
        wanted = [rows[model]] if model else list(rows.values())
        not_done = [r for r in wanted if r.state != "SUCCEEDED"]
        if not_done:
            raise Conflict(
                f"evaluation {evaluation_id}: "
                + ", ".join(f"{r.model} is {r.state}" for r in not_done)
                + "; a report comes when it SUCCEEDED"
            )
        records = {r.evaluation_id: self.c.call("get model", self.c.ds.get_model, r.evaluation_id).data for r in wanted}
        if model is not None:
            return self.read_report(records[wanted[0].evaluation_id], f"report.{fmt}").decode()
        reports = comparable_reports(
            [self.report_json(records[r.evaluation_id]) for r in wanted], [r.model for r in wanted]
        )
        comp = comparison(reports)
        comp["evaluation_id"] = evaluation_id
        return json.dumps(comp, indent=1) if fmt == "json" else comparison_html(comp, reports)
