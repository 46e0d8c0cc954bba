"""The leaderboard of a deployment's models from pairwise outcomes (pure: numbers in, numbers out).

Bradley-Terry: P(i beats j) = σ(θ_i − θ_j), strengths θ by maximum likelihood (damped Newton steps
on the concave log-likelihood).  A tie (and "both bad") counts as half a win for each side, as
Chatbot Arena counts them: a tie says the two are close, which is what half a win each means to
the fit, with no extra parameter to estimate (Davidson's tie model needs one, and votes rarely
carry enough ties to pin it).  Strengths are centred (mean 0 over rated models) and shown on the
Elo scale as ``400/ln 10 · θ + 1000``.

Intervals are 95 % percentile bootstrap intervals.  Resampling votes with replacement is the same
as drawing the counts of each (pair, outcome) cell from a multinomial, so a resample costs one
draw per cell whatever the number of votes, and all resamples are fitted at once as a batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: θ → Elo points (one logistic unit is 400/ln 10 ≈ 173.7 points) and the centre of the scale
ELO_SCALE = 400 / math.log(10)
ELO_CENTRE = 1000.0
#: a hundredth of a tie added to every compared pair keeps the fit finite when a model won (or lost)
#: every comparison; against the votes of any real pair it moves θ by well under 1e-3
PRIOR_TIES = 0.01
DEFAULT_RESAMPLES = 200
LEVEL = 0.95
#: below this many comparisons of a pair, overlapping intervals mean "compare more"; from it on they
#: mean the comparisons found no (clear) difference, which more of the same will not change much
FEW_COMPARISONS = 10
#: the outcomes a comparison can have: the first side wins, the second wins, or neither (tie / both bad)
WIN_A, WIN_B, TIE = 0, 1, 2


@dataclass
class Standing:
    model: str
    theta: float | None  # None: never compared
    elo: float | None
    elo_low: float | None
    elo_high: float | None
    rank: int | None  # 1 + the models whose interval lies wholly above this one's
    wins: float
    losses: float
    ties: float
    comparisons: int
    #: the models whose intervals overlap this one's (why: the leaderboard's notes, :func:`overlap_notes`)
    unresolved: list[str] = field(default_factory=list)


@dataclass
class Leaderboard:
    models: list[str]
    standings: list[Standing]  # best first
    win_rate: list[list[float | None]]  # [i][j]: share of i's comparisons with j that i won (ties ½)
    comparisons: list[list[int]]  # [i][j]: how many times i and j were compared
    votes: int
    resamples: int
    notes: list[str] = field(default_factory=list)


def outcome_counts(
    n_models: int, first: Sequence[int] | np.ndarray, second: Sequence[int] | np.ndarray, outcome: Sequence[int]
) -> np.ndarray:
    """Counts per (i, j, outcome) cell with i < j (shape K×K×3), outcomes seen from i's side."""
    a, b, o = (np.asarray(x, dtype=np.int64) for x in (first, second, outcome))
    if a.size and (a.min() < 0 or b.min() < 0 or max(a.max(), b.max()) >= n_models):
        raise ValueError("a comparison names a model index outside the list")
    if np.any(a == b):
        raise ValueError("a model cannot be compared with itself")
    swap = a > b
    o = np.where(swap & (o != TIE), 1 - o, o)  # seen from the smaller index's side
    i, j = np.where(swap, b, a), np.where(swap, a, b)
    flat = np.bincount((i * n_models + j) * 3 + o, minlength=n_models * n_models * 3)
    return flat.reshape(n_models, n_models, 3)


def _wins(cells: np.ndarray) -> np.ndarray:
    """Win matrices W[..., i, j] (ties as ½ each) from cell counts [..., i, j, outcome] (i < j filled)."""
    half = 0.5 * cells[..., TIE]
    w = cells[..., WIN_A] + half
    return w + np.swapaxes(cells[..., WIN_B] + half, -1, -2)


def fit(wins: np.ndarray, tol: float = 1e-10, max_steps: int = 200) -> np.ndarray:
    """Centred strengths θ by maximum likelihood, for one win matrix (K×K) or a batch (B×K×K).

    Newton on the log-likelihood with the all-ones direction added to the Hessian: θ is defined only
    up to a constant, the gradient never points along it, so the step is the usual one and θ stays
    centred.  A step is capped at 1 logistic unit (a large first step can overshoot a concave
    function's maximum)."""
    w = np.asarray(wins, dtype=float)
    single = w.ndim == 2
    if single:
        w = w[None]
    k = w.shape[-1]
    n = w + np.swapaxes(w, -1, -2)
    w = w + PRIOR_TIES * 0.5 * (n > 0)
    n = n + PRIOR_TIES * (n > 0)
    theta = np.zeros(w.shape[:-1])
    ones = np.full((k, k), 1.0 / k)
    ridge = 1e-9 * np.eye(k)  # keeps the step defined for a model never compared, or apart
    for _ in range(max_steps):
        p = 1.0 / (1.0 + np.exp(theta[..., None, :] - theta[..., None]))  # p[i, j] = σ(θ_i − θ_j)
        grad = (w - n * p).sum(-1)
        curv = n * p * (1 - p)
        hess = curv - np.eye(k) * curv.sum(-1)[..., None]  # concave: −H is positive semi-definite
        step = np.linalg.solve(-hess + ones + ridge, grad[..., None])[..., 0]
        step *= np.minimum(1.0, 1.0 / np.maximum(np.abs(step).max(-1, keepdims=True), 1e-300))
        theta = theta + step
        theta -= theta.mean(-1, keepdims=True)
        if np.abs(step).max() < tol:
            break
    return theta[0] if single else theta


def elo(theta: np.ndarray | float) -> np.ndarray | float:
    return ELO_SCALE * theta + ELO_CENTRE


def bootstrap(cells: np.ndarray, resamples: int, seed: int | None = 0) -> np.ndarray:
    """θ of ``resamples`` bootstrap resamples of the comparisons (B×K), all fitted as one batch."""
    k = cells.shape[0]
    flat = cells.reshape(-1).astype(float)
    total = int(flat.sum())
    if total == 0 or resamples <= 0:
        return np.zeros((0, k))
    draws = np.random.default_rng(seed).multinomial(total, flat / total, size=resamples)
    return fit(_wins(draws.reshape(resamples, k, k, 3)))


def _centred_on(theta: np.ndarray, rated: np.ndarray) -> np.ndarray:
    if not rated.any():  # nothing compared yet: no mean to centre on (numpy would warn of an empty slice)
        return theta
    return theta - theta[..., rated].mean(-1, keepdims=True)


def leaderboard(
    models: Sequence[str],
    first: Sequence[int],
    second: Sequence[int],
    outcome: Sequence[int],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int | None = 0,
) -> Leaderboard:
    """The standings of ``models`` from comparisons ``(first[v], second[v], outcome[v])`` (indices
    into ``models``; outcome WIN_A, WIN_B or TIE)."""
    k = len(models)
    cells = outcome_counts(k, first, second, outcome)
    w = _wins(cells)
    n = w + w.T
    rated = n.sum(1) > 0
    notes = []
    theta = _centred_on(fit(w), rated) if k else np.zeros(0)
    samples = _centred_on(bootstrap(cells, resamples, seed), rated) if rated.any() else np.zeros((0, k))
    if len(samples):
        tail = (1 - LEVEL) / 2 * 100
        low, high = np.percentile(elo(samples), [tail, 100 - tail], axis=0)
    else:
        low = high = np.full(k, np.nan)
    if rated.sum() > 1 and _components(n[np.ix_(rated, rated)]) > 1:
        notes.append(
            "some models were never compared, directly or through others: their strengths are on separate "
            "scales — compare across the groups to join them"
        )
    unrated = [models[i] for i in range(k) if not rated[i]]
    if unrated:
        notes.append(f"no comparisons yet for {', '.join(unrated)}")
    standings = []
    for i in range(k):
        r = bool(rated[i])
        overlap = [models[j] for j in range(k) if j != i and rated[j] and r and low[j] <= high[i] and low[i] <= high[j]]
        standings.append(
            Standing(
                model=models[i],
                theta=float(theta[i]) if r else None,
                elo=float(elo(theta[i])) if r else None,
                elo_low=float(low[i]) if r and len(samples) else None,
                elo_high=float(high[i]) if r and len(samples) else None,
                rank=1 + sum(1 for j in range(k) if rated[j] and j != i and low[j] > high[i]) if r else None,
                wins=float(cells[i, :, WIN_A].sum() + cells[:, i, WIN_B].sum()),
                losses=float(cells[i, :, WIN_B].sum() + cells[:, i, WIN_A].sum()),
                ties=float(cells[i, :, TIE].sum() + cells[:, i, TIE].sum()),
                comparisons=int(n[i].sum()),
                unresolved=overlap,
            )
        )
    notes[:0] = overlap_notes(models, standings, cells)
    standings.sort(key=lambda s: (s.theta is None, -(s.theta or 0.0), s.model))
    rates = [[float(w[i, j] / n[i, j]) if n[i, j] else None for j in range(k)] for i in range(k)]
    return Leaderboard(
        models=list(models),
        standings=standings,
        win_rate=rates,
        comparisons=[[int(round(n[i, j])) for j in range(k)] for i in range(k)],
        votes=int(cells.sum()),
        resamples=len(samples),
        notes=notes,
    )


def overlap_notes(models: Sequence[str], standings: Sequence[Standing], cells: np.ndarray) -> list[str]:
    """One sentence per pair whose intervals overlap, saying why: too few comparisons to tell (compare
    more), or enough of them that found no difference (all ties) or no clear one.  Every front (CLI,
    widgets, sidebar, reports) shows these notes, so they all say the same."""
    index = {m: i for i, m in enumerate(models)}
    pairs = sorted({tuple(sorted((s.model, o))) for s in standings for o in s.unresolved})
    notes = []
    for a, b in pairs:
        i, j = sorted((index[a], index[b]))
        n, ties = int(cells[i, j].sum()), int(cells[i, j, TIE])
        names = f"{a} and {b}"
        if n < FEW_COMPARISONS:
            seen = "never compared directly" if n == 0 else f"only {n} comparison{'s' if n != 1 else ''}"
            notes.append(
                f"Not enough comparisons to tell apart {names}: {seen}, their intervals overlap — compare more"
            )
        elif ties == n:
            notes.append(f"{names}: {n} comparisons, all ties: no difference found")
        else:
            notes.append(f"{names}: {n} comparisons, their intervals overlap: no clear difference found")
    return notes


def _components(n: np.ndarray) -> int:
    """How many groups of models are linked by comparisons."""
    k, seen, groups = len(n), set(), 0
    for start in range(k):
        if start in seen:
            continue
        groups += 1
        stack = [start]
        while stack:
            i = stack.pop()
            if i not in seen:
                seen.add(i)
                stack += [j for j in range(k) if n[i, j] > 0 and j not in seen]
    return groups
