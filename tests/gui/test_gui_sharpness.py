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
    return v


def test_sgd_shows_lambda_max_against_two_over_lr(view):
    s = Session(Config(hidden=(8,), lr=0.05))
    view.show_snapshot(s.run(3))
    text = view.sharp_note.textItem.toPlainText()
    assert f"λmax {fmt(s.sharpness.lambda_max)}" in text
    assert "2/lr = 40" in text


def test_adam_says_the_limit_is_on_the_preconditioned_hessian(view):
    s = Session(Config(hidden=(8,), optimizer="adam", lr=0.01))
    view.show_snapshot(s.run(3))
    text = view.sharp_note.textItem.toPlainText()
    assert "preconditioned\nHessian" in text and "2/lr" not in text


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
    assert steps == [r[0] for r in s.curvature_rows()][-len(steps):] and len(steps) >= 3
    lams = [r[1] for r in s.curvature_rows()][-len(steps) :]
    assert np.allclose([float(r[1]) for r in rows[1:]], lams)
    assert all(float(r[2]) == pytest.approx(2 / s.config.lr) for r in rows[1:])
