"""The example notebooks run top to bottom against real deployments."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


@pytest.mark.local
def test_quickstart_local_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("AQUA_LAB_DATA_DIR", str(tmp_path))  # the kernel inherits it
    nb = nbformat.read(NOTEBOOKS / "quickstart_local.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "\n".join(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "('ACTIVE'" in text
    assert "first token" in text
    assert "'DELETED'" in text
