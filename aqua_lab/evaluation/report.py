"""Reports: ``report.json`` per model in the structure of AI Quick Actions' evaluation reports
(``metric_summary_result``, ``metric_results``, ``model_params``, ``data``), a self-contained
``report.html`` with SVG plots, and the side-by-side comparison of every model.

Building a report is pure; :func:`write_reports` is the one place that writes files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from ..arena.leaderboard import TIE, WIN_A, WIN_B, Leaderboard, leaderboard
from .datasets import Row
from .leaderboard_charts import strength_bars, win_rate_heat_map
from .metrics import METRICS, MetricResult
from .runner import ModelScores
from .svg import box_plot

WORST_EXAMPLES = 5


def model_report(rows: Sequence[Row], scores: ModelScores, meta: dict[str, Any]) -> dict[str, Any]:
    data = []
    for i, (row, pred) in enumerate(zip(rows, scores.predictions, strict=True)):
        item: dict[str, Any] = {
            "index": row.index,
            "prompt": row.prompt,
            "reference": row.completion,
            "prediction": pred.prediction,
            "category": row.category,
            "latency_ms": pred.latency_ms,
            "completion_tokens": pred.completion_tokens,
        }
        if pred.error:
            item["error"] = pred.error
        for m in scores.metrics:
            item.update(m.rows[i])
        data.append(item)
    return {
        "evaluation_id": meta.get("evaluation_id"),
        "evaluation_name": meta.get("evaluation_name"),
        "evaluation_source_id": meta.get("evaluation_source_id"),
        "model": scores.model,
        "metric_summary_result": [
            {"metric": m.name, "label": m.label, "score": m.summary_line(), "grade": grade(m)} for m in scores.metrics
        ],
        "metric_results": {
            m.name: {
                # the AQUA container's fields (ADS's load_metrics reads key, name, description) …
                "key": m.name,
                "name": m.label,
                "description": METRICS[m.name].description if m.name in METRICS else (m.note or ""),
                # … and aqua_lab's beside them
                "label": m.label,
                "keys": list(m.keys),
                "headline": m.headline,
                "higher_is_better": m.higher_is_better,
                "summary": {k: m.stats(k) for k in m.keys},
                "corpus": m.corpus,
                "note": m.note,
            }
            for m in scores.metrics
        },
        "generation": scores.generation,
        "model_params": {**meta.get("model_parameters", {}), "model": scores.model},
        "data": data,
    }


#: a median on a 0–1 scale (BLEU's 0–100 divided) from which each grade starts, best first; the last
#: is the AQUA container's own wording (ADS's report fixture)
GRADES = (
    (0.8, "Excellent, The model's answers match the references closely"),
    (0.6, "Good, The model's answers mostly match the references"),
    (0.4, "Fair, The model's answers match the references in part; there is room for improvement"),
    (
        float("-inf"),
        "Poor, There is significant room for improvement, either in the model's ability to generalize from "
        "its training data or in the data itself (e.g., it might be imbalanced or noisy)",
    ),
)


def grade(m: MetricResult) -> str:
    """A ``metric_summary_result`` grade (a string: ADS refuses none) from the headline median;
    metrics without a 0–1 reference scale (perplexity, readability) are said to be ungraded."""
    if m.name not in ("bertscore", "rouge", "bleu"):
        return "Not graded: this metric has no fixed scale to grade against"
    median = m.stats(m.headline)["median"]
    if median is None:
        return f"Not graded: {m.note or 'no rows scored'}"
    value = median / 100 if m.name == "bleu" else median
    return next(text for start, text in GRADES if value >= start)


def comparison(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per metric key, every model's median/mean/sd; per row, every model's answer."""
    table: dict[str, dict[str, Any]] = {}
    for r in reports:
        for name, result in r["metric_results"].items():
            for key in result["keys"]:
                table.setdefault(key, {"metric": name, "label": result["label"], "models": {}})
                table[key]["models"][r["model"]] = result["summary"][key]
    rows = []
    if reports:
        for i, base in enumerate(reports[0]["data"]):
            rows.append(
                {
                    "index": base["index"],
                    "prompt": base["prompt"],
                    "reference": base["reference"],
                    "category": base["category"],
                    "answers": {r["model"]: r["data"][i].get("prediction") for r in reports},
                    "errors": {r["model"]: r["data"][i]["error"] for r in reports if r["data"][i].get("error")},
                }
            )
    return {
        "evaluation_id": reports[0]["evaluation_id"] if reports else None,
        "models": [r["model"] for r in reports],
        "metrics": table,
        "generation": {r["model"]: r["generation"] for r in reports},
        "rows": rows,
    }


# HTML ---------------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
    # a wide table scrolls inside the page instead of cutting its last columns (BLEU) off
    "table{display:block;max-width:100%;overflow-x:auto}td{overflow-wrap:anywhere;min-width:6em}"
    "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f3f3f3}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}.note{color:#8a5a00}.err{color:#b00}"
    ".heatmap td{text-align:center;min-width:64px}.heatmap td.self{background:#eee}.heatmap small{color:#444}"
)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" if isinstance(v, float) else escape(str(v))


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _about(report: dict[str, Any], models: Sequence[str]) -> str:
    """What was evaluated, so a report file read on its own (from Object Storage, a download) says it."""
    params = {k: v for k, v in (report.get("model_params") or {}).items() if k != "model"}
    rows = [
        ("evaluation", " ".join(str(x) for x in (report.get("evaluation_name"), report.get("evaluation_id")) if x)),
        ("deployment", report.get("evaluation_source_id")),
        ("models" if len(models) > 1 else "model", ", ".join(models)),
        ("model parameters", json.dumps(params) if params else "the server's defaults"),
    ]
    cells = "".join(f"<tr><th>{k}</th><td>{escape(str(v))}</td></tr>" for k, v in rows if v)
    return f"<table class='about'>{cells}</table>"


def model_html(report: dict[str, Any]) -> str:
    parts = [_about(report, [report["model"]]), "<h2>Summary</h2><table><tr><th>metric</th><th>score</th></tr>"]
    for s in report["metric_summary_result"]:
        parts.append(f"<tr><td>{escape(s['label'])}</td><td>{escape(s['score'])}</td></tr>")
    parts.append("</table>")
    for result in report["metric_results"].values():
        if result["note"]:
            parts.append(f"<p class='note'>{escape(result['label'])}: {escape(result['note'])}</p>")
    gen = report["generation"]
    parts.append("<h2>Generation</h2><table>")
    parts += [f"<tr><th>{escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in gen.items()]
    parts.append("</table><h2>Scores by category</h2><div class='charts'>")
    for result in report["metric_results"].values():
        for key in result["keys"]:
            groups: dict[str, list[float]] = {}
            for row in report["data"]:
                if row.get(key) is not None:
                    groups.setdefault(row["category"] or "(none)", []).append(row[key])
            parts.append(box_plot(groups, key, result["label"]))
    parts.append("</div>")
    first = next(iter(report["metric_results"].values()), None)
    if first:
        key, sign = first["headline"], 1 if first["higher_is_better"] else -1
        scored = sorted((r for r in report["data"] if r.get(key) is not None), key=lambda r: sign * r[key])
        parts.append(f"<h2>Worst examples by {escape(key)}</h2><table><tr><th>{escape(key)}</th><th>prompt</th>")
        parts.append("<th>reference</th><th>prediction</th></tr>")
        for r in scored[:WORST_EXAMPLES]:
            parts.append(
                f"<tr><td>{_fmt(r[key])}</td><td>{escape(r['prompt'])}</td><td>{escape(r['reference'])}</td>"
                f"<td>{escape(r['prediction'])}</td></tr>"
            )
        parts.append("</table>")
    failed = [r for r in report["data"] if r.get("error")]
    if failed:
        parts.append(f"<h2>Failed rows ({len(failed)})</h2><ul>")
        parts += [f"<li class='err'>row {r['index']}: {escape(r['error'])}</li>" for r in failed[:50]]
        parts.append("</ul>")
    return _page(f"Evaluation of {report['model']}", "".join(parts))


def comparison_charts(comp: dict[str, Any], reports: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Per metric key, one box plot (inline SVG) with every model side by side."""
    charts = {}
    for key, entry in comp["metrics"].items():
        groups = {r["model"]: [d[key] for d in r["data"] if d.get(key) is not None] for r in reports}
        charts[key] = box_plot(groups, key, entry["label"])
    return charts


def comparison_html(comp: dict[str, Any], reports: Sequence[dict[str, Any]]) -> str:
    models = comp["models"]
    head = "".join(f"<th>{escape(m)}</th>" for m in models)
    parts = [
        _about(reports[0], models) if reports else "",
        f"<h2>Median per metric</h2><table><tr><th>metric</th>{head}</tr>",
    ]
    for key, entry in comp["metrics"].items():
        cells = "".join(f"<td>{_fmt(entry['models'].get(m, {}).get('median'))}</td>" for m in models)
        parts.append(f"<tr><td>{escape(key)}</td>{cells}</tr>")
    for figure in ("latency_ms_p50", "tokens_per_s_mean", "failed"):
        cells = "".join(f"<td>{_fmt(comp['generation'][m].get(figure))}</td>" for m in models)
        parts.append(f"<tr><td>{figure}</td>{cells}</tr>")
    parts.append("</table><h2>Distributions</h2><div class='charts'>")
    parts += comparison_charts(comp, reports).values()
    parts.append(f"</div><h2>Answers</h2><table><tr><th>prompt</th><th>reference</th>{head}</tr>")
    for row in comp["rows"]:
        cells = "".join(
            f"<td class='err'>{escape(row['errors'][m])}</td>"
            if m in row["errors"]
            else f"<td>{escape(row['answers'][m] or '')}</td>"
            for m in models
        )
        parts.append(f"<tr><td>{escape(row['prompt'])}</td><td>{escape(row['reference'])}</td>{cells}</tr>")
    parts.append("</table>")
    if comp.get("judge"):
        parts.append(_judge_html(comp["judge"], models))
    return _page("Model comparison", "".join(parts))


def _judge_html(judge: dict[str, Any], models: Sequence[str]) -> str:
    """The pairwise judge's section: who judged, its cost and consistency, win rates, every verdict."""
    rate = judge.get("inconsistency_rate")
    facts = [
        ("judge", judge["judge"]),
        (
            "requests",
            f"{judge['requests']} ({judge['requests_per_row']} a row: both orders of every pair; "
            f"{judge['retries']} retries of unparsed answers)",
        ),
        ("pairs judged", judge["pairs"]),
        ("inconsistent (orders disagree: a tie)", f"{judge['inconsistent']} ({_fmt(rate)})"),
        ("unparsed", judge["unparsed"]),
    ]
    if judge.get("errors"):
        facts.append(("failed judge requests", f"{judge['errors']}: {judge.get('last_error')}"))
    parts = ["<h2>Pairwise judge</h2>"]
    if judge.get("warning"):
        parts.append(f"<p class='note'>{escape(judge['warning'])}</p>")
    parts.append("<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts))
    parts.append("</table><table><tr><th>model</th><th>win rate</th></tr>")
    parts += [f"<tr><td>{escape(m)}</td><td>{_fmt(judge['win_rate'].get(m))}</td></tr>" for m in models]
    parts.append("</table>")
    parts.append(judge_leaderboard_html(judge_leaderboard(judge, models)))
    parts.append("<table><tr><th>row</th><th>A</th><th>B</th><th>verdict</th><th>orders</th></tr>")
    for v in judge["verdicts"]:
        orders = ", ".join(str(o) for o in v["orders"])
        parts.append(
            f"<tr><td>{v['index']}</td><td>{escape(v['model_a'])}</td><td>{escape(v['model_b'])}</td>"
            f"<td>{escape(str(v['winner']))}</td><td>{escape(orders)}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


JUDGE_OUTCOME = {"a": WIN_A, "b": WIN_B, "tie": TIE}


def judge_leaderboard(judge: dict[str, Any], models: Sequence[str], resamples: int = 200) -> Leaderboard:
    """This evaluation's judge verdicts fitted as the deployment's leaderboard fits them (Bradley-Terry,
    bootstrap intervals); unparsed verdicts are left out, as they are from the leaderboard."""
    names = list(dict.fromkeys([*models, *(m for v in judge["verdicts"] for m in (v["model_a"], v["model_b"]))]))
    index = {m: i for i, m in enumerate(names)}
    parsed = [v for v in judge["verdicts"] if v["verdict"] in JUDGE_OUTCOME]
    return leaderboard(
        names,
        [index[v["model_a"]] for v in parsed],
        [index[v["model_b"]] for v in parsed],
        [JUDGE_OUTCOME[v["verdict"]] for v in parsed],
        resamples=resamples,
    )


def judge_leaderboard_html(board: Leaderboard) -> str:
    """The judge's leaderboard: strengths with error bars, the win-rate heat map, what cannot be told apart."""
    parts = [f"<h3>Leaderboard from the judge's verdicts ({board.votes} comparisons)</h3>"]
    if not board.votes:
        return parts[0] + "<p class='note'>no parsed verdicts: nothing to rank</p>"
    parts += [f"<p class='note'>{escape(n)}</p>" for n in board.notes]  # why intervals overlap: the board says
    order = [board.models.index(s.model) for s in board.standings]
    parts.append(f"<div class='charts'>{strength_bars(board.standings)}")
    parts.append(
        win_rate_heat_map(
            [board.models[i] for i in order],
            [[board.win_rate[i][j] for j in order] for i in order],
            [[board.comparisons[i][j] for j in order] for i in order],
        )
    )
    parts.append("</div>")
    return "".join(parts)


def model_dir_name(model: str) -> str:
    """A served name as one directory name (served names may hold ``/``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._") or "model"


def _write(path: Path, text: str) -> None:
    """Write a report file whatever its text holds and whatever is at ``path``.  Generation is done
    when reports are written, so nothing in a row may fail it now: a string that is not text (a
    lone UTF-16 surrogate in a model's answer) is written as its ``\\ud800`` escape, and the file
    is written beside and renamed over, so a FIFO or a link left at ``path`` is replaced, never
    opened (a FIFO would block the job for ever)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        partial.write_text(text, encoding="utf-8", errors="backslashreplace")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def write_reports(
    report_dir: Path, reports: Sequence[dict[str, Any]], judge: dict[str, Any] | None = None
) -> dict[str, str]:
    """``<dir>/<model>/report.json|report.html`` and ``<dir>/comparison.json|comparison.html``
    (with the pairwise judge's section when one judged); the paths written, by name."""
    report_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for r in reports:
        sub = report_dir / model_dir_name(r["model"])
        sub.mkdir(exist_ok=True)
        _write(sub / "report.json", json.dumps(r, indent=1))
        _write(sub / "report.html", model_html(r))
        written[r["model"]] = str(sub / "report.json")
    comp = comparison(reports)
    if judge is not None:
        comp["judge"] = judge
    _write(report_dir / "comparison.json", json.dumps(comp, indent=1))
    _write(report_dir / "comparison.html", comparison_html(comp, reports))
    written["comparison"] = str(report_dir / "comparison.html")
    return written
