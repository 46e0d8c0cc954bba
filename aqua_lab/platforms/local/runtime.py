"""The runtime of one local deployment — a detached process, the local twin of the OCI container.

    python -m aqua_lab.platforms.local.runtime <deployment dir>/runtime.json

It reads the deployment's ``MULTI_MODEL_CONFIG``, starts one model server per model (llama.cpp on
CPU, vLLM on GPU), health-checks and restarts them (a bounded number of times), writes their states
to the platform's SQLite, and serves the router (see :mod:`.router`) on the deployment's port.
On SIGTERM it stops every server it started; its servers die with it (PR_SET_PDEATHSIG) even if it
is killed outright.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop

from .ports import free_port  # noqa: F401 (re-exported: callers import it from here)
from .store import Store
from .supervisor import FINAL, Server, Supervisor, log_tail  # noqa: F401 (re-exported)

log = logging.getLogger("aqua_lab.runtime")


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
    from .router import make_router, use_fast_loop  # imported here so tests import this module cheaply

    loop_name = use_fast_loop()
    AsyncHTTPClient.configure(None, max_clients=256)
    supervisor = Supervisor(config, store, deployment_dir)
    app = make_router(
        supervisor,
        predict_endpoint=config.get("predict_endpoint", "/v1/completions"),
        metrics=config.get("metrics", True),
    )
    try:
        app.listen(config["router_port"], address="127.0.0.1")  # binds now: a taken port fails here
    except OSError as exc:
        store.set_state_unless(supervisor.id, "FAILED", f"router port {config['router_port']}: {exc}", FINAL)
        return 1
    loop = IOLoop.current()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.asyncio_loop.add_signal_handler(sig, shutdown, supervisor)

    async def run() -> None:
        await supervisor.watch()  # returns when the deployment has failed or left the running states
        loop.stop()

    loop.add_callback(run)
    log.info("runtime %s serving on 127.0.0.1:%s (%s)", supervisor.id, config["router_port"], loop_name)
    loop.start()
    supervisor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
