"""Allocation: ours (DP over GPU totals) vs ADS's exhaustive Cartesian product, same inputs.

The baseline is ADS 2.16.1's ``_verify_compatibility`` as documented in shared/reference/ads.md §b
(re-implemented here; it agreed with ADS on 8 000 random cases there).  Both run on the same
candidate lists — every model allows [1, 2, 4, 8] — for 2…12 models on an 8-GPU shape, with and
without a primary model.  Prints one row per case with both times and the ratio baseline/ours.

    python bench/allocation_bench.py [--repeat N] [--quick]
"""

from __future__ import annotations

import itertools
import statistics
import time

from _cli import arguments

from aqua_lab.planning import allocate


def ads_verify_compatibility(total, model_gpu_dict, primary_model_id=None):
    model_gpu_dict = dict(model_gpu_dict)
    n = len(model_gpu_dict)
    if primary_model_id and n > 1:
        primary = sorted(model_gpu_dict.pop(primary_model_id), reverse=True)
        others = list(model_gpu_dict)
        combos = list(itertools.product(*model_gpu_dict.values()))
        for g in primary:
            for cur in range(total, n - 1, -1):
                for c in combos:
                    if sum(c) == cur - g:
                        return True, {**dict(zip(others, c, strict=True)), primary_model_id: g}
        return False, {}
    ids = list(model_gpu_dict)
    for cur in range(total, n - 1, -1):
        best, spread = None, None
        for c in itertools.product(*model_gpu_dict.values()):
            if sum(c) == cur:
                s = max(c) - min(c)
                if best is None or s < spread:
                    best, spread = c, s
                    if s == 0:
                        break
        if best:
            return True, dict(zip(ids, best, strict=True))
    return False, {}


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    args = arguments(__doc__, {"repeat": 1, "max_models": 6}, repeat=3, max_models=12)
    print(f"{'models':>6} {'primary':>7} {'ADS product':>12} {'ours':>10} {'ratio':>9}  same GPUs used")
    for n in range(2, args.max_models + 1):
        cands = {f"m{i}": [1, 2, 4, 8] for i in range(n)}
        for primary in (None, "m0"):
            base_t, (base_fits, base_alloc) = timed(
                lambda c=cands, p=primary: ads_verify_compatibility(8, c, p), args.repeat
            )
            ours_t, ours = timed(lambda c=cands, p=primary: allocate(8, c, p), args.repeat)
            assert base_fits == ours.fits
            same = "-" if not ours.fits else sum(base_alloc.values()) == ours.used_gpus
            print(
                f"{n:>6} {primary or '-':>7} {base_t * 1e3:>10.3f}ms {ours_t * 1e3:>8.3f}ms "
                f"{base_t / ours_t:>8.1f}x  {same}"
            )


if __name__ == "__main__":
    main()
