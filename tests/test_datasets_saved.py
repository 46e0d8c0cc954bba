"""Save as dataset row (issue 27 item 4): a prompt and the answer kept as its reference appended to a named
dataset through the service, REST, the CLI and the widgets; the dataset is an evaluation's dataset_path;
bad input is refused naming the field, with nothing written."""

# ruff: noqa: F401, F811 — the stand-in deployment fixtures come from test_votes, taken by their names

from __future__ import annotations

import json
import os
import stat
import threading
from html import unescape

import pytest

from aqua_lab.errors import InvalidInput, NotFound
from aqua_lab.evaluation import datasets as dataset_rules
from aqua_lab.service.datasets import DatasetRow
from tests.helpers.cli import run_cli
from tests.helpers.fake_models import ANSWERS
from tests.test_evaluation_fronts import call
from tests.test_votes import SERVED, fake, jp_server_config, service

pytestmark = [pytest.mark.arena, pytest.mark.evaluation]

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PROMPTS = list(ANSWERS)[:3]


def test_two_saved_rows_are_a_dataset_an_evaluation_runs_on(service, fake, tmp_path):
    from aqua_lab.domain import EvaluationSpec

    data_dir, deployment_id = fake
    for i, prompt in enumerate(PROMPTS[:2]):
        saved = service.save_dataset_row(
            "my-prompts", DatasetRow(prompt=prompt, completion=ANSWERS[prompt], category="qa" if i else "")
        )
    assert (saved.name, saved.rows, saved.categories) == ("my-prompts", 2, {"": 1, "qa": 1})
    path = data_dir / "datasets" / "my-prompts.jsonl"
    assert saved.dataset_path == str(path) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.prompt for r in dataset_rules.load_dataset(str(path))] == PROMPTS[:2]
    assert service.get_dataset("my-prompts.jsonl") == path.read_text()
    assert [d.name for d in service.list_datasets()] == ["my-prompts"]
    spec = EvaluationSpec(
        evaluation_source_id=deployment_id,
        evaluation_name="saved",
        dataset_path=saved.dataset_path,
        report_path=str(tmp_path / "reports"),
        model_parameters={"model": "perfect", "max_tokens": 16},
        metrics=[{"name": "rouge", "args": {}}],
    )
    done = service.wait_evaluation(service.create_evaluation(spec).id, timeout=120)
    assert done.state == "SUCCEEDED" and done.models[0].rows_done == 2
    report = json.loads(service.evaluation_report(done.id, "perfect"))
    assert report["metric_summary_result"][0]["score"].startswith("Median rougeL: 1.000")


def test_bad_rows_and_names_name_the_field_and_write_nothing(service, fake, monkeypatch):
    data_dir, _ = fake
    folder = data_dir / "datasets"
    cases = [
        ("ok", DatasetRow(prompt="  ", completion="x"), "prompt", "empty"),
        ("ok", DatasetRow(prompt="x", completion=""), "completion", "empty"),
        ("ok", DatasetRow(prompt="x\ud800", completion="y"), "prompt", "lone UTF-16 surrogate"),
        ("../up", DatasetRow(prompt="x", completion="y"), "name", "is not a dataset name"),
        ("", DatasetRow(prompt="x", completion="y"), "name", "empty"),
        ("n" * 61, DatasetRow(prompt="x", completion="y"), "name", "is not a dataset name"),
        ("mine-0123456789abcdef", DatasetRow(prompt="x", completion="y"), "name", "uploaded dataset"),
    ]
    for name, row, field, words in cases:
        with pytest.raises(InvalidInput) as bad:
            service.save_dataset_row(name, row)
        assert bad.value.problems[0].field == field and words in str(bad.value), str(bad.value)
    assert not folder.exists() or not list(folder.iterdir())
    # a line separator inside a prompt does not split its row
    service.save_dataset_row("ok", DatasetRow(prompt="one\u2028two", completion="y"))
    assert dataset_rules.load_dataset(str(folder / "ok.jsonl"))[0].prompt == "one\u2028two"
    # at the caps: refused naming the dataset and the limit; the file as it was
    monkeypatch.setattr(dataset_rules, "MAX_ROWS", 2)
    service.save_dataset_row("ok", DatasetRow(prompt="b", completion="y"))
    before = (folder / "ok.jsonl").read_bytes()
    with pytest.raises(InvalidInput, match=r"name: dataset 'ok' has 2 rows, the most an evaluation takes \(2\)"):
        service.save_dataset_row("ok", DatasetRow(prompt="c", completion="y"))
    monkeypatch.setattr(dataset_rules, "MAX_ROWS", 10)
    monkeypatch.setattr(dataset_rules, "MAX_BYTES", len(before) + 10)
    with pytest.raises(InvalidInput, match="would pass the limit of"):
        service.save_dataset_row("ok", DatasetRow(prompt="a longer prompt", completion="y"))
    assert (folder / "ok.jsonl").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["ok.jsonl"]  # no partial file left
    with pytest.raises(NotFound, match="unknown dataset 'nope'"):
        service.get_dataset("nope")


def test_saves_at_once_all_land(service, fake):
    def save(i: int) -> None:
        service.save_dataset_row("busy", DatasetRow(prompt=f"p{i}", completion="c"))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    rows = dataset_rules.load_dataset(str(fake[0] / "datasets" / "busy.jsonl"))
    assert sorted(r.prompt for r in rows) == sorted(f"p{i}" for i in range(12))


@pytest.mark.server
async def test_rest_save_list_download_and_refuse(jp_fetch, fake):
    data_dir, _ = fake
    body = {"prompt": PROMPTS[0], "completion": ANSWERS[PROMPTS[0]], "category": "qa"}
    created = await call(jp_fetch, "datasets", "mine", "rows", method="POST", body=body, expect=201, raw=True)
    assert created.headers["Location"].endswith("/aqua/datasets/mine")
    assert json.loads(created.body)["rows"] == 1
    listed = await call(jp_fetch, "datasets")
    assert [(d["name"], d["rows"], d["categories"]) for d in listed["data"]] == [("mine", 1, {"qa": 1})]
    got = await call(jp_fetch, "datasets", "mine", raw=True)
    assert got.headers["Content-Disposition"] == 'attachment; filename="mine.jsonl"'
    assert json.loads(got.body) == body
    for name, row, field in [
        ("mine", {"prompt": "", "completion": "x"}, "prompt"),
        ("mine", {"completion": "x"}, "prompt"),
        ("bad name!", {"prompt": "x", "completion": "y"}, "name"),
    ]:
        bad = await call(jp_fetch, "datasets", name, "rows", method="POST", body=row, expect=422)
        assert bad["errors"][0]["field"] == field, bad
    assert (await call(jp_fetch, "datasets", "nope", expect=404))["message"].startswith("unknown dataset 'nope'")
    assert (data_dir / "datasets" / "mine.jsonl").read_text().count("\n") == 1


@pytest.mark.cli
def test_cli_dataset_add_list_get(fake):
    data_dir, _ = fake
    env = {**os.environ, "AQUA_LAB_DATA_DIR": str(data_dir)}
    for prompt in PROMPTS[:2]:
        done = run_cli("dataset", "add", "--name", "cli", "--prompt", prompt, "--completion", ANSWERS[prompt], env=env)
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 2
    listed = json.loads(run_cli("dataset", "list", "--array", env=env).stdout)
    assert [(d["name"], d["rows"]) for d in listed] == [("cli", 2)]
    got = run_cli("dataset", "get", "--name", "cli", env=env).stdout.splitlines()
    assert [json.loads(x)["prompt"] for x in got] == PROMPTS[:2]
    bad = run_cli("dataset", "add", "--name", "a/b", "--prompt", "x", "--completion", "y", env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "name: 'a/b' is not a dataset name" in bad.stderr


@pytest.mark.widgets
def test_widgets_save_a_compare_answer_and_a_blind_vote_edited(service, fake, monkeypatch):
    from aqua_lab.widgets.chat import ChatPanel

    data_dir, deployment_id = fake
    said = {"perfect": ANSWERS[PROMPTS[0]], "vague": "I am not sure about that."}

    async def compare(_, request):  # the stand-in router does not stream: the compare stream, as it arrives
        for name, text in said.items():
            yield {"model": name, "type": "chunk", "data": {"choices": [{"delta": {"content": text}}]}}
            yield {"model": name, "type": "done", "ttft_ms": 1, "tokens_per_s": 1.0}

    monkeypatch.setattr(service, "compare", compare)
    panel = ChatPanel(service, deployment_id)
    assert panel.save_row.layout.display == "none"  # nothing to save before a turn
    panel.compare.value = True
    panel.ask(PROMPTS[0])
    panel.wait()
    row = panel.save_row
    assert list(row.choice.options) == list(said) and row.completion.value == ANSWERS[PROMPTS[0]]
    row.choice.value = "vague"
    assert row.completion.value == "I am not sure about that."
    row.button.click()
    assert "name: empty" in row.status.value  # no name yet: said in place, nothing saved
    row.dataset.value, row.choice.value = "picked", "perfect"
    row.button.click()
    assert "picked has 1 row —" in row.status.value and row.button.disabled
    panel.compare.value, panel.blind.value = False, True
    panel.ask(PROMPTS[1])
    panel.wait()
    panel.blind_vote.buttons["b"].click()
    blind = panel.blind_vote.save_row
    vote = service.votes(deployment_id)[-1]
    assert blind.choice.value == f"B ({vote.model_b})" and blind.completion.value == vote.answer_b
    blind.dataset.value, blind.completion.value, blind.category.value = "picked", "edited answer", "blind"
    blind.button.click()
    rows = dataset_rules.load_dataset(str(data_dir / "datasets" / "picked.jsonl"))
    assert [(r.prompt, r.completion, r.category) for r in rows] == [
        (PROMPTS[0], ANSWERS[PROMPTS[0]], None),
        (PROMPTS[1], "edited answer", "blind"),
    ]


@pytest.mark.widgets
def test_the_evaluate_form_takes_a_judge_and_a_rubric(service, fake, tmp_path):
    from aqua_lab.widgets import EvaluationPanel

    data_dir, deployment_id = fake
    panel = EvaluationPanel(service, deployment_id, poll_s=0.1)
    assert panel.judge_box.layout.display == "none"  # no judge metric ticked: no judge fields
    panel.metrics["pairwise_judge"].value = True
    assert panel.judge_box.layout.display is None and list(panel.judge.options) == list(SERVED)
    for box in ("rouge", "bertscore"):
        panel.metrics[box].value = False
    panel.judge.value, panel.rubric.value = "vague", "Prefer the shorter answer."
    judged = next(m for m in panel.spec().metrics if m.name == "pairwise_judge")
    assert judged.args["judge"] == "vague" and judged.args["rubric"] == "Prefer the shorter answer."
    panel.judge_url.value, panel.judge.value = "ftp://judge", ""
    panel.evaluate()
    assert "judge.url: 'ftp://judge' is not an http(s) URL" in unescape(panel.errors["judge"].value)
    assert "judge.model: missing" in unescape(panel.errors["judge"].value) and panel.evaluation is None
    panel.judge_url.value, panel.judge.value, panel.rubric.value = "", "nope", "x" * 9000
    panel.evaluate()
    assert "rubric" in unescape(panel.errors["rubric"].value) and "8" in unescape(panel.errors["rubric"].value)
    panel.rubric.value = ""
    panel.evaluate()
    assert "'nope'" in unescape(panel.errors["judge"].value), panel.status.value
    # a row of the saved dataset, judged by the model picked in the form
    saved = service.save_dataset_row("judged", DatasetRow(prompt=PROMPTS[0], completion=ANSWERS[PROMPTS[0]]))
    panel.judge.value, panel.dataset.value = "vague", saved.dataset_path
    panel.params.value = '{"max_tokens": 16}'
    panel.evaluate()
    done = panel.wait(120)
    assert done is not None and done.state == "SUCCEEDED", panel.status.value
    judge = json.loads(service.evaluation_report(done.id))["judge"]
    assert judge["judge"] == "vague" and judge["requests_per_row"] == 6  # both orders of 3 pairs
