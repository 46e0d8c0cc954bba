"""Run a benchmark of bench/ as a user would (its quick mode, a separate process) and read its result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick_bench(script: str, timeout: float = 300) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
