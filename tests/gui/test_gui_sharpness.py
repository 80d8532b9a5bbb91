"""The loss-curves view's sharpness: lambda_max against the stability limit, curvature.csv."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from core import Config, Session
from core.sharpness import SharpnessTracker
from gui.export import export_views
from gui.plots.base import fmt
from gui.plots.loss_curves import LossCurvePlot


@pytest.fixture
def view(qtbot):
    v = LossCurvePlot()
    qtbot.addWidget(v)
    v.show()  # a hidden view keeps its snapshot undrawn
    qtbot.waitExposed(v)
    return v


def test_sgd_shows_lambda_max_against_two_over_lr(view):
    s = Session(Config(hidden=(8,), lr=0.05))
    view.show_snapshot(s.run(3))
    text = view.sharp.titleLabel.item.toPlainText()
    assert f"λmax {fmt(s.sharpness.lambda_max)}" in text
    assert "2/lr = 40" in text
    # drawn: the measurement as a point of the curve, the limit as a dashed line at 2/lr
    x, y = view.lam_curve.xData, view.lam_curve.yData
    assert len(x) == 1 and y[0] == pytest.approx(s.sharpness.lambda_max)
    lx, ly = view.limit_curve.xData, view.limit_curve.yData
    assert np.allclose(ly, 40.0) and lx[-1] == s.step_count


def test_adam_says_the_limit_is_on_the_preconditioned_hessian(view):
    s = Session(Config(hidden=(8,), optimizer="adam", lr=0.01))
    view.show_snapshot(s.run(3))
    text = view.sharp.titleLabel.item.toPlainText()
    assert "none drawn, its limit is on the preconditioned Hessian" in text and "2/lr" not in text
    assert len(view.lam_curve.xData) == 1
    assert not np.isfinite(view.limit_curve.yData).any()  # no limit line for Adam


def test_curvature_csv_has_the_measurements(view, tmp_path):
    s = Session(Config(hidden=(8,)))
    s._sharpness = SharpnessTracker(*s._sharpness_batch(), interval=5)
    for _ in range(4):
        view.show_snapshot(s.run(5))
    export_views({"loss_curves": view}, tmp_path)
    with open(tmp_path / "curvature.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["step", "lambda_max", "stability_limit"]
    steps = [int(r[0]) for r in rows[1:]]
    assert steps == [r[0] for r in s.curvature_rows()][-len(steps) :] and len(steps) >= 3
    lams = [r[1] for r in s.curvature_rows()][-len(steps) :]
    assert np.allclose([float(r[1]) for r in rows[1:]], lams)
    assert all(float(r[2]) == pytest.approx(2 / s.config.lr) for r in rows[1:])


def test_curvature_csv_takes_the_engines_whole_record_when_the_window_has_it(view, tmp_path):
    """Headless rendering trains the session in the window's process: its every measurement
    goes into curvature.csv, not only those carried by the snapshots the view drew."""
    s = Session(Config(hidden=(8,)))
    s._sharpness = SharpnessTracker(*s._sharpness_batch(), interval=2)
    s.run(20)
    view.show_snapshot(s.run(1))
    assert len(view.lam_curve.xData) == 1  # one snapshot drawn: one measurement seen
    view.curvature_source = lambda: (s.run_id, s.curvature_rows())
    view.show_snapshot(s.run(4))
    want = s.curvature_rows()
    assert len(want) >= 10 and len(view.lam_curve.xData) == len(want)
    export_views({"loss_curves": view}, tmp_path)
    with open(tmp_path / "curvature.csv") as fh:
        rows = list(csv.reader(fh))[1:]
    assert [int(r[0]) for r in rows] == [r[0] for r in want]
    # a record of another run (a reset since) is not taken
    view.curvature_source = lambda: (s.run_id + 1, want)
    view.show_snapshot(s.run(1))
    assert len(view.curvature_rows()) < len(want)


def test_the_sharpness_axis_is_linear_when_lambda_max_sits_at_the_limit(view):
    """At the edge of stability lambda_max hovers at 2/lr: on a log axis that narrow range
    showed one tick label; far below the limit (a small rate) the axis is logarithmic."""
    view._fit_sharp_axis(np.array([4.93, 4.98, 5.0, 5.0]))
    assert not view.sharp.getAxis("left").logMode
    view._fit_sharp_axis(np.array([1.78, 40.0]))
    assert view.sharp.getAxis("left").logMode
