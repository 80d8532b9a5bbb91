"""Averaged gradient: per parameter, the mean of the per-sample gradients (with the band of
per-sample values) over the gradient of the scalar loss from one backward pass."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem

from core.snapshot import Snapshot

from . import style
from .base import ViewWidget, coloured, fmt, sticky_range, thin_to_pixels


def _band_swatch() -> pg.BarGraphItem:
    """A legend swatch for the band (a FillBetweenItem cannot draw its own sample)."""
    return pg.BarGraphItem(x=[0], height=[1], width=1, brush=style.BAND_BRUSH, pen=style.NO_PEN)


def column_envelope(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x`` (K,) ascending with ``lo``/``hi`` (K,) thinned to ``cols`` equal columns of the x
    range: per column its first x, the lowest ``lo`` and the highest ``hi`` (nothing inside the
    band is lost, only detail finer than a column)."""
    span = float(x[-1] - x[0]) or 1.0
    col = np.minimum(((x - x[0]) / span * cols).astype(np.int64), cols - 1)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    return x[starts], np.minimum.reduceat(lo, starts), np.maximum.reduceat(hi, starts)


class MeanGradientPlot(ViewWidget):
    object_name = "meanGradientPlot"
    #: place in the live grid by its number of columns: (row, col, rowspan, colspan)
    grid_place = {2: (1, 1, 1, 1), 3: (1, 1, 1, 1)}
    title = "Mean of the gradients = gradient of the mean"
    help_text = (
        "For every parameter (grouped by layer): the band holds 80 % of the per-sample "
        "gradients (10th to 90th percentile), the solid black line is the gradient of the one "
        "scalar loss from a single backward pass, and the dashed red-orange line over it is "
        "the weighted mean of the per-sample gradients Σ w_i g_i. They coincide: the panel "
        "below draws their difference on its own scale (round-off, about 1e-17)."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info = self.addLabel("", row=0, col=0, justify="left", size="9pt")
        p = self.plot = self.addPlot(row=1, col=0)
        p.setLabel("bottom", "parameter index (W1 b1 W2 b2 …)")
        p.setLabel("left", "∂L/∂θ")
        p.showGrid(x=False, y=True, alpha=0.25)
        # The band is one closed polygon (x, hi) then (x reversed, lo reversed), built by
        # pg.arrayToQPath in one vectorised call; a FillBetweenItem rebuilt its path from two
        # curves on every change of either, which cost ~10 ms a frame for P ~ 1,300.
        self.band = QGraphicsPathItem()
        self.band.setBrush(style.BAND_BRUSH)
        self.band.setPen(style.NO_PEN)
        p.addItem(self.band)
        # solid under dashed: where they coincide both stay visible
        # width 1: a wider pen is stroked into a polygon every frame (~2-4 ms at P ~ 1,300)
        self.scalar = p.plot([], [], pen=pg.mkPen(style.BLACK, width=1))
        self.mean = p.plot([], [], pen=style.MEAN_DASHED_PEN)
        for item in (self.mean, self.scalar):
            item.setSkipFiniteCheck(True)
        # thinned to the plot's pixel columns (each column's extremes kept: both curves
        # thinned alike, so where they coincide they still do)
        thin_to_pixels(self.mean, self.scalar)
        self.legend = p.addLegend(
            offset=(-5, 5), labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 215)
        )
        self.legend.setZValue(30)  # over the curves, readable
        self.legend.addItem(_band_swatch(), "g_i, 10–90 %")
        self.legend.addItem(self.scalar, "∇ scalar")
        self.legend.addItem(self.mean, "Σ w_i g_i")
        # their difference, on its own scale (round-off)
        dp = self.diff_plot = self.addPlot(row=2, col=0)
        dp.setLabel("left", "Δ")
        dp.setXLink(p)
        dp.hideAxis("bottom")
        dp.showGrid(x=False, y=True, alpha=0.25)
        dp.getAxis("left").enableAutoSIPrefix(False)
        dp.getAxis("left").setWidth(p.getAxis("left").width())
        self.diff = dp.plot([], [], pen=pg.mkPen(style.PURPLE, width=1))
        self.diff.setSkipFiniteCheck(True)
        thin_to_pixels(self.diff)
        self.ci.layout.setRowStretchFactor(1, 4)
        self.ci.layout.setRowStretchFactor(2, 1)
        self._bounds: tuple[int, ...] = ()
        self._names_width: float | None = None
        p.getViewBox().sigResized.connect(self._on_plot_resized)
        self._lines: list[pg.InfiniteLine] = []

    def _set_layers(self, snap: Snapshot) -> None:
        """Layer boundary lines: rebuilt only when the network shape changes."""
        for ln in self._lines:
            self.plot.removeItem(ln)
        self._lines = []
        b = snap.param_bounds
        for k, name in enumerate(snap.param_names):
            if k % 2:  # a bias group: a line without a label (too narrow to name)
                ln = pg.InfiniteLine(b[k] - 0.5, angle=90, pen=style.GRID_PEN)
            else:
                ln = pg.InfiniteLine(
                    b[k] - 0.5,
                    angle=90,
                    pen=style.GRID_PEN,
                    label=name,
                    labelOpts={  # at the bottom: the legend holds the top right
                        "position": 0.04,
                        "color": style.GREY,
                        "anchors": [(0, 1), (0, 1)],
                    },
                )
                ln._bs_layer = (k, name, b[min(k + 2, len(b) - 1)] - b[k])
            self.plot.addItem(ln)
            self._lines.append(ln)
        self._bounds = b
        self._names_width = None
        self.plot.setXRange(0, b[-1], padding=0.01)

    def _place_layer_names(self) -> None:
        """Each layer's name at the start of its parameters: "W2, b2" where the layer is wide
        enough on screen, "W2" where only that fits, and a layer too narrow even for that (the
        output layer, typically) named left of its line with an arrow; never past the edge."""
        width = self.plot.getViewBox().width()
        if not self._bounds or width == self._names_width or width <= 0:
            return
        self._names_width = width
        total = max(self._bounds[-1], 1)
        for ln in self._lines:
            info = getattr(ln, "_bs_layer", None)
            if info is None:
                continue
            k, name, count = info
            px = count / total * width
            if px >= 60:
                text, anchors = f"{name}, b{name[1:]}", [(0, 1), (0, 1)]
            elif px >= 26 or k == 0:
                text, anchors = name, [(0, 1), (0, 1)]
            else:
                text, anchors = f"{name} →", [(1, 1), (1, 1)]
            ln.label.setFormat(text)
            ln.label.anchors = anchors
            ln.label.updatePosition()

    def draw(self, snap: Snapshot) -> None:
        if not snap.detail:
            return
        if snap.param_bounds != self._bounds:
            self._set_layers(snap)
        self._place_layer_names()
        x = np.asarray(snap.shown_index, dtype=np.float64)
        self.mean.setData(x, snap.mean_shown)
        self.scalar.setData(x, snap.grad_shown)
        d = np.asarray(snap.mean_shown) - np.asarray(snap.grad_shown)
        self.diff.setData(x, d)
        big = float(np.max(np.abs(d))) if d.size else 0.0
        sticky_range(self.diff_plot, "y", -big or -1e-17, big or 1e-17)
        self.set_title(
            self.diff_plot,
            f"difference, own scale: max {fmt(big)}",
            size="8pt",
        )
        ys = [snap.grad_shown] if snap.band_lo is None else [snap.band_lo, snap.band_hi]
        lo = min(float(np.min(v)) for v in ys)
        hi = max(float(np.max(v)) for v in ys)
        sticky_range(self.plot, "y", min(lo, 0.0), max(hi, 0.0))
        self.band.setPath(self._band_path(x, snap.band_lo, snap.band_hi))
        shown = len(x)
        note = "" if shown == snap.n_params else f" ({shown:,} of {snap.n_params:,} shown)"
        band = "" if snap.band_lo is not None else " · band hidden: B×P too large to hold"
        self.set_text(
            self.info,
            f"<b>max |Σ w<sub>i</sub> g<sub>i</sub> − ∇ scalar| = {fmt(snap.max_abs_diff)}</b>"
            f" (round-off)<br>largest |∇| = {fmt(float(np.max(np.abs(snap.grad_shown))))} · "
            f"P = {snap.n_params:,}{note} · B = {snap.batch_size}{band}{self._marks_text()}",
        )

    def _band_path(self, x: np.ndarray, lo, hi) -> QPainterPath:
        """The band as one closed polygon, (x, hi) then (x reversed, lo reversed); with more
        parameters than pixel columns, each column's envelope (lowest lo, highest hi), as the
        curves are thinned: a polygon of ~2,700 zig-zag vertices cost ~1.3 ms a paint."""
        if lo is None or not len(x):
            return QPainterPath()
        cols = int(self.plot.getViewBox().width())
        if cols > 0 and len(x) > 2 * cols:
            x, lo, hi = column_envelope(x, np.asarray(lo), np.asarray(hi), cols)
        path = pg.arrayToQPath(
            np.concatenate([x, x[::-1]]), np.concatenate([hi, lo[::-1]]), connect="all"
        )
        path.closeSubpath()
        return path

    def _marks_text(self) -> str:
        """The legend in words, when the plot is too small for the legend box."""
        if self.legend.isVisible():
            return ""
        return (
            f"<br>{coloured('band', style.SKY)}: g<sub>i</sub>, 10–90 % · "
            f"{coloured('solid', style.BLACK)}: ∇ scalar · "
            f"{coloured('dashed', style.RED)}: Σ w<sub>i</sub> g<sub>i</sub>"
        )

    def _on_plot_resized(self) -> None:
        self._place_layer_names()
        vb = self.plot.getViewBox()
        show = vb.width() >= 330 and vb.height() >= 150
        if show != self.legend.isVisible():
            self.legend.setVisible(show)
            if self.snapshot is not None and not getattr(self, "closed", False):
                self.draw(self.snapshot)

    def table(self):
        snap = self.snapshot
        header = ["param_index", "layer", "scalar_gradient", "mean_of_per_sample", "p10", "p90"]
        rows = []
        if snap is not None and snap.detail:
            names = snap.param_names
            bounds = np.asarray(snap.param_bounds)
            for k, i in enumerate(snap.shown_index):
                g = int(np.searchsorted(bounds, i, side="right")) - 1
                lo = "" if snap.band_lo is None else f"{snap.band_lo[k]:.10g}"
                hi = "" if snap.band_hi is None else f"{snap.band_hi[k]:.10g}"
                rows.append(
                    [
                        int(i),
                        names[g],
                        f"{snap.grad_shown[k]:.17g}",
                        f"{snap.mean_shown[k]:.17g}",
                        lo,
                        hi,
                    ]
                )
        return header, rows
