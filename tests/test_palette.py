"""One palette keyed by served name (issue 25 item 8): the sidebar (labextension/src/palette.ts), the
widgets and the HTML report give a model the same colour, whatever order each lists the models in."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aqua_lab.evaluation.report import _STYLE
from aqua_lab.evaluation.svg import box_plot
from aqua_lab.palette import colour_map, colours
from aqua_lab.widgets.common import palette

pytestmark = pytest.mark.evaluation

ROOT = Path(__file__).parent.parent
NAME_SETS = [
    ["SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct-2"],
    ["b", "a", "b"],
    [f"model-{i}" for i in range(11)],  # more names than colours
    ["é-model", "𝔘nicode", "zeta", "Zeta", "日本語"],  # code point order, UTF-8 bytes
    [],
]


def test_the_sidebar_list_is_the_data_files_list():
    ts = (ROOT / "labextension" / "src" / "palette.ts").read_text()
    listed = re.search(r"export const COLOURS = \[(.*?)\];", ts).group(1)
    assert [c.strip().strip("'") for c in listed.split(",")] == list(colours())
    assert json.loads((ROOT / "aqua_lab" / "data" / "palette.json").read_text())["colours"] == list(colours())


def test_the_sidebar_and_python_colour_every_name_alike(tmp_path):
    built = ROOT / "lib" / "palette.js"
    node = shutil.which("node")
    assert node and built.exists(), "build the sidebar first: scripts/labextension.sh"
    module = tmp_path / "palette.mjs"
    module.write_text(built.read_text())
    script = (
        f"import {{ colourMap }} from {json.dumps(str(module))};"
        f"const sets = {json.dumps(NAME_SETS)};"
        "console.log(JSON.stringify(sets.map(s => Object.fromEntries(colourMap(s)))));"
    )
    out = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [colour_map(s) for s in NAME_SETS]


def test_a_name_keeps_its_colour_in_any_order_and_across_fronts():
    names = ["smol-a", "smol-b", "phi"]
    assert colour_map(names) == colour_map(reversed(names))
    assert len(set(colour_map(names).values())) == 3  # one deployment's models never share a colour
    assert palette(names) == colour_map(names)  # the widgets
    svg = box_plot({"phi": [0.1, 0.2], "smol-a": [0.3, 0.4]}, "ROUGE")  # the report, in another order
    fills = re.findall(r'fill="(#[0-9A-Fa-f]{6})" fill-opacity', svg)
    assert fills == [colour_map(names)["phi"], colour_map(names)["smol-a"]]


def test_report_tables_scroll_instead_of_cutting_columns():
    assert "table{display:block;max-width:100%;overflow-x:auto}" in _STYLE
