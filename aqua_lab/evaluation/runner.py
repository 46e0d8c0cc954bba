"""Generate every chosen model's answers to the same dataset concurrently, then score them.

The runner knows nothing about platforms: it is given an async ``chat(model, body) -> response``
(the service's chat for real, a fake in tests) and calls back on every finished row, so the caller
decides where predictions go (a JSONL file for the local job) and how progress is shown.  Rows
already done (``resume``) are not generated again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .datasets import Row
from .metrics import JUDGED, MetricResult, score

ChatFn = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
#: (model, rows done, rows total, rows failed)
ProgressFn = Callable[[str, int, int, int], None]
#: consecutive failures after which a model's server is taken as down and its other rows are failed
GIVE_UP_AFTER = 3


@dataclass
class Prediction:
    index: int
    model: str
    prediction: str = ""
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    logprobs: list[float] | None = None
    #: the reference completion's tokens under the model (where the platform can force it)
    reference_logprobs: list[float] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})


def chat_body(row: Row, model: str, params: dict[str, Any], want_logprobs: bool) -> dict[str, Any]:
    body = {k: v for k, v in params.items() if k != "model"}
    body.update(model=model, messages=[{"role": "user", "content": row.prompt}], stream=False)
    if want_logprobs:
        body["logprobs"] = True
    return body


def reference_body(row: Row, model: str) -> dict[str, Any]:
    """A request that makes the model produce exactly the reference (a GBNF grammar of one literal)
    and return each token's log-probability.  llama-server reports the probability under the
    unconstrained model (``post_sampling_probs`` off), so these are the reference's own token
    log-probabilities — teacher forcing over HTTP, since llama-server has no prompt logprobs/echo."""
    literal = json.dumps(row.completion, ensure_ascii=False)  # GBNF literals escape as JSON strings do
    return {
        "model": model,
        "messages": [{"role": "user", "content": row.prompt}],
        "grammar": f"root ::= {literal}",
        "logprobs": True,
        "temperature": 0,
        # tokens are never more than characters; the slack covers the end-of-turn token
        "max_tokens": len(row.completion) + 8,
        "stream": False,
    }


def read_reference_logprobs(response: dict[str, Any]) -> list[float] | None:
    """The forced reference's token log-probabilities; the end-of-turn token (empty text) is not
    part of the reference and is left out."""
    choice = (response.get("choices") or [{}])[0]
    return _text_logprobs((choice.get("logprobs") or {}).get("content") or []) or None


def _text_logprobs(content: list[Any]) -> list[float]:
    """Log-probabilities of the tokens that carry text (the end-of-turn token has none)."""
    return [
        t["logprob"]
        for t in content
        if isinstance(t, dict) and t.get("token") and isinstance(t.get("logprob"), int | float)
    ]


def _well_formed(text: Any) -> str:
    """An answer as text every metric and report can encode: a model (or a JSON ``\\ud800`` escape in
    its answer) may send a lone surrogate, which the tokenizers and UTF-8 writers refuse after every
    row was generated; it becomes U+FFFD, as a stream decoder shows it."""
    text = text if isinstance(text, str) else str(text)
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def read_answer(index: int, model: str, response: dict[str, Any], latency_ms: float) -> Prediction:
    """The answer text, token counts and per-token log-probabilities of an OpenAI chat completion
    (``choices[0].logprobs.content[].logprob``, which llama-server and vLLM both return), the end
    token left out as for the reference."""
    choice = (response.get("choices") or [{}])[0]
    text = _well_formed((choice.get("message") or {}).get("content") or choice.get("text") or "")
    usage = response.get("usage") or {}
    content = (choice.get("logprobs") or {}).get("content") or []
    logprobs = _text_logprobs(content)
    return Prediction(
        index,
        model,
        text,
        round(latency_ms, 1),
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        logprobs or None,
    )


async def generate(
    rows: Sequence[Row],
    models: Sequence[str],
    chat: ChatFn,
    params: dict[str, Any] | None = None,
    concurrency: int | dict[str, int] = 4,
    want_logprobs: bool = False,
    score_reference: bool = False,
    resume: dict[str, dict[int, Prediction]] | None = None,
    on_prediction: Callable[[Prediction], None] | None = None,
    progress: ProgressFn | None = None,
    cancel: asyncio.Event | None = None,
    on_model_done: Callable[[str, dict[int, Prediction]], None] | None = None,
    on_row_answered: Callable[[int, dict[str, Prediction]], None] | None = None,
) -> dict[str, dict[int, Prediction]]:
    """Every model answers every row, models in parallel, each with ``concurrency`` requests in
    flight.  With ``score_reference`` each row also gets the reference completion's token
    log-probabilities (:func:`reference_body`; llama.cpp grammars).  A model whose server fails
    :data:`GIVE_UP_AFTER` times in a row gets its remaining rows marked failed with the reason; the
    other models go on.  Setting ``cancel`` stops new requests and
    returns what finished (cancelling the task works too).  ``on_model_done(model, predictions)``
    comes as soon as one model has every row (answered or failed), while others may still generate:
    that model can be scored meanwhile.  ``on_row_answered(index, {model: prediction})`` comes once
    every model has that row (answered or failed): a judge can compare the answers meanwhile."""
    params = params or {}
    done: dict[str, dict[int, Prediction]] = {m: dict((resume or {}).get(m, {})) for m in models}
    total = len(rows)

    async def one_model(model: str) -> None:
        limit = concurrency.get(model, 4) if isinstance(concurrency, dict) else concurrency
        results = done[model]
        todo = [r for r in rows if r.index not in results]
        queue: asyncio.Queue[Row] = asyncio.Queue()
        for r in todo:
            queue.put_nowait(r)
        state = {"failures": 0, "down": None}

        def record(p: Prediction) -> None:
            results[p.index] = p
            if on_prediction:
                on_prediction(p)
            if on_row_answered and all(p.index in done[m] for m in models):
                on_row_answered(p.index, {m: done[m][p.index] for m in models})
            if progress:
                progress(model, len(results), total, sum(1 for x in results.values() if x.error))

        async def worker() -> None:
            while not queue.empty():
                if cancel is not None and cancel.is_set():
                    return
                row = queue.get_nowait()
                if state["down"]:
                    record(Prediction(row.index, model, error=state["down"]))
                    continue
                started = time.perf_counter()
                try:
                    response = await chat(model, chat_body(row, model, params, want_logprobs))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the row fails with the reason; the run goes on
                    state["failures"] += 1
                    reason = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
                    if state["failures"] >= GIVE_UP_AFTER:
                        state["down"] = f"model server failing ({reason}); row not generated"
                    record(Prediction(row.index, model, error=reason))
                    continue
                state["failures"] = 0
                answer = read_answer(row.index, model, response, (time.perf_counter() - started) * 1000)
                if score_reference:
                    try:
                        answer.reference_logprobs = read_reference_logprobs(
                            await chat(model, reference_body(row, model))
                        )
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # the answer stands; perplexity falls back to the answer's own tokens
                        answer.reference_logprobs = None
                record(answer)

        await asyncio.gather(*(worker() for _ in range(max(1, min(limit, len(todo) or 1)))))
        if on_model_done and all(r.index in results for r in rows) and not (cancel is not None and cancel.is_set()):
            on_model_done(model, results)

    if progress:
        for m in models:
            progress(m, len(done[m]), total, sum(1 for x in done[m].values() if x.error))
    await asyncio.gather(*(one_model(m) for m in models))
    return done


@dataclass
class ModelScores:
    model: str
    metrics: list[MetricResult]
    predictions: list[Prediction]
    generation: dict[str, Any] = field(default_factory=dict)


def generation_figures(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Latency and token figures of the answered rows."""
    import statistics

    ok = [p for p in predictions if not p.error]
    lat = sorted(p.latency_ms for p in ok if p.latency_ms is not None)
    tokens = [p.completion_tokens for p in ok if p.completion_tokens is not None]
    rates = [p.completion_tokens / (p.latency_ms / 1000) for p in ok if p.completion_tokens and p.latency_ms]

    def pct(q: float) -> float | None:
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None

    reasons = Counter(p.error for p in predictions if p.error)
    return {
        "rows": len(predictions),
        "answered": len(ok),
        "failed": len(predictions) - len(ok),
        # why rows failed, in one line (the most frequent error; each failed row keeps its own)
        "failure_reason": reasons.most_common(1)[0][0] if reasons else None,
        "latency_ms_p50": pct(0.5),
        "latency_ms_p90": pct(0.9),
        "latency_ms_mean": statistics.fmean(lat) if lat else None,
        "completion_tokens_total": sum(tokens),
        "completion_tokens_mean": statistics.fmean(tokens) if tokens else None,
        "tokens_per_s_mean": statistics.fmean(rates) if rates else None,
    }


def score_model(
    rows: Sequence[Row],
    model: str,
    predictions: dict[int, Prediction],
    metrics: Sequence[tuple[str, dict[str, Any]]],
    encoder_factory=None,
    threads: int = 1,
) -> ModelScores:
    """Score the answered rows of one model; failed rows stay in the predictions with their reason
    and get no scores.  ``threads``: cores the scoring may use (BERTScore's encoder)."""
    ordered = [predictions.get(r.index) or Prediction(r.index, model, error="not generated") for r in rows]
    answered = [(r, p) for r, p in zip(rows, ordered, strict=True) if not p.error]
    preds = [p.prediction for _, p in answered]
    refs = [r.completion for r, _ in answered]
    results = []
    for name, args in metrics:
        if name in JUDGED:  # asked of a judge model after generation, not computed here
            continue
        result = score(
            name,
            args,
            preds,
            refs,
            logprobs=[p.logprobs for _, p in answered],
            reference_logprobs=[p.reference_logprobs for _, p in answered],
            encoder_factory=encoder_factory,
            threads=threads,
        )
        # align scores back to every dataset row (failed rows: None)
        by_index = {r.index: s for (r, _), s in zip(answered, result.rows, strict=True)}
        result.rows = [by_index.get(r.index, {k: None for k in result.keys}) for r in rows]
        results.append(result)
    return ModelScores(model, results, ordered, generation_figures(ordered))


def judge_score_result(rows: Sequence[Row], ratings: dict[int, int | None], rubric_note: str) -> MetricResult:
    """``judge_score`` of one model as a metric beside the others: the judge's 1-10 rating per row
    (None where the row failed or the judge gave no rating)."""
    from .metrics import METRICS

    info = METRICS["judge_score"]
    unparsed = sum(1 for r in rows if r.index in ratings and ratings[r.index] is None)
    result = MetricResult(
        info.name,
        info.label,
        info.keys,
        info.headline,
        [{"judge_score": ratings.get(r.index)} for r in rows],
        note=f"{rubric_note}; {unparsed} answer(s) the judge gave no rating for (unparsed)"
        if unparsed
        else rubric_note,
    )
    result.corpus = {"unparsed": unparsed}
    return result
