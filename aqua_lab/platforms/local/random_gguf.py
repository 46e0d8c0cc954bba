"""Llama GGUF files of a chosen shape with random weights and SmolLM2's tokenizer and chat template, so
llama-server serves them as it serves SmolLM2 — for memory and speed checks, where what matters is a
model's shape and not its weights' values (they answer nonsense).  Written where they are used: the GPU
check makes its models on the GPU machine from a tokenizer-only file, since SmolLM2's own GGUF (94 MiB)
alone is more than the 64 MiB that travels there.  Needs ``gguf`` and ``numpy`` (the ``test`` extra;
the GPU check carries llama.cpp's ``gguf-py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...domain import Architecture


@dataclass(frozen=True)
class LlamaShape:
    """n_embd, layers, heads, KV heads, feed-forward (and vocabulary, context) of a llama network."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int = 49152  # SmolLM2's tokenizer
    context: int = 8192
    tied: bool = False  # SmolLM2 ties its output to the embeddings

    def matrix_parameters(self) -> int:
        """Parameters of the F16 matrices (the norms are F32 vectors: :meth:`norm_parameters`)."""
        kv_out = self.kv_heads * self.hidden // self.heads
        per_layer = 2 * self.hidden * self.hidden + 2 * kv_out * self.hidden + 3 * self.ffn * self.hidden
        return self.vocab * self.hidden * (1 if self.tied else 2) + self.layers * per_layer

    def norm_parameters(self) -> int:
        return (2 * self.layers + 1) * self.hidden

    def architecture(self, source: str) -> Architecture:
        """What the memory model reads of such a file (F16 weights), without writing it."""
        return Architecture(
            parameters_b=(self.matrix_parameters() + self.norm_parameters()) / 1e9,
            layers=self.layers,
            hidden_size=self.hidden,
            attention_heads=self.heads,
            kv_heads=self.kv_heads,
            head_dim=self.hidden // self.heads,
            max_position_embeddings=self.context,
            dtype="F16",
            vocab_size=self.vocab,
            intermediate_size=self.ffn,
            tie_word_embeddings=self.tied,
            weight_bytes=2 * self.matrix_parameters() + 4 * self.norm_parameters(),
            architecture="llama",
            source=source,
        )


#: SmolLM2-135M's own shape (its embeddings tied to its output)
SMOLLM2_SHAPE = LlamaShape(hidden=576, layers=30, heads=9, kv_heads=3, ffn=1536, tied=True)
#: a 0.33B-parameter llama, head dim 64 as SmolLM2's, output tied like SmolLM2's: 0.67 GB of F16 weights
WIDE_SHAPE = LlamaShape(hidden=1024, layers=24, heads=16, kv_heads=8, ffn=2816, tied=True)


def write_tokenizer_gguf(path: Path | str, source: Path | str) -> Path:
    """Only the tokenizer and chat template of ``source`` (no tensors): a few MiB that carry SmolLM2's
    vocabulary where its weights cannot go."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    _copy_tokenizer(gguf, gguf.GGUFReader(str(source)), writer)
    _finish(writer)
    return Path(path)


def write_llama_gguf(path: Path | str, shape: LlamaShape, tokenizer: Path | str, seed: int = 7) -> Path:
    """A random F16 llama of ``shape`` speaking ``tokenizer``'s vocabulary (a GGUF holding one)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.name", f"aqua-lab random llama {shape.hidden}x{shape.layers}")
    writer.add_block_count(shape.layers)
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.hidden)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_dimension_count(shape.hidden // shape.heads)
    writer.add_rope_freq_base(100000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(shape.vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    _copy_tokenizer(gguf, gguf.GGUFReader(str(tokenizer)), writer)
    rng = np.random.default_rng(seed)

    def weight(rows: int, cols: int):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    def norm():
        return np.ones(shape.hidden, dtype=np.float32)

    kv_out = shape.kv_heads * shape.hidden // shape.heads
    writer.add_tensor("token_embd.weight", weight(shape.vocab, shape.hidden))
    writer.add_tensor("output_norm.weight", norm())
    if not shape.tied:
        writer.add_tensor("output.weight", weight(shape.vocab, shape.hidden))
    for i in range(shape.layers):
        for name, rows, cols in (
            ("attn_q", shape.hidden, shape.hidden),
            ("attn_k", kv_out, shape.hidden),
            ("attn_v", kv_out, shape.hidden),
            ("attn_output", shape.hidden, shape.hidden),
            ("ffn_gate", shape.ffn, shape.hidden),
            ("ffn_up", shape.ffn, shape.hidden),
            ("ffn_down", shape.hidden, shape.ffn),
        ):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(rows, cols))
        writer.add_tensor(f"blk.{i}.attn_norm.weight", norm())
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", norm())
    _finish(writer)
    return Path(path)


def _copy_tokenizer(gguf, reader, writer) -> None:
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        value = field.contents()
        if isinstance(value, list):
            writer.add_array(key, value)
        elif field.types[0] == gguf.GGUFValueType.STRING:
            writer.add_string(key, value)
        elif field.types[0] == gguf.GGUFValueType.BOOL:
            writer.add_bool(key, value)
        else:
            writer.add_uint32(key, int(value))


def _finish(writer) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


__all__ = ["LlamaShape", "SMOLLM2_SHAPE", "WIDE_SHAPE", "write_llama_gguf", "write_tokenizer_gguf"]
