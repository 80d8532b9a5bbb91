"""Loss matrix: M of the current batch (outputs x batch), the per-sample losses, and the
reduction that turns M into the one scalar that is backpropagated."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from core.losses import REDUCTION_LABELS
from core.snapshot import Snapshot

from . import style
from .base import ViewWidget, fmt

FORMULA = {
    "mean": "scalar = (1/B) Σ<sub>i</sub> L<sub>i</sub>",
    "sum": "scalar = Σ<sub>i</sub> L<sub>i</sub>  (= B × mean)",
    "max": "scalar = max<sub>i,o</sub> M<sub>io</sub>  (★)",
    "weighted": "scalar = Σ<sub>i</sub> s<sub>i</sub> L<sub>i</sub> / Σ s",
}


class LossMatrixPlot(ViewWidget):
    object_name = "lossMatrixPlot"
    title = "Loss matrix M"
    help_text = (
        "M holds one loss per output and sample (outputs x batch, e.g. 3 x 32). Libraries do "
        "not backpropagate M: a reduction turns it into one number, because only numbers can "
        "be compared. Each sample's row becomes its own loss L_i (bars), and the L_i combine "
        "with weights w_i into the scalar."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info = self.addLabel("", row=0, col=0, colspan=2, justify="left", size="9pt")
        p = self.plot = self.addPlot(row=1, col=0)
        p.setLabel("left", "M: output")
        p.hideAxis("bottom")
        p.invertY(True)
        p.setMouseEnabled(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(style.MATRIX_CMAP)
        p.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=(0, 1), colorMap=style.MATRIX_CMAP, label="M", interactive=False, width=12
        )
        self.colorbar.setImageItem(self.image)
        self.addItem(self.colorbar, row=1, col=1)
        self.max_marker = pg.ScatterPlotItem(
            size=13, symbol="star", brush=pg.mkBrush("w"), pen=pg.mkPen("k", width=1)
        )
        p.addItem(self.max_marker)
        b = self.bar_plot = self.addPlot(row=2, col=0)
        b.setLabel("bottom", "sample i in batch (bars: L<sub>i</sub>, ◆: weight w<sub>i</sub>)")
        b.setLabel("left", "L<sub>i</sub>")
        b.setXLink(p)
        # one width for both left axes, so their labels line up instead of colliding; plain
        # numbers (an SI prefix such as "x0.001" would rescale the losses)
        for axis in (p.getAxis("left"), b.getAxis("left")):
            axis.setWidth(52)
            axis.enableAutoSIPrefix(False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=style.BAR_BRUSH)
        b.addItem(self.bars)
        self.weight_curve = pg.ScatterPlotItem(
            size=6, symbol="d", brush=pg.mkBrush(style.RED), pen=style.NO_PEN
        )
        b.addItem(self.weight_curve)
        self.ci.layout.setRowStretchFactor(1, 3)
        self.ci.layout.setRowStretchFactor(2, 2)
        self._shape = None

    def draw(self, snap: Snapshot) -> None:
        M = np.asarray(snap.M)
        B, O = M.shape
        finite = M[np.isfinite(M)]
        # 98th percentile: one outlier must not turn the rest of M black (the bar says so)
        hi = float(np.percentile(finite, 98)) if finite.size else 1.0
        hi = hi if hi > 0 else 1.0
        self.image.setImage(np.ascontiguousarray(M), autoLevels=False, levels=(0.0, hi))
        self.colorbar.setLevels((0.0, hi))
        if (B, O) != self._shape:  # setRect after setImage: it scales the current image
            self._shape = (B, O)
            self.image.setRect(QRectF(-0.5, -0.5, B, O))
            self.plot.getAxis("left").setTicks([[(o, str(o + 1)) for o in range(O)]])
            self.plot.setRange(xRange=(-0.5, B - 0.5), yRange=(-0.5, O - 0.5), padding=0)
        L = np.asarray(snap.per_sample_loss)
        w = np.asarray(snap.weights)
        self.bars.setOpts(x=np.arange(B), height=L, width=0.8)
        # weights drawn on the L axis, scaled so the largest weight sits at the top of the bars
        scale = (float(np.max(L)) / max(float(np.max(w)), 1e-300)) if B else 1.0
        self.weight_curve.setData(np.arange(B), w * scale)
        cfg = snap.config
        if cfg.reduction == "max":
            i, o = np.unravel_index(int(np.nanargmax(M)), M.shape)
            self.max_marker.setData([i], [o])
        else:
            self.max_marker.setData([], [])
        row = ""
        if snap.output_weights is not None:
            v = ", ".join(f"{x:.3g}" for x in snap.output_weights)
            row = f"L<sub>i</sub> = Σ<sub>o</sub> u<sub>o</sub> M<sub>io</sub>, u = ({v})"
        else:
            row = "L<sub>i</sub> = max<sub>o</sub> M<sub>io</sub>"
        ws = np.unique(np.round(w, 12))
        wtxt = (
            f"w<sub>i</sub> = {fmt(ws[0])} for all i"
            if len(ws) == 1
            else f"w<sub>i</sub> from {fmt(w.min())} to {fmt(w.max())} (◆)"
        )
        self.set_text(
            self.info,
            f"<b>{cfg.loss}</b>, reduction <b>{cfg.reduction}</b> "
            f"({REDUCTION_LABELS[cfg.reduction]})<br>{row}<br>{FORMULA[cfg.reduction]}; "
            f"{wtxt}<br><b>backpropagated: one scalar = {fmt(snap.loss, 6)}</b> "
            f"from the {O}×{B} M",
        )

    def table(self):
        snap = self.snapshot
        if snap is None:
            return ["sample"], []
        B, O = snap.M.shape
        header = ["sample", *[f"M_output{o + 1}" for o in range(O)], "L_i", "w_i"]
        rows = [
            [
                i,
                *[f"{snap.M[i, o]:.10g}" for o in range(O)],
                f"{snap.per_sample_loss[i]:.10g}",
                f"{snap.weights[i]:.10g}",
            ]
            for i in range(B)
        ]
        return header, rows
