"""A stand-in for a model server (or a router) that streams a short chat answer at once, in a process of
its own: what a hop's own cost is measured against when no model competes for the cores.

Not a bench itself (the leading underscore keeps it out of the list of scripts the tests run)."""

from __future__ import annotations

import subprocess
import sys

from _http import wait_until_answers

from aqua_lab.platforms.local.runtime import free_port

SOURCE = """
import asyncio, sys
from tornado import web
class Up(web.RequestHandler):
    async def post(self, *_):
        self.set_header("Content-Type", "text/event-stream")
        self.write('data: {"choices":[{"delta":{"role":"assistant"}}]}\\n\\n'); await self.flush()
        await asyncio.sleep(float(sys.argv[2]))
        for _ in range(3):
            self.write('data: {"choices":[{"delta":{"content":"t"}}]}\\n\\n'); await self.flush()
        self.write("data: [DONE]\\n\\n")
    def get(self, *_):
        self.finish("ok")
async def main():
    web.Application([(r"/v1/(.*)", Up)]).listen(int(sys.argv[1]), address="127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


def start(prefill_s: float = 0.005) -> tuple[subprocess.Popen, int]:
    """(the process, its port) once it answers; its first token comes ``prefill_s`` after the role chunk."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SOURCE, str(port), str(prefill_s)])
    wait_until_answers(f"http://127.0.0.1:{port}/v1/ready", proc, "the stand-in upstream", 10, 0.05)
    return proc, port
