"""The supervisor of one local deployment's model servers: starts one per model (llama.cpp on CPU,
vLLM on GPU), health-checks and restarts them (a bounded number of times), tells a sleeping model
from a dead one, and writes their states to the platform's SQLite.  :mod:`.runtime` is the process
that runs it beside the router; the router and its metrics read it (so it imports neither).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import secrets
import signal
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from . import engine_log
from .engines import VLLM, ServerSpec, installed_vllm_version, server_specs, start_now
from .ports import free_port
from .store import Store

log = logging.getLogger("aqua_lab.runtime")

MAX_RESTARTS = 3
# a server that has been up this long since its last restart gets its whole restart budget back, so
# crashes spread over days do not add up to a disabled model
HEALTHY_RESET_S = 300.0
START_TIMEOUT_S = {"llama_cpp": 120.0, "vllm": 1800.0}
WATCH_INTERVAL_S = 0.2
# how long a request whose model server closed its connection waits for that server's exit, so the
# client is told why (a failed wake's abort, a kill) rather than only that it stopped answering
EXIT_WAIT_S = 1.0
FINAL = ("DELETING", "DELETED", "INACTIVE")
# a model that is asleep or waking is up: it answers (after its wake), it is neither down nor restarted
READY = ("ACTIVE", "SLEEPING", "LOADING")
# how often the supervisor asks a server that may sleep whether it does (llama-server's GET /props
# neither wakes it nor resets its idle timer)
SLEEP_POLL_S = 1.0
# signals that mean the engine itself crashed (not that someone stopped it)
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT}
CRASH_FIXES = {
    signal.SIGILL: "the engine uses an instruction this CPU lacks: rebuild it for this machine with "
    "`python -m aqua_lab.platforms.local.engine_build ensure` (./run.sh does it)",
    signal.SIGSEGV: "add --no-repack to the model's params (turns off llama.cpp's extra buffer types); "
    "if it still crashes, the model file may be damaged or unsupported by this llama.cpp",
}


def _signal_name(code: int | None) -> str | int | None:
    """The signal a process with this exit code died by (its name, or its number when it has none)."""
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return -code


def _how_it_ended(code: int | None) -> str:
    sig = _signal_name(code)
    if sig is None:
        return f"exited with code {code}"
    return f"killed by {sig}" if isinstance(sig, str) else f"killed by signal {sig}"


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
        # replica 1 keeps the model's own log name (what `deployment logs --model` reads)
        suffix = f".{spec.replica + 1}" if spec.replica else ""
        self.log_path = log_dir / f"{spec.served_name.replace('/', '_')}{suffix}.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.state = "PENDING"
        self.restarts = 0
        self.detail: str | None = None
        self.started_at = 0.0
        self.active_since: float | None = None
        self.served = 0  # requests answered completely since the last start (the router counts them)
        self.crashes = 0
        self.in_flight = 0  # requests the router is forwarding to it now
        self.dispatched = 0  # requests the router ever sent it (breaks ties between idle replicas)
        self.probe: asyncio.Future | None = None  # the health check of a NOT_ANSWERING server
        self.sleep_probe: asyncio.Future | None = None  # is it asleep (a server with idle_sleep_s)
        self.polled = 0.0
        self.asleep_since: float | None = None  # wall clock
        self.wake_started: float | None = None  # monotonic, while LOADING
        self.last_wake_s: float | None = None
        self.wakes = 0
        self.last_woke_at: float | None = None  # wall clock
        self.last_used = 0.0  # monotonic: when the router last sent it a request (least recently used sleeps)
        self.wake: asyncio.Future | None = None  # the one wake every request to an evicted model waits on
        self.exited_at: float | None = None  # perf_counter: when its last process's end was handled
        self.failure: str | None = None  # that end in one line: how, the engine's own error, what next

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
        self.replicas = int(config.get("replicas") or 1)
        specs = server_specs(
            config["multi_model_config"],
            self.engine,
            config["slots"],
            self.replicas,
            config.get("idle_sleep"),
            config.get("device", "cpu"),
        )
        self.servers = [Server(s, self.log_dir) for s in specs]
        # every served name → its replicas (one entry each), in replica order
        self.by_name: dict[str, list[tuple[Server, str]]] = {}
        for server in self.servers:
            for name in server.spec.names:
                self.by_name.setdefault(name, []).append((server, name))
        self.ever_active = False
        self.stopping = False
        self.http = AsyncHTTPClient()
        self.api_key: str | None = config.get("engine_key")  # what clients of the router must send
        # what the router sends its model servers: made here, never written anywhere, so the servers
        # answer no one but this router (the user's own key included: the router's checks hold)
        self.server_key = secrets.token_urlsafe(32)
        self.status_path = deployment_dir / "status.json"
        self.store_error: str | None = None
        self._unsaved: set[str] = set()  # served names whose state the store has not taken yet
        # more models than fit (issue 28 item 2): at most max_resident hold their memory and cores
        residency = config.get("residency") or {}
        self.max_resident: int | None = residency.get("max_resident")
        self.pinned = set(residency.get("pinned") or [])
        self.cores = list(config["slots"])
        # more models than cores: each server started on the cores the others leave (not model order)
        self.spread = bool(residency.get("spread"))
        self._room = asyncio.Lock()  # one wake at a time picks who sleeps

    # process control ------------------------------------------------------------------------------

    def spawn(self, server: Server) -> None:
        server.port = free_port()
        if self.spread and server.spec.cpu_cores:
            server.spec.slots = self._free_cores(server)
        cores = server.spec.cpu_cores
        server.crashes = server.crashes if server.restarts else 0
        env = {**os.environ, **server.spec.environment(self.server_key)}
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
        server.started_at = server.last_used = time.monotonic()
        server.active_since = None
        server.served = 0
        server.asleep_since = server.wake_started = None  # a new process starts awake
        server.state = "STARTING" if not server.restarts else "RESTARTING"
        self._save(server)

    # state ----------------------------------------------------------------------------------------
    # The store is shared with every other process and may refuse a write (a full disk, a locked or
    # read-only file).  The runtime's own state is what it keeps in memory: a failed write is retried
    # every tick, logged once, and written to status.json beside the logs for the platform to read.

    def _save(self, server: Server) -> None:
        self._unsaved.update(server.spec.names)
        self.flush_states()

    def flush_states(self) -> None:
        if not self._unsaved:
            return
        try:
            for name, replicas in self.by_name.items():
                if name in self._unsaved:
                    self.store.update_model(self.id, name, **self.model_view(name, replicas))
                    self._unsaved.discard(name)
        except Exception as exc:  # noqa: BLE001 - any failure of the store must leave the watcher running
            self._store_failed(exc)
            return
        if self.store_error:
            log.warning("state file writable again (%s)", self.store.path)
            self.store_error = None
        self._write_status()

    def _store_failed(self, exc: Exception) -> None:
        message = f"cannot write the state file {self.store.path}: {exc}"
        if message != self.store_error:
            log.error("%s; keeping model states in memory and in %s, retrying", message, self.status_path)
        self.store_error = message
        self._write_status()

    @staticmethod
    def model_view_server(replicas: list[tuple[Server, str]]) -> Server:
        """The replica a served name's state is read from: one that answers, else one that wakes."""
        servers = [s for s, _ in replicas]
        up = [s for s in servers if s.state == "ACTIVE"] or [s for s in servers if s.state in READY]
        return up[0] if up else servers[0]

    @staticmethod
    def model_view(name: str, replicas: list[tuple[Server, str]]) -> dict[str, Any]:
        """One served name's state over its replicas: ACTIVE while any replica answers (the router
        skips the others), with the others' states in the detail."""
        servers = [s for s, _ in replicas]
        first = Supervisor.model_view_server(replicas)
        if len(servers) == 1:
            detail = first.detail
        else:
            down = [f"replica {s.spec.replica + 1} is {s.state}: {s.detail}" for s in servers if s.state not in READY]
            detail = "; ".join(down) or None
        return {
            "state": first.state,
            "port": first.port,
            "pid": first.proc.pid if first.proc else None,
            "restarts": sum(s.restarts for s in servers),
            "detail": detail,
        }

    def replica_views(self, name: str) -> list[dict[str, Any]]:
        return [
            {
                "replica": s.spec.replica + 1,
                "state": s.state,
                "port": s.port,
                "pid": s.proc.pid if s.proc else None,
                "cores": s.spec.slots,
                "restarts": s.restarts,
            }
            for s, _ in self.by_name[name]
        ]

    @staticmethod
    def residency(replicas: list[tuple[Server, str]]) -> dict[str, Any]:
        """When the model fell asleep and how its last wake went (the fronts show both)."""
        first = Supervisor.model_view_server(replicas)
        return {
            "asleep_since": first.asleep_since,
            "last_wake_s": first.last_wake_s,
            "last_woke_at": first.last_woke_at,
            "wakes": sum(s.wakes for s, _ in replicas),
        }

    def _write_status(self) -> None:
        """The runtime's view, for the platform to show when the store is behind."""
        state, details = self.overall()
        status = {
            "time": time.time(),
            "pid": os.getpid(),
            "state": state,
            "details": details,
            "store_error": self.store_error,
            "models": {
                name: {
                    **{k: v for k, v in self.model_view(name, replicas).items() if k != "pid"},
                    "replicas": self.replica_views(name),
                    "residency": self.residency(replicas),
                }
                for name, replicas in self.by_name.items()
            },
        }
        try:
            tmp = self.status_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(status))
            tmp.replace(self.status_path)
        except OSError:
            pass

    def set_state(self, state: tuple[str, str | None]) -> bool | None:
        """Write the deployment's state; None when the store refused (try again next tick)."""
        details = state[1]
        if self.store_error:
            details = f"{details}; {self.store_error}" if details else self.store_error
        try:
            return self.store.set_state_unless(self.id, state[0], details, FINAL)
        except Exception as exc:  # noqa: BLE001
            self._store_failed(exc)
            return None

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
        path = "/health" if self.engine == "llama_cpp" else "/v1/models"
        headers = {"Authorization": f"Bearer {self.server_key}"}
        try:
            response = await self.http.fetch(
                HTTPRequest(f"{server.url}{path}", headers=headers, connect_timeout=1, request_timeout=2),
                raise_error=False,
            )
        except Exception:
            return False
        return response.code == 200

    def _journal(self, server: Server, code: int | None) -> None:
        """One line per model-server exit in <data dir>/exits.jsonl, kept after the deployment is
        deleted: which model, how it ended (a crash signal is what a test run must never see)."""
        entry = {"time": time.time(), "deployment_id": self.id, "model": server.spec.served_name, "code": code}
        if (sig := _signal_name(code)) is not None:
            entry["signal"] = sig
        try:
            with open(self.store.path.parent / "exits.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
        except OSError:
            pass

    def exited(self, server: Server) -> None:
        code = server.proc.returncode if server.proc else None
        self._journal(server, code)
        lines = engine_log.last_run(server.log_path)
        tail = "\n".join(lines[-8:])
        cause = engine_log.cause(lines)
        because = f": {cause}" if cause else ""
        # llama-server aborts when it cannot load its weights again after a sleep (a file replaced or
        # memory taken meanwhile): a failed load, not a crash of its code, so it is retried like one
        waking = server.state == "LOADING" or "after sleeping" in (cause or "")
        how = _how_it_ended(code) + (" while waking from sleep (loading its weights again)" if waking else "")
        crashed = code is not None and code < 0 and -code in CRASH_SIGNALS
        server.exited_at = time.perf_counter()
        if crashed:
            server.crashes += 1
            sig = signal.Signals(-code)
            when = (
                "while waking from sleep (loading its weights again)"
                if waking
                else "in its first request"
                if server.served == 0 and server.active_since
                else ("while loading" if not server.active_since else f"after {server.served} answered requests")
            )
            fix = CRASH_FIXES.get(sig, "see the log lines below")
            # a crash before anything was answered will happen again: say so now instead of
            # restarting in silence; one crash after real work may be a one-off
            if not waking and (server.served == 0 or server.crashes > 1):
                server.state = "FAILED"
                server.failure = f"{self.engine_name} crashed: {sig.name} {when}{because}; fix: {fix}"
                server.detail = f"{server.failure}. Last log lines:\n{tail}"
                log.error("%s %s", server.spec.label, server.detail)
                self._save(server)
                return
            how = f"crashed: {sig.name} {when}"
        if server.restarts < MAX_RESTARTS:
            server.restarts += 1
            server.failure = server.detail = f"{how}{because}; restarting ({server.restarts}/{MAX_RESTARTS})"
            log.warning("%s %s", server.spec.label, server.detail)
            self.spawn(server)
        else:
            server.state = "FAILED"
            server.failure = f"{how}{because}, after {MAX_RESTARTS} restarts"
            server.detail = f"{server.failure}. Last log lines:\n{tail}"
            self._save(server)

    async def lost(self, server: Server, since: float) -> str | None:
        """A request sent to ``server`` at ``since`` (``time.perf_counter``) lost its connection: when
        its process ended (or ends within :data:`EXIT_WAIT_S`), the exit is handled now rather than at
        the next tick, and its one line of why and what happens next is returned for the client (None
        while the process still runs)."""
        deadline = time.monotonic() + EXIT_WAIT_S
        while True:
            if server.exited_at is not None and server.exited_at >= since and server.failure:
                return server.failure
            if server.proc is not None and server.proc.poll() is not None and server.state != "FAILED":
                self.exited(server)
                continue
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)

    @property
    def engine_name(self) -> str:
        return "llama.cpp" if self.engine == "llama_cpp" else "vLLM"

    async def check(self, server: Server) -> None:
        if server.state == "FAILED" or server.proc is None:
            return
        if server.proc.poll() is not None:
            self.exited(server)
            return
        if server.state == "ACTIVE" and server.restarts and server.active_since:
            if time.monotonic() - server.active_since > HEALTHY_RESET_S:
                server.restarts, server.crashes = 0, 0
                self._save(server)
        if server.state == "NOT_ANSWERING":  # checked beside the tick: a silent server takes its 2 s
            if server.probe is None or server.probe.done():
                server.probe = asyncio.ensure_future(self._answers_again(server))
            return
        if server.spec.idle_sleep_s and server.state in ("ACTIVE", "SLEEPING"):
            if (server.sleep_probe is None or server.sleep_probe.done()) and (
                time.monotonic() - server.polled >= SLEEP_POLL_S
            ):
                server.polled = time.monotonic()
                server.sleep_probe = asyncio.ensure_future(self._sleep_poll(server))
            return
        if server.state in ("STARTING", "RESTARTING"):
            if await self.healthy(server):
                server.state, server.detail = "ACTIVE", None
                server.active_since = time.monotonic()
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

    async def _sleep_poll(self, server: Server) -> None:
        """A sleeping server is alive and answers /health: only /props says it sleeps."""
        headers = {"Authorization": f"Bearer {self.server_key}"}
        try:
            response = await self.http.fetch(
                HTTPRequest(f"{server.url}/props", headers=headers, connect_timeout=1, request_timeout=2),
                raise_error=False,
            )
            sleeping = response.code == 200 and bool(json.loads(response.body).get("is_sleeping"))
        except Exception:  # noqa: BLE001 - a dead server is the exit check's business
            return
        if sleeping and server.state == "ACTIVE" and server.in_flight == 0:
            server.state, server.asleep_since = "SLEEPING", time.time()
            server.detail = (
                f"asleep since {time.strftime('%H:%M:%S')} (idle {server.spec.idle_sleep_s} s): its weights and "
                f"KV cache are freed; the next request wakes it{self._last_wake(server)}"
            )
            log.info("%s %s", server.spec.label, server.detail)
            self._save(server)
        elif not sleeping and server.state == "SLEEPING":  # woken by a request that did not wait here
            self.woke(server)

    @staticmethod
    def _last_wake(server: Server) -> str:
        return f"; its last wake took {server.last_wake_s:.2f} s" if server.last_wake_s is not None else ""

    def waking(self, server: Server) -> None:
        """A request goes to a sleeping server: llama-server reloads the model before answering it."""
        if server.state == "SLEEPING":
            server.state, server.wake_started = "LOADING", time.monotonic()
            slept = time.time() - (server.asleep_since or time.time())
            server.detail = f"waking after {slept:.0f} s asleep: loading its weights"
            self._save(server)

    def woke(self, server: Server) -> None:
        """The server answers again: how long the wake took is what the next sleep's detail says."""
        if server.state not in ("SLEEPING", "LOADING"):
            return
        if server.wake_started is not None:
            server.last_wake_s = time.monotonic() - server.wake_started
            server.wakes += 1
            server.last_woke_at = time.time()
            log.info("%s woke in %.2f s", server.spec.label, server.last_wake_s)
        server.state, server.wake_started, server.asleep_since = "ACTIVE", None, None
        server.detail = f"last wake took {server.last_wake_s:.2f} s" if server.last_wake_s is not None else None
        self._save(server)

    def overall(self) -> tuple[str, str | None]:
        states = [s.state for s in self.servers]
        failed = [s for s in self.servers if s.state == "FAILED"]
        down = [s for s in self.servers if s.state not in READY]
        if not self.ever_active:
            up = self.replicas_up()
            if failed:
                s = failed[0]
                were = f"; {up} of {self.replicas} replicas were up" if self.replicas > 1 else ""
                return "FAILED", f"model {s.spec.label!r} failed to start: {s.detail}{were}"
            if all(x in READY for x in states):
                self.ever_active = True
                return "ACTIVE", None
            if self.replicas > 1:
                return "CREATING", f"{up} of {self.replicas} replicas up (started one at a time)"
            return "CREATING", f"{len(self.servers) - len(down)} of {len(self.servers)} model servers up"
        if not down:
            return "ACTIVE", None
        if len(failed) == len(self.servers):  # nothing left that could answer or recover
            return "FAILED", "; ".join(f"model {s.spec.label!r} failed: {s.detail}" for s in failed)
        return "NEEDS_ATTENTION", "; ".join(f"model {s.spec.label!r} is {s.state}: {s.detail}" for s in down)

    def replicas_up(self) -> int:
        return sum(all(s.state in READY for s in self.servers if s.spec.replica == r) for r in range(self.replicas))

    def start_next_replica(self) -> None:
        """Start the next replica's servers once every server started so far answers: replicas come
        up one at a time, so a machine that cannot hold them all stops at the first that fails
        instead of forking every one at once."""
        if any(s.state not in READY for s in self.servers if s.proc is not None or s.state == "FAILED"):
            return
        waiting = [s for s in self.servers if s.proc is None and s.state == "PENDING"]
        if self.max_resident:
            waiting = self._first_residents(waiting)
        if self.engine == VLLM and waiting:  # old vLLMs sharing a GPU: one after the other, in model order
            now = {id(spec) for spec in start_now([s.spec for s in waiting], installed_vllm_version())}
            waiting = [s for s in waiting if id(s.spec) in now]
        for server in waiting:
            if server.spec.replica == waiting[0].spec.replica:
                try:
                    self.spawn(server)
                except Exception as exc:  # noqa: BLE001
                    self._spawn_failed(server, exc)

    async def watch(self) -> None:
        """Watch the servers until the deployment ends.  Nothing that goes wrong in one tick (a store
        that refuses writes, a server that cannot be spawned) may end the watch: the servers would
        then never be restarted again."""
        self.start_next_replica()
        last = None
        while not self.stopping:
            try:
                last = await self.tick(last)
            except Exception:  # noqa: BLE001
                log.exception("supervisor tick failed; carrying on")
            if last == "stop":
                return
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def tick(self, last: object) -> object:
        await asyncio.gather(*(self._check_safely(s) for s in self.servers))
        if not self.ever_active:
            self.start_next_replica()
        self.flush_states()
        state = self.overall()
        if state != last or (self.store_error and state[0] != "FAILED"):
            saved = self.set_state(state)
            if saved is False:
                log.info("deployment left the running states; stopping")
                self.stop()
                return "stop"
            if saved:
                if state != last:
                    log.info("deployment %s%s", state[0], f": {state[1]}" if state[1] else "")  # no ': None'
                last = state
        if state[0] == "FAILED":
            self._write_status()
            self.stop()
            return "stop"
        return last

    async def _check_safely(self, server: Server) -> None:
        try:
            await self.check(server)
        except Exception as exc:  # noqa: BLE001
            self._spawn_failed(server, exc)

    def _spawn_failed(self, server: Server, exc: Exception) -> None:
        log.exception("model %s: %s", server.spec.served_name, exc)
        if server.proc is None or server.proc.poll() is not None:
            server.state = "FAILED"
            server.detail = f"could not start its server: {exc}"
            self._unsaved.update(server.spec.names)

    def server_for(self, name: str) -> tuple[Server, str] | None:
        """The replica to send a request for ``name`` to: the ACTIVE one with the fewest requests in
        hand (least outstanding requests), so a dead or restarting replica is skipped; when none is
        ACTIVE, the one whose state best says why (the caller answers 503 with it)."""
        replicas = self.by_name.get(name)
        if not replicas:
            return None
        if len(replicas) == 1:
            return replicas[0]
        up = [r for r in replicas if r[0].state == "ACTIVE"] or [r for r in replicas if r[0].state in READY]
        if up:
            return min(up, key=lambda r: (r[0].in_flight, r[0].dispatched))
        return next((r for r in replicas if r[0].state != "FAILED"), replicas[0])

    def state_of(self, name: str) -> str:
        """A served name's state over its replicas (ACTIVE while one answers)."""
        return self.model_view(name, self.by_name[name])["state"]

    def not_answering(self, server: Server, why: str) -> None:
        """A request to ``server`` passed a time limit: it gets no new requests (the router skips a
        server that is not ACTIVE) until its health check passes — LiteLLM's cooldown."""
        if server.state == "ACTIVE":
            server.state = "NOT_ANSWERING"
            server.detail = (
                f"not answering since {time.strftime('%H:%M:%S')} ({why}); it gets no new requests until "
                "its health check passes"
            )
            log.warning("%s %s", server.spec.label, server.detail)
            self._save(server)

    async def _answers_again(self, server: Server) -> None:
        if await self.healthy(server) and server.state == "NOT_ANSWERING":
            server.state, server.detail = "ACTIVE", None
            log.info("%s answers its health check again", server.spec.label)
            self._save(server)

    # more models than fit ----------------------------------------------------------------------------
    # llama-server has no request that puts a model to sleep (it sleeps only by its own idle timer,
    # and its router mode would replace this runtime), so a model put to sleep to make room is
    # stopped and, on its next request, started again under this supervisor: its process is gone,
    # its memory and cores free for the model that wakes.

    def resident(self, server: Server) -> bool:
        """Holds its weights and cores now (a server asleep by llama-server's own timer does not)."""
        return server.proc is not None and server.state not in ("SLEEPING", "FAILED")

    def _first_residents(self, waiting: list[Server]) -> list[Server]:
        """At start: the pinned models and then the others in order, up to the limit; the rest wait
        asleep (without a process) for their first request."""
        pinned = [s for s in waiting if s.spec.served_name in self.pinned]
        chosen = (pinned + [s for s in waiting if s not in pinned])[: self.max_resident]
        for server in waiting:
            if server not in chosen:
                server.state, server.asleep_since = "SLEEPING", time.time()
                server.detail = (
                    f"not resident: at most {self.max_resident} of {len(self.servers)} models are resident "
                    "together; its first request wakes it"
                )
                self._save(server)
        return chosen

    def _free_cores(self, server: Server) -> list[int]:
        """The deployment's cores the other resident servers leave, the least used first."""
        load = {c: 0 for c in self.cores}
        for other in self.servers:
            if other is not server and self.resident(other):
                for c in other.spec.slots:
                    load[c] = load.get(c, 0) + 1
        count = max(1, len(server.spec.slots))
        return sorted(sorted(load, key=lambda c: (load[c], c))[:count])

    def _pin(self, server: Server) -> None:
        """A server asleep by its own timer wakes in its process: on the cores free now (every thread)."""
        if not (self.spread and server.proc and server.spec.cpu_cores):
            return
        server.spec.slots = self._free_cores(server)
        try:
            for tid in os.listdir(f"/proc/{server.proc.pid}/task"):
                os.sched_setaffinity(int(tid), server.spec.slots)
        except (OSError, ValueError):
            pass

    def _victim(self, server: Server) -> Server | None:
        """The least recently used resident model that may sleep: not pinned, nothing in hand, answering."""
        idle = [
            s
            for s in self.servers
            if s is not server
            and self.resident(s)
            and s.state == "ACTIVE"
            and s.in_flight == 0
            and s.spec.served_name not in self.pinned
        ]
        return min(idle, key=lambda s: s.last_used) if idle else None

    async def make_room(self, server: Server, deadline: float) -> None:
        """Put the least recently used models to sleep until ``server`` may be resident; waits (until
        ``deadline``, monotonic) while every resident model is busy or pinned: raises TimeoutError."""
        while True:
            others = [s for s in self.servers if s is not server and self.resident(s)]
            if len(others) < self.max_resident:
                return
            victim = self._victim(server)
            if victim is not None:
                await self.evict(victim, server)
                continue
            if time.monotonic() > deadline:
                busy = ", ".join(f"{s.spec.label} ({s.in_flight} in hand)" for s in others)
                raise TimeoutError(f"every resident model is busy or pinned: {busy}")
            await asyncio.sleep(0.05)

    async def evict(self, victim: Server, waking: Server) -> None:
        proc, victim.proc = victim.proc, None  # detached first: its exit is no crash to restart
        victim.state, victim.asleep_since = "SLEEPING", time.time()
        victim.detail = (
            f"asleep since {time.strftime('%H:%M:%S')}: put to sleep (least recently used) to make room for "
            f"{waking.spec.label!r}, at most {self.max_resident} models are resident together; the next "
            f"request wakes it{self._last_wake(victim)}"
        )
        log.info("%s %s", victim.spec.label, victim.detail)
        self._save(victim)
        if proc is None:
            return
        proc.terminate()
        deadline = time.monotonic() + 5
        while proc.poll() is None:  # its memory must be free before the next model loads
            if time.monotonic() > deadline:
                proc.kill()
            await asyncio.sleep(0.02)

    async def ensure_resident(self, server: Server, deadline: float) -> None:
        """Before a request goes to a sleeping model: room made for it and, when it was put to sleep by
        this supervisor, its server started again and answering.  Every request for it shares one wake."""
        if not self.max_resident:
            return
        if server.wake is None or server.wake.done():
            server.wake = asyncio.ensure_future(self._wake(server, deadline))
        await asyncio.shield(server.wake)

    async def _wake(self, server: Server, deadline: float) -> None:
        async with self._room:
            await self.make_room(server, deadline)
            respawn = server.proc is None
            if respawn:
                began = server.wake_started or time.monotonic()
                self.spawn(server)
                # a wake, not a start: the fronts say LOADING, and its time is the wake's
                server.state, server.wake_started = "LOADING", began
                self._save(server)
            else:
                self._pin(server)
        if not respawn:
            return  # asleep by its own timer: the request itself wakes it
        while server.state != "ACTIVE":
            if server.state == "FAILED":
                raise RuntimeError(server.failure or server.detail or "its server failed")
            if time.monotonic() > deadline:
                raise TimeoutError("its server did not answer in time")
            if server.state == "LOADING" and await self.healthy(server):
                self.woke(server)
                return
            await asyncio.sleep(0.05)
