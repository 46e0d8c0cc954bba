"""The JupyterLab sidebar in headless Chromium, measured with the page's own `performance` marks.

1. The AQUA Lab panel's first render after the click; the Plan tab with the 52-model bundled
   catalog; the plan redraw after a selection change (click → request → grid drawn), side by side
   with the same POST plans request made alone from the page (the baseline: what the redraw adds
   on top of the server).
2. Streaming: a compare of two models whose tokens arrive at --rate tokens/s each for --seconds
   (a paced SSE server stands in for the model servers): every token must be on the page, and
   the main thread's long tasks (> 50 ms) are counted.
3. The extension's own JavaScript (remoteEntry + chunks; JupyterLab's shared packages excluded).

    python bench/sidebar_bench.py [--rounds 10] [--rate 200] [--seconds 30] [--quick]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _cli import arguments

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.helpers.lab import BUILD, isolated_env, start_lab  # noqa: E402

TOKEN = "bench-token"


def paced_server(rate: float, seconds: float) -> tuple[ThreadingHTTPServer, str]:
    """Answers any POST with the compare route's SSE for models "a" and "b": `rate` tokens/s each."""
    total = int(rate * seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            start = time.perf_counter()
            for i in range(total):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                for model in ("a", "b"):
                    chunk = {"model": model, "chunk": {"choices": [{"delta": {"content": f"w{i} "}}]}}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            for model in ("a", "b"):
                done = {"model": model, "tokens": total, "ttft_ms": 1, "tokens_per_s": rate}
                self.wfile.write(f"event: done\ndata: {json.dumps(done)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/compare"


def main() -> None:
    args = arguments(__doc__, {"rounds": 1, "seconds": 2.0}, rounds=10, rate=200.0, seconds=30.0)
    if not (BUILD / "package.json").exists():
        sys.exit("the sidebar is not built: run scripts/labextension.sh")
    own_js = sum(p.stat().st_size for p in (BUILD / "static").glob("*.js"))
    tmp = Path(tempfile.mkdtemp(prefix="aqua-sidebar-bench-"))
    os.environ.update(isolated_env(tmp))
    server, paced = paced_server(args.rate, args.seconds)
    lab, url = start_lab(tmp, TOKEN, extra=("--LabApp.expose_app_in_browser=True",))
    try:
        result = subprocess.run(
            [shutil.which("node") or "node", str(ROOT / "ui-tests" / "bench.mjs"), url, paced, str(args.rounds)],
            capture_output=True,
            text=True,
            timeout=args.seconds + 300,
            cwd=ROOT / "ui-tests",
        )
        if result.returncode:
            sys.exit(result.stderr[-3000:])
        found = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        lab.terminate()
        lab.wait(20)
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    redraw = statistics.median(found["planRedrawMs"])
    alone = statistics.median(found["planRequestMs"])
    sent = int(args.rate * args.seconds)
    shown = [sum(1 for w in text.split() if w.startswith("w")) for text in found["stream"]["shown"]]
    print(f"sidebar first render after the click      {found['sidebarFirstRenderMs']:7.0f} ms   (target ≤ 300)")
    print(f"Plan tab with {found['catalogModels']} catalog models          {found['planTabCatalogMs']:7.0f} ms")
    print(
        f"plan redraw after a selection change p50  {redraw:7.0f} ms   (target ≤ 150); the request alone "
        f"{alone:.0f} ms → redraw / request = {redraw / alone:.2f}×"
    )
    print(
        f"compare of 2 models at {args.rate:.0f} tok/s for {args.seconds:.0f} s: tokens on the page "
        f"{shown} of {sent} each; long tasks > 50 ms: {found['stream']['longTasks']} "
        f"(longest {found['stream']['longestTaskMs']:.0f} ms; [ms after Send, ms]: {found['stream']['longTaskAt']})"
    )
    print(f"the extension's own JS (remoteEntry + chunks, minified) {own_js / 1024:.1f} KB   (target ≤ 250 KB)")


if __name__ == "__main__":
    main()
