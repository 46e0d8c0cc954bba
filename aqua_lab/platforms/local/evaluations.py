"""Evaluations on the local platform: a detached job (:mod:`.evaluation_job`) per evaluation, like a
deployment's runtime, so it outlives the Jupyter server or CLI that started it.  State and per-model
progress live in the same SQLite store; the dataset copy, predictions (JSONL, written row by row)
and the job's log under ``<data dir>/evaluations/<id>/``; the reports in the user's ``report_path``.

A job that died (killed, machine rebooted) is restarted the next time anyone looks at it and
resumes from the predictions already written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...domain import Evaluation, EvaluationSpec, MetricSpec, ModelProgress, ResourceRef
from ...errors import Conflict, InvalidInput, NotFound, Problem
from ...safe_files import parse_json, read_capped, writable_directory
from .processes import alive, signal_group, wait_gone
from .store import Store

EVALUATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    details TEXT,
    deployment_id TEXT NOT NULL,
    record TEXT NOT NULL,          -- JSON: spec, models, metrics, report_path, dataset
    runner_pid INTEGER,
    restarts INTEGER NOT NULL DEFAULT 0,
    created_on REAL NOT NULL,
    updated_on REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluation_models (
    evaluation_id TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    rows_done INTEGER NOT NULL DEFAULT 0,
    rows_total INTEGER NOT NULL DEFAULT 0,
    rows_failed INTEGER NOT NULL DEFAULT 0,
    started_on REAL,
    updated_on REAL,
    report TEXT,
    position INTEGER NOT NULL,
    PRIMARY KEY (evaluation_id, model)
);
"""
RUNNING = ("ACCEPTED", "IN_PROGRESS")
FINISHED = ("SUCCEEDED", "FAILED", "CANCELED")
#: a job that keeps dying is not restarted for ever
MAX_RESTARTS = 3
#: a report file read back (10 000 rows of long prompts and answers stay well under it)
MAX_REPORT_BYTES = 128 * 1024 * 1024


class EvaluationStore(Store):
    def __init__(self, path: Path):
        super().__init__(path)
        with self._connect() as db:
            for statement in EVALUATION_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def add(self, row: dict[str, Any], models: list[str], total: int) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO evaluations (id, name, state, deployment_id, record, created_on, updated_on)"
                " VALUES (?,?,?,?,?,?,?)",
                (row["id"], row["name"], "ACCEPTED", row["deployment_id"], json.dumps(row["record"]), now, now),
            )
            for i, m in enumerate(models):
                db.execute(
                    "INSERT INTO evaluation_models (evaluation_id, model, state, rows_total, position)"
                    " VALUES (?,?,?,?,?)",
                    (row["id"], m, "ACCEPTED", total, i),
                )

    def get(self, evaluation_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM evaluations WHERE id = ?", (evaluation_id,)).fetchone()
        if row is None:
            return None
        data = dict(row)
        data["record"] = json.loads(data["record"])
        return data

    def all(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM evaluations ORDER BY created_on").fetchall()]
        return [r for r in (self.get(i) for i in ids) if r]

    def models(self, evaluation_id: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM evaluation_models WHERE evaluation_id = ? ORDER BY position", (evaluation_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def update(self, evaluation_id: str, **fields: Any) -> None:
        fields["updated_on"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._connect() as db:
            db.execute(f"UPDATE evaluations SET {assignments} WHERE id = ?", (*fields.values(), evaluation_id))

    def set_state_unless(self, evaluation_id: str, state: str, details: str | None, unless: tuple[str, ...]) -> bool:
        marks = ",".join("?" * len(unless))
        with self._connect() as db:
            cur = db.execute(
                "UPDATE evaluations SET state = ?, details = ?, updated_on = ?"
                f" WHERE id = ? AND state NOT IN ({marks})",
                (state, details, time.time(), evaluation_id, *unless),
            )
            return cur.rowcount == 1

    def update_model(self, evaluation_id: str, model: str, **fields: Any) -> None:
        fields["updated_on"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._connect() as db:
            db.execute(
                f"UPDATE evaluation_models SET {assignments} WHERE evaluation_id = ? AND model = ?",
                (*fields.values(), evaluation_id, model),
            )

    def remove(self, evaluation_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM evaluation_models WHERE evaluation_id = ?", (evaluation_id,))
            db.execute("DELETE FROM evaluations WHERE id = ?", (evaluation_id,))


def evaluation_dir(data_dir: Path, evaluation_id: str) -> Path:
    return data_dir / "evaluations" / evaluation_id


_STORE_OPENING = threading.Lock()


class LocalEvaluations:
    """The evaluation verbs of :class:`~aqua_lab.platforms.local.LocalPlatform`, overriding the
    refusing defaults of :class:`~aqua_lab.platforms.base.Platform` (a mixin listed before it: it uses
    the platform's ``data_dir``, ``store`` and ``get_deployment``)."""

    data_dir: Path
    #: the ids this store gives (notebook evaluations of another platform's deployments have their own)
    evaluation_prefix = "localeval-"

    def _job_record(self) -> dict[str, Any]:
        """What the job needs beyond the spec to reach the deployment (nothing here: this platform)."""
        return {}

    @property
    def evaluation_store(self) -> EvaluationStore:
        with _STORE_OPENING:  # the service's executor threads may ask first at once: one store each platform
            if not hasattr(self, "_evaluation_store"):
                self._evaluation_store = EvaluationStore(self.store.path)  # type: ignore[attr-defined]
        return self._evaluation_store

    def create_evaluation(self, spec: EvaluationSpec) -> Evaluation:
        from ...evaluation.datasets import load_dataset
        from ...evaluation.request import evaluation_plan

        deployment = self.get_deployment(spec.evaluation_source_id)  # type: ignore[attr-defined]
        models, metrics = evaluation_plan(spec, deployment)
        rows = load_dataset(spec.dataset_path)
        report_dir = writable_directory(spec.report_path, "report_path")
        if (report_dir / "comparison.html").exists() and not spec.force_overwrite:
            raise InvalidInput(
                Problem("report_path", f"{report_dir} already holds a report", "choose another or set force_overwrite")
            )
        evaluation_id = f"{self.evaluation_prefix}{uuid.uuid4().hex[:12]}"
        directory = evaluation_dir(self.data_dir, evaluation_id)
        directory.mkdir(parents=True)
        # the job reads its own copy: the user's file may change or vanish while it runs
        (directory / "dataset.jsonl").write_text("".join(json.dumps(r.as_dict()) + "\n" for r in rows))
        record = {
            "spec": spec.model_dump(mode="json"),
            "models": models,
            "metrics": [{"name": n, "args": a} for n, a in metrics],
            "report_path": str(report_dir),
            "rows": len(rows),
            "source_name": deployment.display_name,
            **self._job_record(),
        }
        row = {"id": evaluation_id, "name": spec.evaluation_name, "deployment_id": deployment.id, "record": record}
        self.evaluation_store.add(row, models, len(rows))
        self._start_evaluation_job(evaluation_id)
        return self.get_evaluation(evaluation_id)

    def _start_evaluation_job(self, evaluation_id: str) -> None:
        directory = evaluation_dir(self.data_dir, evaluation_id)
        with open(directory / "job.out", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "aqua_lab.platforms.local.evaluation_job", str(self.data_dir), evaluation_id],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                cwd=directory,
                # one BLAS thread: the encoder's products are small, and on a machine shared with model
                # servers BLAS threads spinning for cores made BERTScore 2-3x slower, not faster
                env={**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")},
            )
        self.evaluation_store.update(evaluation_id, runner_pid=proc.pid)

    def _evaluation_row(self, evaluation_id: str) -> dict[str, Any]:
        row = self.evaluation_store.get(evaluation_id)
        if row is None:
            raise NotFound("evaluation", evaluation_id, "list them with `aqua-lab evaluation list --platform local`")
        return row

    def _reconcile_evaluation(self, row: dict[str, Any]) -> dict[str, Any]:
        """A running evaluation whose job is gone is restarted (it resumes from its predictions)."""
        if row["state"] in RUNNING and not alive(row["runner_pid"], row["id"]):
            if row["restarts"] >= MAX_RESTARTS:
                from .runtime import log_tail

                tail = log_tail(evaluation_dir(self.data_dir, row["id"]) / "job.out", 10)
                self.evaluation_store.set_state_unless(
                    row["id"],
                    "FAILED",
                    f"the evaluation job died {row['restarts'] + 1} times; last output:\n{tail}",
                    FINISHED,
                )
            else:
                self.evaluation_store.update(row["id"], restarts=row["restarts"] + 1)
                self._start_evaluation_job(row["id"])
            row = self._evaluation_row(row["id"])
        return row

    def _to_evaluation(self, row: dict[str, Any]) -> Evaluation:
        from ...arena.judge_target import self_preference_warnings

        record = row["record"]
        progress = []
        for m in self.evaluation_store.models(row["id"]):
            eta = None
            if m["state"] == "IN_PROGRESS" and m["started_on"] and m["rows_done"]:
                # pace of this run only: rows resumed from an earlier run came for free
                elapsed = (m["updated_on"] or time.time()) - m["started_on"]
                eta = round(elapsed / m["rows_done"] * (m["rows_total"] - m["rows_done"]), 1)
            progress.append(
                ModelProgress(
                    model=m["model"],
                    state=m["state"],
                    rows_done=m["rows_done"],
                    rows_total=m["rows_total"],
                    rows_failed=m["rows_failed"],
                    eta_s=eta,
                    report=m["report"],
                )
            )
        comparison = Path(record["report_path"]) / "comparison.html"
        return Evaluation(
            id=row["id"],
            job_id=None,
            name=row["name"],
            state=row["state"],
            deployment_id=row["deployment_id"],
            model=record["models"][0],
            report_path=record["report_path"],
            created_on=datetime.fromtimestamp(row["created_on"], UTC).isoformat(),
            models=progress,
            metrics=[MetricSpec.model_validate(m) for m in record["metrics"]],
            dataset_path=record["spec"]["dataset_path"],
            # the job rewrites details as it goes; the judge's warning holds whatever they say
            details="; ".join(
                filter(None, [row["details"], *self_preference_warnings(record["metrics"], record["models"])])
            )
            or None,
            source=ResourceRef(id=row["deployment_id"], name=record.get("source_name", "")),
            comparison_report=str(comparison) if row["state"] == "SUCCEEDED" and comparison.exists() else None,
        )

    def list_evaluations(self) -> list[Evaluation]:
        return [self._to_evaluation(self._reconcile_evaluation(r)) for r in self.evaluation_store.all()]

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        return self._to_evaluation(self._reconcile_evaluation(self._evaluation_row(evaluation_id)))

    def _stop_job(self, row: dict[str, Any]) -> None:
        if alive(row["runner_pid"], row["id"]):
            signal_group(row["runner_pid"], signal.SIGTERM)  # the job finishes the rows in flight, then stops
            if not wait_gone(row["runner_pid"], row["id"], 15):
                signal_group(row["runner_pid"], signal.SIGKILL)
                wait_gone(row["runner_pid"], row["id"], 5)

    def evaluation_refusal(self, deployment_id: str) -> Conflict | None:
        """Why a deployment cannot go now: evaluations still running on it would fail their rows."""
        running = [
            r for r in self.evaluation_store.all() if r["deployment_id"] == deployment_id and r["state"] in RUNNING
        ]
        if not running:
            return None
        names = []
        for r in running:
            done = sum(m["rows_done"] for m in self.evaluation_store.models(r["id"]))
            total = sum(m["rows_total"] for m in self.evaluation_store.models(r["id"]))
            names.append(f"{r['name']!r} ({r['id']}, {r['state']}, {done} of {total} rows done)")
        first = running[0]["id"]
        return Conflict(
            f"deployment {deployment_id} is being evaluated by {', '.join(names)}: deleting it now would fail "
            f"the rows still to come. Cancel the evaluation first (`aqua-lab evaluation cancel --evaluation_id "
            f"{first}`, or POST evaluations/{first}/cancel) or wait until it finishes, then delete the deployment"
        )

    def cancel_evaluation(self, evaluation_id: str) -> Evaluation:
        row = self._evaluation_row(evaluation_id)
        if row["state"] in FINISHED:
            raise Conflict(f"evaluation {evaluation_id} is already {row['state']}")
        # CANCELED first, so a job that is starting or restarting sees it and does not go on
        self.evaluation_store.set_state_unless(evaluation_id, "CANCELED", "canceled by the user", FINISHED)
        self._stop_job(row)
        for m in self.evaluation_store.models(evaluation_id):
            if m["state"] not in FINISHED:
                self.evaluation_store.update_model(evaluation_id, m["model"], state="CANCELED")
        return self.get_evaluation(evaluation_id)

    def delete_evaluation(self, evaluation_id: str) -> Evaluation:
        """Stop it and forget it (its job files too); reports in ``report_path`` are the user's and stay."""
        row = self._evaluation_row(evaluation_id)
        self.evaluation_store.set_state_unless(evaluation_id, "CANCELED", "deleted", FINISHED)
        self._stop_job(row)
        gone = self._to_evaluation(self._evaluation_row(evaluation_id)).model_copy(update={"state": "DELETED"})
        self.evaluation_store.remove(evaluation_id)
        shutil.rmtree(evaluation_dir(self.data_dir, evaluation_id), ignore_errors=True)
        return gone

    def evaluation_report(self, evaluation_id: str, model: str | None = None, fmt: str = "json") -> str:
        """A model's ``report.json``/``report.html``, or without ``model`` the comparison of all."""
        from ...evaluation.report import model_dir_name

        evaluation = self.get_evaluation(evaluation_id)
        if fmt not in ("json", "html"):
            raise InvalidInput(Problem("format", f"{fmt!r}", "use json or html"))
        # a run cut short (its deployment went away) keeps the report of the rows it had
        written = evaluation.state == "FAILED" and any(m.report for m in evaluation.models)
        if evaluation.state != "SUCCEEDED" and not written:
            raise Conflict(f"evaluation {evaluation_id} is {evaluation.state}; its report comes when it SUCCEEDED")
        names = [m.model for m in evaluation.models]
        if model is not None and model not in names:
            raise InvalidInput(Problem("model", f"{model!r} is not part of {evaluation_id}", f"use one of {names}"))
        base = Path(evaluation.report_path)
        path = base / model_dir_name(model) / f"report.{fmt}" if model else base / f"comparison.{fmt}"
        if not path.exists():
            raise NotFound("report", str(path), "the report files were moved or deleted")
        # the user's folder: what is there now may be anything, so it is read as any user file is,
        # and a JSON report is checked before the service parses it
        try:
            data = read_capped(path, "report_path", MAX_REPORT_BYTES, path.name)
            if fmt == "json" and not isinstance(parse_json(data), dict):
                raise ValueError("not a JSON object")
        except (InvalidInput, ValueError) as exc:
            raise Conflict(f"{path} is not a report aqua_lab wrote ({exc}); run the evaluation again") from None
        return data.decode("utf-8", "replace")
