"""Which process is changing a local deployment now, so that a crash half-way is told from work in progress.

Every multi-step verb (create, activate, deactivate, a rescale, a models update, delete) records itself in
the deployment's record, with its owner process, in the same write that moves the state; its end clears
it.  The owner is a pid *and* its start time, so a recycled pid is never taken for it.  A record whose
owner is gone is an operation cut off by a crash (kill -9 of the Jupyter server or the CLI, a reboot):
the platform finishes or rolls it back.  While the owner lives, other processes leave the deployment
alone and other verbs are refused with who is at work.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

RUNTIME_MODULE = b"aqua_lab.platforms.local.runtime"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of ``pid``; None without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5), counted after the command name
    except (OSError, ValueError, IndexError):
        return None


def stamp(name: str) -> dict:
    """This process doing ``name`` now."""
    pid = os.getpid()
    found = _stat(pid)
    return {"name": name, "pid": pid, "start": found[1] if found else None, "since": time.time()}


def owner_alive(op: dict) -> bool:
    pid = op.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive, and its /proc/stat says whether it is the same one
    found = _stat(pid)
    if found is None:
        return True  # no /proc: trust the signal
    state, start = found
    return state != "Z" and (op.get("start") is None or start == op["start"])


def describe(op: dict) -> str:
    since = datetime.fromtimestamp(op.get("since") or 0, UTC).strftime("%H:%M:%S UTC")
    return f"{op.get('name', 'a change')} (process {op.get('pid')}, since {since})"


def runtimes_of(deployment_id: str) -> list[int]:
    """Runtime processes of a deployment, whether or not their pid was recorded: a crash between
    starting a runtime and writing its pid leaves one that only its command line names."""
    found = []
    marker = f"/{deployment_id}/".encode()
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if RUNTIME_MODULE in cmdline and marker in cmdline:
            found.append(int(entry.name))
    return found
