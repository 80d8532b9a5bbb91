"""Drawing at a lower cost without showing anything else (issue 13): the live stream keeps
titles back between two text frames and writes them within LIVE_TEXT_INTERVAL; a forced draw
and a flush write them at once."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from gui_testing import click, start_training, wait_settled, wait_state

import gui.plots.base as base
from core import Config, Session
from gui.plots.loss_curves import LossCurvePlot


def _snapshots(n: int) -> list:
    s = Session(Config(hidden=(8,), surface_resolution=9, surface_samples=32))
    return [s.step(detail=True) for _ in range(n)]


def _title(view: LossCurvePlot) -> str:
    return view.top.titleLabel.text


def test_live_frames_keep_text_back_and_write_it_within_the_interval(qtbot, monkeypatch):
    monkeypatch.setattr(base, "LIVE_TEXT_INTERVAL", 1.0)  # robust to a loaded machine
    view = LossCurvePlot()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    a, b, c = _snapshots(3)
    view.show_snapshot(a, live=True)  # the first live frame writes its text
    assert f"step {a.step}:" in _title(view)
    view.show_snapshot(b, live=True)  # the next one, sooner than the interval: kept back
    assert f"step {a.step}:" in _title(view)
    qtbot.waitUntil(lambda: f"step {b.step}:" in _title(view), timeout=10000)
    view.show_snapshot(c)  # a forced draw writes at once
    assert f"step {c.step}:" in _title(view)


def test_flush_writes_what_a_live_frame_kept_back(qtbot, monkeypatch):
    monkeypatch.setattr(base, "LIVE_TEXT_INTERVAL", 5.0)
    view = LossCurvePlot()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    a, b = _snapshots(2)
    view.show_snapshot(a, live=True)
    view.show_snapshot(b, live=True)
    view.flush_text()
    assert f"step {b.step}:" in _title(view)
    assert not view._text_timer.isActive()


def test_set_data_skips_only_identical_data(qtbot):
    curve = pg.PlotDataItem()
    calls = []
    curve.sigPlotChanged.connect(lambda *_: calls.append(1))
    x = np.arange(5.0)
    base.set_data(curve, x, x**2)
    base.set_data(curve, x.copy(), x**2)  # the same numbers in new arrays: skipped
    assert len(calls) == 1
    base.set_data(curve, x, x**2, connect="finite")  # other options: set
    base.set_data(curve, x, np.array([0.0, 1.0, np.nan, 9.0, 16.0]), connect="finite")
    assert len(calls) == 3
    base.set_data(curve, x, np.array([0.0, 1.0, np.nan, 9.0, 16.0]), connect="finite")
    assert len(calls) == 3  # NaN equals NaN here: still the same picture
    xs, ys = curve.getData()
    assert np.isnan(ys[2]) and ys[4] == 16.0


def test_running_window_keeps_text_back_and_a_pause_writes_it(window, qtbot, monkeypatch):
    """While running, the views' titles may lag the drawn snapshot (by at most a text
    interval); once paused, every title names the step the views show."""
    monkeypatch.setattr(base, "LIVE_TEXT_INTERVAL", 2.0)  # frames sooner, even when loaded
    curves = window.views["loss_curves"]
    start_training(qtbot, window, min_step=5)
    kept_back = []

    def drawn(snap) -> None:
        kept_back.append(f"step {snap.step}:" not in _title(curves))

    window.snapshotDrawn.connect(drawn)
    qtbot.waitUntil(lambda: len(kept_back) >= 12, timeout=30000)
    window.snapshotDrawn.disconnect(drawn)
    assert any(kept_back), "every live frame wrote its title"
    click(qtbot, window, "runButton")
    wait_state(qtbot, window, "paused")
    snap = wait_settled(qtbot, window)
    assert f"step {snap.step}:" in _title(curves)
    for view in window.views.values():
        assert not view._pending_text, f"{view.objectName()} kept text back after the pause"


def test_band_envelope_keeps_every_value_inside_per_column():
    from gui.plots.mean_gradient import column_envelope

    rng = np.random.default_rng(3)
    x = np.sort(rng.choice(5000, size=1300, replace=False)).astype(float)
    lo = rng.normal(size=x.size) - 1.0
    hi = lo + rng.random(size=x.size) * 2.0
    cols = 200
    xs, elo, ehi = column_envelope(x, lo, hi, cols)
    assert len(xs) <= cols and xs[0] == x[0] and np.all(np.diff(xs) > 0)
    # each input point falls in the column starting at the last xs not beyond it
    k = np.searchsorted(xs, x, side="right") - 1
    assert np.all(elo[k] <= lo) and np.all(ehi[k] >= hi)
    # and the envelope is tight: each column's bounds are values of that column
    for j in range(len(xs)):
        assert elo[j] == lo[k == j].min() and ehi[j] == hi[k == j].max()


def test_mean_gradient_band_is_thinned_to_the_pixel_columns(qtbot):
    from gui.plots.mean_gradient import MeanGradientPlot

    view = MeanGradientPlot()
    qtbot.addWidget(view)
    view.resize(500, 300)
    view.show()
    qtbot.waitExposed(view)
    s = Session(Config(hidden=(64, 64)))
    snap = s.step(detail=True)
    view.show_snapshot(snap)
    cols = int(view.plot.getViewBox().width())
    assert len(snap.shown_index) > 2 * cols  # the case being tested
    assert view.band.path().elementCount() <= 2 * cols + 1
    rect = view.band.path().boundingRect()  # nothing of the band lost
    assert rect.top() <= float(np.min(snap.band_lo)) + 1e-12
    assert rect.bottom() >= float(np.max(snap.band_hi)) - 1e-12


def test_svg_export_draws_text_and_axes_as_vectors(qtbot, tmp_path):
    """The screen paints axes and text from cached pixmaps; an SVG must not contain them."""
    from gui.plots.mean_gradient import MeanGradientPlot

    view = MeanGradientPlot()
    qtbot.addWidget(view)
    view.resize(500, 300)
    view.show()
    qtbot.waitExposed(view)
    view.show_snapshot(_snapshots(1)[0])
    qtbot.wait(50)  # a screen paint fills the caches
    path = tmp_path / "mean.svg"
    view.export_svg(str(path))
    svg = path.read_text()
    assert "<image" not in svg
    assert svg.count("<text") >= 10  # tick labels, title, legend


@pytest.mark.parametrize("scale", [1.0, 4e7])
def test_loss_matrix_left_axes_share_a_width_that_fits_the_bar_labels(qtbot, scale):
    """M's columns and the bars line up (one width for the three left axes), and the bars'
    tick labels (0.005 at B = 1, 4e+07 in a diverging run) never run under the L_i title."""
    import dataclasses

    from PySide6.QtGui import QFontMetricsF

    from gui.plots.loss_matrix import LossMatrixPlot

    view = LossMatrixPlot()
    qtbot.addWidget(view)
    view.resize(330, 330)
    view.show()
    qtbot.waitExposed(view)
    snap = Session(Config(batch_size=1)).step(detail=True)
    L = np.asarray(snap.per_sample_loss) * scale
    view.show_snapshot(dataclasses.replace(snap, per_sample_loss=L, M=np.asarray(snap.M) * scale))
    qtbot.wait(30)
    axes = [p.getAxis("left") for p in (view.plot, view.dldy_plot, view.bar_plot)]
    assert len({round(a.width()) for a in axes}) == 1
    bar = axes[2]
    lo, hi = view.bar_plot.getViewBox().viewRange()[1]
    fm = QFontMetricsF(bar.style.get("tickFont") or bar.font())
    widest = max(
        fm.horizontalAdvance(s)
        for spacing, values in bar.tickValues(lo, hi, bar.height())
        for s in bar.tickStrings(values, 1.0, spacing)
    )
    title = bar.label.boundingRect().height() * 0.8
    assert bar.width() >= widest + title + bar.style["tickTextOffset"][0]


def test_thin_to_pixels_draws_two_points_a_column_and_keeps_the_extremes(qtbot):
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(420, 300)
    plot.show()
    qtbot.waitExposed(plot)
    rng = np.random.default_rng(1)
    x = np.arange(4000.0)
    y = rng.normal(size=x.size)
    y[1234] = 50.0  # one spike: kept
    curve = plot.plot(x, y, pen=pg.mkPen("b", width=1.5))
    base.thin_to_pixels(curve)
    qtbot.wait(30)
    shown = curve._getDisplayDataset()
    cols = plot.getPlotItem().getViewBox().width()
    assert len(shown.x) <= 2 * cols + 4
    assert shown.y.max() == 50.0 and shown.y.min() == y.min()
    views = LossCurvePlot()
    qtbot.addWidget(views)
    for item in (views.batch, views.train, views.val, views.gnorm, views.noise):
        assert item.opts["autoDownsampleFactor"] == 1.0 and item.opts["clipToView"]


def test_a_new_network_is_drawn_one_view_per_event_loop_turn(window, qtbot):
    """The first frame of a new network (every view rebuilds its items and ranges) is drawn
    one view at a time with the event loop turning between them; snapshotDrawn comes once,
    after the last view; a forced draw meanwhile finishes it first."""
    window.set_running(False)
    qtbot.wait(100)
    # the engine's own snapshots (another shape) must not interleave with these
    window.worker.snapshotReady.disconnect(window._on_snapshot)
    a = Session(Config(hidden=(8,))).step(detail=True)
    b = Session(Config(hidden=(8, 8))).step(detail=True)
    c = Session(Config(hidden=(4,))).step(detail=True)
    c2 = Session(Config(hidden=(4,), seed=1)).step(detail=True)
    drawn = []
    window.snapshotDrawn.connect(drawn.append)
    views = list(window.views.values())
    window.draw_now(a)
    assert all(v.snapshot is a for v in views) and drawn == [a]
    window._on_snapshot(b)
    window.timer.stop()
    window._redraw(live=True)
    assert views[0].snapshot is b and all(v.snapshot is a for v in views[1:])
    assert drawn == [a]
    qtbot.waitUntil(lambda: drawn[-1] is b, timeout=5000)
    assert all(v.snapshot is b for v in views) and drawn == [a, b]
    window._on_snapshot(c)
    window.timer.stop()
    window._redraw(live=True)  # staggered, then forced:
    window.draw_now(c2)
    assert drawn == [a, b, c, c2] and all(v.snapshot is c2 for v in views)


def test_frames_keep_their_grid_when_a_snapshot_comes_late(window, monkeypatch):
    """Frames are due every REDRAW_MS on a fixed grid: a frame drawn up to 3/4 of a period
    late (waiting for a snapshot, which comes every 25 ms) keeps the grid, so the next one
    comes sooner and the rate stays at ~30/s; later than that the grid restarts, the next
    frame at least a quarter period after this one."""
    import types

    import gui.main_window as mw

    window.set_running(False)
    period = mw.REDRAW_MS / 1000
    snaps = _snapshots(4)
    clock = {"t": 100.0}
    frozen = types.SimpleNamespace(**vars(mw.time))  # the time module, its clock held
    frozen.perf_counter = lambda: clock["t"]
    monkeypatch.setattr(mw, "time", frozen)
    window._next_redraw = 100.0
    window._on_snapshot(snaps[0])
    window.timer.stop()
    window._redraw(live=False)  # on time
    assert window._next_redraw == pytest.approx(100.0 + period)
    clock["t"] = 100.0 + period + 0.7 * period  # 0.7 of a period late
    window._on_snapshot(snaps[1])
    window.timer.stop()
    window._redraw(live=False)
    assert window._next_redraw == pytest.approx(100.0 + 2 * period)  # the grid holds
    clock["t"] = 100.0 + 2 * period + 0.9 * period  # later than 3/4: a new grid
    window._on_snapshot(snaps[2])
    window.timer.stop()
    window._redraw(live=False)
    assert window._next_redraw == pytest.approx(clock["t"] + 0.25 * period)
    monkeypatch.undo()  # the real clock before the window closes
