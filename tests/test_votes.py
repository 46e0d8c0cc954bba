"""Blind votes through the service, REST and the CLI, against the stand-in router (no model engine):
names hidden until the vote, the least-compared pair shown, bad votes refused with nothing stored."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os

import pytest

from aqua_lab.arena.models import BlindPairRequest, VoteRequest
from aqua_lab.errors import Conflict, InvalidInput, NotFound
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.service import AquaLabService
from tests.helpers.cli import run_cli
from tests.helpers.fake_models import ANSWERS, start_fake_deployment
from tests.test_evaluation_fronts import call  # the REST call helper the evaluation tests use

pytestmark = [pytest.mark.arena, pytest.mark.server]

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SERVED = ("perfect", "vague", "slow")
PROMPT = next(iter(ANSWERS))


@pytest.fixture
def fake(tmp_path):
    data_dir = tmp_path / "data"
    deployment_id, proc = start_fake_deployment(data_dir, tmp_path / "router", served=SERVED)
    try:
        yield data_dir, deployment_id
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def service(fake):
    return AquaLabService(LocalPlatform(data_dir=fake[0]))


def test_a_blind_pair_hides_the_names_until_the_vote_reveals_them(service, fake):
    _, deployment_id = fake
    pair = asyncio.run(service.blind_pair(deployment_id, BlindPairRequest(prompt=PROMPT, max_tokens=16)))
    assert [a.label for a in pair.answers] == ["A", "B"]
    assert not any(name in pair.model_dump_json() for name in SERVED)
    texts = {a.text for a in pair.answers}
    assert texts <= {ANSWERS[PROMPT], "I am not sure about that."}
    vote = service.vote(deployment_id, VoteRequest(pair_id=pair.id, verdict="a"), voter="ada")
    assert {vote.model_a, vote.model_b} <= set(SERVED) and vote.model_a != vote.model_b
    assert vote.answer_a == pair.answers[0].text and vote.prompt == PROMPT
    assert vote.voter == "ada" and vote.order_seed == pair.order_seed and vote.params == {"max_tokens": 16}
    with pytest.raises(Conflict, match="voted on already"):
        service.vote(deployment_id, VoteRequest(pair_id=pair.id, verdict="b"))
    assert [v.verdict for v in service.votes(deployment_id)] == ["a"]


def test_the_next_pair_is_the_one_with_the_fewest_votes(service, fake):
    _, deployment_id = fake
    for _ in range(2):
        service.vote(deployment_id, VoteRequest(model_a="perfect", model_b="vague", verdict="a"))
    service.vote(deployment_id, VoteRequest(model_a="perfect", model_b="slow", verdict="tie"))
    for seed in range(5):  # whatever the seed: only vague–slow was never compared
        pair = asyncio.run(service.blind_pair(deployment_id, BlindPairRequest(prompt=PROMPT, order_seed=seed)))
        vote = service.vote(deployment_id, VoteRequest(pair_id=pair.id, verdict="b"))
        assert {vote.model_a, vote.model_b} == {"vague", "slow"}
        if seed == 0:
            break
    # the same seed over the same votes shows the same pair in the same order
    again = [
        asyncio.run(service.blind_pair(deployment_id, BlindPairRequest(prompt=PROMPT, order_seed=9))) for _ in "ab"
    ]
    assert [a.text for a in again[0].answers] == [a.text for a in again[1].answers]


def test_bad_votes_name_the_field_and_store_nothing(service, fake):
    data_dir, deployment_id = fake
    with pytest.raises(InvalidInput) as bad:
        service.vote(deployment_id, VoteRequest(model_a="perfect", model_b="gpt-9", verdict="a"))
    assert bad.value.problems[0].field == "model_b" and "'gpt-9' is not served" in str(bad.value)
    with pytest.raises(InvalidInput, match="models: 'nope' is not served"):
        asyncio.run(service.blind_pair(deployment_id, BlindPairRequest(prompt="x", models=["perfect", "nope"])))
    LocalPlatform(data_dir=data_dir).store.update_deployment(deployment_id, state="DELETED")
    # the local platform forgets a deleted deployment (404 naming it); OCI keeps it DELETED (409)
    with pytest.raises((NotFound, Conflict), match=f"deployment '?{deployment_id}'?"):
        service.vote(deployment_id, VoteRequest(model_a="perfect", model_b="vague", verdict="a"))
    assert service.arena.store.votes(deployment_id, ("vote", "judge")) == []


@pytest.fixture
def jp_server_config(fake):
    return {
        "ServerApp": {"jpserver_extensions": {"aqua_lab": True}},
        "AquaLab": {"platform": "local", "data_dir": str(fake[0])},
    }


async def test_rest_blind_votes_then_a_leaderboard_with_intervals_and_an_export(jp_fetch, fake):
    _, deployment_id = fake
    revealed = []
    for i in range(6):
        pair = await call(
            jp_fetch,
            "deployments",
            deployment_id,
            "blind-pairs",
            method="POST",
            body={"prompt": PROMPT, "models": ["perfect", "vague"], "order_seed": i},
        )
        assert "perfect" not in json.dumps(pair) and len(pair["answers"]) == 2
        # the better answer is the reference: vote for whichever label shows it
        better = "a" if pair["answers"][0]["text"] == ANSWERS[PROMPT] else "b"
        created = await call(
            jp_fetch,
            "deployments",
            deployment_id,
            "votes",
            method="POST",
            body={"pair_id": pair["id"], "verdict": better},
            expect=201,
            raw=True,
        )
        vote = json.loads(created.body)
        assert created.headers["Location"].endswith(f"/aqua/deployments/{deployment_id}/votes/{vote['id']}")
        assert vote["voter"]  # the Jupyter user
        revealed.append(vote["model_a"] if better == "a" else vote["model_b"])
    assert set(revealed) == {"perfect"}
    board = await call(jp_fetch, "deployments", deployment_id, "leaderboard", params={"resamples": 50})
    top = board["standings"][0]
    assert top["model"] == "perfect" and top["wins"] == 6 and top["elo_low"] <= top["elo"] <= top["elo_high"]
    assert board["comparisons"][0][1] == 6 and board["win_rate"][0][1] == pytest.approx(1.0, abs=0.01)
    text = (
        await call(jp_fetch, "deployments", deployment_id, "votes", "export", params={"format": "csv"}, raw=True)
    ).body
    rows = list(csv.DictReader(io.StringIO(text.decode())))
    assert len(rows) == 6 and rows[0]["prompt"] == PROMPT
    bad = await call(
        jp_fetch,
        "deployments",
        deployment_id,
        "votes",
        method="POST",
        body={"model_a": "perfect", "model_b": "zeta", "verdict": "a"},
        expect=422,
    )
    assert bad["errors"][0]["field"] == "model_b"
    assert len((await call(jp_fetch, "deployments", deployment_id, "votes"))["data"]) == 6


def test_cli_vote_leaderboard_and_export(fake):
    data_dir, deployment_id = fake
    env = {**os.environ, "AQUA_LAB_DATA_DIR": str(data_dir)}
    base = ("--platform", "local", "--model_deployment_id", deployment_id)
    for verdict in ("a", "a", "tie"):
        done = run_cli(
            "deployment", "vote", *base, "--model_a", "perfect", "--model_b", "vague", "--verdict", verdict, env=env
        )
        assert done.returncode == 0, done.stderr
    board = run_cli("deployment", "leaderboard", *base, env=env)
    assert board.returncode == 0 and "perfect" in board.stdout.splitlines()[1]
    assert "no comparisons yet" in board.stdout  # slow was never voted on
    as_json = json.loads(run_cli("deployment", "leaderboard", *base, "--json", env=env).stdout)
    assert as_json["votes"] == 3 and as_json["standings"][0]["ties"] == 1
    lines = run_cli("deployment", "votes", *base, "--export", "jsonl", env=env).stdout.splitlines()
    assert [json.loads(x)["verdict"] for x in lines] == ["a", "a", "tie"]
    bad = run_cli("deployment", "vote", *base, "--model_a", "perfect", "--model_b", "nope", "--verdict", "a", env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "model_b" in bad.stderr


@pytest.mark.widgets
def test_widget_blind_compare_reveals_names_after_each_vote_and_the_leaderboard_shows_intervals(service, fake):
    from aqua_lab.widgets.arena import LeaderboardView
    from aqua_lab.widgets.chat import ChatPanel

    _, deployment_id = fake
    panel = ChatPanel(service, deployment_id)
    panel.blind.value = True
    for _ in range(3):
        panel.ask(PROMPT)
        panel.wait()
        shown = panel.blind_vote.columns.children
        assert [c.value.count("data-label") for c in shown] == [1, 1]
        assert not any(name in c.value for c in shown for name in SERVED)
        assert not panel.blind_vote.buttons["a"].disabled
        panel.blind_vote.buttons["tie"].click()
        assert panel.blind_vote.reveal.value.count(" was ") == 2 and "your vote: tie" in panel.blind_vote.reveal.value
        assert panel.blind_vote.buttons["a"].disabled
    view = LeaderboardView(service, deployment_id)
    # three votes, each on the pair compared least: every pair of the three models once
    assert view.table.value.count('class="aqua-standing"') == 3
    assert view.table.value.count('class="aqua-interval"') == 3
    assert "3 votes" in view.table.value
