"""Votes and judge verdicts, per deployment, in the platform state file on this machine.

The same table serves both platforms: an OCI deployment's votes are keyed by its OCID.  They are
the user's own judgement made in the notebook, no Object Storage bucket is guaranteed to exist for
them, and keeping them here lets a vote be recorded while OCI is unreachable.  A blind pair is a
row with no verdict until it is voted on, so a vote can only be cast once, on what was shown."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..platforms.local.store import Store

VOTE_SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    source TEXT NOT NULL,          -- vote | judge
    model_a TEXT NOT NULL,         -- the model shown as A
    model_b TEXT NOT NULL,
    verdict TEXT,                  -- a, b, tie or both_bad (NULL: a blind pair shown, not voted on yet)
    record TEXT NOT NULL,          -- JSON: prompt, answers, order seed, params, voter, judge, evaluation
    created_on REAL NOT NULL,
    voted_on REAL
);
CREATE INDEX IF NOT EXISTS votes_by_deployment ON votes (deployment_id, source, verdict);
"""
FIELDS = "id, deployment_id, source, model_a, model_b, verdict, record, created_on, voted_on"


class VoteStore(Store):
    def __init__(self, path: Path):
        super().__init__(path)
        with self._connect() as db:
            for statement in VOTE_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def add(self, rows: list[dict[str, Any]], replace: bool = False) -> None:
        """Rows in one transaction: a batch of judge verdicts is stored whole or not at all.
        ``replace``: rows of the same id are replaced (a resumed evaluation job stores its verdicts again)."""
        now = time.time()
        with self._connect() as db:
            db.executemany(
                f"INSERT {'OR REPLACE ' if replace else ''}INTO votes ({FIELDS}) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r["id"],
                        r["deployment_id"],
                        r["source"],
                        r["model_a"],
                        r["model_b"],
                        r.get("verdict"),
                        json.dumps(r.get("record") or {}),
                        r.get("created_on", now),
                        now if r.get("verdict") else None,
                    )
                    for r in rows
                ],
            )

    def cast(self, vote_id: str, verdict: str, extra: dict[str, Any]) -> bool:
        """Record the verdict on a blind pair not voted on yet (False: it was voted on already)."""
        with self._connect() as db:
            row = db.execute("SELECT record FROM votes WHERE id = ? AND verdict IS NULL", (vote_id,)).fetchone()
            if row is None:
                return False
            record = {**json.loads(row["record"]), **extra}
            db.execute(
                "UPDATE votes SET verdict = ?, record = ?, voted_on = ? WHERE id = ?",
                (verdict, json.dumps(record), time.time(), vote_id),
            )
        return True

    def get(self, vote_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {FIELDS} FROM votes WHERE id = ?", (vote_id,)).fetchone()
        return _decoded(row) if row else None

    def votes(self, deployment_id: str, sources: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every verdict of these sources (blind pairs not voted on are left out), oldest first."""
        marks = ",".join("?" * len(sources))
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {FIELDS} FROM votes WHERE deployment_id = ? AND source IN ({marks})"
                " AND verdict IS NOT NULL ORDER BY created_on, id",
                (deployment_id, *sources),
            ).fetchall()
        return [_decoded(r) for r in rows]

    def outcomes(self, deployment_id: str, sources: tuple[str, ...]) -> list[tuple[str, str, str]]:
        """(model A, model B, verdict) of every verdict: what a leaderboard needs, without the texts."""
        marks = ",".join("?" * len(sources))
        with self._connect() as db:
            return [
                tuple(r)
                for r in db.execute(
                    f"SELECT model_a, model_b, verdict FROM votes WHERE deployment_id = ? AND source IN ({marks})"
                    " AND verdict IS NOT NULL",
                    (deployment_id, *sources),
                ).fetchall()
            ]


def _decoded(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["record"] = json.loads(data["record"])
    return data
