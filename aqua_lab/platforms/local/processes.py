"""The local platform's process plumbing: is a runtime still ours and alive, stopping its whole
process group, waiting for it to go, whether a port is free, which cores a deployment may use."""

from __future__ import annotations

import os
import time
from pathlib import Path

from .hardware import core_ids


def alive(pid: int | None, marker: str) -> bool:
    """Is ``pid`` running and still our runtime (not a recycled pid, not a zombie)?"""
    if not pid:
        return False
    try:  # our own child: reap it if it has exited
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no /proc: trust the signal
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and marker.encode() in cmdline


def cores(count: int) -> list[int]:
    return core_ids()[:count] or [0]


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_gone(pid: int, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return True
        time.sleep(0.05)
    return False


def port_free(port: int | None) -> bool:
    import socket

    if not port:
        return False
    with socket.socket() as s:
        # as the router itself binds: a port whose old connections linger in TIME_WAIT is free to reuse
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
