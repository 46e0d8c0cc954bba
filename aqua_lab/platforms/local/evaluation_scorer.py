"""Scoring an evaluation's models on the cores their model servers leave free.

Scoring is CPU work (BERTScore's encoder above all).  Local llama.cpp servers are pinned to their
cores, so scoring a model that has finished while another still generates, on any core, takes CPU
from the server still working — on a 2-core machine it slowed that server as much as it saved.  So
one scoring thread runs on *spare* cores only: those of servers whose models have finished (and
those no evaluated model's server uses); while there are none it waits.  It first loads what the
metrics need (libraries, MiniLM weights), then scores finished models one by one.  When every model
has finished generating, every core is spare: the caller scores the models the thread has not
taken, with all cores for the encoder, and waits for the one the thread holds.

Linux pins threads (``sched_setaffinity`` on a thread id); elsewhere the thread is simply not
pinned.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from ...evaluation.datasets import Row
from ...evaluation.metrics import prepare
from ...evaluation.runner import ModelScores, Prediction, score_model
from .hardware import core_ids


def job_cores() -> set[int]:
    return set(core_ids())


def _pin(cores: set[int]) -> None:
    try:
        os.sched_setaffinity(threading.get_native_id(), cores)
    except (AttributeError, OSError, ValueError):
        pass  # not Linux, or the cores are not ours: run unpinned


class SpareCoreScorer:
    """``model_cores``: the CPU cores each evaluated model's servers are pinned to; None when the
    servers use no known cores (vLLM on GPUs), so every core is spare from the start."""

    def __init__(
        self,
        rows: Sequence[Row],
        models: Sequence[str],
        metrics: Sequence[tuple[str, dict[str, Any]]],
        model_cores: dict[str, set[int]] | None,
        cores: set[int] | None = None,
    ):
        self.rows, self.models, self.metrics = rows, list(models), list(metrics)
        self.model_cores, self.cores = model_cores, cores or job_cores()
        self.generating = set(models)
        self._cond = threading.Condition()
        self._finished: dict[str, dict[int, Prediction]] = {}
        self._claimed: set[str] = set()
        self._results: dict[str, ModelScores] = {}
        self._errors: dict[str, BaseException] = {}
        self._done = {m: threading.Event() for m in models}
        self._prepared = False
        self._closed = False
        #: which models the thread scored while others generated (for the job's stats)
        self.overlapped: list[str] = []
        self._thread = threading.Thread(target=self._run, name="evaluation-scoring", daemon=True)
        self._thread.start()

    def spare(self) -> set[int]:
        if self.model_cores is None:
            return set(self.cores)
        busy = set().union(*(self.model_cores.get(m, set()) for m in self.generating))
        return self.cores - busy

    def finished(self, model: str, predictions: dict[int, Prediction]) -> None:
        """``model`` has every row: its cores are spare and it may be scored now."""
        with self._cond:
            self.generating.discard(model)
            self._finished[model] = dict(predictions)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop after what the thread holds (cancel)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _next(self) -> tuple[set[int], str | None] | None:
        """Under the lock: (spare cores, a model to score or None to prepare first), None to stop."""
        while True:
            if self._closed:
                return None
            cores = self.spare()
            if cores and not self._prepared:
                return cores, None
            todo = [m for m in self._finished if m not in self._claimed]
            if cores and todo:
                self._claimed.add(todo[0])
                return cores, todo[0]
            self._cond.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                step = self._next()
            if step is None:
                return
            cores, model = step
            _pin(cores)
            if model is None:
                try:
                    prepare([name for name, _ in self.metrics])
                finally:
                    self._prepared = True
                continue
            try:
                self._results[model] = score_model(
                    self.rows, model, self._finished[model], self.metrics, threads=len(cores)
                )
                self.overlapped.append(model)
            except BaseException as exc:  # raised again by scores(), in the job's main thread
                self._errors[model] = exc
            finally:
                self._done[model].set()

    def scores(self, done: dict[str, dict[int, Prediction]]) -> list[ModelScores]:
        """Every model's scores once generation is over (``done``: every model's predictions): the
        ones the thread has not taken are scored here on every core, the thread's are waited for."""
        with self._cond:
            self.generating.clear()
            mine = [m for m in self.models if m not in self._claimed]
            self._claimed.update(mine)
            self._closed = True  # the thread finishes the model it holds, if any, then stops
            self._cond.notify_all()
        out = {m: score_model(self.rows, m, done[m], self.metrics, threads=len(self.cores)) for m in mine}
        for m in self.models:
            if m not in out:
                self._done[m].wait()
                if m in self._errors:
                    raise self._errors[m]
                out[m] = self._results[m]
        return [out[m] for m in self.models]
