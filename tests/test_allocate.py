"""GPU allocation: the rules of DESIGN.md § Allocation semantics, as a table and as properties."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqua_lab.errors import InvalidInput
from aqua_lab.planning import allocate, is_power_of_two

pytestmark = pytest.mark.planning

ALL = [1, 2, 4, 8]


@pytest.mark.parametrize(
    ("total", "candidates", "primary", "expected"),
    [
        # no primary: fill the shape, balance, earlier models get the extra GPUs
        (8, {"A": ALL, "B": ALL, "C": ALL}, None, {"A": 4, "B": 2, "C": 2}),
        (8, {"A": ALL, "B": ALL}, None, {"A": 4, "B": 4}),
        (8, {"A": ALL, "B": ALL, "C": ALL, "D": ALL}, None, {"A": 2, "B": 2, "C": 2, "D": 2}),
        (8, {"A": ALL, "B": ALL, "C": ALL, "D": ALL, "E": ALL}, None, {"A": 2, "B": 2, "C": 2, "D": 1, "E": 1}),
        (8, {"a": [2, 4], "b": [1, 2, 4], "c": [1, 2, 8]}, None, {"a": 4, "b": 2, "c": 2}),
        (4, {"A": [1], "B": [1, 2, 4], "C": [1, 2, 4]}, None, {"A": 1, "B": 2, "C": 1}),
        (4, {"A": [1, 2, 4]}, None, {"A": 4}),
        # under-use when nothing fills the shape: 3 × [2] on 8 uses 6
        (8, {"A": [2], "B": [2], "C": [2]}, None, {"A": 2, "B": 2, "C": 2}),
        # the seed's example: B primary → [2, 4, 2]
        (8, {"A": ALL, "B": ALL, "C": ALL}, "B", {"A": 2, "B": 4, "C": 2}),
        (8, {"a": [2, 4], "b": [1, 2, 4], "c": [1, 2, 8]}, "b", {"a": 2, "b": 4, "c": 2}),
        (8, {"A": ALL, "B": [4]}, "A", {"A": 4, "B": 4}),
        (4, {"A": [1], "B": [1, 2, 4], "C": [1, 2, 4]}, "C", {"A": 1, "B": 1, "C": 2}),
    ],
)
def test_allocation_table(total, candidates, primary, expected):
    result = allocate(total, candidates, primary)
    assert result.fits
    assert result.gpu_counts == expected
    assert list(result.gpu_counts) == list(candidates)  # input order kept
    assert result.used_gpus == sum(expected.values())
    if primary:
        assert result.primary_honoured is True
        assert result.reasons == []


def test_verify_compatibility():
    """ADS test_deployment.py::test_verify_compatibility, same inputs and expectations."""
    model_gpu_dict = {"model_a": [2, 4], "model_b": [1, 2, 4], "model_c": [1, 2, 8]}
    result = allocate(8, model_gpu_dict)
    assert result.fits and len(result.gpu_counts) == 3
    result = allocate(8, model_gpu_dict, "model_b")
    assert result.fits and result.gpu_counts["model_b"] == 4  # "model_b gets the maximum gpu count"
    result = allocate(0, {"model_a": [1, 2], "model_b": [1, 2], "model_c": [1, 2, 8]})
    assert not result.fits and result.gpu_counts == {}


def test_primary_that_cannot_be_favoured_says_why():
    # C only allows 4, so A ≥ C would need A=4 and leave no GPU for B: fill the shape and say so.
    result = allocate(8, {"A": [1, 2, 4], "B": [1, 2, 4], "C": [4]}, "A")
    assert result.fits and result.used_gpus == 8
    assert result.gpu_counts == {"A": 2, "B": 2, "C": 4}
    assert result.primary_honoured is False
    assert "cannot favour primary model 'A'" in result.reasons[0]
    assert "'C' gets 4" in result.reasons[0]
    assert result.alternatives == []


def test_primary_gets_the_largest_share_that_still_fills_the_shape():
    result = allocate(8, {"A": [1, 2], "B": [1, 2, 4, 8], "C": [2]}, "B")
    assert result.gpu_counts == {"A": 2, "B": 4, "C": 2}
    assert result.primary_honoured is True
    assert result.alternatives == []


def test_the_primary_gets_the_most_even_when_that_leaves_a_gpu_idle_and_the_fuller_split_is_offered():
    # issue 16's example; ADS gives P4 B1 C2 as well.  Filling the shape (P2 B4 C2) is an alternative.
    result = allocate(8, {"P": [2, 4], "B": [1, 4], "C": [1, 2]}, "P")
    assert result.gpu_counts == {"P": 4, "B": 1, "C": 2}
    assert result.primary_honoured is True and result.reasons == []
    [alt] = result.alternatives
    assert alt.gpu_counts == {"P": 2, "B": 4, "C": 2}
    assert (alt.used_gpus, alt.adds_gpus, alt.above_primary) == (8, 1, ["B"])


def test_favouring_the_primary_wins_over_filling_the_shape():
    result = allocate(8, {"A": [2], "B": [2, 4, 8]}, "A")
    assert result.gpu_counts == {"A": 2, "B": 2}
    assert result.primary_honoured is True
    [alt] = result.alternatives
    assert alt.gpu_counts == {"A": 2, "B": 4} and alt.adds_gpus == 2 and alt.above_primary == ["B"]


def test_counts_that_are_not_powers_of_two_are_rejected_not_used():
    result = allocate(8, {"A": [3, 5], "B": [3, 5]})
    assert not result.fits
    assert result.rejected_counts == {"A": [3, 5], "B": [3, 5]}
    assert all("powers of two" in r for r in result.reasons)
    mixed = allocate(8, {"A": [2, 5], "B": [2, 6]})
    assert mixed.fits and mixed.gpu_counts == {"A": 2, "B": 2}
    assert mixed.rejected_counts == {"A": [5], "B": [6]}


def test_counts_larger_than_the_shape_are_rejected():
    result = allocate(4, {"A": [8]})
    assert not result.fits
    assert result.rejected_counts == {"A": [8]}
    assert "only 4 GPU(s)" in result.reasons[0]


def test_zero_and_negative_counts_are_rejected():
    result = allocate(4, {"A": [0, 2], "B": [-1, 2]})
    assert result.gpu_counts == {"A": 2, "B": 2}
    assert result.rejected_counts == {"A": [0], "B": [-1]}


def test_a_shape_with_fewer_gpus_than_models():
    result = allocate(2, {"A": [1], "B": [1], "C": [1]})
    assert not result.fits
    assert result.reasons == ["3 models need at least one GPU each but the shape has 2"]


def test_smallest_counts_too_big_together():
    result = allocate(8, {"A": [4, 8], "B": [4], "C": [2]})
    assert not result.fits
    assert "need 10 GPUs but the shape has 8" in result.reasons[0]


def test_a_cpu_shape_has_no_gpus():
    result = allocate(0, {"a": [1, 2], "b": [1, 2], "c": [1, 2, 8]})
    assert not result.fits
    assert result.reasons == ["the shape has no GPUs"]


def test_empty_candidate_list_names_the_model():
    result = allocate(8, {"A": ALL, "B": []})
    assert not result.fits
    assert result.reasons == ["model 'B' has no allowed GPU count on this shape"]


def test_caller_mistakes_are_invalid_input():
    with pytest.raises(InvalidInput, match="candidates: no models"):
        allocate(8, {})
    with pytest.raises(InvalidInput, match="primary_model_id"):
        allocate(8, {"A": ALL}, "Z")
    with pytest.raises(InvalidInput, match="total_gpus"):
        allocate(-1, {"A": ALL})


def test_order_of_counts_in_config_does_not_matter():
    rng = random.Random(7)
    base = {"A": [1, 2, 4, 8], "B": [2, 4], "C": [1, 2, 4], "D": [1, 2]}
    for primary in [None, "A", "B", "C", "D"]:
        expected = allocate(8, base, primary)
        for _ in range(20):
            shuffled = {k: rng.sample(v, len(v)) + rng.sample(v, 1) for k, v in base.items()}
            assert allocate(8, shuffled, primary) == expected


# --------------------------------------------------------------------------------------------------
# Properties against brute force


def _valid(total, lists):
    return [
        combo
        for combo in itertools.product(
            *[[c for c in options if is_power_of_two(c) and c <= total] for options in lists]
        )
        if sum(combo) <= total
    ]


counts = st.lists(st.integers(min_value=0, max_value=9), min_size=0, max_size=5)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(min_value=0, max_value=16), lists=st.lists(counts, min_size=1, max_size=5), data=st.data())
def test_allocation_is_valid_and_follows_the_rules_against_brute_force(total, lists, data):
    ids = [f"m{i}" for i in range(len(lists))]
    primary = data.draw(st.sampled_from([None, *ids]))
    result = allocate(total, dict(zip(ids, lists, strict=True)), primary)
    valid = _valid(total, lists)
    assert result.fits == bool(valid)
    if not result.fits:
        assert result.reasons and result.gpu_counts == {}
        return
    chosen = [result.gpu_counts[i] for i in ids]
    assert tuple(chosen) in valid
    assert all(is_power_of_two(c) and c <= total for c in chosen)
    best = max(sum(c) for c in valid)
    if primary is None:
        assert sum(chosen) == best == result.used_gpus
        assert result.alternatives == []
        return
    p = ids.index(primary)
    full = [c for c in valid if sum(c) == best]
    favoured = [c for c in valid if all(c[p] >= x for x in c)]
    assert result.primary_honoured == bool(favoured)
    if favoured:
        most = max(sum(c) for c in favoured)
        top = max(c[p] for c in favoured if sum(c) == most)
        assert sum(chosen) == most == result.used_gpus and chosen[p] == top
        assert all(chosen[p] >= x for x in chosen) and result.reasons == []
        same = [c for c in favoured if sum(c) == most and c[p] == top]
        assert tuple(chosen) == _balanced_choice(same, p)
        if best > most:
            [alt] = result.alternatives
            filled = [alt.gpu_counts[i] for i in ids]
            assert tuple(filled) in full and alt.adds_gpus == best - most
            assert filled[p] == max(c[p] for c in full)
            assert alt.above_primary == [ids[i] for i, c in enumerate(filled) if c > filled[p]] != []
        else:
            assert result.alternatives == []
    else:
        assert sum(chosen) == best == result.used_gpus
        assert chosen[p] == max(c[p] for c in full)
        same = [c for c in full if c[p] == chosen[p]]
        assert tuple(chosen) == _balanced_choice(same, p)
        assert result.reasons and result.alternatives == []


def _balanced_choice(combos, p):
    """Brute force of rules 4–5: smallest spread among the non-primary models, then largest first."""

    def spread(c):
        rest = [x for i, x in enumerate(c) if i != p]
        return max(rest) - min(rest) if rest else 0

    least = min(spread(c) for c in combos)
    return max(c for c in combos if spread(c) == least)


@settings(max_examples=200, deadline=None)
@given(total=st.integers(min_value=1, max_value=16), lists=st.lists(counts, min_size=1, max_size=5))
def test_without_primary_the_result_is_the_most_balanced_then_largest_first(total, lists):
    ids = [f"m{i}" for i in range(len(lists))]
    result = allocate(total, dict(zip(ids, lists, strict=True)))
    valid = _valid(total, lists)
    if not valid:
        return
    best = max(sum(c) for c in valid)
    full = [c for c in valid if sum(c) == best]
    spread = min(max(c) - min(c) for c in full)
    expected = max(c for c in full if max(c) - min(c) == spread)
    assert tuple(result.gpu_counts[i] for i in ids) == expected
