"""The critical batch size tab, driven as a user does: Run, read, export; Cancel; whole at the
smallest and the largest window."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from layout_audit import audit
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton, QTabWidget

from core import Config
from gui.main_window import MIN_SIZE

SMALL = Config(hidden=(8, 8), n_samples=320, surface_resolution=11, surface_samples=32)


def _tab(window):
    view = window.experiments["critical_batch"]
    window.findChild(QTabWidget, "viewTabs").setCurrentWidget(view)
    return view


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_run_draws_points_and_the_fitted_curve_and_exports(make_window, qtbot, tmp_path):
    window = make_window(SMALL)
    view = _tab(window)
    assert window.findChild(type(view.canvas), "criticalBatchPlot") is view.canvas
    button = window.findChild(QPushButton, "criticalBatchPlotRunButton")
    with qtbot.waitSignal(view.finished, timeout=120_000) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    r = blocker.args[0]
    assert r is not None and r.complete and not r.quick and r.fit is not None
    reached = [p for p in r.points if p.reached]
    for dots in view.points:  # every measured point, in each of the three panels
        assert len(dots.xData) == len(reached) >= 3  # data as given (getData: log10)
    x, y = view.points[1].xData, view.points[1].yData  # steps against B, ascending B
    np.testing.assert_allclose(x, sorted(p.batch_size for p in reached))
    np.testing.assert_allclose(y, [p.steps for p in sorted(reached, key=lambda p: p.batch_size)])
    for curve in view.curves:  # the fitted curve, finite, on a log grid of B
        cx, cy = curve.xData, curve.yData
        assert len(cx) == 200 and np.all(np.isfinite(cy)) and np.all(cy > 0)
        assert np.all(np.diff(cx) > 0)
    np.testing.assert_allclose(view.curves[1].yData, r.fit.steps(view.curves[1].xData))
    for line in view.crit_lines:  # log10 axes: the line sits at log10(B_crit)
        assert line.isVisible() and line.value() == pytest.approx(np.log10(r.fit.B_crit))
    np.testing.assert_allclose(view.crit_point.xData, [2 * r.fit.E_min])
    text = view.info.text()
    assert f"B_crit = {r.fit.B_crit:.3g}" in text and "B_noise = " in text
    assert "B_crit / B_noise = " in text and "target: training loss" in text

    qtbot.waitUntil(lambda: not view.is_running())
    files = window.export_all(tmp_path)
    assert tmp_path / "critical_batch.png" in files
    rows = _read(tmp_path / "critical_batch.csv")
    assert rows[0] == ["batch_size", "lr", "steps_to_target", "samples_to_target"]
    assert [int(row[0]) for row in rows[1:]] == sorted(p.batch_size for p in r.points)
    fit = _read(tmp_path / "critical_batch_fit.csv")
    assert fit[0] == ["key", "value"]
    assert [row[0] for row in fit[1:]] == ["S_min", "E_min", "B_crit", "B_noise"]
    assert float(fit[3][1]) == pytest.approx(r.fit.B_crit, rel=1e-6)


def test_cancel_stops_it_and_keeps_the_window_usable(make_window, qtbot):
    window = make_window(Config(hidden=(32, 32), n_samples=4000))
    view = _tab(window)
    with qtbot.waitSignal(view.finished, timeout=20_000) as blocker:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        qtbot.wait(300)
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] is None and "cancelled" in view.status.text()
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()


@pytest.mark.parametrize("size", [MIN_SIZE, (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_tab_is_whole(make_window, qtbot, size):
    window = make_window(SMALL)
    view = _tab(window)
    view.run_blocking(quick=True)
    assert view.result is not None and view.result.quick
    window.resize(*size)
    window.fit_docks_to_width(size[0])
    qtbot.wait(80)
    view.canvas.scene().prepareForPaint()
    qtbot.wait(20)
    problems = audit(window)
    assert not problems, "\n".join(problems)
    for p in view.plots:  # no plot squeezed: each has room to be read
        r = p.getViewBox().sceneBoundingRect()
        assert r.width() >= 120 and r.height() >= 90
    # S_min's and E_min's labels in the steps-samples panel: inside the plot, and 16 px or
    # more from the centre of every point (a dot is 8 px wide)
    vb = view.plots[0].getViewBox().sceneBoundingRect()
    dots = view.points[0].scatter
    for line in view.asymptotes[:2]:
        box = line.label.sceneBoundingRect()
        assert vb.contains(box), (line.label.toPlainText(), box, vb)
        for spot in dots.points():
            at = dots.mapToScene(spot.pos())
            dx = max(box.left() - at.x(), 0, at.x() - box.right())
            dy = max(box.top() - at.y(), 0, at.y() - box.bottom())
            assert math.hypot(dx, dy) >= 16, (line.label.toPlainText(), box, at)
