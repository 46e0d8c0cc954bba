"""The pairwise judge: every pair of the models' answers to a row, judged by a judge model in BOTH
orders (an LLM judge prefers a position; asking twice exposes it).  Two orders that disagree count as
a tie and as one inconsistency.  An answer with no verdict in it is asked again once with a stricter
prompt, then recorded as "unparsed" — kept, counted, never a verdict.

Transport-agnostic: ``ask(messages) -> text`` is any OpenAI-compatible chat call (a model of this
deployment, of another deployment, or an external URL with a key)."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput, Problem

#: the longest rubric a judge prompt carries (it is sent 2 × C(N, 2) times per row)
MAX_RUBRIC_BYTES = 8 * 1024
DEFAULT_RUBRIC = (
    "Decide which answer is better for the user: more helpful, and correct. When a reference answer is "
    "given, an answer that agrees with the reference is correct and one that contradicts it is not."
)
STRICT = "Answer with exactly one of [[A]], [[B]] or [[C]] (C: a tie) and nothing else."
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]|^\s*(?:answer\s*)?([AB]|tie)\b\.?\s*$", re.IGNORECASE | re.MULTILINE)

Ask = Callable[[list[dict[str, str]]], Awaitable[str]]


def check_rubric(rubric: str | None, where: str = "metrics.pairwise_judge.args.rubric") -> str:
    text = DEFAULT_RUBRIC if rubric is None else rubric
    size = len(text.encode("utf-8"))
    if size > MAX_RUBRIC_BYTES:
        raise InvalidInput(
            Problem(where, f"is {size} bytes; the limit is {MAX_RUBRIC_BYTES} (8 KiB)", "shorten the rubric")
        )
    if not text.strip():
        raise InvalidInput(Problem(where, "is empty", "leave it out for the default rubric"))
    return text


def judge_messages(
    rubric: str, question: str, reference: str | None, first: str, second: str, strict: bool = False
) -> list[dict[str, str]]:
    ref = f"\n\n[Reference answer]\n{reference}" if reference else ""
    ending = STRICT if strict else 'Explain briefly, then end with "[[A]]", "[[B]]" or "[[C]]" for a tie.'
    return [
        {"role": "system", "content": f"You are an impartial judge. {rubric} {ending}"},
        {
            "role": "user",
            "content": f"[Question]\n{question}{ref}\n\n[Answer A]\n{first}\n\n[Answer B]\n{second}\n\n{ending}",
        },
    ]


def parse_verdict(text: str) -> str | None:
    """ "A", "B" or "tie" from a judge's answer (the last verdict it gives), None when it gives none."""
    found = _VERDICT.findall(text or "")
    if not found:
        return None
    bracket, bare = found[-1]
    value = (bracket or bare).upper()
    return {"A": "A", "B": "B", "C": "tie", "TIE": "tie"}[value]


@dataclass
class PairVerdict:
    model_a: str  # shown first in the first order
    model_b: str
    verdict: str  # a | b | tie | unparsed
    orders: list[str | None]  # per order, which model it preferred ("tie", or None: unparsed)
    inconsistent: bool
    requests: int


@dataclass
class JudgeSummary:
    requests: int = 0
    pairs: int = 0
    inconsistent: int = 0
    unparsed: int = 0
    verdicts: list[PairVerdict] = field(default_factory=list)

    @property
    def inconsistency_rate(self) -> float | None:
        judged = self.pairs - self.unparsed
        return self.inconsistent / judged if judged else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "pairs": self.pairs,
            "inconsistent": self.inconsistent,
            "inconsistency_rate": self.inconsistency_rate,
            "unparsed": self.unparsed,
        }


async def _one_order(ask: Ask, rubric: str, question: str, reference: str | None, first: str, second: str):
    """(verdict seen from this order, requests made)."""
    verdict = parse_verdict(await ask(judge_messages(rubric, question, reference, first, second)))
    if verdict is not None:
        return verdict, 1
    return parse_verdict(await ask(judge_messages(rubric, question, reference, first, second, strict=True))), 2


async def judge_row(
    ask: Ask, rubric: str, question: str, reference: str | None, answers: dict[str, str]
) -> list[PairVerdict]:
    """Every pair of ``answers`` (model → text), both orders, all requests at once (the judge's
    server batches them)."""
    pairs = list(itertools.combinations(answers, 2))
    calls = [
        _one_order(ask, rubric, question, reference, answers[x], answers[y])
        for a, b in pairs
        for x, y in ((a, b), (b, a))
    ]
    seen = await asyncio.gather(*calls)
    out = []
    for n, (a, b) in enumerate(pairs):
        (first, r1), (second, r2) = seen[2 * n], seen[2 * n + 1]
        # the second order showed b first: its "A" is model b
        prefs = [
            {"A": a, "B": b}.get(first, first),
            {"A": b, "B": a}.get(second, second),
        ]
        if None in prefs:
            verdict, inconsistent = "unparsed", False
        elif prefs[0] == prefs[1]:
            verdict, inconsistent = {a: "a", b: "b", "tie": "tie"}[prefs[0]], False
        else:
            verdict, inconsistent = "tie", True
        out.append(PairVerdict(a, b, verdict, prefs, inconsistent, r1 + r2))
    return out


def summarise(verdicts: Sequence[PairVerdict]) -> JudgeSummary:
    s = JudgeSummary(verdicts=list(verdicts))
    for v in verdicts:
        s.requests += v.requests
        s.pairs += 1
        s.inconsistent += v.inconsistent
        s.unparsed += v.verdict == "unparsed"
    return s


def verdict_rows(
    deployment_id: str, evaluation_id: str, judge: str, rows: Sequence[tuple[str, str | None, list[PairVerdict]]]
) -> list[dict[str, Any]]:
    """Vote-store rows (source "judge") of the parsed verdicts of ``(prompt, reference, verdicts)``
    rows; unparsed ones stay in the evaluation's report, not on the leaderboard."""
    out = []
    for r, (prompt, reference, verdicts) in enumerate(rows):
        for p, v in enumerate(verdicts):
            if v.verdict == "unparsed":
                continue
            out.append(
                {
                    "id": f"judge-{evaluation_id}-{r}-{p}",
                    "deployment_id": deployment_id,
                    "source": "judge",
                    "model_a": v.model_a,
                    "model_b": v.model_b,
                    "verdict": v.verdict,
                    "record": {
                        "prompt": prompt,
                        "reference": reference,
                        "judge": judge,
                        "evaluation_id": evaluation_id,
                        "orders": v.orders,
                        "inconsistent": v.inconsistent,
                    },
                }
            )
    return out
