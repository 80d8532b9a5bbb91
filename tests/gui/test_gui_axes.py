"""The log axes label 1, 2, 5 x 10^n plainly, never every minor tick, never an SI prefix."""

from __future__ import annotations

import math

import pytest

from gui.plots.axes import LogAxisItem, log_tick_label, use_log_axes


@pytest.mark.parametrize(
    "value,label",
    [
        (0.05, "0.05"),
        (0.001, "0.001"),
        (1, "1"),
        (20, "20"),
        (500, "500"),
        (1_000, "1,000"),
        (10_000, "10,000"),
        (200_000, "200,000"),
        (2e6, "2·10⁶"),
        (1e-5, "10⁻⁵"),
        (3, ""),
        (0.07, ""),
        (4e5, ""),
    ],
)
def test_log_tick_label(value, label):
    assert log_tick_label(math.log10(value)) == label


def test_log_axis_labels_sparse_ticks_and_falls_back_when_none_would_show(qtbot):
    axis = LogAxisItem("left")
    axis.setLogMode(False, True)
    decades = [math.log10(v) for v in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]
    assert axis.tickStrings(decades, 1.0, 1.0) == ["1", "2", "", "", "5", "", "", "", "", "10"]
    narrow = [math.log10(v) for v in (0.06, 0.07, 0.08)]
    assert axis.tickStrings(narrow, 1.0, 0.1) == ["0.06", "0.07", "0.08"]
    assert not axis.autoSIPrefix


def test_use_log_axes_replaces_the_axes_in_log_mode(qtbot):
    import pyqtgraph as pg

    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    plot = widget.addPlot()
    use_log_axes(plot, x=True, y=True)
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        assert isinstance(axis, LogAxisItem) and axis.logMode


def test_log_axis_levels_do_not_repeat_a_tick(qtbot):
    axis = LogAxisItem("bottom")
    axis.setLogMode(True, False)
    levels = axis.tickValues(-0.1, 2.5, 400)  # 0.8 to 300: decades and minor ticks
    flat = [round(v, 9) for _, values in levels for v in values]
    assert len(flat) == len(set(flat)) > 10
    assert 0.0 in flat and 1.0 in flat and 2.0 in flat
