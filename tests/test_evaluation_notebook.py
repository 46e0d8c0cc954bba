"""notebooks/evaluate_models.ipynb runs top to bottom against real model servers."""

from __future__ import annotations

import pytest

from tests.test_notebooks import run


@pytest.fixture
def local_data(tmp_path, monkeypatch):
    monkeypatch.setenv("AQUA_LAB_DATA_DIR", str(tmp_path))  # the kernel inherits it
    yield tmp_path
    from aqua_lab.platforms.local import LocalPlatform

    platform = LocalPlatform(data_dir=tmp_path)
    for evaluation in platform.list_evaluations():
        platform.delete_evaluation(evaluation.id)
    for deployment in platform.list_deployments():
        platform.delete(deployment.id)


@pytest.mark.evaluation
@pytest.mark.widgets
@pytest.mark.local
@pytest.mark.slow
def test_evaluate_models_runs_top_to_bottom(local_data):
    text = run("evaluate_models.ipynb", local_data)
    assert "ACTIVE ['smol-a', 'smol-b']" in text
    assert "SUCCEEDED [('smol-a', 36, 0), ('smol-b', 36, 0)]" in text
    assert "bertscore_f1 {'smol-a':" in text and "Median F1:" in text
    assert "comparison.html" in text and "('DELETED', 'DELETED')" in text
