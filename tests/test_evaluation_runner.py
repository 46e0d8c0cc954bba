"""Datasets, the concurrent runner (with a fake chat function) and the reports it produces."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from aqua_lab.errors import InvalidInput
from aqua_lab.evaluation import datasets, report, runner
from aqua_lab.evaluation.metrics import check_metrics

pytestmark = pytest.mark.evaluation


def _jsonl(*objs) -> bytes:
    return "\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs).encode()


# datasets -----------------------------------------------------------------------------------------


def test_every_bad_row_is_named_by_line_and_field():
    data = _jsonl(
        {"prompt": "ok", "completion": "fine", "category": "a"},
        "{not json",
        {"prompt": "no answer"},
        {"prompt": "", "completion": "x"},
        {"prompt": 3, "completion": "x"},
        [1, 2],
        {"prompt": "p", "completion": "c" * (datasets.MAX_FIELD_CHARS + 1)},
        {"prompt": "p", "completion": "c", "category": 5},
    )
    with pytest.raises(InvalidInput) as err:
        datasets.parse_dataset(data)
    found = [(p.field, p.message) for p in err.value.problems]
    assert [f for f, _ in found] == [
        "dataset_path line 2",
        "dataset_path line 3: completion",
        "dataset_path line 4: prompt",
        "dataset_path line 5: prompt",
        "dataset_path line 6",
        "dataset_path line 7: completion",
        "dataset_path line 8: category",
    ]
    assert found[0][1].startswith("not JSON") and found[1][1] == "missing" and found[2][1] == "empty"
    assert found[3][1] == "must be a string, not int" and "not an object" in found[4][1]


def test_encoding_errors_name_the_line():
    with pytest.raises(InvalidInput) as err:
        datasets.parse_dataset(b'{"prompt": "a", "completion": "b"}\n{"prompt": "\xff"}\n')
    assert err.value.problems[0].field == "dataset_path line 2"
    assert "not UTF-8" in err.value.problems[0].message


def test_empty_files_and_missing_paths_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="no rows"):
        datasets.parse_dataset(b"\n\n")
    with pytest.raises(InvalidInput, match="no file"):
        datasets.load_dataset(str(tmp_path / "missing.jsonl"))
    with pytest.raises(InvalidInput, match="is a directory"):
        datasets.load_dataset(str(tmp_path))


def test_the_bundled_sample_loads_with_categories():
    rows = datasets.load_dataset(datasets.SAMPLE)
    assert len(rows) >= 30
    assert {r.category for r in rows} >= {"geography", "science", "math"}
    assert [r.index for r in rows] == list(range(len(rows)))


# runner -------------------------------------------------------------------------------------------

ROWS = [datasets.Row(i, f"question {i}?", f"answer number {i}", "even" if i % 2 == 0 else "odd") for i in range(8)]


def fake_chat(answers: dict[str, callable], delay: float = 0.0, log: list | None = None):
    """An OpenAI-shaped chat: each model answers with ``answers[model](prompt)``; counts concurrency."""
    state = {"in_flight": 0, "peak": {}}

    async def chat(model, body):
        state["in_flight"] += 1
        state["peak"][model] = max(state["peak"].get(model, 0), state["in_flight"])
        if log is not None:
            log.append((model, body))
        try:
            await asyncio.sleep(delay)
            text = answers[model](body["messages"][0]["content"])
            each = math.log(0.5)
            if "grammar" in body:  # a forced reference, as llama-server generates it
                text, each = json.loads(body["grammar"].split("::=", 1)[1]), math.log(0.25)
            tokens = [{"token": t, "logprob": each} for t in text.split()] + [{"token": "", "logprob": -9.0}]
            lp = {"content": tokens}
            return {
                "choices": [{"message": {"content": text}, "logprobs": lp}],
                "usage": {"prompt_tokens": 3, "completion_tokens": len(text.split())},
            }
        finally:
            state["in_flight"] -= 1

    chat.state = state
    return chat


def _echo(prompt: str) -> str:
    return "answer number " + prompt.split()[1].rstrip("?")


def test_every_model_answers_every_row_concurrently_and_progress_is_reported():
    log, seen = [], []
    chat = fake_chat({"good": _echo, "bad": lambda p: "no idea"}, delay=0.01, log=log)
    done = asyncio.run(
        runner.generate(
            ROWS,
            ["good", "bad"],
            chat,
            {"max_tokens": 16, "model": "ignored"},
            concurrency=3,
            want_logprobs=True,
            progress=lambda m, d, t, f: seen.append((m, d, t, f)),
        )
    )
    assert sorted(done["good"]) == list(range(8)) and sorted(done["bad"]) == list(range(8))
    assert done["good"][5].prediction == "answer number 5" and done["good"][5].completion_tokens == 3
    assert chat.state["peak"]["good"] >= 4  # both models in flight at once, 3 each
    assert {b["max_tokens"] for _, b in log} == {16} and {b["model"] for _, b in log} == {"good", "bad"}
    assert all(b["logprobs"] is True and b["stream"] is False for _, b in log)
    assert ("good", 8, 8, 0) in seen and ("bad", 8, 8, 0) in seen


def test_a_failing_model_marks_its_rows_failed_and_the_other_finishes():
    def broken(prompt):
        raise ConnectionError("connection refused")

    chat = fake_chat({"good": _echo, "down": broken})
    done = asyncio.run(runner.generate(ROWS, ["good", "down"], chat, concurrency=1))
    assert all(not p.error for p in done["good"].values())
    errors = [done["down"][i].error for i in range(8)]
    assert errors[0] == "connection refused"
    assert all("model server failing (connection refused)" in e for e in errors[runner.GIVE_UP_AFTER :])


def test_resume_does_not_generate_finished_rows_again():
    log = []
    chat = fake_chat({"m": _echo}, log=log)
    previous = {"m": {i: runner.Prediction(i, "m", _echo(ROWS[i].prompt)) for i in range(5)}}
    written = []
    done = asyncio.run(runner.generate(ROWS, ["m"], chat, resume=previous, on_prediction=written.append))
    assert sorted(done["m"]) == list(range(8))
    assert sorted(b["messages"][0]["content"] for _, b in log) == ["question 5?", "question 6?", "question 7?"]
    assert sorted(p.index for p in written) == [5, 6, 7]


def test_cancel_stops_new_requests():
    async def main():
        cancel = asyncio.Event()
        seen = []

        def progress(model, done, total, failed):
            seen.append(done)
            if done >= 2:
                cancel.set()

        chat = fake_chat({"m": _echo}, delay=0.01)
        return await runner.generate(ROWS, ["m"], chat, concurrency=1, progress=progress, cancel=cancel)

    done = asyncio.run(main())
    assert 2 <= len(done["m"]) < len(ROWS)


# scoring and reports ------------------------------------------------------------------------------


def _scores(tmp_path=None):
    chat = fake_chat({"good": _echo, "bad": lambda p: "something else entirely"})
    done = asyncio.run(runner.generate(ROWS, ["good", "bad"], chat, want_logprobs=True))
    done["bad"][3] = runner.Prediction(3, "bad", error="timed out")
    chosen = check_metrics([{"name": "rouge"}, {"name": "bleu"}, {"name": "bertscore"}, {"name": "perplexity_score"}])
    return {m: runner.score_model(ROWS, m, done[m], chosen) for m in ("good", "bad")}


def test_reports_follow_the_ads_structure_and_rank_the_models(tmp_path):
    scores = _scores()
    meta = {"evaluation_id": "ev1", "evaluation_name": "t", "model_parameters": {"max_tokens": 16}}
    good = report.model_report(ROWS, scores["good"], meta)
    bad = report.model_report(ROWS, scores["bad"], meta)
    assert [s["metric"] for s in good["metric_summary_result"]] == ["rouge", "bleu", "bertscore", "perplexity_score"]
    assert good["metric_summary_result"][2]["score"] == "Median F1: 1.000 (SD: 0.000)"
    assert good["metric_summary_result"][3]["score"] == "Median perplexity: 2.0 (SD: 0.0)"
    assert good["model_params"] == {"max_tokens": 16, "model": "good"}
    row = good["data"][4]
    assert row["prompt"] == "question 4?" and row["reference"] == row["prediction"] == "answer number 4"
    assert row["category"] == "even" and row["rouge1"] == 1.0 and row["bleu"] == pytest.approx(100.0)
    assert bad["data"][3]["error"] == "timed out" and bad["data"][3]["rougeL"] is None
    assert bad["generation"]["failed"] == 1 and bad["metric_results"]["rouge"]["summary"]["rougeL"]["count"] == 7
    comp = report.comparison([good, bad])
    assert (
        comp["metrics"]["bertscore_f1"]["models"]["good"]["median"]
        > comp["metrics"]["bertscore_f1"]["models"]["bad"]["median"]
    )
    assert comp["rows"][3]["answers"] == {"good": "answer number 3", "bad": ""} and comp["rows"][3]["errors"] == {
        "bad": "timed out"
    }


def test_html_reports_are_self_contained_with_a_plot_per_metric(tmp_path):
    scores = _scores()
    reports = [report.model_report(ROWS, s, {"evaluation_id": "ev1"}) for s in scores.values()]
    written = report.write_reports(tmp_path, reports)
    html = (tmp_path / "good" / "report.html").read_text()
    assert html.count("<svg") == 9  # one per score key: rouge ×4, bleu, bertscore ×3, perplexity
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    comp = (tmp_path / "comparison.html").read_text()
    assert comp.count("<svg") == len(report.comparison(reports)["metrics"])
    assert "timed out" in comp and "answer number 7" in comp
    assert json.loads((tmp_path / "bad" / "report.json").read_text())["model"] == "bad"
    assert set(written) == {"good", "bad", "comparison"}


def test_perplexity_of_the_reference_when_the_model_can_be_made_to_generate_it():
    log = []
    chat = fake_chat({"m": lambda p: "whatever it says"}, log=log)
    done = asyncio.run(runner.generate(ROWS[:2], ["m"], chat, want_logprobs=True, score_reference=True))
    forced = [b for _, b in log if "grammar" in b]
    assert [b["grammar"] for b in forced] == ['root ::= "answer number 0"', 'root ::= "answer number 1"']
    assert all(b["temperature"] == 0 and b["logprobs"] is True for b in forced)
    p = done["m"][0]
    assert p.prediction == "whatever it says" and p.reference_logprobs == [math.log(0.25)] * 3  # end token left out
    [result] = runner.score_model(ROWS[:2], "m", done["m"], check_metrics([{"name": "perplexity_score"}])).metrics
    assert result.rows[0]["perplexity_score"] == pytest.approx(4.0)
    assert result.note.startswith("perplexity of the reference")


def test_text_readability_in_the_reports_summary_rows_and_plots(tmp_path):
    import textstat

    from aqua_lab.evaluation import readability

    chat = fake_chat({"m": _echo})
    done = asyncio.run(runner.generate(ROWS, ["m"], chat))
    scores = runner.score_model(ROWS, "m", done["m"], check_metrics([{"name": "text_readability"}]))
    r = report.model_report(ROWS, scores, {"evaluation_id": "ev1"})
    readability.serve_cmudict()
    expected = textstat.flesch_reading_ease("answer number 2")
    assert r["data"][2]["flesch_reading_ease"] == pytest.approx(expected)
    assert set(readability.SCORES) <= set(r["data"][2])
    assert r["metric_summary_result"][0]["score"].startswith("Median flesch_reading_ease: ")
    assert r["metric_results"]["text_readability"]["headline"] == "flesch_reading_ease"
    report.write_reports(tmp_path, [r])
    assert (tmp_path / "m" / "report.html").read_text().count("<svg") == len(readability.SCORES)
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert comparison["metrics"]["gunning_fog"]["models"]["m"]["count"] == len(ROWS)
