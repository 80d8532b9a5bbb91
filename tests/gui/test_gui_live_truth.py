"""The five live views tell the truth at B = 1, after a divergence and in a small panel: no
inf/nan text, nothing left from an earlier batch size, undefined things said in words, every
text inside its view; dL/dY beside M (and in loss_matrix.csv); the measured 1/sqrt(B) panel
(and noise_vs_batch.csv); a fresh surface that fills its plot with the arrows on it."""

from __future__ import annotations

import csv
import re

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsTextItem

from core import Config, Session
from gui.export import export_views
from gui.plots.gradient_spread import GradientSpreadPlot
from gui.plots.loss_curves import LossCurvePlot
from gui.plots.loss_matrix import LossMatrixPlot
from gui.plots.loss_surface import SMOOTH, LossSurfacePlot
from gui.plots.mean_gradient import MeanGradientPlot

VIEWS = {
    "loss_surface": LossSurfacePlot,
    "gradient_spread": GradientSpreadPlot,
    "mean_gradient": MeanGradientPlot,
    "loss_matrix": LossMatrixPlot,
    "loss_curves": LossCurvePlot,
}
BAD = re.compile(r"\b(inf|nan)\b|∞", re.IGNORECASE)
SMALL = {"hidden": (16, 16), "surface_resolution": 15, "surface_samples": 64}


def _session(steps: int = 30, **cfg) -> Session:
    s = Session(Config(**{**SMALL, **cfg}))
    for _ in range(steps):
        s.step(detail=False)
    return s


def _ready(s: Session):
    """A detailed snapshot with a surface and the measured 1/sqrt(B) panel."""
    s.compute_surface()
    s.measure_batch_noise()
    return s.snapshot()


@pytest.fixture
def views(qtbot):
    made = {}
    for name, cls in VIEWS.items():
        v = cls()
        qtbot.addWidget(v)
        v.resize(620, 420)
        v.show()
        made[name] = v
    qtbot.waitExposed(made["loss_curves"])
    return made


def _draw(qtbot, views, snap) -> None:
    for v in views.values():
        v.show_snapshot(snap)
    qtbot.wait(30)  # let the layouts settle (labels wrap to the width they get)
    for v in views.values():
        v.scene().prepareForPaint()


def _texts(view) -> list[str]:
    """Every text the view shows: labels, titles, legends, axis labels and tick labels."""
    out = []
    for item in view.scene().items():
        if isinstance(item, QGraphicsTextItem) and item.isVisible():
            out.append(item.toPlainText())
        if isinstance(item, pg.AxisItem) and item.isVisible():
            out.append(item.labelText or "")
            lo, hi = item.range
            length = max(item.width(), item.height(), 1)
            for spacing, values in item.tickValues(lo, hi, length):
                out += item.tickStrings(values, item.autoSIPrefixScale, spacing)
    return out


def _assert_no_inf_nan(views) -> None:
    for name, v in views.items():
        bad = [t for t in _texts(v) if BAD.search(t)]
        assert not bad, f"{name} shows {bad}"


def _assert_text_inside(views) -> None:
    bad = []
    for name, v in views.items():
        visible = v.mapToScene(v.viewport().rect()).boundingRect().adjusted(-2, -2, 2, 2)
        for item in v.scene().items():
            if not (isinstance(item, QGraphicsTextItem) and item.isVisible()):
                continue
            if not item.toPlainText().strip() or not item.parentItem().isVisible():
                continue
            m = item.document().documentMargin()  # the box's margin around the text
            r = item.sceneBoundingRect().adjusted(m, m, -m, -m)
            if not visible.contains(r):
                bad.append(f"{name}: {item.toPlainText()!r} at {r.getRect()}")
    assert not bad, "\n".join(bad)


def test_b1_no_inf_nan_nothing_lingers_and_words_for_the_undefined(qtbot, views):
    big = _session(30)
    _draw(qtbot, views, _ready(big))
    spread = views["gradient_spread"]
    assert len(spread.ellipse.xData) > 10  # B = 32: the ellipse is drawn
    s = _session(30, batch_size=1)
    snap = _ready(s)
    _draw(qtbot, views, snap)
    _assert_no_inf_nan(views)
    assert snap.batch_size == 1
    assert len(spread.samples.data) == 1  # the one sample is shown (a ring round the star)
    assert spread.samples.opts["size"] > spread.mean.opts["size"]
    assert spread.ellipse.xData is None or len(spread.ellipse.xData) == 0  # the old one went
    assert "needs B ≥ 3" in spread.scatter_plot.titleLabel.text
    # whole sample numbers on the sample axes
    sample_axes = (spread.norm_plot, views["loss_matrix"].bar_plot)
    for axis in (p.getAxis("bottom") for p in sample_axes):
        ticks = axis._tickLevels[0]
        assert [label for _, label in ticks] == ["0"]
        assert not axis.autoSIPrefix


def test_after_divergence_no_inf_nan_and_the_loss_curves_stay_readable(qtbot, views):
    s = _session(200)
    s.update(lr=60.0)
    snap = None
    for _ in range(50):
        snap = s.step(detail=False)
        if snap.diverged:
            break
    assert s.diverged
    snap = _ready(s)
    _draw(qtbot, views, snap)
    _assert_no_inf_nan(views)
    for v in views.values():
        assert v.snapshot is snap  # every panel shows the same (last finite) state
    curves = views["loss_curves"]
    loss = np.asarray(snap.history.loss)
    peak = float(np.nanmax(loss))
    _, (_, top) = curves.top.getViewBox().viewRange()
    # not ruled by the spike: the 200 ordinary steps fill the plot, the spike is named
    assert top < 0.1 * peak
    assert float(np.median(loss[:200])) > 0.02 * top
    assert "off scale" in curves.off_scale.toPlainText()


def test_loss_matrix_shows_dldy_and_exports_its_columns(qtbot, views, tmp_path):
    s = _session(30)
    snap = _ready(s)
    _draw(qtbot, views, snap)
    view = views["loss_matrix"]
    np.testing.assert_array_equal(view.dldy_image.image, snap.dLdY)
    lo, hi = view.dldy_bar.levels()
    assert lo == -hi and hi > 0  # signed, centred on zero
    assert "backprop starts here" in view.dldy_plot.titleLabel.text
    assert "2(Y−T)/(O·B)" in view.dldy_plot.titleLabel.text  # mse with the mean
    # the weights w_i on their own axis, not on the L_i axis
    assert view.bar_plot.getAxis("right").linkedView() is view.w_view
    assert view.weight_curve.getViewBox() is view.w_view
    view.export_csv(str(tmp_path / "loss_matrix.csv"))
    with open(tmp_path / "loss_matrix.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    cols = [header.index(f"dLdY_output{o}") for o in (1, 2, 3)]
    got = np.array([[float(r[c]) for c in cols] for r in rows[1:]])
    assert got.shape == (snap.batch_size, 3)
    np.testing.assert_allclose(got, snap.dLdY, rtol=1e-9)
    # for mse with the mean: 2 (Y - T) / (O B); each row sums to the sample's w_i dL_i/dY
    assert np.abs(got).max() > 0


def test_noise_vs_batch_csv_slope_near_minus_half(qtbot, views, tmp_path):
    snap = _ready(_session(150))
    _draw(qtbot, views, snap)
    view = views["gradient_spread"]
    assert len(view.noise_measured.xData) == 9
    assert "slope" in view.noise_plot.titleLabel.text
    files = export_views({"gradient_spread": view}, tmp_path, svg=False)
    assert tmp_path / "noise_vs_batch.csv" in files
    with open(tmp_path / "noise_vs_batch.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["batch_size", "std_error_measured", "std_error_predicted"]
    data = np.array([[float(x) for x in r] for r in rows[1:]])
    np.testing.assert_array_equal(data[:, 0], [1, 2, 4, 8, 16, 32, 64, 128, 256])
    slope = np.polyfit(np.log(data[:, 0]), np.log(data[:, 1]), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.05)
    assert np.all(np.abs(data[:, 1] / data[:, 2] - 1) < 0.2)


def test_surface_fresh_smooth_fills_its_plot_and_keeps_the_arrows_on_it(qtbot, views):
    s = _session(30)
    snap = _ready(s)
    _draw(qtbot, views, snap)
    view = views["loss_surface"]
    res = snap.surface.resolution
    assert view.image.image.shape == ((res - 1) * SMOOTH + 1,) * 2  # drawn smoothly
    assert "up to date" in view.info.text
    (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
    rect = view.image.mapRectToView(view.image.boundingRect())
    tol = 1e-9 * (x1 - x0)
    # no band: what the plot shows lies inside the image
    assert rect.left() <= x0 + tol and x1 <= rect.right() + tol
    assert rect.top() <= y0 + tol and y1 <= rect.bottom() + tol
    for line in (view.fan, view.arrow_line):
        xs, ys = line.xData, line.yData
        assert np.all((xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1))
    assert "×0." not in view.info.text and "shrunk to fit" in view.info.text
    # a step later, the age is said in seconds
    snap = s.step()
    view.show_snapshot(snap)
    assert re.search(r"\d+\.\d s old", view.info.text)


def test_mean_gradient_dashed_over_solid_and_their_difference(qtbot, views):
    snap = _ready(_session(30))
    _draw(qtbot, views, snap)
    view = views["mean_gradient"]
    assert view.mean.opts["pen"].style() == Qt.PenStyle.DashLine
    assert view.scalar.opts["pen"].style() == Qt.PenStyle.SolidLine
    assert view.mean.zValue() >= view.scalar.zValue()
    items = view.plot.getViewBox().addedItems
    assert items.index(view.mean) > items.index(view.scalar)  # drawn over it
    np.testing.assert_array_equal(
        view.diff.yData, np.asarray(snap.mean_shown) - np.asarray(snap.grad_shown)
    )
    _, (lo, hi) = view.diff_plot.getViewBox().viewRange()
    assert hi < 1e-9  # its own scale: round-off, not the gradient's


@pytest.mark.parametrize("scale", [1.0, 1.6])
def test_every_text_inside_its_view_when_small(qtbot, views, scale):
    """At the smallest sizes the live grid gives them (a 1280 x 720 window: about 310 x 280,
    the spread two columns wide) and larger."""
    s = _session(30)
    snap = _ready(s)
    for name, v in views.items():
        w, h = (600, 280) if name == "gradient_spread" else (310, 280)
        v.resize(int(w * scale), int(h * scale))
    _draw(qtbot, views, snap)
    _draw(qtbot, views, snap)
    _assert_text_inside(views)
