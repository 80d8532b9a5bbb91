"""The five live views: present under their fixed objectNames, and drawing the newest
snapshot (surface grid, per-sample spread, mean vs scalar gradient, M, loss curves)."""

from __future__ import annotations

import numpy as np
import pytest
from gui_testing import (
    VIEW_OBJECTS,
    click,
    drawn_snapshot,
    start_training,
    wait_drawn,
    wait_settled,
    wait_state,
)
from PySide6.QtWidgets import QWidget

from gui.plots.loss_surface import SMOOTH

RES = 15  # the small config's surface resolution


@pytest.fixture
def drawn(window, qtbot):
    """The window after some training, paused, every view showing the same snapshot (with a
    surface). Returns (window, that snapshot)."""
    start_training(qtbot, window, min_step=20)
    wait_drawn(qtbot, window, lambda s: s.step >= 20 and s.surface is not None)
    click(qtbot, window, "runButton")
    wait_state(qtbot, window, "paused")
    wait_settled(qtbot, window, lambda s: s.surface is not None)
    return window, _shown(window)


def _shown(window):
    """The snapshot every view is showing now (pytest-qt processes events between the fixture
    and the test, so read it at the time of the check)."""
    snap = drawn_snapshot(window)
    for view in window.views.values():
        assert view.snapshot is snap
    return snap


def test_views_exist_under_their_object_names(window):
    for key, name in VIEW_OBJECTS.items():
        w = window.findChild(QWidget, name)
        assert w is not None, f"no view named {name}"
        assert w is window.views[key]
        assert w.isVisible()
        assert w.width() >= 200 and w.height() >= 150, f"{name} is squeezed: {w.size()}"
        assert w.toolTip().strip()


def test_loss_surface_view(drawn):
    window, _ = drawn
    snap = _shown(window)
    view = window.views["loss_surface"]
    img = view.image.image
    # drawn smoothly: the grid interpolated at SMOOTH times its resolution
    assert img is not None and img.shape == ((RES - 1) * SMOOTH + 1,) * 2
    assert np.all(np.isfinite(img))
    lo, hi = view.colorbar.levels()
    assert np.isfinite(lo) and np.isfinite(hi) and lo < hi
    # the path, the current point, the fan of B per-sample arrows and the mean arrow
    assert len(view.path.xData) >= 2
    assert len(view.point.data) == 1
    assert len(view.fan.xData) == 2 * snap.batch_size
    assert len(view.arrow_line.xData) == 2
    assert f"{RES}×{RES} grid" in view.info.text
    assert snap.surface.Z.shape == (RES, RES)


def test_gradient_spread_view(drawn):
    window, _ = drawn
    snap = _shown(window)
    view = window.views["gradient_spread"]
    assert len(view.samples.data) == snap.batch_size
    assert len(view.mean.data) == 1
    assert len(view.ellipse.xData) > 10
    assert f"B = {snap.batch_size}" in view.info.text
    assert "noise scale" in view.info.text
    assert "against" in view.hist_plot.titleLabel.text


def test_mean_gradient_view_shows_round_off_only(drawn):
    window, _ = drawn
    snap = _shown(window)
    view = window.views["mean_gradient"]
    P = snap.n_params
    assert P == 5 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3
    assert len(view.mean.xData) == len(view.scalar.xData) == P
    assert "max |" in view.info.text
    assert snap.max_abs_diff < 1e-12
    mean, scalar = np.asarray(snap.mean_shown), np.asarray(snap.grad_shown)
    np.testing.assert_allclose(mean, scalar, rtol=0, atol=1e-12)
    assert np.max(np.abs(scalar)) > 1e-6  # not trivially equal: the gradient is not zero
    # the band holds the per-sample values around the mean
    assert np.all(np.asarray(snap.band_lo) <= np.asarray(snap.band_hi))


def test_loss_matrix_view(drawn):
    window, _ = drawn
    snap = _shown(window)
    view = window.views["loss_matrix"]
    assert view.image.image.shape == (snap.batch_size, 3)
    np.testing.assert_array_equal(view.image.image, snap.M)
    assert "backpropagated: one scalar" in view.info.text
    assert "3×32" in view.info.text
    assert snap.loss == pytest.approx(float(np.mean(snap.M)), rel=1e-12)


def test_loss_curves_view(drawn):
    window, _ = drawn
    snap = _shown(window)
    view = window.views["loss_curves"]
    n = len(snap.history)
    assert n == snap.step
    assert len(view.batch.xData) == n
    assert len(view.train.xData) >= 2  # measured every eval_every steps
    assert len(view.gnorm.xData) == n
    assert f"step {snap.step}" in view.top.titleLabel.text


def test_views_follow_the_newest_snapshot(drawn, qtbot):
    window, _ = drawn
    first = _shown(window)
    click(qtbot, window, "runButton")
    later = wait_drawn(qtbot, window, lambda s: s.step > first.step + 50)
    for view in window.views.values():
        assert view.snapshot is later
    assert len(window.views["loss_curves"].batch.xData) == later.step
    # redraws are throttled: far fewer than the steps trained
    assert window.redraw_count < later.step


def test_views_behind_another_tab_wait_and_draw_when_shown(window, qtbot):
    """Views kept off screen by an experiment tab keep the newest snapshot without drawing it
    (no work for nothing) and draw it as soon as their tab is shown again."""
    curves = window.views["loss_curves"]
    window.step_once()
    qtbot.waitUntil(lambda: curves.snapshot is not None, timeout=15000)
    window.tabs.setCurrentIndex(1)  # an experiment
    assert not curves.isVisible() and not curves.isHidden()
    before, shown = curves.snapshot.step, curves.batch.xData
    window.step_once()
    qtbot.waitUntil(lambda: curves.snapshot.step > before, timeout=15000)
    assert curves._stale  # kept, not drawn
    assert curves.batch.xData is shown
    window.tabs.setCurrentIndex(0)
    assert curves.isVisible() and not curves._stale  # drawn on showing
    assert curves.batch.xData[-1] == curves.snapshot.step
