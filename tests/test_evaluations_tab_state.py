"""What the sidebar's Evaluations tab keeps while the user works in it (review of the tab): a half-filled
form is not replaced unasked by a card's Evaluate, the latest of overlapping requests wins (two Evaluate
clicks, two uploads), a refused Cancel stays said when the finished evaluation is drawn again, and the
keyboard focus on the evaluations list survives its polls.  Driven in headless Chromium against two
stand-in deployments (tests.helpers.fake_models: no model engine), answers held back with page.route."""

from __future__ import annotations

import json

import pytest

from aqua_lab.platforms.local import LocalPlatform
from tests.helpers.fake_models import start_fake_deployment
from tests.test_sidebar import drive, lab  # noqa: F401 (lab is the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.local, pytest.mark.evaluation]

ROWS = 200  # at 0.3 s a row for the `slow` model, four at a time: ~15 s of running to act in


def test_the_evaluations_tab_keeps_the_users_form_answers_in_order_and_keeps_refusals_and_focus(lab, tmp_path):  # noqa: F811
    url = lab("/")
    data_dir = tmp_path / "data"  # the data dir JupyterLab uses
    dataset = tmp_path / "long.jsonl"
    dataset.write_text(
        "".join(json.dumps({"prompt": f"question {i}?", "completion": "unknown"}) + "\n" for i in range(ROWS))
    )
    procs = []
    platform = LocalPlatform(data_dir=data_dir)
    try:
        ids = []
        for n, display in enumerate(("first fake", "second fake"), 1):
            deployment_id, proc = start_fake_deployment(
                data_dir, tmp_path / f"router{n}", f"local-fakeeval000{n}", ("perfect", "slow")
            )
            procs.append(proc)
            platform.store.update_deployment(deployment_id, display_name=display)
            ids.append(deployment_id)
        first, second = ids
        found = drive(url, first, second, str(dataset), script="evaluations-form-state.mjs", timeout=400)
    finally:
        for e in platform.list_evaluations():
            platform.delete_evaluation(e.id)
        for proc in procs:
            proc.kill()
            proc.wait()
    assert "error" not in found, found["error"]
    assert found["consoleErrors"] == []
    assert found["opened"] == first
    # 1. its own deployment's Evaluate: no question, the form kept and focused
    assert found["same"] == {"name": "half filled", "dialogs": 0, "focused": "Evaluation name"}
    # another deployment's: asked; kept as it was when the user says so, replaced when they agree
    assert found["dialogTitle"] == "Replace the form you started?"
    assert found["kept"] == {"name": "half filled", "deployment": first, "bleu": False}
    assert found["replaced"]["deployment"] == second and found["replaced"]["name"] != "half filled"
    # 2. two quick Evaluate clicks: the later one's form, though the first one's answer came last
    assert found["twoClicks"] == second
    # 4. two quick uploads: the file chosen later is shown and evaluated, though checked last
    assert "second.jsonl: 3 rows" in found["uploadNote"]
    assert "/second-" in found["sentDatasets"][0], found["sentDatasets"]
    assert found["uploadedState"] == "SUCCEEDED"
    # 3. the refused Cancel is still said once the finished evaluation is drawn again
    assert "the platform is down: try again in a minute" in found["refusal"]
    assert found["longState"] == "SUCCEEDED"
    assert found["refusalAfter"] == found["refusal"]
    # 5. the focus on its list item stayed through the polls that redrew the list until it finished
    assert found["focusedWhile"] in ("ACCEPTED", "IN_PROGRESS")
    assert found["focusAfter"] == found["longId"]
