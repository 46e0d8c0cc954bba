"""Scoring: the metrics of ``ads aqua evaluation create --metrics`` computed by the libraries that
define them (rouge-score, sacrebleu, a numpy MiniLM for BERTScore, textstat), per row and summarised.

Pure functions: predictions, references and log-probabilities in, scores out.  Loading the MiniLM
weights is the only I/O and happens in :func:`minilm.default_encoder`, outside the scoring calls.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..arena.judge import check_rubric
from ..arena.judge_target import DEFAULT_JUDGE_MAX_TOKENS, MAX_JUDGE_MAX_TOKENS, judge_problems
from ..errors import InvalidInput, Problem, shown
from .readability import SCORES as READABILITY_SCORES

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
BERTSCORE_LABEL = "BERTScore (all-MiniLM-L6-v2, no baseline)"
#: why perplexity falls back to the model's own answer: servers return log-probabilities only for
#: tokens they generate (no ``echo``/prompt logprobs in llama-server); the reference is scored only
#: where the platform can force the model to generate it (a llama.cpp grammar).
NO_REFERENCE_LOGPROBS = (
    "this platform's model server cannot score a given text (log-probabilities come only for tokens it "
    "generates), so this is the perplexity of the model's own answer, not of the reference completion"
)
REFERENCE_LOGPROBS = (
    "perplexity of the reference completion: the model was made to generate it (a grammar of that exact "
    "text) and its own token log-probabilities were read"
)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    #: per-row score keys (the keys of a report's ``data`` rows)
    keys: tuple[str, ...]
    #: the key the summary line ("Median F1: …") is about
    headline: str
    #: accepted ``args`` and their defaults
    args: dict[str, Any]
    #: higher is better (perplexity: lower)
    higher_is_better: bool = True
    description: str = ""


METRICS: dict[str, MetricInfo] = {
    "bertscore": MetricInfo(
        "bertscore",
        BERTSCORE_LABEL,
        ("bertscore_precision", "bertscore_recall", "bertscore_f1"),
        "bertscore_f1",
        {},
        description="greedy cosine matching of contextual token embeddings (last layer, no idf, no baseline "
        "rescaling); not comparable with published roberta-large BERTScore numbers",
    ),
    "rouge": MetricInfo(
        "rouge",
        "ROUGE (rouge-score, F-measure)",
        ROUGE_TYPES,
        "rougeL",
        {"rouge_types": list(ROUGE_TYPES), "use_stemmer": True},
        description="n-gram (1, 2) and longest-common-subsequence overlap; rougeLsum splits sentences on newlines",
    ),
    "bleu": MetricInfo(
        "bleu",
        "BLEU (sacrebleu, 0–100)",
        ("bleu",),
        "bleu",
        {"tokenize": "13a", "lowercase": False},
        description="sentence BLEU per row (effective order), corpus BLEU over all rows",
    ),
    "perplexity_score": MetricInfo(
        "perplexity_score",
        "Perplexity (from the model's token log-probabilities)",
        ("perplexity_score",),
        "perplexity_score",
        {},
        higher_is_better=False,
        description="exp of the mean negative log-probability per token; lower is better",
    ),
    "text_readability": MetricInfo(
        "text_readability",
        "Text readability (textstat)",
        READABILITY_SCORES,
        "flesch_reading_ease",
        {},
        description="readability of each answer (not compared with the reference): Flesch reading ease "
        "(0–100, higher is easier to read) and grade levels (Flesch-Kincaid, Gunning fog, SMOG, "
        "Coleman-Liau, automated readability index, Dale-Chall: lower is easier); English syllables "
        "from the CMU pronouncing dictionary",
    ),
    "pairwise_judge": MetricInfo(
        "pairwise_judge",
        "Pairwise judge (an LLM compares every pair of answers, both orders)",
        (),
        "win_rate",
        {"judge": None, "rubric": None, "max_tokens": DEFAULT_JUDGE_MAX_TOKENS},
        description="a judge model compares every two models' answers to each row in both orders (2 × C(N, 2) "
        "requests a row); orders that disagree count as a tie and as the judge's inconsistency; verdicts go "
        "to the deployment's leaderboard (source judge). judge: a served name of this deployment (default: "
        'its first model), {"deployment_id", "model"}, or {"url", "model", "api_key_env"}',
    ),
    "judge_score": MetricInfo(
        "judge_score",
        "Judge score (an LLM rates each answer 1–10 against the reference)",
        ("judge_score",),
        "judge_score",
        {"judge": None, "rubric": None, "max_tokens": DEFAULT_JUDGE_MAX_TOKENS},
        description="a judge model rates each answer from 1 to 10 with the rubric, against the reference; "
        "an answer it gives no rating for is asked again once, then left unscored (counted as unparsed)",
    ),
}
#: metrics a judge model computes after generation (requests of their own), not the scorers here
JUDGED = ("pairwise_judge", "judge_score")
#: names in ADS's list that this engine refuses, with the reason (none today; kept for callers)
UNSUPPORTED: dict[str, str] = {}


def check_metrics(metrics: Sequence[Any], field_name: str = "metrics") -> list[tuple[str, dict[str, Any]]]:
    """``[{"name", "args"}]`` (dicts or MetricSpec) as (name, args with defaults); every problem at once."""
    problems, out = [], []
    for i, metric in enumerate(metrics):
        data = metric.model_dump() if hasattr(metric, "model_dump") else metric
        name, args = (data.get("name"), data.get("args") or {}) if isinstance(data, dict) else (None, {})
        where = f"{field_name}[{i}]"
        if name in UNSUPPORTED:
            problems.append(Problem(f"{where}.name", UNSUPPORTED[name], f"use one of {sorted(METRICS)}"))
            continue
        if name not in METRICS:
            problems.append(Problem(f"{where}.name", f"unknown metric {name!r}", f"use one of {sorted(METRICS)}"))
            continue
        info = METRICS[name]
        for key in args:
            if key not in info.args:
                accepted = sorted(info.args) or "none"
                problems.append(
                    Problem(f"{where}.args.{key}", f"{name} takes no argument {key!r}", f"accepted: {accepted}")
                )
        merged = {**info.args, **{k: v for k, v in args.items() if k in info.args}}
        if name == "rouge":
            bad = [t for t in merged["rouge_types"] if t not in ROUGE_TYPES]
            if bad or not merged["rouge_types"]:
                problems.append(
                    Problem(f"{where}.args.rouge_types", f"{bad or 'empty'}", f"use some of {list(ROUGE_TYPES)}")
                )
        if name in JUDGED:
            problems += _judge_arg_problems(merged, f"{where}.args")
        out.append((name, merged))
    if problems:
        raise InvalidInput(problems)
    return out


def pairwise_problems(metrics: Sequence[Any], models: Sequence[str], chosen: bool) -> list[Problem]:
    """A pairwise judge with fewer than two models to compare judges no pair: refused, never run to an
    empty verdict list.  ``chosen``: the user named one model (``model_parameters.model``)."""
    if len(models) >= 2:
        return []
    fix = (
        "drop model_parameters.model to evaluate every model, or use judge_score for one"
        if chosen
        else "evaluate a deployment of two or more models, or use judge_score for one"
    )
    names = [(m.model_dump() if hasattr(m, "model_dump") else m) for m in metrics]
    return [
        Problem(f"metrics[{i}].name", "pairwise_judge compares two or more models", fix)
        for i, m in enumerate(names)
        if isinstance(m, dict) and m.get("name") == "pairwise_judge"
    ]


def _judge_arg_problems(args: dict[str, Any], where: str) -> list[Problem]:
    problems = judge_problems(args["judge"], f"{where}.judge")
    try:
        check_rubric(args["rubric"], f"{where}.rubric")
    except InvalidInput as exc:
        problems += exc.problems
    tokens = args["max_tokens"]
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= MAX_JUDGE_MAX_TOKENS:
        problems.append(
            Problem(f"{where}.max_tokens", f"{shown(tokens)} is out of range", f"1 to {MAX_JUDGE_MAX_TOKENS}")
        )
    return problems


# scoring ------------------------------------------------------------------------------------------


def rouge(predictions: Sequence[str], references: Sequence[str], rouge_types=ROUGE_TYPES, use_stemmer=True):
    """F-measures per row.  rougeLsum gets newline-separated sentences; never ``split_summaries``,
    which needs NLTK's punkt download."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
    return [
        {k: v.fmeasure for k, v in scorer.score(target=ref, prediction=pred).items()}
        for pred, ref in zip(predictions, references, strict=True)
    ]


def bleu(predictions: Sequence[str], references: Sequence[str], tokenize="13a", lowercase=False):
    """(per-row sentence BLEU, corpus BLEU) on sacrebleu's 0–100 scale."""
    from sacrebleu.metrics import BLEU

    sentence = BLEU(tokenize=tokenize, lowercase=lowercase, effective_order=True)
    rows = [{"bleu": sentence.sentence_score(p, [r]).score} for p, r in zip(predictions, references, strict=True)]
    corpus = BLEU(tokenize=tokenize, lowercase=lowercase).corpus_score(list(predictions), [list(references)]).score
    return rows, corpus


def bertscore(
    predictions: Sequence[str], references: Sequence[str], encoder, threads: int = 1
) -> list[dict[str, float]]:
    """BERTScore as ``bert_score`` computes it without idf: cosine of every candidate token with every
    reference token (last layer, [CLS]/[SEP] inside the matrix but weighted 0), greedy max per token.
    The references' encodings are remembered by the encoder: every model of an evaluation is scored
    against the same references, which are encoded once.  ``threads``: encoder threads (idle cores)."""
    import numpy as np

    rows = []
    scored = [i for i, (p, r) in enumerate(zip(predictions, references, strict=True)) if p.strip() and r.strip()]
    candidates = encoder.encode_many([predictions[i] for i in scored], threads=threads)
    targets = encoder.encode_many([references[i] for i in scored], threads=threads, remember=True)
    pairs = dict(zip(scored, zip(candidates, targets, strict=True), strict=True))
    for i in range(len(predictions)):
        if i not in pairs:  # an empty answer matches nothing
            rows.append({"bertscore_precision": 0.0, "bertscore_recall": 0.0, "bertscore_f1": 0.0})
            continue
        c, r = pairs[i]
        cn = c.hidden / np.linalg.norm(c.hidden, axis=1, keepdims=True)
        rn = r.hidden / np.linalg.norm(r.hidden, axis=1, keepdims=True)
        sim = cn @ rn.T
        special = (encoder.cls_id, encoder.sep_id)
        cw = np.array([0.0 if t in special else 1.0 for t in c.ids])
        rw = np.array([0.0 if t in special else 1.0 for t in r.ids])
        p = float((sim.max(1) * cw).sum() / cw.sum())
        rc = float((sim.max(0) * rw).sum() / rw.sum())
        f = 2 * p * rc / (p + rc) if p + rc else 0.0
        rows.append({"bertscore_precision": p, "bertscore_recall": rc, "bertscore_f1": f})
    return rows


def perplexity(logprobs: Sequence[float] | None) -> float | None:
    """exp(−mean log p) over the tokens; None when there are none to score."""
    if not logprobs:
        return None
    return math.exp(-sum(logprobs) / len(logprobs))


def prepare(names: Sequence[str]) -> None:
    """Load what scoring the named metrics needs (their libraries, the MiniLM weights, the CMU
    dictionary) ahead of the first score, e.g. while the models still generate."""
    if "rouge" in names:
        import rouge_score.rouge_scorer  # noqa: F401 — imports nltk: a third of a second
    if "bleu" in names:
        import sacrebleu.metrics  # noqa: F401
    if "bertscore" in names:
        from .minilm import default_encoder

        default_encoder().encode_many(["warm"])
    if "text_readability" in names:
        from .readability import readability

        readability(["Warm."])


# results ------------------------------------------------------------------------------------------


@dataclass
class MetricResult:
    name: str
    label: str
    keys: tuple[str, ...]
    headline: str
    rows: list[dict[str, float | None]]
    corpus: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    higher_is_better: bool = True

    def values(self, key: str) -> list[float]:
        return [r[key] for r in self.rows if r.get(key) is not None]

    def stats(self, key: str) -> dict[str, float | int | None]:
        v = self.values(key)
        if not v:
            return {"count": 0, "median": None, "mean": None, "sd": None, "min": None, "max": None}
        return {
            "count": len(v),
            "median": statistics.median(v),
            "mean": statistics.fmean(v),
            "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v),
            "max": max(v),
        }

    def summary_line(self) -> str:
        """ADS's wording: ``Median F1: 0.598 (SD: 0.018)``."""
        s = self.stats(self.headline)
        short = {"bertscore_f1": "F1", "perplexity_score": "perplexity"}.get(self.headline, self.headline)
        if s["median"] is None:
            return f"Median {short}: n/a ({self.note or 'no rows scored'})"
        digits = 1 if self.name in ("bleu", "perplexity_score", "text_readability") else 3
        return f"Median {short}: {s['median']:.{digits}f} (SD: {s['sd']:.{digits}f})"


def score(
    name: str,
    args: dict[str, Any],
    predictions: Sequence[str],
    references: Sequence[str],
    logprobs: Sequence[Sequence[float] | None] = (),
    reference_logprobs: Sequence[Sequence[float] | None] = (),
    encoder_factory: Callable[[], Any] | None = None,
    threads: int = 1,
) -> MetricResult:
    """One metric over aligned rows.  ``reference_logprobs`` (the reference completion's tokens under
    the model) is used for perplexity where the platform gave it; otherwise the answer's own.
    ``threads``: cores BERTScore's encoder may use."""
    info = METRICS[name]
    corpus: dict[str, float] = {}
    note = None
    if not predictions:
        rows, note = [], "no answered rows to score"
    elif name == "rouge":
        rows = rouge(predictions, references, args["rouge_types"], args["use_stemmer"])
    elif name == "bleu":
        rows, corpus["bleu"] = bleu(predictions, references, args["tokenize"], args["lowercase"])
    elif name == "bertscore":
        from .minilm import default_encoder

        rows = bertscore(predictions, references, (encoder_factory or default_encoder)(), threads)
    elif name == "perplexity_score":
        use_reference = bool(reference_logprobs) and any(reference_logprobs)
        source = reference_logprobs if use_reference else logprobs
        rows = [{"perplexity_score": perplexity(lp)} for lp in (list(source) or [None] * len(predictions))]
        note = REFERENCE_LOGPROBS if use_reference else None
        if not use_reference:
            note = NO_REFERENCE_LOGPROBS
            if not any(r["perplexity_score"] is not None for r in rows):
                note = "the model server returned no token log-probabilities, so perplexity cannot be computed"
    elif name == "text_readability":
        from .readability import readability

        rows = readability(predictions)
    keys = tuple(k for k in info.keys if name != "rouge" or k in args["rouge_types"])
    headline = info.headline if info.headline in keys else keys[0]
    return MetricResult(name, info.label, keys, headline, rows, corpus, note, info.higher_is_better)
