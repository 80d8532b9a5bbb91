"""Per-sample gradient spread: how much the B per-sample gradients disagree."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from core.snapshot import Snapshot

from . import style
from .base import ViewWidget, fmt, sticky_range

N_BINS = 20
_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 73)), np.sin(np.linspace(0, 2 * np.pi, 73))])


class GradientSpreadPlot(ViewWidget):
    object_name = "gradientSpreadPlot"
    title = "Per-sample gradient spread"
    help_text = (
        "Each dot is one sample's gradient g_i, seen along the mean gradient (x) and along the "
        "direction in which the samples disagree most (y). Red: their mean. Middle: cosine of "
        "each g_i with the mean (left of 0 = pointing against it). Right: |g_i|. The noise "
        "scale B_simple = tr(Σ)/|ḡ|² says at which batch size the noise stops dominating; the "
        "standard error of the mean gradient shrinks like 1/√B."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info = self.addLabel("", row=0, col=0, colspan=2, justify="left", size="9pt")
        sc = self.scatter_plot = self.addPlot(
            row=1, col=0, rowspan=2, title="per-sample gradients g_i"
        )
        sc.setLabel("bottom", "along mean gradient")
        sc.setLabel("left", "along main disagreement")
        sc.showGrid(x=True, y=True, alpha=0.25)
        sc.addItem(pg.InfiniteLine(0, angle=90, pen=style.GRID_PEN))
        sc.addItem(pg.InfiniteLine(0, angle=0, pen=style.GRID_PEN))
        self.ellipse = sc.plot([], [], pen=pg.mkPen(style.PURPLE, width=1.5))
        self.samples = pg.ScatterPlotItem(size=7, brush=style.SAMPLE_BRUSH, pen=style.NO_PEN)
        sc.addItem(self.samples)
        self.mean = pg.ScatterPlotItem(
            size=14, symbol="star", brush=style.POINT_BRUSH, pen=pg.mkPen("k", width=1)
        )
        sc.addItem(self.mean)
        h = self.hist_plot = self.addPlot(row=1, col=1, title="cos(g_i, mean)")
        h.setLabel("left", "samples")
        h.setXRange(-1, 1, padding=0.02)
        self.hist_for = h.plot(
            [], [], stepMode="center", fillLevel=0, brush=style.BAR_BRUSH, pen=style.NO_PEN
        )
        self.hist_against = h.plot(
            [], [], stepMode="center", fillLevel=0, brush=style.BAR_AGAINST_BRUSH, pen=style.NO_PEN
        )
        h.addItem(pg.InfiniteLine(0, angle=90, pen=pg.mkPen(style.BLACK, width=1)))
        n = self.norm_plot = self.addPlot(row=2, col=1, title="|g_i| (dashed: |ḡ|)")
        n.setLabel("bottom", "sample i")
        n.setLabel("left", "norm")
        # two bar items (with the mean / against it) updated with arrays only: one brush
        # each, made once, instead of a list of per-bar brushes every frame
        self.bars = pg.BarGraphItem(
            x=[], height=[], width=0.8, brush=style.BAR_BRUSH, pen=style.NO_PEN
        )
        self.bars_against = pg.BarGraphItem(
            x=[], height=[], width=0.8, brush=style.BAR_AGAINST_BRUSH, pen=style.NO_PEN
        )
        n.addItem(self.bars)
        n.addItem(self.bars_against)
        # no text label on the line: an InfiniteLine re-lays its label's HTML on every move
        self.mean_norm = pg.InfiniteLine(
            0, angle=0, pen=pg.mkPen(style.RED, width=2, style=Qt.PenStyle.DashLine)
        )
        n.addItem(self.mean_norm)
        self.ci.layout.setColumnStretchFactor(0, 3)
        self.ci.layout.setColumnStretchFactor(1, 2)
        self._edges = np.linspace(-1, 1, N_BINS + 1)

    def draw(self, snap: Snapshot) -> None:
        st = snap.stats
        if snap.spread is not None:
            xy = np.asarray(snap.spread)
            self.samples.setData(xy[:, 0], xy[:, 1])
            mx, my = snap.spread_mean
            self.mean.setData([mx], [my])
            if len(xy) > 2:
                C = np.cov(xy.T)
                vals, vecs = np.linalg.eigh(C)
                ell = vecs @ (np.sqrt(np.maximum(vals, 0))[:, None] * 2 * _CIRCLE)
                self.ellipse.setData(ell[0] + xy[:, 0].mean(), ell[1] + xy[:, 1].mean())
            ex, ey = self.ellipse.getData()
            for k, (axis, e) in enumerate(zip("xy", (ex, ey))):
                ev = np.asarray(e if e is not None and len(e) else [0.0])
                lo = min(float(xy[:, k].min()), float(ev.min()), 0.0)
                hi = max(float(xy[:, k].max()), float(ev.max()), 0.0)
                sticky_range(self.scatter_plot, axis, lo, hi)
        cos = np.asarray(st.cosines)
        counts, _ = np.histogram(cos, bins=self._edges)
        against = np.where(self._edges[1:] <= 0, counts, 0)
        self.hist_for.setData(self._edges, counts - against)
        self.hist_against.setData(self._edges, against)
        norms = np.asarray(st.per_sample_norms)
        x = np.arange(len(norms))
        against_mask = cos < 0
        self.bars.setOpts(x=x[~against_mask], height=norms[~against_mask], width=0.8)
        self.bars_against.setOpts(x=x[against_mask], height=norms[against_mask], width=0.8)
        self.mean_norm.setValue(st.mean_norm)
        sticky_range(self.norm_plot, "x", -0.5, len(norms) - 0.5)
        sticky_range(self.norm_plot, "y", 0.0, max(float(norms.max()), st.mean_norm))
        sticky_range(self.hist_plot, "y", 0.0, float(counts.max()))
        self.set_title(self.hist_plot, f"cos(g_i, ḡ): {st.frac_against:.0%} against")
        self.set_text(
            self.info,
            f"<b>B = {snap.batch_size}</b> · noise scale B<sub>simple</sub> = tr(Σ)/|ḡ|² = "
            f"<b>{fmt(st.noise_scale)}</b> · SNR = {fmt(st.snr)}<br>"
            f"std. error of the mean gradient √(tr Σ / B) = <b>{fmt(st.std_error)}</b> "
            f"vs |ḡ| = {fmt(st.mean_norm)}",
        )

    def table(self):
        snap = self.snapshot
        header = [
            "sample",
            "along_mean",
            "along_disagreement",
            "cosine_to_mean",
            "norm",
            "per_sample_loss",
            "weight",
        ]
        rows = []
        if snap is not None and snap.spread is not None:
            st = snap.stats
            for i in range(snap.batch_size):
                rows.append(
                    [
                        i,
                        f"{snap.spread[i, 0]:.10g}",
                        f"{snap.spread[i, 1]:.10g}",
                        f"{st.cosines[i]:.10g}",
                        f"{st.per_sample_norms[i]:.10g}",
                        f"{snap.per_sample_loss[i]:.10g}",
                        f"{snap.weights[i]:.10g}",
                    ]
                )
        return header, rows
