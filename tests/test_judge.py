"""The pairwise judge: both orders asked for every pair, disagreeing orders counted as ties and as
inconsistencies, an unparsable answer retried once then kept as "unparsed", and its verdicts on the
leaderboard (source=judge).  The judge here is a stand-in that reads the answers it is shown."""

from __future__ import annotations

import asyncio
import math

import pytest

from aqua_lab.arena.judge import (
    MAX_RUBRIC_BYTES,
    check_rubric,
    judge_row,
    parse_verdict,
    summarise,
    verdict_rows,
)
from aqua_lab.arena.store import VoteStore
from aqua_lab.errors import InvalidInput

pytestmark = [pytest.mark.arena, pytest.mark.evaluation]

REFERENCE = "Paris"


def judge(kind: str, log: list):
    """A judge that prefers the answer equal to the reference ("fair"), always says A ("biased"),
    babbles once then obeys the strict prompt ("late"), or never gives a verdict ("mute")."""

    async def ask(messages):
        log.append(messages)
        text = messages[-1]["content"]
        first = text.split("[Answer A]\n")[1].split("\n\n[Answer B]")[0]
        if kind == "biased":
            return "Both are fine. [[A]]"
        if kind == "mute" or (kind == "late" and "exactly one of" not in messages[0]["content"]):
            return "I cannot decide."
        return "[[A]]" if first == REFERENCE else "[[B]]"

    return ask


def run(kind: str, answers: dict[str, str]):
    log: list = []
    verdicts = asyncio.run(judge_row(judge(kind, log), check_rubric(None), "Capital of France?", REFERENCE, answers))
    return verdicts, log


def test_every_pair_is_judged_in_both_orders():
    answers = {"right": REFERENCE, "wrong1": "Lyon", "wrong2": "Rome"}
    verdicts, log = run("fair", answers)
    assert len(log) == 2 * math.comb(3, 2)
    shown_first = {m[-1]["content"].split("[Answer A]\n")[1].split("\n")[0] for m in log}
    assert shown_first == {REFERENCE, "Lyon", "Rome"}
    by_pair = {(v.model_a, v.model_b): v.verdict for v in verdicts}
    assert by_pair[("right", "wrong1")] == "a" and by_pair[("right", "wrong2")] == "a"
    # between two wrong answers the stand-in always says B: the two orders disagree, a tie
    assert by_pair[("wrong1", "wrong2")] == "tie"
    assert summarise(verdicts).inconsistency_rate == pytest.approx(1 / 3)


def test_a_position_biased_judge_gives_ties_and_its_inconsistency_is_reported():
    verdicts, _ = run("biased", {"right": REFERENCE, "wrong": "Lyon"})
    assert [v.verdict for v in verdicts] == ["tie"]
    summary = summarise(verdicts)
    assert summary.inconsistent == 1 and summary.inconsistency_rate == 1.0


def test_an_unparsable_answer_is_retried_once_then_recorded_unparsed():
    verdicts, log = run("late", {"right": REFERENCE, "wrong": "Lyon"})
    assert len(log) == 4 and verdicts[0].verdict == "a"
    verdicts, log = run("mute", {"right": REFERENCE, "wrong": "Lyon"})
    assert len(log) == 4 and verdicts[0].verdict == "unparsed"
    summary = summarise(verdicts)
    assert summary.unparsed == 1 and summary.inconsistency_rate is None


def test_verdict_parsing():
    assert parse_verdict("A is better because ... [[B]]") == "B"
    assert parse_verdict("[[C]]") == "tie" and parse_verdict("tie") == "tie"
    assert parse_verdict("no idea") is None


def test_a_rubric_over_8_kib_is_refused_naming_the_field():
    with pytest.raises(InvalidInput) as refused:
        check_rubric("x" * (MAX_RUBRIC_BYTES + 1))
    assert refused.value.problems[0].field == "metrics.pairwise_judge.args.rubric"
    assert "the limit is 8192" in str(refused.value)


def test_judge_verdicts_reach_the_leaderboard_apart_from_votes(tmp_path):
    from aqua_lab.platforms.local import LocalPlatform
    from aqua_lab.service import AquaLabService

    service = AquaLabService(LocalPlatform(data_dir=tmp_path))
    rows = []
    for _ in range(8):
        verdicts, _ = run("fair", {"right": REFERENCE, "wrong": "Lyon"})
        rows.append(("Capital of France?", REFERENCE, verdicts))
    VoteStore(tmp_path / "local.sqlite").add(verdict_rows("local-gone", "eval-1", "smol", rows))
    board = service.leaderboard("local-gone", source="judge", resamples=50)
    assert [s.model for s in board.standings] == ["right", "wrong"] and board.votes == 8
    assert service.leaderboard("local-gone", source="both").votes == 8
    votes = service.votes("local-gone", "judge")
    assert votes[0].judge == "smol" and votes[0].evaluation_id == "eval-1"
