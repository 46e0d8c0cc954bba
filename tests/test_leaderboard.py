"""The leaderboard's Bradley-Terry fit against an independent maximum-likelihood fit, and its bootstrap
intervals against the true strengths of simulated votes."""

from __future__ import annotations

import numpy as np
import pytest

from aqua_lab.arena.leaderboard import ELO_CENTRE, ELO_SCALE, TIE, WIN_A, WIN_B, leaderboard

pytestmark = pytest.mark.arena


def simulate(theta: np.ndarray, votes: int, rng: np.random.Generator, tie_share: float = 0.0):
    k = len(theta)
    a = rng.integers(0, k, votes)
    b = (a + rng.integers(1, k, votes)) % k
    p = 1 / (1 + np.exp(theta[b] - theta[a]))
    u = rng.random(votes)
    decided = u < 1 - tie_share
    won = rng.random(votes) < p
    return a, b, np.where(decided, np.where(won, WIN_A, WIN_B), TIE)


def gradient_ascent_mle(k: int, a: np.ndarray, b: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Written apart from the module on purpose: plain gradient ascent on the mean log-likelihood
    over the votes themselves, a tie scoring ½ for each side."""
    score = np.where(outcome == WIN_A, 1.0, np.where(outcome == WIN_B, 0.0, 0.5))
    theta = np.zeros(k)
    for _ in range(20000):
        p = 1 / (1 + np.exp(theta[b] - theta[a]))
        residual = score - p
        grad = np.bincount(a, residual, k) - np.bincount(b, residual, k)
        grad /= len(a)
        theta += 4.0 * grad
        if np.abs(grad).max() < 1e-11:
            break
    return theta - theta.mean()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_strengths_match_an_independent_maximum_likelihood_fit(seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, 5)
    a, b, o = simulate(truth, 4000, rng, tie_share=0.15)
    names = [f"model-{i}" for i in range(5)]
    board = leaderboard(names, a, b, o, resamples=0)
    reference = gradient_ascent_mle(5, a, b, o)
    ours = np.array([next(s.theta for s in board.standings if s.model == n) for n in names])
    assert np.abs(ours - reference).max() < 1e-3
    assert [s.model for s in board.standings] == [names[i] for i in np.argsort(-reference)]
    # the Elo column is the same strengths on the familiar scale
    top = board.standings[0]
    assert top.elo == pytest.approx(ELO_SCALE * top.theta + ELO_CENTRE)


def test_bootstrap_intervals_cover_the_true_strengths():
    rng = np.random.default_rng(7)
    hits = total = 0
    for sim in range(40):
        truth = rng.normal(0, 0.8, 4)
        truth -= truth.mean()
        a, b, o = simulate(truth, 600, rng)
        board = leaderboard([str(i) for i in range(4)], a, b, o, resamples=200, seed=sim)
        for s in board.standings:
            true_elo = ELO_SCALE * truth[int(s.model)] + ELO_CENTRE
            hits += s.elo_low <= true_elo <= s.elo_high
            total += 1
    assert hits / total >= 0.90, f"coverage {hits / total:.0%}"


def test_the_win_rate_matrix_counts_ties_as_half_and_pairs_are_counted():
    # a beat b twice, b beat a once, one tie; c only met a, and lost
    a = [0, 0, 1, 0, 2]
    b = [1, 1, 0, 1, 0]
    o = [WIN_A, WIN_A, WIN_A, TIE, WIN_B]
    board = leaderboard(["a", "b", "c"], a, b, o, resamples=50)
    assert board.comparisons == [[0, 4, 1], [4, 0, 0], [1, 0, 0]]
    assert board.win_rate[0][1] == pytest.approx(2.5 / 4)
    assert board.win_rate[1][0] == pytest.approx(1.5 / 4)
    assert board.win_rate[1][2] is None
    assert board.win_rate[0][2] == 1.0
    first = board.standings[0]
    assert first.model == "a" and first.wins == 3 and first.losses == 1 and first.ties == 1


def test_overlapping_intervals_say_there_are_not_enough_comparisons():
    rng = np.random.default_rng(3)
    a, b, o = simulate(np.array([0.0, 0.05, 3.0]), 60, rng)
    board = leaderboard(["x", "y", "z"], a, b, o)
    by = {s.model: s for s in board.standings}
    assert "y" in by["x"].unresolved and "x" in by["y"].unresolved
    assert by["z"].rank == 1 and by["x"].rank == by["y"].rank == 2
    assert by["z"].unresolved == []


def test_a_model_that_won_everything_or_was_never_compared_still_gets_an_answer():
    board = leaderboard(["best", "worst", "idle"], [0] * 20, [1] * 20, [WIN_A] * 20, resamples=20)
    by = {s.model: s for s in board.standings}
    assert np.isfinite(by["best"].elo) and by["best"].elo > by["worst"].elo
    assert by["idle"].elo is None and by["idle"].rank is None
    assert board.notes == ["no comparisons yet for idle"]
