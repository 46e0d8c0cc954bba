"""A free loopback port, for a router or a model server about to start (the one place that asks the
OS for one: the engine build's smoke run, the platform, the supervisor and the tests use it)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
