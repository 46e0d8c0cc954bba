"""The pairwise judge: every pair of the models' answers to a row, judged by a judge model in BOTH
orders (an LLM judge prefers a position; asking twice exposes it).  Two orders that disagree count as
a tie and as one inconsistency.  An answer with no verdict in it is asked again once with a stricter
prompt, then recorded as "unparsed" — kept, counted, never a verdict.

Transport-agnostic: ``ask(messages) -> text`` is any OpenAI-compatible chat call (a model of this
deployment, of another deployment, or an external URL with a key).  Where the judge is a llama.cpp
server (``constrained``), its answer is constrained by a GBNF grammar to the verdict itself
(``ask(messages, grammar)``, with the strict prompt): a small model then cannot fail to give one,
though it may still give a poor one.  Other endpoints get the free-text prompt and the stricter retry."""

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

#: what a constrained judge may answer (llama-server's ``grammar``): the verdict and nothing else
VERDICT_GRAMMAR = 'root ::= "[[A]]" | "[[B]]" | "[[C]]"'

Ask = Callable[..., Awaitable[str]]


async def _asked(ask: Ask, messages: list[dict[str, str]], grammar: str | None) -> str:
    """``ask`` with the grammar only when there is one, so a plain ``ask(messages)`` serves unconstrained."""
    return await (ask(messages, grammar) if grammar else ask(messages))


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


async def _one_order(
    ask: Ask, rubric: str, question: str, reference: str | None, first: str, second: str, constrained: bool = False
):
    """(verdict seen from this order, requests made)."""
    grammar = VERDICT_GRAMMAR if constrained else None
    messages = judge_messages(rubric, question, reference, first, second, strict=constrained)
    verdict = parse_verdict(await _asked(ask, messages, grammar))
    if verdict is not None:
        return verdict, 1
    strict = judge_messages(rubric, question, reference, first, second, strict=True)
    return parse_verdict(await _asked(ask, strict, grammar)), 2


async def judge_row(
    ask: Ask, rubric: str, question: str, reference: str | None, answers: dict[str, str], constrained: bool = False
) -> list[PairVerdict]:
    """Every pair of ``answers`` (model → text), both orders, all requests at once (the judge's
    server batches them)."""
    pairs = list(itertools.combinations(answers, 2))
    calls = [
        _one_order(ask, rubric, question, reference, answers[x], answers[y], constrained)
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


def win_rates(verdicts: Sequence[PairVerdict]) -> dict[str, float | None]:
    """Per model, the share of its judged comparisons it won (a tie: half a win); unparsed left out."""
    won: dict[str, float] = {}
    met: dict[str, int] = {}
    for v in verdicts:
        for model in (v.model_a, v.model_b):
            won.setdefault(model, 0.0)
            met.setdefault(model, 0)
        if v.verdict == "unparsed":
            continue
        met[v.model_a] += 1
        met[v.model_b] += 1
        share = {"a": (1.0, 0.0), "b": (0.0, 1.0), "tie": (0.5, 0.5)}[v.verdict]
        won[v.model_a] += share[0]
        won[v.model_b] += share[1]
    return {m: (won[m] / met[m] if met[m] else None) for m in won}


# a single answer rated 1-10 against the reference (judge_score) -------------------------------------

SCORE_STRICT = "Answer with exactly one rating such as [[7]] (1 worst, 10 best) and nothing else."
SCORE_GRAMMAR = 'root ::= "[[" ("10" | [1-9]) "]]"'
_SCORE = re.compile(r"\[\[\s*(10|[1-9])\s*\]\]")


def score_messages(
    rubric: str, question: str, reference: str | None, answer: str, strict: bool = False
) -> list[dict[str, str]]:
    ref = f"\n\n[Reference answer]\n{reference}" if reference else ""
    ending = SCORE_STRICT if strict else 'Explain briefly, then end with a rating from 1 to 10 as "[[7]]".'
    return [
        {"role": "system", "content": f"You are an impartial judge. Rate the answer. {rubric} {ending}"},
        {"role": "user", "content": f"[Question]\n{question}{ref}\n\n[Answer]\n{answer}\n\n{ending}"},
    ]


def parse_score(text: str) -> int | None:
    found = _SCORE.findall(text or "")
    return int(found[-1]) if found else None


async def score_answer(
    ask: Ask, rubric: str, question: str, reference: str | None, answer: str, constrained: bool = False
):
    """(rating 1-10 or None: unparsed, requests made): retried once with a stricter prompt."""
    grammar = SCORE_GRAMMAR if constrained else None
    messages = score_messages(rubric, question, reference, answer, strict=constrained)
    rating = parse_score(await _asked(ask, messages, grammar))
    if rating is not None:
        return rating, 1
    strict = score_messages(rubric, question, reference, answer, strict=True)
    return parse_score(await _asked(ask, strict, grammar)), 2


class JudgePass:
    """The judge's share of an evaluation: each row is judged as soon as every model has answered it
    (:meth:`row_answered`, from the runner), while the other rows still generate; :meth:`finish`
    judges the rows answered in an earlier run of a resumed job and waits for the rest.  ``ask`` is
    wrapped in a semaphore of ``concurrency``: the judge's server decodes that many at once."""

    def __init__(
        self,
        rows: Sequence[Any],
        models: Sequence[str],
        ask: Ask,
        rubric: str,
        pairwise: bool = True,
        scores: bool = False,
        concurrency: int = 4,
        label: str = "judge",
        warning: str | None = None,
        constrained: bool = False,
    ):
        self.label, self.warning = label, warning
        #: the judge answers under a grammar (llama.cpp): the verdict alone
        self.constrained = constrained
        self.rows = {r.index: r for r in rows}
        self.models = list(models)
        self.rubric = rubric
        self.pairwise, self.scores = pairwise, scores
        self._gate = asyncio.Semaphore(max(1, concurrency))
        self._ask = ask
        self._tasks: dict[int, asyncio.Task] = {}
        self.verdicts: dict[int, list[PairVerdict]] = {}
        #: model -> row index -> rating (None: unparsed)
        self.ratings: dict[str, dict[int, int | None]] = {m: {} for m in self.models}
        self.score_requests = 0
        #: judge requests that failed (counted, their pair or rating then unparsed), and the last reason
        self.errors, self.last_error = 0, None

    async def ask(self, messages: list[dict[str, str]], grammar: str | None = None) -> str:
        async with self._gate:
            try:
                return await _asked(self._ask, messages, grammar)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a judge that fails a request must not fail the evaluation
                self.errors += 1
                self.last_error = str(exc) or type(exc).__name__
                return ""

    def row_answered(self, index: int, predictions: dict[str, Any]) -> None:
        if index not in self._tasks:
            self._tasks[index] = asyncio.ensure_future(self._judge(index, predictions))

    async def _judge(self, index: int, predictions: dict[str, Any]) -> None:
        row = self.rows[index]
        answers = {m: p.prediction for m, p in predictions.items() if not p.error}
        reference = row.completion or None
        work = []
        if self.pairwise and len(answers) >= 2:
            work.append(judge_row(self.ask, self.rubric, row.prompt, reference, answers, self.constrained))
        if self.scores:
            work += [
                score_answer(self.ask, self.rubric, row.prompt, reference, a, self.constrained)
                for a in answers.values()
            ]
        done = await asyncio.gather(*work)
        if self.pairwise and len(answers) >= 2:
            self.verdicts[index] = done.pop(0)
        for model, (rating, requests) in zip(answers if self.scores else (), done, strict=True):
            self.ratings[model][index] = rating
            self.score_requests += requests

    async def finish(self, done: dict[str, dict[int, Any]]) -> None:
        for index in self.rows:
            if index not in self._tasks and all(index in done.get(m, {}) for m in self.models):
                self.row_answered(index, {m: done[m][index] for m in self.models})
        await asyncio.gather(*self._tasks.values())

    def ordered_verdicts(self) -> list[tuple[Any, list[PairVerdict]]]:
        return [(self.rows[i], self.verdicts[i]) for i in sorted(self.verdicts)]

    def pairwise_report(self) -> dict[str, Any]:
        """The comparison report's ``judge`` section."""
        flat = [v for _, vs in self.ordered_verdicts() for v in vs]
        summary = summarise(flat)
        n = len(self.models)
        return {
            "judge": self.label,
            "rubric": self.rubric,
            "warning": self.warning,
            "constrained": self.constrained,
            "requests_per_row": n * (n - 1),  # 2 × C(N, 2): both orders of every pair
            **summary.as_dict(),
            "retries": summary.requests - 2 * summary.pairs,
            "errors": self.errors,
            "last_error": self.last_error,
            "win_rate": win_rates(flat),
            "verdicts": [
                {
                    "index": row.index,
                    "prompt": row.prompt,
                    "model_a": v.model_a,
                    "model_b": v.model_b,
                    "verdict": v.verdict,
                    "winner": {"a": v.model_a, "b": v.model_b}.get(v.verdict, v.verdict),
                    "orders": v.orders,
                    "inconsistent": v.inconsistent,
                }
                for row, vs in self.ordered_verdicts()
                for v in vs
            ],
        }
