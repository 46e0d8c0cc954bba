"""Local platform state in SQLite, shared by the platform (in Jupyter or the CLI) and the detached
runtime processes, so a restarted Jupyter server finds its deployments again.

Every call opens its own short connection: two processes write here and a long-lived connection
would hold locks; WAL mode lets readers go on while the runtime writes model states.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ... import disk_space
from ...errors import DiskFull, Unavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    state TEXT NOT NULL,
    details TEXT,
    shape TEXT NOT NULL,
    deployment_type TEXT NOT NULL,
    record TEXT NOT NULL,          -- JSON: models, description, tags, runtime config
    router_port INTEGER,
    runtime_pid INTEGER,
    created_on REAL NOT NULL,
    updated_on REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS model_states (
    deployment_id TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_id TEXT NOT NULL,
    state TEXT NOT NULL,
    port INTEGER,
    pid INTEGER,
    restarts INTEGER NOT NULL DEFAULT 0,
    detail TEXT,
    position INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, model_name)
);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,            -- gguf | hf | lora
    base_model_id TEXT,
    created_on REAL NOT NULL
);
"""


#: tables that must exist before the state can be read (what :data:`SCHEMA` makes)
TABLES = ("deployments", "model_states", "models")
#: free space a write to the state needs: SQLite's shared-memory index (32 KiB, made on every open)
#: and room for the write-ahead log to grow by the pages one change touches
STATE_HEADROOM = 1 << 20
#: SQLite's result codes that mean the file's content is damaged (the only case to move it aside)
CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}

log = logging.getLogger("aqua_lab.local")


@dataclass(frozen=True)
class DeploymentRecord:
    """One row of the ``deployments`` table, typed (the table's columns, unchanged); ``record`` is the
    JSON column: models, description, tags, the runtime's config.  Frozen: a changed copy is
    :meth:`but`, a changed state is a write to the store."""

    id: str
    display_name: str
    state: str
    details: str | None
    shape: str
    deployment_type: str
    record: dict[str, Any]
    router_port: int | None
    runtime_pid: int | None
    created_on: float
    updated_on: float

    @classmethod
    def of(cls, row: sqlite3.Row) -> DeploymentRecord:
        data = dict(row)
        data["record"] = json.loads(data["record"])
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def but(self, **changes: Any) -> DeploymentRecord:
        return replace(self, **changes)


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._keep_private()
        try:
            db = sqlite3.connect(self.path, timeout=30)
            try:  # outside _connect: both statements manage their own transactions
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            full = self._disk_full(exc)
            # on a full disk the state written before is still whole: read it, refuse only writes
            if full is None or not self._has_schema():
                raise full or self._unusable(exc) from None
            log.warning("%s; serving the state read-only until there is space", full)

    def _keep_private(self) -> None:
        """Owner-only folder and state file: they hold every deployment's key, and a folder made by an
        older version (0755, the file 0644) let any user of the machine read them.  SQLite gives the
        -wal and -shm files the database file's mode."""
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:  # made owner-only before SQLite makes it with the umask's mode
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except OSError:
            pass  # there already, or no room for even an empty file (opening the store says so)
        for path in (folder, self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm"))):
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & 0o077:
                    path.chmod(mode & 0o700)
            except FileNotFoundError:
                pass
            except OSError as exc:  # someone else's folder: say it, the store still works
                log.warning("cannot make %s private to its owner: %s", path, exc)

    def _has_schema(self) -> bool:
        with self._connect() as db:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return set(TABLES) <= names

    def _disk_full(self, exc: sqlite3.DatabaseError) -> DiskFull | None:
        """The error as "disk full" when that is its cause: SQLite says SQLITE_FULL for a write, but only
        "disk I/O error" when it cannot make the shared-memory index it needs to open the file at all."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code not in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
            return None
        free = disk_space.free_bytes(self.path.parent)
        if code == sqlite3.SQLITE_IOERR and (free is None or free >= STATE_HEADROOM):
            return None
        return DiskFull(str(self.path.parent), free or 0, STATE_HEADROOM)

    def _unusable(self, exc: sqlite3.DatabaseError) -> Unavailable:
        full = self._disk_full(exc)
        if full is not None:
            return full
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return Unavailable(
                f"the local platform's state file {self.path} is locked by another process ({exc}); retry"
            )
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in CORRUPT:
            return Unavailable(
                f"the local platform's state file {self.path} cannot be used ({exc}): it is damaged. Move it aside "
                f"(`mv {self.path} {self.path}.broken`) to start with no deployments, after stopping any "
                "aqua_lab.platforms.local.runtime processes that still run"
            )
        # anything else (an I/O error, permissions, a read-only file system) leaves the file as it was:
        # fixing the cause is the way out, never discarding the state
        return Unavailable(
            f"the local platform's state file {self.path} cannot be used ({exc}); check the disk and the "
            "file's permissions, then retry"
        )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction that holds the write lock from its start (a read that turns into a write
        cannot deadlock).  On a full disk SQLite cannot even open the file in WAL mode (it needs room
        for its shared-memory index): the statements then run on a read-only connection, so every
        read still answers and a write says the disk is full."""
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:  # nothing began: nothing to roll back
            db.close()
            full = self._disk_full(exc)
            if full is None:
                raise self._unusable(exc) from None
            with self._read_only(full) as ro:
                yield ro
            return
        db.row_factory = sqlite3.Row
        try:
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):  # a failed COMMIT may have rolled back already
                    db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            raise self._unusable(exc) from None
        finally:
            db.close()

    @contextmanager
    def _read_only(self, full: DiskFull) -> Iterator[sqlite3.Connection]:
        # EXCLUSIVE locking before the first read keeps the WAL index in this connection's memory
        # (no -shm file to grow); it waits, like any lock, for other connections to finish
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.DatabaseError:
            raise full from None
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA query_only=1")
            yield db
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            raise full from None  # a write refused on this connection: the disk is why
        finally:
            db.close()

    # deployments ----------------------------------------------------------------------------------

    def add_deployment(self, row: dict[str, Any], models: list[dict[str, str]]) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO deployments (id, display_name, state, details, shape, deployment_type, record,"
                " router_port, runtime_pid, created_on, updated_on) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row["id"],
                    row["display_name"],
                    row["state"],
                    row.get("details"),
                    row["shape"],
                    row["deployment_type"],
                    json.dumps(row["record"]),
                    row.get("router_port"),
                    None,
                    now,
                    now,
                ),
            )
            _insert_models(db, deployment_id=row["id"], models=models)

    def deployments(self) -> list[DeploymentRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM deployments WHERE state != 'DELETED' ORDER BY created_on").fetchall()
        return [DeploymentRecord.of(r) for r in rows]

    def deployment(self, deployment_id: str) -> DeploymentRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
        return DeploymentRecord.of(row) if row else None

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        if not fields:
            return
        fields["updated_on"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._connect() as db:
            db.execute(f"UPDATE deployments SET {assignments} WHERE id = ?", (*fields.values(), deployment_id))

    def set_state_unless(self, deployment_id: str, state: str, details: str | None, unless: tuple[str, ...]) -> bool:
        """Set the state unless it is one of ``unless`` (e.g. the user deleted it meanwhile)."""
        marks = ",".join("?" * len(unless))
        with self._connect() as db:
            cur = db.execute(
                "UPDATE deployments SET state = ?, details = ?, updated_on = ?"
                f" WHERE id = ? AND state NOT IN ({marks})",
                (state, details, time.time(), deployment_id, *unless),
            )
            return cur.rowcount == 1

    def replace_models(self, deployment_id: str, record: dict[str, Any], models: list[dict[str, str]]) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE deployments SET record = ?, updated_on = ? WHERE id = ?",
                (json.dumps(record), time.time(), deployment_id),
            )
            db.execute("DELETE FROM model_states WHERE deployment_id = ?", (deployment_id,))
            _insert_models(db, deployment_id, models)

    # model states ---------------------------------------------------------------------------------

    def model_states(self, deployment_id: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM model_states WHERE deployment_id = ? ORDER BY position", (deployment_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def update_model(self, deployment_id: str, model_name: str, **fields: Any) -> None:
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._connect() as db:
            db.execute(
                f"UPDATE model_states SET {assignments} WHERE deployment_id = ? AND model_name = ?",
                (*fields.values(), deployment_id, model_name),
            )

    def reset_models(self, deployment_id: str, state: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE model_states SET state = ?, pid = NULL, port = NULL, restarts = 0, detail = NULL"
                " WHERE deployment_id = ?",
                (state, deployment_id),
            )

    # registered models ----------------------------------------------------------------------------

    def add_model(self, model_id: str, name: str, path: str, kind: str, base_model_id: str | None) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO models (id, name, path, kind, base_model_id, created_on) VALUES (?,?,?,?,?,?)",
                (model_id, name, path, kind, base_model_id, time.time()),
            )

    def models(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            return [dict(r) for r in db.execute("SELECT * FROM models ORDER BY created_on").fetchall()]

    def remove_model(self, model_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM models WHERE id = ?", (model_id,))


def _insert_models(db: sqlite3.Connection, deployment_id: str, models: list[dict[str, str]]) -> None:
    for i, m in enumerate(models):
        db.execute(
            "INSERT INTO model_states (deployment_id, model_name, model_id, state, position) VALUES (?,?,?,?,?)",
            (deployment_id, m["model_name"], m["model_id"], "PENDING", i),
        )
