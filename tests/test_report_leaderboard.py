"""The comparison report's judge section ranks the models (issue 27 item 3): the leaderboard of the
evaluation's own verdicts, strengths with error bars and the win-rate matrix as a heat map."""

from __future__ import annotations

import asyncio
import re

import pytest

from aqua_lab.arena.judge import DEFAULT_RUBRIC, JudgePass
from aqua_lab.evaluation import datasets, report, runner
from aqua_lab.evaluation.leaderboard_charts import heat_colour
from aqua_lab.evaluation.metrics import check_metrics

pytestmark = [pytest.mark.arena, pytest.mark.evaluation]

ROWS = [datasets.Row(i, f"question {i}?", f"answer {i}", None) for i in range(12)]
ANSWERS = {"right": lambda p: "answer " + p.split()[1].rstrip("?"), "wrong": lambda p: "no idea", "odd": lambda p: "?"}


async def _chat(model, body):
    text = ANSWERS[model](body["messages"][0]["content"])
    return {"choices": [{"message": {"content": text}}], "usage": {"completion_tokens": 2}}


async def _judge(messages):
    """Prefers the answer that agrees with the reference; between two wrong ones, a tie."""
    text = messages[1]["content"]
    reference = text.split("[Reference answer]\n")[1].split("\n")[0]
    a = text.split("[Answer A]\n")[1].split("\n")[0]
    b = text.split("[Answer B]\n")[1].split("\n")[0]
    return "[[A]]" if a == reference else "[[B]]" if b == reference else "[[C]]"


def _evaluated(tmp_path):
    models = list(ANSWERS)
    done = asyncio.run(runner.generate(ROWS, models, _chat))
    judging = JudgePass(ROWS, models, _judge, DEFAULT_RUBRIC, label="test judge")
    asyncio.run(judging.finish(done))
    chosen = check_metrics([{"name": "rouge"}])
    reports = [report.model_report(ROWS, runner.score_model(ROWS, m, done[m], chosen), {}) for m in models]
    report.write_reports(tmp_path, reports, judging.pairwise_report())
    return (tmp_path / "comparison.html").read_text()


def test_the_comparison_report_ranks_the_judged_models_with_error_bars_and_a_win_rate_heat_map(tmp_path):
    html = _evaluated(tmp_path)
    section = html.split("<h2>Pairwise judge</h2>")[1]
    assert "Leaderboard from the judge's verdicts (36 comparisons)" in section  # 12 rows × C(3, 2)
    # strengths best first, each with its interval drawn as an error bar
    chart = section.split('class="strengths"')[1].split("</svg>")[0]
    names = re.findall(r'text-anchor="end">(right|wrong|odd)</text>', chart)
    assert names[0] == "right" and sorted(names[1:]) == ["odd", "wrong"]
    bars = [(float(lo), float(hi)) for lo, hi in re.findall(r'data-low="([\d.]+)" data-high="([\d.]+)"', chart)]
    assert len(bars) == 3 and all(lo <= hi for lo, hi in bars)
    assert bars[0][0] > max(hi for _, hi in bars[1:])  # the right model's interval lies above the others'
    # the heat map: right beat each other model every time (blue), they tied each other (white), n per pair
    heat = section.split("<table class='heatmap'>")[1].split("</table>")[0]
    cells = re.findall(r"data-rate='([\d.]+)' data-n='(\d+)' style='background:(#[0-9a-f]{6})'", heat)
    assert sorted((float(r), int(n)) for r, n, _ in cells) == [(0.0, 12), (0.0, 12), (0.5, 12), (0.5, 12)] + [
        (1.0, 12),
        (1.0, 12),
    ]
    assert {c for r, _, c in cells if r == "1.000"} == {heat_colour(1.0)} and heat_colour(1.0) != heat_colour(0.0)
    assert heat_colour(0.5) == "#ffffff"
    # the two wrong models cannot be told apart: said so, naming them, and why (12 ties, not too few votes)
    assert "odd and wrong: 12 comparisons, all ties: no difference found" in section


def test_a_judge_without_parsed_verdicts_ranks_nothing_and_says_so():
    judge = {"verdicts": [{"model_a": "x", "model_b": "y", "verdict": "unparsed"}]}
    html = report.judge_leaderboard_html(report.judge_leaderboard(judge, ["x", "y"]))
    assert "(0 comparisons)" in html and "no parsed verdicts: nothing to rank" in html and "<svg" not in html
