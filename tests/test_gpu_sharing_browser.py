"""The sidebar's Plan tab on a two-GPU machine (a fake ``nvidia-smi``) with three models: a stacked bar
per GPU, each model's budget a part of it, the room left, and who shares with whom (issue 29 item 2).
Screenshots land in build/screenshots/gpu-sharing{,-dark}.png."""

from __future__ import annotations

import pytest

from tests.test_sidebar import drive, lab  # noqa: F401 - the fixture that starts JupyterLab

pytestmark = [pytest.mark.browser, pytest.mark.local]

TWO_H100 = "0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA H100 80GB HBM3, 81559"


def test_three_models_on_two_gpus_draw_as_a_stacked_bar_per_gpu(lab, tmp_path, monkeypatch):  # noqa: F811
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nprintf '{TWO_H100}\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    found = drive(lab(), script="gpu-sharing.mjs", timeout=240)
    assert found["consoleErrors"] == []
    stacks = found["stacks"]
    assert [s["gpu"] for s in stacks] == ["0", "1"]  # a row per GPU …
    assert found["cells"] == 0  # … instead of a cell per model
    assert [len(s["parts"]) for s in stacks] == [2, 1]  # two models share GPU 0, the third has GPU 1
    assert all(w >= 10 for s in stacks for w in s["widths"])  # a small budget still shows
    assert all(s["free"].endswith("GB free") for s in stacks)
    assert any("shares GPU 0 with" in text for text in found["sharing"])
