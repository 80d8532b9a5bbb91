"""Averaged gradient: per parameter, the mean of the per-sample gradients (with the band of
per-sample values) over the gradient of the scalar loss from one backward pass."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem

from core.snapshot import Snapshot

from . import style
from .base import ViewWidget, fmt, sticky_range


def _band_swatch() -> pg.BarGraphItem:
    """A legend swatch for the band (a FillBetweenItem cannot draw its own sample)."""
    return pg.BarGraphItem(x=[0], height=[1], width=1, brush=style.BAND_BRUSH, pen=style.NO_PEN)


class MeanGradientPlot(ViewWidget):
    object_name = "meanGradientPlot"
    title = "Mean of the gradients = gradient of the mean"
    help_text = (
        "For every parameter (grouped by layer): the band holds 80 % of the per-sample "
        "gradients (10th to 90th percentile), the red line is their weighted mean Σ w_i g_i, "
        "and the dashed black line is the gradient of the one scalar loss from a single "
        "backward pass. They coincide: the printed difference is round-off."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info = self.addLabel("", row=0, col=0, justify="left", size="9pt")
        p = self.plot = self.addPlot(row=1, col=0)
        p.setLabel("bottom", "parameter (flat index; layers W1 b1 W2 b2 …)")
        p.setLabel("left", "∂L/∂θ")
        p.showGrid(x=False, y=True, alpha=0.25)
        # The band is one closed polygon (x, hi) then (x reversed, lo reversed), built by
        # pg.arrayToQPath in one vectorised call; a FillBetweenItem rebuilt its path from two
        # curves on every change of either, which cost ~10 ms a frame for P ~ 1,300.
        self.band = QGraphicsPathItem()
        self.band.setBrush(style.BAND_BRUSH)
        self.band.setPen(style.NO_PEN)
        p.addItem(self.band)
        self.mean = p.plot([], [], pen=style.MEAN_PEN)
        self.scalar = p.plot([], [], pen=style.SCALAR_PEN)
        for item in (self.mean, self.scalar):
            item.setSkipFiniteCheck(True)
        self.legend = p.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.legend.addItem(_band_swatch(), "per-sample g_i (10–90 %)")
        self.legend.addItem(self.mean, "mean of per-sample Σ w_i g_i")
        self.legend.addItem(self.scalar, "gradient of the scalar (1 backward pass)")
        self._bounds: tuple[int, ...] = ()
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
                # A layer too narrow for its name (the output layer, typically) is named to
                # the left of its line, pointing at it; otherwise the name ran off the plot.
                narrow = (b[min(k + 2, len(b) - 1)] - b[k]) < 0.08 * b[-1]
                ln = pg.InfiniteLine(
                    b[k] - 0.5,
                    angle=90,
                    pen=style.GRID_PEN,
                    label=f"{name}, b{name[1:]} →" if narrow else f"{name}, b{name[1:]}",
                    labelOpts={  # at the bottom: the legend holds the top right
                        "position": 0.04,
                        "color": style.GREY,
                        "anchors": [(1, 1), (1, 1)] if narrow else [(0, 1), (0, 1)],
                    },
                )
            self.plot.addItem(ln)
            self._lines.append(ln)
        self._bounds = b
        self.plot.setXRange(0, b[-1], padding=0.01)

    def draw(self, snap: Snapshot) -> None:
        if not snap.detail:
            return
        if snap.param_bounds != self._bounds:
            self._set_layers(snap)
        x = np.asarray(snap.shown_index, dtype=np.float64)
        self.mean.setData(x, snap.mean_shown)
        self.scalar.setData(x, snap.grad_shown)
        ys = [snap.grad_shown] if snap.band_lo is None else [snap.band_lo, snap.band_hi]
        lo = min(float(np.min(v)) for v in ys)
        hi = max(float(np.max(v)) for v in ys)
        sticky_range(self.plot, "y", min(lo, 0.0), max(hi, 0.0))
        if snap.band_lo is not None:
            xs = np.concatenate([x, x[::-1]])
            ys = np.concatenate([snap.band_hi, snap.band_lo[::-1]])
            path = pg.arrayToQPath(xs, ys, connect="all")
            path.closeSubpath()
            self.band.setPath(path)
        else:
            self.band.setPath(QPainterPath())
        shown = len(x)
        note = "" if shown == snap.n_params else f" ({shown:,} of {snap.n_params:,} shown)"
        band = "" if snap.band_lo is not None else " · band hidden: B×P too large to hold"
        self.set_text(
            self.info,
            f"<b>max |Σ w<sub>i</sub> g<sub>i</sub> − ∇ scalar| = {fmt(snap.max_abs_diff)}</b>"
            f" (round-off; largest |∇| = {fmt(float(np.max(np.abs(snap.grad_shown))))})<br>"
            f"P = {snap.n_params:,}{note} · B = {snap.batch_size}{band}",
        )

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
