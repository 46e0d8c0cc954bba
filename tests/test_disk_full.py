"""A full disk under the data dir (issue 24, item 8), for real: a 2 MiB tmpfs as the data dir, filled
to the last byte.  An upload says "disk full" and how much it needs, and leaves no partial file; what
only reads (lists, a deployment, chat with a running one) keeps answering; writes say "disk full"
instead of advising to throw the state away; and everything works again once space is freed."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import sqlite3
import subprocess

import pytest

from aqua_lab.errors import DiskFull
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.platforms.local.store import Store
from tests import test_evaluation_fronts as fronts

pytestmark = [pytest.mark.local, pytest.mark.server]
pytest_plugins = ["pytest_jupyter.jupyter_server"]

ROWS = "".join(json.dumps({"prompt": f"question {i}?", "completion": f"answer {i}"}) + "\n" for i in range(200))


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (mounting needs root; without it there is no honest way to fill a disk here)."""
    mount = tmp_path / "data"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@contextlib.contextmanager
def filled(directory):
    """The file system of ``directory`` with no byte left, until the block ends."""
    filler = directory / "filler"
    try:
        with open(filler, "wb", buffering=0) as f:
            for size in (1 << 16, 1):
                with contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * size)
        yield
    finally:
        filler.unlink(missing_ok=True)


# the front tests' stand-in deployment (a router with no engine) and server config, whose data dir is
# tmp_path/data: the small disk, when a test asks for small_disk before them
fake, jp_server_config, call = fronts.fake, fronts.jp_server_config, fronts.call


async def test_a_full_data_dir_says_disk_full_keeps_reads_and_chat_and_recovers(small_disk, jp_fetch, fake):
    data_dir, deployment_id = fake
    assert data_dir == small_disk
    upload = {"filename": "mine.jsonl", "content": ROWS}
    chat = {"model": "perfect", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    with filled(small_disk):
        answer = await call(jp_fetch, "evaluations", "datasets", method="POST", body=upload, expect=507)
        assert answer["message"].startswith(f"disk full: {small_disk / 'datasets'} has ")
        assert "free some space (about" in answer["message"] and "KiB needed)" in answer["message"]
        assert list(small_disk.rglob("*.part")) == []  # no partial upload left behind

        # what only reads keeps answering, chat with the running deployment included
        listed = await call(jp_fetch, "deployments")
        assert [d["id"] for d in listed["data"]] == [deployment_id]
        assert (await call(jp_fetch, "deployments", deployment_id))["state"] == "ACTIVE"
        assert SMOLLM2_ID in [m["id"] for m in (await call(jp_fetch, "models"))["data"]]
        answered = await call(jp_fetch, "deployments", deployment_id, "chat", method="POST", body=chat)
        assert answered["choices"][0]["message"]["content"] == "unknown"  # the stand-in's answer to "hi"

        # a write says what is wrong and what to do, and never to move the state file aside
        refused = await call(jp_fetch, "deployments", deployment_id, "deactivate", method="POST", expect=507)
        assert refused["message"].startswith(f"disk full: {small_disk} has ")
        assert "mv " not in refused["message"] and "no deployments" not in refused["message"]
        assert (await call(jp_fetch, "deployments", deployment_id))["state"] == "ACTIVE"  # nothing half-done

    # space is back: the same calls work, with no restart
    stored = await call(jp_fetch, "evaluations", "datasets", method="POST", body=upload, expect=201)
    assert stored["rows"] == 200 and stored["dataset_path"].startswith(str(small_disk))
    deactivated = await call(jp_fetch, "deployments", deployment_id, "deactivate", method="POST")
    assert deactivated["state"] == "INACTIVE"


def test_a_store_opened_on_a_full_disk_reads_and_refuses_writes_with_disk_full(small_disk):
    store = Store(small_disk / "local.sqlite")
    store.add_model("kept", "kept", "/models/kept.gguf", "gguf", None)
    with filled(small_disk):
        again = Store(small_disk / "local.sqlite")  # opening does not fail: the schema is there
        assert [m["id"] for m in again.models()] == ["kept"]
        assert again.deployments() == []
        with pytest.raises(DiskFull, match=r"^disk full: .* has \d+ bytes free; free some space \(about 1\.0 MiB"):
            again.add_model("new", "new", "/models/new.gguf", "gguf", None)
    again.add_model("new", "new", "/models/new.gguf", "gguf", None)
    assert [m["id"] for m in again.models()] == ["kept", "new"]


def test_an_io_error_that_is_not_damage_never_advises_discarding_the_state(tmp_path):
    store = Store(tmp_path / "local.sqlite")
    io_error = sqlite3.OperationalError("disk I/O error")
    io_error.sqlite_errorcode = sqlite3.SQLITE_IOERR  # on a disk with room: a real I/O fault
    message = str(store._unusable(io_error))
    assert "cannot be used (disk I/O error)" in message and "check the disk" in message
    assert "mv " not in message and "no deployments" not in message
    damaged = sqlite3.DatabaseError("database disk image is malformed")
    damaged.sqlite_errorcode = sqlite3.SQLITE_CORRUPT
    assert "Move it aside" in str(store._unusable(damaged))  # damage is the one case for it


def test_a_failed_upload_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """Without a tmpfs too: the partial file's write fails with ENOSPC half way through."""
    from aqua_lab import disk_space
    from aqua_lab.evaluation.uploads import store_upload

    class HalfThenFull(io.FileIO):
        def write(self, data):
            super().write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(disk_space, "open", lambda fd, mode: HalfThenFull(fd, "wb"), raising=False)
    with pytest.raises(DiskFull, match=r"disk full: .*datasets has .* free; free some space \(about 10\.7 KiB"):
        store_upload(tmp_path / "datasets", "mine.jsonl", ROWS)
    assert list((tmp_path / "datasets").iterdir()) == []
