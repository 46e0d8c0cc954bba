"""The JupyterLab frontend as a package: its REST types match the server's openapi.json, its
TypeScript unit tests pass, and a wheel built from a clean clone carries the prebuilt sidebar."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import openapi_types  # noqa: E402

pytestmark = pytest.mark.frontend


def test_the_frontend_types_are_generated_from_the_current_openapi_document():
    committed = (ROOT / "labextension" / "src" / "schema.ts").read_text()
    assert committed == openapi_types.generated(), (
        "labextension/src/schema.ts is out of date with the REST API: run `python scripts/openapi_types.py`, "
        "then rebuild (scripts/labextension.sh) and fix what TypeScript reports"
    )


def test_the_generated_types_name_every_route_and_required_field():
    text = openapi_types.generated()
    assert '| "POST /aqua/plans"' in text and '| "POST /aqua/deployments/{deployment_id}/compare"' in text
    assert "export interface Plan {\n  deployment_config: Record<string, DeploymentConfig>;" in text
    assert "  primary_model_id?: string | null;" in text  # optional and nullable
    assert 'state: "CREATING" | "ACTIVE"' in text  # enums become unions


def _jlpm() -> list[str]:
    # jlpm (yarn, from jupyter-builder) sits next to this Python; not necessarily on PATH
    beside = Path(sys.executable).parent / "jlpm"
    return [str(beside)] if beside.exists() else [shutil.which("jlpm") or "jlpm"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the sidebar cannot be built here")
def test_typescript_unit_tests_pass():
    assert (ROOT / "node_modules" / "vitest").exists(), "run scripts/labextension.sh first (./test.sh does)"
    result = subprocess.run([*_jlpm(), "test"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the sidebar cannot be built here")
def test_a_wheel_from_a_clean_clone_ships_the_prebuilt_sidebar(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    # the clone has the committed tree only; uncommitted edits of this checkout are not in it
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ".", "-w", str(tmp_path / "dist")],
        cwd=clone,
        check=True,
        timeout=600,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("aqua_lab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    data = "aqua_lab-0.1.0.data/data/share/jupyter/labextensions/aqua-lab/"
    assert f"{data}package.json" in names and f"{data}install.json" in names
    assert any(n.startswith(f"{data}static/remoteEntry.") for n in names)
    assert f"{data}schemas/aqua-lab/plugin.json" in names
    # installed into a prefix, JupyterLab lists it as enabled and as coming from the Python package
    prefix = tmp_path / "prefix"
    subprocess.run(
        # --ignore-installed: without it pip uninstalls the editable aqua_lab of this very environment first
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--ignore-installed",
            "--prefix",
            str(prefix),
            str(wheel),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JUPYTER_PATH": str(prefix / "share" / "jupyter"), "JUPYTER_CONFIG_DIR": str(tmp_path)},
    )
    lines = [line for line in (listing.stdout + listing.stderr).splitlines() if "aqua-lab" in line]
    assert any("enabled" in line and "OK" in line and "(python, aqua_lab)" in line for line in lines), lines
