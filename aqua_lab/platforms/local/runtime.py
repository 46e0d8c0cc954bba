"""The runtime of one local deployment — a detached process, the local twin of the OCI container.

    python -m aqua_lab.platforms.local.runtime <deployment dir>/runtime.json

It reads the deployment's ``MULTI_MODEL_CONFIG``, starts one model server per model (llama.cpp on
CPU, vLLM on GPU), health-checks and restarts them (a bounded number of times), writes their states
to the platform's SQLite, and serves the router (see :mod:`.router`) on the deployment's port.
On SIGTERM it stops every server it started; its servers die with it (PR_SET_PDEATHSIG) even if it
is killed outright.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.ioloop import IOLoop

from .engines import ServerSpec, server_specs
from .store import Store

log = logging.getLogger("aqua_lab.runtime")

MAX_RESTARTS = 3
START_TIMEOUT_S = {"llama_cpp": 120.0, "vllm": 1800.0}
WATCH_INTERVAL_S = 0.2
FINAL = ("DELETING", "DELETED", "INACTIVE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(deque(f, maxlen=lines)).strip()
    except OSError:
        return ""


def _child_setup(cores: list[int] | None):
    def setup() -> None:
        try:  # die with the runtime, whatever kills it
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass
        if cores:
            try:
                os.sched_setaffinity(0, cores)
            except (AttributeError, OSError):
                pass

    return setup


class Server:
    """A running (or restarting) model server."""

    def __init__(self, spec: ServerSpec, log_dir: Path):
        self.spec = spec
        self.log_path = log_dir / f"{spec.served_name.replace('/', '_')}.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.state = "PENDING"
        self.restarts = 0
        self.detail: str | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Supervisor:
    def __init__(self, config: dict[str, Any], store: Store, deployment_dir: Path):
        self.id = config["deployment_id"]
        self.engine = config["engine"]
        self.store = store
        self.log_dir = deployment_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        specs = server_specs(config["multi_model_config"], self.engine, config["slots"])
        self.servers = [Server(s, self.log_dir) for s in specs]
        self.by_name: dict[str, tuple[Server, str]] = {}
        for server in self.servers:
            for name in server.spec.names:
                self.by_name[name] = (server, name)
        self.ever_active = False
        self.stopping = False
        self.http = AsyncHTTPClient()

    # process control ------------------------------------------------------------------------------

    def spawn(self, server: Server) -> None:
        server.port = free_port()
        cores = server.spec.slots if self.engine == "llama_cpp" else None
        env = {**os.environ, **server.spec.environment()}
        with open(server.log_path, "ab") as out:
            out.write(f"\n=== starting {server.spec.served_name} on port {server.port} at {time.ctime()}\n".encode())
            out.flush()
            server.proc = subprocess.Popen(
                server.spec.command(server.port),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_child_setup(cores),
                close_fds=True,
            )
        server.started_at = time.monotonic()
        server.state = "STARTING" if not server.restarts else "RESTARTING"
        self._save(server)

    def _save(self, server: Server) -> None:
        for name in server.spec.names:
            self.store.update_model(
                self.id,
                name,
                state=server.state,
                port=server.port,
                pid=server.proc.pid if server.proc else None,
                restarts=server.restarts,
                detail=server.detail,
            )

    def stop(self) -> None:
        self.stopping = True
        procs = [s.proc for s in self.servers if s.proc and s.proc.poll() is None]
        for p in procs:
            p.terminate()
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # health ---------------------------------------------------------------------------------------

    async def healthy(self, server: Server) -> bool:
        try:
            response = await self.http.fetch(
                HTTPRequest(f"{server.url}/v1/models", connect_timeout=1, request_timeout=2), raise_error=False
            )
        except Exception:
            return False
        return response.code == 200

    def exited(self, server: Server) -> None:
        code = server.proc.returncode if server.proc else None
        tail = log_tail(server.log_path, 8)
        if server.restarts < MAX_RESTARTS:
            server.restarts += 1
            server.detail = f"exited with code {code}; restarting ({server.restarts}/{MAX_RESTARTS})"
            log.warning("%s %s", server.spec.served_name, server.detail)
            self.spawn(server)
        else:
            server.state = "FAILED"
            server.detail = f"exited with code {code} after {MAX_RESTARTS} restarts. Last log lines:\n{tail}"
            self._save(server)

    async def check(self, server: Server) -> None:
        if server.state == "FAILED" or server.proc is None:
            return
        if server.proc.poll() is not None:
            self.exited(server)
            return
        if server.state in ("STARTING", "RESTARTING"):
            if await self.healthy(server):
                server.state, server.detail = "ACTIVE", None
                self._save(server)
            elif time.monotonic() - server.started_at > START_TIMEOUT_S.get(self.engine, 300):
                server.proc.kill()
                server.proc.wait()
                server.state = "FAILED"
                server.detail = (
                    f"did not answer /v1/models within {START_TIMEOUT_S[self.engine]:.0f} s. "
                    f"Last log lines:\n{log_tail(server.log_path)}"
                )
                self._save(server)

    def overall(self) -> tuple[str, str | None]:
        states = [s.state for s in self.servers]
        failed = [s for s in self.servers if s.state == "FAILED"]
        down = [s for s in self.servers if s.state != "ACTIVE"]
        if not self.ever_active:
            if failed:
                s = failed[0]
                return "FAILED", f"model {s.spec.served_name!r} failed to start: {s.detail}"
            if all(x == "ACTIVE" for x in states):
                self.ever_active = True
                return "ACTIVE", None
            return "CREATING", f"{len(self.servers) - len(down)} of {len(self.servers)} model servers up"
        if not down:
            return "ACTIVE", None
        return "NEEDS_ATTENTION", "; ".join(f"model {s.spec.served_name!r} is {s.state}: {s.detail}" for s in down)

    async def watch(self) -> None:
        for server in self.servers:
            self.spawn(server)
        last = None
        while not self.stopping:
            await asyncio.gather(*(self.check(s) for s in self.servers))
            state = self.overall()
            if state != last:
                if not self.store.set_state_unless(self.id, state[0], state[1], FINAL):
                    log.info("deployment left the running states; stopping")
                    shutdown(self)
                    return
                last = state
                log.info("deployment %s: %s", *state)
            if state[0] == "FAILED":
                self.stop()
                IOLoop.current().stop()
                return
            await asyncio.sleep(WATCH_INTERVAL_S)

    def server_for(self, name: str) -> tuple[Server, str] | None:
        return self.by_name.get(name)

    def poke(self, server: Server) -> None:
        """A request saw the server fail: look at it now rather than at the next tick."""
        IOLoop.current().add_callback(self.check, server)


def shutdown(supervisor: Supervisor) -> None:
    supervisor.stop()
    IOLoop.current().stop()


def main(argv: list[str]) -> int:
    config_path = Path(argv[0])
    deployment_dir = config_path.parent
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=[logging.FileHandler(deployment_dir / "runtime.log")],
    )
    config = json.loads(config_path.read_text())
    store = Store(Path(config["db"]))
    from .router import make_router  # tornado app; imported here so tests can import this module cheaply

    AsyncHTTPClient.configure(None, max_clients=256)
    supervisor = Supervisor(config, store, deployment_dir)
    app = make_router(supervisor, predict_endpoint=config.get("predict_endpoint", "/v1/completions"))
    try:
        app.listen(config["router_port"], address="127.0.0.1", xheaders=False)
    except OSError as exc:
        store.set_state_unless(supervisor.id, "FAILED", f"router port {config['router_port']}: {exc}", FINAL)
        return 1
    loop = IOLoop.current()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.asyncio_loop.add_signal_handler(sig, shutdown, supervisor)
    loop.add_callback(supervisor.watch)
    log.info("runtime %s serving on 127.0.0.1:%s", supervisor.id, config["router_port"])
    loop.start()
    supervisor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
