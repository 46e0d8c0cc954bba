"""GPU allocation: how a shape's GPUs split between models.

Rules (DESIGN.md § Allocation semantics), in priority order:

1. every model gets one of its allowed counts; a count is usable only if it is a power of two and
   no larger than the shape (others are reported in ``rejected_counts``, never used);
2. with a primary model, only allocations in which the primary has at least as many GPUs as every
   other model count (the seed: "B always gets the maximum gpu count").  Among them: use the most
   GPUs, then give the primary the most.  Only when no such allocation exists does the rule fall
   back to filling the shape with the primary getting the largest count it can, and a reason says
   why it could not be favoured.  When filling the shape would use more GPUs than the primary-first
   split, that fuller split is offered in ``alternatives`` (with the GPUs it adds and who then gets
   more than the primary);
3. without a primary model: use as many of the shape's GPUs as possible;
4. balance: smallest (max − min) among the non-primary models (all models when there is no primary);
5. remaining ties go to input order: the lexicographically largest tuple of counts, i.e. earlier
   models get more.  The order of counts inside a config file never matters.

The search is exact and polynomial: reachability of GPU totals by dynamic programming over models
(a bitset per suffix), once per (primary count, balance window).  A window ``[lo, hi]`` bounds every
balanced model's count; windows are tried by increasing ``hi − lo`` so the first feasible one is the
most balanced.  Inside it, counts are chosen greedily model by model, largest first, keeping the
remaining total reachable by the models after it — which yields the lexicographically largest
allocation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..domain import AllocationAlternative, AllocationResult
from ..errors import InvalidInput, Problem


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def primary_problem(primary_model_id: str | None, model_ids: Sequence[str]) -> Problem | None:
    """The one check every caller makes on a primary model: it must be one of the models."""
    if primary_model_id is None or primary_model_id in model_ids:
        return None
    return Problem(
        "primary_model_id",
        f"{primary_model_id!r} is not one of the selected models",
        f"use one of {list(dict.fromkeys(model_ids))} or leave it out",
    )


def allocate(
    total_gpus: int,
    candidates: Mapping[str, Iterable[int]],
    primary_model_id: str | None = None,
) -> AllocationResult:
    """Split ``total_gpus`` between the models of ``candidates`` (model id → allowed GPU counts).

    Returns an :class:`AllocationResult`; when the models do not fit, ``fits`` is false and
    ``reasons`` says which model and which limit.  Raises :class:`InvalidInput` for caller mistakes
    (no models, a negative total, a primary model that is not among the candidates).
    """
    ids = list(candidates)
    if not ids:
        raise InvalidInput(Problem("candidates", "no models to allocate", "pass at least one model"))
    if total_gpus < 0:
        raise InvalidInput(Problem("total_gpus", f"{total_gpus} is negative", "pass 0 or more"))
    problem = primary_problem(primary_model_id, ids)
    if problem:
        raise InvalidInput(problem)

    lists, rejected = [], {}
    for model_id in ids:
        raw = list(candidates[model_id])
        usable = sorted({c for c in raw if isinstance(c, int) and is_power_of_two(c) and c <= total_gpus})
        bad = sorted({c for c in raw if c not in usable})
        if bad:
            rejected[model_id] = bad
        lists.append(usable)

    result = AllocationResult(
        fits=False,
        total_gpus=total_gpus,
        primary_model_id=primary_model_id,
        rejected_counts=rejected,
    )
    reasons = _why_it_cannot_fit(ids, candidates, lists, total_gpus)
    if reasons:
        result.reasons = reasons
        return result

    primary = ids.index(primary_model_id) if primary_model_id is not None else None
    result.fits = True
    if primary is None:
        counts = _balanced(lists, _best_total(lists, total_gpus))
    else:
        favoured = _primary_first(lists, total_gpus, primary)
        filled = _filled(lists, total_gpus, primary)
        counts = favoured or filled
        result.primary_honoured = favoured is not None
        if favoured is None:
            result.reasons = [_why_primary_not_favoured(ids, counts, primary, total_gpus, lists)]
        elif sum(filled) > sum(favoured):
            result.alternatives = [
                AllocationAlternative(
                    gpu_counts=dict(zip(ids, filled, strict=True)),
                    used_gpus=sum(filled),
                    adds_gpus=sum(filled) - sum(favoured),
                    above_primary=[ids[i] for i, c in enumerate(filled) if i != primary and c > filled[primary]],
                )
            ]
    result.gpu_counts = dict(zip(ids, counts, strict=True))
    result.used_gpus = sum(counts)
    return result


# --------------------------------------------------------------------------------------------------
# Feasibility


def _why_it_cannot_fit(
    ids: Sequence[str],
    raw: Mapping[str, Iterable[int]],
    lists: Sequence[Sequence[int]],
    total: int,
) -> list[str]:
    if total == 0:
        return ["the shape has no GPUs"]
    reasons = []
    for model_id, usable in zip(ids, lists, strict=True):
        if usable:
            continue
        given = sorted(set(raw[model_id]))
        if not given:
            reasons.append(f"model {model_id!r} has no allowed GPU count on this shape")
            continue
        why = []
        if any(not is_power_of_two(c) for c in given):
            why.append("GPU counts must be powers of two (1, 2, 4, 8…)")
        if any(is_power_of_two(c) and c > total for c in given):
            why.append(f"the shape has only {total} GPU(s)")
        reasons.append(f"model {model_id!r} allows {given} GPU(s), none usable: {'; '.join(why)}")
    if reasons:
        return reasons
    if len(ids) > total:
        return [f"{len(ids)} models need at least one GPU each but the shape has {total}"]
    smallest = [usable[0] for usable in lists]
    if sum(smallest) > total:
        parts = ", ".join(f"{m}: {c}" for m, c in zip(ids, smallest, strict=True))
        return [f"even the smallest allowed counts ({parts}) need {sum(smallest)} GPUs but the shape has {total}"]
    return []


# --------------------------------------------------------------------------------------------------
# Exact search


def _suffix_reach(lists: Sequence[Sequence[int]], total: int) -> list[int]:
    """``reach[i]`` is a bitset: bit s is set when models i.. can use exactly s GPUs."""
    mask = (1 << (total + 1)) - 1
    reach = [0] * (len(lists) + 1)
    reach[-1] = 1
    for i in range(len(lists) - 1, -1, -1):
        bits = 0
        for c in lists[i]:
            bits |= reach[i + 1] << c
        reach[i] = bits & mask
    return reach


def _can_make(lists: Sequence[Sequence[int]], target: int) -> bool:
    return target >= 0 and bool(_suffix_reach(lists, target)[0] >> target & 1)


def _lexicographically_largest(lists: Sequence[Sequence[int]], target: int) -> list[int]:
    reach = _suffix_reach(lists, target)
    chosen, left = [], target
    for i, options in enumerate(lists):
        for c in sorted(options, reverse=True):
            if c <= left and reach[i + 1] >> (left - c) & 1:
                chosen.append(c)
                left -= c
                break
    return chosen


def _windows(lists: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    values = sorted({c for options in lists for c in options})
    pairs = [(lo, hi) for lo in values for hi in values if lo <= hi]
    return sorted(pairs, key=lambda w: (w[1] - w[0], -w[1]))


def _balanced(lists: Sequence[Sequence[int]], target: int) -> list[int]:
    """Counts from ``lists`` summing to ``target`` with the smallest spread, then largest-first."""
    if not lists:
        return []
    for lo, hi in _windows(lists):
        bounded = [[c for c in options if lo <= c <= hi] for options in lists]
        if all(bounded) and _can_make(bounded, target):
            return _lexicographically_largest(bounded, target)
    raise AssertionError("target was checked reachable before balancing")


def _best_total(lists: Sequence[Sequence[int]], total: int) -> int:
    """The most GPUs (≤ ``total``) the models can use together; -1 when they cannot."""
    return _suffix_reach(lists, total)[0].bit_length() - 1


def _insert(primary: int, g: int, rest: list[int]) -> list[int]:
    return rest[:primary] + [g] + rest[primary:]


def _primary_first(lists: Sequence[Sequence[int]], total: int, primary: int) -> list[int] | None:
    """Among allocations where the primary has ≥ every other model: most GPUs, then the largest
    primary count, then balance the others.  ``None`` when no allocation favours the primary."""
    others = [options for i, options in enumerate(lists) if i != primary]
    best: tuple[int, int, list[list[int]]] | None = None  # (used GPUs, primary count, capped lists)
    for g in sorted(lists[primary], reverse=True):
        capped = [[c for c in options if c <= g] for options in others]
        if not all(capped):
            continue
        rest = _best_total(capped, total - g)
        if rest >= 0 and (best is None or g + rest > best[0]):
            best = (g + rest, g, capped)
    if best is None:
        return None
    used, g, capped = best
    return _insert(primary, g, _balanced(capped, used - g))


def _filled(lists: Sequence[Sequence[int]], total: int, primary: int) -> list[int]:
    """Fill the shape first: most GPUs, then the largest primary count, then balance the others."""
    best_total = _best_total(lists, total)
    others = [options for i, options in enumerate(lists) if i != primary]
    for g in sorted(lists[primary], reverse=True):
        if _can_make(others, best_total - g):
            return _insert(primary, g, _balanced(others, best_total - g))
    raise AssertionError("best_total was reachable, so some primary count reaches it")


def _why_primary_not_favoured(
    ids: Sequence[str],
    counts: Sequence[int],
    primary: int,
    total: int,
    lists: Sequence[Sequence[int]],
) -> str:
    name = ids[primary]
    bigger = [f"{ids[i]!r} gets {c}" for i, c in enumerate(counts) if i != primary and c > counts[primary]]
    return (
        f"cannot favour primary model {name!r} on this {total}-GPU shape: no allowed split gives it at "
        f"least as many GPUs as every other model, so the shape is filled and it gets {counts[primary]} "
        f"GPU(s) while {', '.join(bigger)} (it allows {list(lists[primary])})"
    )


# --------------------------------------------------------------------------------------------------
# Several models on one GPU (local only)

SHARING_IS_LOCAL = (
    "each model gets whole GPUs here (the AQUA container's rule on OCI); several models on one GPU, each "
    "within its own memory budget, is a capability of the local platform (or a BYOC container)"
)


@dataclass(frozen=True)
class SharedPlacement:
    """Which GPUs each model runs on when models may share a GPU, and the memory each may use there."""

    fits: bool
    gpus: dict[str, list[int]] = field(default_factory=dict)  # model → its GPU indices
    budgets_gb: dict[str, float] = field(default_factory=dict)  # model → its memory on each of its GPUs
    reasons: list[str] = field(default_factory=list)

    @property
    def shared(self) -> dict[int, list[str]]:
        """GPU → the models on it, for GPUs that hold more than one."""
        on: dict[int, list[str]] = {}
        for model, gpus in self.gpus.items():
            for g in gpus:
                on.setdefault(g, []).append(model)
        return {g: models for g, models in sorted(on.items()) if len(models) > 1}

    def note(self, model: str) -> str | None:
        """The note "shares GPU 0 with 'b'" for a model that shares; None for one alone on its GPUs."""
        parts = [
            f"GPU {g} with {', '.join(repr(m) for m in models if m != model)}"
            for g, models in self.shared.items()
            if model in models
        ]
        return "shares " + "; ".join(parts) if parts else None


def pack_shared(
    total_gpus: int,
    usable_gb: float,
    needs: Mapping[str, tuple[int, float]],
    primary_model_id: str | None = None,
) -> SharedPlacement:
    """Place models (model → (GPU count, memory needed on each of its GPUs)) on ``total_gpus`` GPUs of
    ``usable_gb`` each (memory × utilisation), letting single-GPU models share a GPU.

    Models on several GPUs (tensor parallel) keep them whole.  A single-GPU model takes an empty GPU
    while there is one, so nothing shares that need not; after that, best fit (the GPU with the least
    room that still holds it).  The primary model is placed first and its GPU is the last any other
    model is put on, so it shares only when nothing else fits; GPU counts come from :func:`allocate`,
    whose rule (the primary has at least as many as every other model) is checked here too.  Every
    model's budget is its need, so the budgets on each GPU sum to at most ``usable_gb``."""
    problem = primary_problem(primary_model_id, list(needs))
    if problem:
        raise InvalidInput(problem)
    reasons = []
    for model, (count, need) in needs.items():
        if not is_power_of_two(count) or count > total_gpus:
            reasons.append(f"model {model!r}: {count} GPUs is not a power of two up to {total_gpus}")
        elif need > usable_gb:
            reasons.append(f"model {model!r} needs {need:.1f} GB per GPU but one GPU gives {usable_gb:.1f} GB")
    if primary_model_id is not None:
        top = needs[primary_model_id][0]
        reasons += [
            f"model {m!r} gets {c} GPUs, more than the primary {primary_model_id!r} ({top})"
            for m, (c, _) in needs.items()
            if c > top
        ]
    if reasons:
        return SharedPlacement(False, reasons=reasons)

    def order(item: tuple[int, tuple[str, tuple[int, float]]]):
        i, (model, (count, need)) = item
        return (model != primary_model_id, -count, -need, i)

    room = [usable_gb] * total_gpus
    holders: list[list[str]] = [[] for _ in range(total_gpus)]
    placed: dict[str, list[int]] = {}
    for _, (model, (count, need)) in sorted(enumerate(needs.items()), key=order):
        empty = [g for g in range(total_gpus) if not holders[g]]
        if count > 1 or empty:
            if len(empty) < count:
                why = f"model {model!r} needs {count} whole GPU(s) but {len(empty)} are left"
                return SharedPlacement(False, reasons=[why])
            chosen = empty[:count]
        else:
            fitting = [g for g in range(total_gpus) if room[g] >= need and _shareable(g, holders, needs)]
            if not fitting:
                left = ", ".join(
                    f"GPU {g}: {room[g]:.1f} GB"
                    if _shareable(g, holders, needs)
                    else f"GPU {g}: whole to {holders[g][0]!r}"
                    for g in range(total_gpus)
                )
                why = f"model {model!r} needs {need:.1f} GB but no GPU it may share has that much left ({left})"
                return SharedPlacement(False, reasons=[why])
            chosen = [min(fitting, key=lambda g: (primary_model_id in holders[g], room[g], g))]
        for g in chosen:
            room[g] -= need
            holders[g].append(model)
        placed[model] = chosen
    gpus = {model: placed[model] for model in needs}  # input order
    return SharedPlacement(True, gpus, {m: round(needs[m][1], 3) for m in needs})


def _shareable(gpu: int, holders: list[list[str]], needs: Mapping[str, tuple[int, float]]) -> bool:
    """A GPU held by a tensor-parallel model stays whole."""
    return all(needs[m][0] == 1 for m in holders[gpu])
