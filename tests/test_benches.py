"""Every script in ``bench/`` still runs: its ``--quick`` mode (the same code path, small inputs) in a
process of its own, from a fresh-clone-like state, exits 0 and prints the ratio lines its figures come
from.  A bench nobody runs rots silently (``server_bench.py`` met a 409 for as long as nobody ran it).

Fresh-clone-like: no ``AQUA_LAB_*`` setting of this machine's, a working directory outside the
repository, and private data, Jupyter and temporary directories — so a bench can lean on nothing a
developer's machine happens to have, and every process it started must be gone when it exits."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.lab import BUILD

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
#: where the engine lives, not a setting: a fresh clone builds the same one into the same place
KEPT_SETTINGS = ("AQUA_LAB_ENGINE_CACHE", "AQUA_LAB_LLAMA_SOURCE")

# script, its quick command line, the capability markers, lines that must be printed (regular expressions)
QUICK = [
    ("allocation_bench.py", ["--quick"], ["planning"], [r"\n\s+6\s+m0\s.*\d\.\dx\s+True"]),
    (
        "capacity_bench.py",
        ["--quick"],
        ["planning", "local"],
        [r"ratio ours / ADS-one-model\s+\d+\.\d\d×", r"512×1\s+.*[+-]\d+\.\d\d%"],
    ),
    (
        "engine_bench.py",
        ["--quick"],
        ["local"],
        [r"1 thread\(s\)  ratio chosen/baseline: decode \d+\.\d{3}×", r"ok 8/8, refused \(429\) 0, errors 0"],
    ),
    (
        "evaluation_bench.py",
        ["--quick", "--real"],
        ["evaluation", "local"],
        [r"batched is \d+\.\d× faster", r"round 1: one multi-model evaluation .* → \d+\.\d\d×"],
    ),
    ("leaderboard_bench.py", ["--quick"], ["arena"], [r"read and fitted / the fit alone: \d+\.\d\d×"]),
    (
        "judge_bench.py",
        ["--quick"],
        ["arena", "local"],
        [r"judge requests per row: 2 = 2 × C\(2, 2\) = 2", r"judge / generation = \d+\.\d\d×", r"slots busy \d+\.\d%"],
    ),
    (
        "local_router_bench.py",
        ["--quick", "--transports"],
        ["local"],
        [
            r"router vs direct, 1 stream\(s\): added TTFT p50 [+-]\d+\.\d\d ms, .* % of direct",
            r"router vs direct, 8 stream\(s\): added TTFT p50 [+-]\d+\.\d\d ms, TTFT p90 .* = \d+\.\d\d×",
            r"llama.cpp servers: httpx vs pool, 1 stream\(s\): TTFT p50 \d+\.\d\d× \([+-]\d+\.\d\d ms, (within|over)",
            r"instant stand-in: aiohttp vs pool, 8 stream\(s\): TTFT p50 \d+\.\d\d× .* p90 \d+\.\d\d×",
        ],
    ),
    ("oci_config_bench.py", ["--quick"], ["oci"], [r"ours is \d+\.\dx faster", r"warm repeat:\s+\d+\.\d\d ms"]),
    (
        "residency_bench.py",
        ["--quick"],
        ["local"],
        [r"rotating\s+\{'requests': 12, 'ttft_p50_s'", r"shared\s+\{'requests': 12, 'ttft_p50_s'"],
    ),
    (
        "scaling_bench.py",
        ["--quick"],
        ["scaling", "local"],
        [r"2 replicas × 4 slots vs 1 replica × 8 slots: aggregate tokens/s ×\d", r"streamed: .* added [+-]\d"],
    ),
    (
        "server_bench.py",
        ["--quick"],
        ["server", "local"],
        [r"p99 ratio loaded/idle: \d+\.\d\dx; 4/4 streams", r"→ handler adds [+-]\d", r"handler's own cost [+-]\d"],
    ),
    ("sidebar_bench.py", ["--quick"], ["browser"], [r"redraw / request = \d+\.\d\d×"]),
    ("stacked_bench.py", ["--quick"], ["local"], [r"pss_ratio\s+0\.\d+", r"decode_ratio\s+\d+\.\d+"]),
    ("status_bench.py", ["--quick"], ["server"], [r"baseline \d+\.\d ms → \d+\.\dx lower"]),
    ("wake_bench.py", ["--quick"], ["local"], [r"wake_vs_cold\s+\d+\.\d+", r"memory_freed\s+0\.\d+"]),
]


def fresh_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQUA_LAB_") or k in KEPT_SETTINGS}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[name] = str(tmp / name.lower())
        os.makedirs(env[name], exist_ok=True)
    # short: Chromium's singleton socket lives under TMPDIR and a Unix socket path has 108 bytes at most
    # (pytest's folder names in a fresh clone are longer than that leaves)
    env["TMPDIR"] = str(short_tmp(tmp))
    return {**env, "AQUA_LAB_DATA_DIR": str(tmp / "data"), "PYTHONDONTWRITEBYTECODE": "1"}


def short_tmp(tmp: Path) -> Path:
    """A short temporary folder that belongs to ``tmp`` (removed with it by :func:`run_bench`)."""
    path = Path("/tmp") / f"aqb-{abs(hash(str(tmp))) % 10**8}"
    path.mkdir(exist_ok=True)
    return path


def left_behind(tmp: Path) -> list[str]:
    """Processes whose command line names the bench's private directories (its deployments' runtimes
    and model servers keep their files there)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(tmp) in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


def run_bench(command: list[str], tmp: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``command`` in its own session, killed whole (children too) if it passes ``timeout``."""
    proc = subprocess.Popen(
        command,
        cwd=tmp,
        env=fresh_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{command[1:]} ran past {timeout:g} s; its output:\n{out[-2000:]}\n{err[-2000:]}")
    finally:
        shutil.rmtree(short_tmp(tmp), ignore_errors=True)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def test_every_bench_script_has_a_quick_run_here():
    covered = {script for script, *_ in QUICK} | {"gpu_check.sh", "gpu_check_run.py"}
    # _cli.py, _upstream.py: what the scripts share, not scripts
    scripts = {p.name for p in BENCH.iterdir() if p.suffix in (".py", ".sh") and not p.name.startswith("_")}
    assert scripts == covered, f"bench scripts without a quick run in this file: {sorted(scripts - covered)}"


def test_the_shared_command_line_takes_both_spellings_and_quick_sets_the_small_inputs(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from _cli import arguments, percentile

    args = arguments(
        "doc", {"rounds": 1}, ["--max-models", "3", "--streams", "1", "8"], rounds=6, max_models=12, streams=[1]
    )
    assert (args.rounds, args.max_models, args.streams, args.quick) == (6, 3, [1, 8], False)
    args = arguments(
        "doc", {"rounds": 1}, ["--quick", "--max_models", "4", "--flag"], rounds=6, max_models=12, flag=False
    )
    assert (args.rounds, args.max_models, args.flag) == (1, 4, True)
    assert percentile([5.0], 90) == 5.0 and percentile([float(i) for i in range(101)], 50) == 50.0


@pytest.mark.parametrize(
    "script, args, expected",
    [
        pytest.param(script, args, expected, marks=[pytest.mark.slow, *(getattr(pytest.mark, m) for m in caps)])
        for script, args, caps, expected in QUICK
    ],
    ids=[script.removesuffix(".py") for script, *_ in QUICK],
)
def test_the_quick_mode_runs_and_prints_its_ratios(script, args, expected, tmp_path):
    if script == "sidebar_bench.py" and not (BUILD / "package.json").exists():
        pytest.skip("the sidebar is not built (scripts/labextension.sh)")
    done = run_bench([sys.executable, str(BENCH / script), *args], tmp_path)
    try:
        assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        for line in expected:
            assert re.search(line, done.stdout), f"no line matching {line!r} in:\n{done.stdout[-3000:]}"
    finally:
        stray = left_behind(tmp_path)
        for entry in stray:
            os.kill(int(entry.split(":")[0]), signal.SIGKILL)
    assert not stray, f"{script} left processes running: {stray}"


@pytest.mark.slow
@pytest.mark.local
def test_the_gpu_check_has_a_dry_run_and_its_measuring_half_says_how_it_is_run(tmp_path):
    dry = run_bench(["bash", str(BENCH / "gpu_check.sh"), "--dry-run", str(tmp_path / "out")], tmp_path, 120)
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing is built, started or written." in dry.stdout
    assert "decode tokens/s per model alone and with its GPU neighbour busy (ratio" in dry.stdout
    assert not (tmp_path / "out").exists()
    # the measuring half needs a GPU; run bare it must still import and say how it is run
    bare = run_bench([sys.executable, str(BENCH / "gpu_check_run.py")], tmp_path, 120)
    assert bare.returncode == 1 and "usage: bench/gpu_check_run.py OUT_DIR" in bare.stderr, bare.stderr[-2000:]
