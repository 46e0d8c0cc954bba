"""The evaluation charts' axes (issue 25 item 8): ticks on round values, the axis title never clipped."""

from __future__ import annotations

import re

import pytest

from aqua_lab.evaluation.svg import box_plot, nice_ticks

pytestmark = pytest.mark.evaluation


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (0.0, 1.0, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0.12, 0.83, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0.2, 1.04, [0.2, 0.4, 0.6, 0.8, 1, 1.2]),
        (0.0, 20.557, [0, 5, 10, 15, 20, 25]),
        (2466, 2936, [2400, 2500, 2600, 2700, 2800, 2900, 3000]),
    ],
)
def test_ticks_land_on_round_values_that_cover_the_data(lo, hi, ticks):
    assert nice_ticks(lo, hi) == ticks


def test_a_box_plot_labels_its_axis_with_round_ticks_and_a_whole_title():
    title = "latency p50 (ms) (lower is better) of every row"
    svg = box_plot({"smollm2-a": [0.21, 0.5, 0.831, 1.0], "smollm2-b": [0.1, 0.4, 0.6]}, "rougeL", title)
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert labels == ["0", "0.2", "0.4", "0.6", "0.8", "1"]  # not 1.04, 0.831 …
    # the axis title is written across, on its own line, not turned along a shorter axis
    assert f'fill="#555">{title}</text>' in svg and "rotate(-90)" not in svg
