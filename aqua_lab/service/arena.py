"""Choosing between a deployment's models, in the service: blind pairs, votes, the leaderboard, exports.

A blind pair shows two models at a time even when the deployment serves more: picking the better of
two answers is a judgement a person makes quickly and reliably, ranking N answers is not.  The pair
shown is the one with the fewest votes so far (ties broken by the pair's seed): its strengths have
the widest intervals, so its vote tells the leaderboard the most, and every model keeps being met.
The seed is kept with the vote, so the pair and the order shown can be replayed."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import itertools
import json
import random
import secrets
import uuid
from collections import Counter
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from ..arena.leaderboard import TIE, WIN_A, WIN_B, leaderboard
from ..arena.models import (
    MAX_RESAMPLES,
    BlindAnswer,
    BlindPair,
    BlindPairRequest,
    Leaderboard,
    Standing,
    Vote,
    VoteRequest,
    VoteSource,
)
from ..arena.store import VoteStore
from ..domain import ChatRequest, Deployment, EvaluationSpec
from ..errors import Conflict, InvalidInput, NotFound, Problem, shown
from ..platforms.base import Platform
from .chat import ChatRelay
from .executor import execute

SOURCES: dict[str, tuple[str, ...]] = {"votes": ("vote",), "judge": ("judge",), "both": ("vote", "judge")}
OUTCOME = {"a": WIN_A, "b": WIN_B, "tie": TIE, "both_bad": TIE}
EXPORT_FORMATS = ("jsonl", "csv")


def os_user() -> str:
    """Who votes from a kernel or the CLI: the user the process runs as."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


class Arena:
    def __init__(self, platform: Platform, chats: ChatRelay, data_dir: Path):
        self.platform = platform
        self.chats = chats
        self.data_dir = data_dir

    @cached_property
    def store(self) -> VoteStore:
        return VoteStore(self.data_dir / "local.sqlite")

    def _live(self, deployment_id: str) -> Deployment:
        deployment = self.platform.get_deployment(deployment_id)
        if deployment.state in ("DELETED", "DELETING"):
            raise Conflict(
                f"deployment {deployment_id} is {deployment.state}: votes are taken on live deployments only"
            )
        return deployment

    # blind pairs and votes ------------------------------------------------------------------------

    async def blind_pair(self, deployment_id: str, request: BlindPairRequest) -> BlindPair:
        deployment = await execute(self._live, deployment_id)
        served = deployment.served_names()
        candidates = list(dict.fromkeys(request.models or served))
        unknown = [m for m in candidates if m not in served]
        if unknown:
            fix = f"use names from {served}"
            raise InvalidInput(Problem("models", f"{shown(unknown[0])} is not served by {deployment_id}", fix))
        if len(candidates) < 2:
            raise InvalidInput(
                Problem("models", f"a blind pair needs two models; {deployment_id} serves {len(candidates)}", None)
            )
        seed = request.order_seed if request.order_seed is not None else secrets.randbits(32)
        met = Counter(frozenset(p[:2]) for p in await execute(self.store.outcomes, deployment_id, ("vote",)))
        pairs = list(itertools.combinations(candidates, 2))
        fewest = min(met[frozenset(p)] for p in pairs)
        rng = random.Random(seed)
        shown_pair = list(rng.choice([p for p in pairs if met[frozenset(p)] == fewest]))
        rng.shuffle(shown_pair)
        params = request.model_dump(exclude={"prompt", "models", "order_seed"}, exclude_none=True)
        messages = [{"role": "user", "content": request.prompt}]
        answers = await asyncio.gather(
            *(
                self.chats.chat(deployment_id, ChatRequest(model=m, messages=messages, stream=False, **params))
                for m in shown_pair
            )
        )
        texts = [answer_text(a) for a in answers]
        pair_id = f"vote-{uuid.uuid4().hex[:16]}"
        record = {"prompt": request.prompt, "answer_a": texts[0], "answer_b": texts[1], "order_seed": seed}
        row = {
            "id": pair_id,
            "deployment_id": deployment_id,
            "source": "vote",
            "model_a": shown_pair[0],
            "model_b": shown_pair[1],
            "record": {**record, "params": params},
        }
        await execute(self.store.add, [row])
        return BlindPair(
            id=pair_id,
            deployment_id=deployment_id,
            prompt=request.prompt,
            answers=[BlindAnswer(label="A", text=texts[0]), BlindAnswer(label="B", text=texts[1])],
            order_seed=seed,
        )

    def vote(self, deployment_id: str, request: VoteRequest, voter: str | None = None) -> Vote:
        deployment = self._live(deployment_id)
        voter = voter or os_user()
        if request.pair_id is not None:
            named = [f for f in ("model_a", "model_b", "answer_a", "answer_b", "prompt") if getattr(request, f)]
            if named:
                fix = "send pair_id and verdict only: the pair's models and answers are kept with it"
                raise InvalidInput(Problem(named[0], "a blind vote takes it from its pair", fix))
            row = self.store.get(request.pair_id)
            if row is None or row["deployment_id"] != deployment_id or row["source"] != "vote":
                raise NotFound("blind pair", request.pair_id, f"ask {deployment_id} for a new pair")
            if not self.store.cast(request.pair_id, request.verdict, {"voter": voter}):
                raise Conflict(f"blind pair {request.pair_id} was voted on already; ask for a new pair")
            return self.get_vote(deployment_id, request.pair_id)
        served = deployment.served_names()
        problems = []
        for field in ("model_a", "model_b"):
            name = getattr(request, field)
            if name is None:
                problems.append(Problem(field, "missing", f"give pair_id, or model_a and model_b from {served}"))
            elif name not in served:
                problems.append(
                    Problem(field, f"{shown(name)} is not served by {deployment_id}", f"use one of {served}")
                )
        if not problems and request.model_a == request.model_b:
            problems.append(Problem("model_b", "is the same model as model_a", "name two different models"))
        if problems:
            raise InvalidInput(problems)
        vote_id = f"vote-{uuid.uuid4().hex[:16]}"
        record = {k: getattr(request, k) for k in ("prompt", "answer_a", "answer_b") if getattr(request, k) is not None}
        self.store.add(
            [
                {
                    "id": vote_id,
                    "deployment_id": deployment_id,
                    "source": "vote",
                    "model_a": request.model_a,
                    "model_b": request.model_b,
                    "verdict": request.verdict,
                    "record": {**record, "voter": voter},
                }
            ]
        )
        return self.get_vote(deployment_id, vote_id)

    def get_vote(self, deployment_id: str, vote_id: str) -> Vote:
        row = self.store.get(vote_id)
        if row is None or row["deployment_id"] != deployment_id or row["verdict"] is None:
            raise NotFound("vote", vote_id, f"list them: votes of {deployment_id}")
        return _vote(row)

    def votes(self, deployment_id: str, source: VoteSource = "both") -> list[Vote]:
        rows = self.store.votes(deployment_id, _sources(source))
        if not rows:
            self.platform.get_deployment(deployment_id)  # an unknown id is a 404, not an empty list
        return [_vote(r) for r in rows]

    # judge metrics of an evaluation ----------------------------------------------------------------

    def resolve_judges(self, spec: EvaluationSpec) -> tuple[EvaluationSpec, list[str]]:
        """The spec with each judge metric's judge checked and filled in (default: the deployment's
        first model), and the warnings to show (a judge that is one of the judged models)."""
        from ..arena.judge_target import resolve_judge
        from ..evaluation.metrics import JUDGED, check_metrics

        if not any(m.name in JUDGED for m in spec.metrics):
            return spec, []
        check_metrics(spec.metrics)  # the arguments as written, before asking anyone
        deployment = self.platform.get_deployment(spec.evaluation_source_id)
        judged = set(deployment.served_names())
        if spec.model_parameters.get("model") in judged:
            judged = {spec.model_parameters["model"]}
        metrics, warnings = [], []
        for i, m in enumerate(spec.metrics):
            if m.name in JUDGED:
                judge, warning = resolve_judge(
                    m.args.get("judge"), deployment, self.platform, f"metrics[{i}].args.judge"
                )
                m = m.model_copy(update={"args": {**m.args, "judge": judge}})
                if warning and judge["model"] in judged and warning not in warnings:
                    warnings.append(warning)
            metrics.append(m)
        return spec.model_copy(update={"metrics": metrics}), warnings

    # the leaderboard and exports ------------------------------------------------------------------

    def leaderboard(self, deployment_id: str, source: VoteSource = "votes", resamples: int = 200) -> Leaderboard:
        if not 0 <= resamples <= MAX_RESAMPLES:
            raise InvalidInput(Problem("resamples", f"{resamples} is out of range", f"give 0 to {MAX_RESAMPLES}"))
        outcomes = self.store.outcomes(deployment_id, _sources(source))
        try:
            models = self.platform.get_deployment(deployment_id).served_names()
        except NotFound:
            if not outcomes:
                raise
            models = []  # gone, but its votes are still worth reading
        for a, b, _ in outcomes:  # models voted on before an update replaced them keep their place
            for name in (a, b):
                if name not in models:
                    models.append(name)
        index = {m: i for i, m in enumerate(models)}
        board = leaderboard(
            models,
            [index[a] for a, _, _ in outcomes],
            [index[b] for _, b, _ in outcomes],
            [OUTCOME[v] for _, _, v in outcomes],
            resamples=resamples,
        )
        return Leaderboard(
            deployment_id=deployment_id,
            source=source,
            models=board.models,
            standings=[Standing(**vars(s)) for s in board.standings],
            win_rate=board.win_rate,
            comparisons=board.comparisons,
            votes=board.votes,
            resamples=board.resamples,
            notes=board.notes,
        )

    def export(self, deployment_id: str, fmt: str = "jsonl", source: VoteSource = "both") -> str:
        """Every vote and verdict as JSON lines or CSV (one row each, the answers included)."""
        if fmt not in EXPORT_FORMATS:
            raise InvalidInput(
                Problem("format", f"{shown(fmt)} is not an export format", f"use {' or '.join(EXPORT_FORMATS)}")
            )
        votes = [v.model_dump(mode="json") for v in self.votes(deployment_id, source)]
        if fmt == "jsonl":
            return "".join(json.dumps(v) + "\n" for v in votes)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(Vote.model_fields), lineterminator="\n")
        writer.writeheader()
        writer.writerows({**v, "params": json.dumps(v["params"])} for v in votes)
        return out.getvalue()


def answer_text(result: dict[str, Any]) -> str:
    """The text of a non-streamed OpenAI answer (chat: ``message.content``; completions: ``text``)."""
    choice = (result.get("choices") or [{}])[0]
    return (choice.get("message") or {}).get("content") or choice.get("text") or ""


def _sources(source: str) -> tuple[str, ...]:
    if source not in SOURCES:
        raise InvalidInput(Problem("source", f"{shown(source)} is not a source", f"use one of {list(SOURCES)}"))
    return SOURCES[source]


def _when(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp, UTC).isoformat() if stamp is not None else None


def _vote(row: dict[str, Any]) -> Vote:
    record = row["record"]
    return Vote(
        id=row["id"],
        deployment_id=row["deployment_id"],
        source=row["source"],
        verdict=row["verdict"],
        model_a=row["model_a"],
        model_b=row["model_b"],
        created_on=_when(row["created_on"]),
        voted_on=_when(row["voted_on"]),
        **{
            k: record.get(k)
            for k in ("prompt", "answer_a", "answer_b", "order_seed", "voter", "judge", "evaluation_id")
        },
        params=record.get("params") or {},
    )
