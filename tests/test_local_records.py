"""The local platform's state comes back from the store as typed records, over the same SQLite table."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from aqua_lab.platforms.local.capacity import holds
from aqua_lab.platforms.local.store import DeploymentRecord, Store

pytestmark = pytest.mark.local


def _add(store: Store, deployment_id: str, state: str, slots: list[int]) -> None:
    record = {"models": [{"model_name": "m", "model_id": "m", "gpu_count": len(slots)}], "slots": slots}
    row = {"id": deployment_id, "display_name": f"name of {deployment_id}", "state": state, "shape": "LOCAL"}
    store.add_deployment({**row, "deployment_type": "MULTI", "record": record}, [{"model_name": "m", "model_id": "m"}])


def test_a_deployment_comes_back_as_a_typed_frozen_record_with_its_json_decoded(tmp_path):
    store = Store(tmp_path / "state.db")
    _add(store, "local-a", "ACTIVE", [0, 1])
    row = store.deployment("local-a")
    assert isinstance(row, DeploymentRecord)
    assert (row.id, row.display_name, row.state, row.record["slots"]) == (
        "local-a",
        "name of local-a",
        "ACTIVE",
        [0, 1],
    )
    with pytest.raises(TypeError):  # one way to read a column: its attribute, typed (no row["state"] twin)
        row["state"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.state = "FAILED"  # a state change is a write to the store, never an edit of a copy
    assert row.but(state="FAILED").state == "FAILED" and store.deployment("local-a").state == "ACTIVE"
    assert [r.id for r in store.deployments()] == ["local-a"]


def test_the_table_keeps_its_columns_and_every_column_is_a_field(tmp_path):
    store = Store(tmp_path / "state.db")
    with sqlite3.connect(store.path) as db:
        columns = [c[1] for c in db.execute("PRAGMA table_info(deployments)")]
    assert columns == [f.name for f in dataclasses.fields(DeploymentRecord)]


def test_slots_held_are_read_from_typed_records(tmp_path):
    store = Store(tmp_path / "state.db")
    _add(store, "local-a", "ACTIVE", [0, 1])
    _add(store, "local-b", "INACTIVE", [2])
    held = holds(store.deployments(), [0, 1, 2, 3])
    assert [(h.deployment_id, h.display_name, h.slots) for h in held] == [("local-a", "name of local-a", [0, 1])]
