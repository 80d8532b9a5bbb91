"""Loss surface: the scalar loss on a plane through the weights, with the path, the current
point, the mean-gradient arrow and the fan of per-sample gradients."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.snapshot import Snapshot

from . import style
from .base import ViewWidget, fmt
from .surface_image import add_surface_image, show_surface

N_CONTOURS = 9

PLANE_TEXT = {
    "gradient": "d1 = mean gradient, d2 = main disagreement",
    "random": "filter-normalised random (Li et al. 2018)",
    "pca": "top 2 principal directions of the path",
}


class LossSurfacePlot(ViewWidget):
    object_name = "lossSurfacePlot"
    title = "Loss surface"
    help_text = (
        "The scalar loss (log10, colour) on a plane through the current weights. White line: "
        "the path so far. Thin blue arrows: the B per-sample descent directions (-g_i); red "
        "arrow: their weighted mean, the step the optimiser takes. Change the reduction and "
        "the surface itself changes: a different scalar is being minimised."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info = self.addLabel("", row=0, col=0, colspan=2, justify="left", size="9pt")
        self.plot = self.addPlot(row=1, col=0, title="Loss surface")
        p = self.plot
        p.setLabel("bottom", "α  (along d1)")
        p.setLabel("left", "β  (along d2)")
        p.setAspectLocked(True)
        p.showGrid(x=False, y=False)
        self.image, self.colorbar = add_surface_image(self.ci, p, row=1, col=1)
        self.contours = []
        for _ in range(N_CONTOURS):
            iso = pg.IsocurveItem(level=0.0, pen=style.CONTOUR_PEN)
            iso.setParentItem(self.image)
            self.contours.append(iso)
        self.path = p.plot([], [], pen=style.PATH_PEN, name="path")
        self.fan = p.plot([], [], pen=style.SAMPLE_PEN, connect="pairs", name="per-sample −g_i")
        self.arrow_line = p.plot([], [], pen=style.MEAN_PEN, name="mean −g")
        self.fan.setZValue(10)
        self.arrow_line.setZValue(11)
        self.arrow_head = pg.ArrowItem(
            angle=0, headLen=14, tipAngle=30, pen=style.NO_PEN, brush=style.POINT_BRUSH
        )
        p.addItem(self.arrow_head)
        self.arrow_head.setZValue(12)
        self.point = pg.ScatterPlotItem(
            size=11, brush=style.POINT_BRUSH, pen=pg.mkPen("w", width=1.5)
        )
        p.addItem(self.point)
        self.point.setZValue(13)
        # a dark box: the path is drawn white (it crosses dark and light parts of the
        # surface), and a white swatch on the default light box would be invisible
        self.legend = p.addLegend(
            offset=(5, 5),
            labelTextSize="8pt",
            labelTextColor="w",
            brush=pg.mkBrush(40, 40, 40, 190),
            pen=style.NO_PEN,
        )
        self.legend.addItem(self.path, "path (projected)")
        self.legend.addItem(self.fan, "per-sample −g_i")
        self.legend.addItem(self.arrow_line, "mean −g (the step)")
        self._surface_id = None
        self._scale = 1.0

    def draw(self, snap: Snapshot) -> None:
        if not snap.detail:
            return
        s = snap.surface
        if s is not None and s.surface_id != self._surface_id:
            self._set_surface(s)
        span = s.span if s is not None else 1.0
        if snap.path is not None and len(snap.path):
            self.path.setData(snap.path[:, 0], snap.path[:, 1])
        px, py = snap.point
        self.point.setData([px], [py])
        fan = -np.asarray(snap.fan)
        arrow = -np.asarray(snap.arrow)
        # Scale so that most per-sample arrows (80 %) and the mean fit in 45 % of the span;
        # the few longest may leave the grid, the mean arrow stays readable.
        typical = float(np.percentile(np.hypot(fan[:, 0], fan[:, 1]), 80)) if len(fan) else 0
        longest = max(typical, float(np.hypot(*arrow)), 1e-300)
        self._scale = 0.45 * span / longest
        seg = np.empty((2 * len(fan), 2))
        seg[0::2] = (px, py)
        seg[1::2] = (px, py) + fan * self._scale
        self.fan.setData(seg[:, 0], seg[:, 1])
        tip = np.array([px, py]) + arrow * self._scale
        self.arrow_line.setData([px, tip[0]], [py, tip[1]])
        self.arrow_head.setPos(*tip)
        self.arrow_head.setStyle(angle=180 - np.degrees(np.arctan2(arrow[1], arrow[0])))
        age = snap.surface_age_steps
        kind = snap.plane_kind
        res = (
            f"{s.resolution}×{s.resolution} grid on {s.n_samples} samples, "
            f"{s.seconds * 1000:.0f} ms, {age} steps old"
            if s is not None
            else "computing…"
        )
        self.set_text(
            self.info,
            f"<b>Plane</b>: {PLANE_TEXT.get(kind, kind)}<br>"
            f"{res}<br>off-plane distance {fmt(snap.off_plane)} · arrows ×{fmt(self._scale)}",
        )

    def _set_surface(self, s) -> None:
        self._surface_id = s.surface_id
        out = show_surface(self.image, self.colorbar, s.Z, s.alphas, s.betas)
        if out is None:
            return
        L, lo, hi = out
        a, b = s.alphas, s.betas
        for iso, level in zip(self.contours, np.linspace(lo, hi, N_CONTOURS + 2)[1:-1]):
            iso.setData(L, level=level)
        # The view follows the surface, not the arrows (long ones may leave the grid).
        self.plot.setRange(xRange=(a[0], a[-1]), yRange=(b[0], b[-1]), padding=0.02)
        self.plot.disableAutoRange()

    def table(self):
        snap = self.snapshot
        header = ["alpha", "beta", "loss"]
        rows = []
        if snap is not None and snap.surface is not None:
            s = snap.surface
            for i, a in enumerate(s.alphas):
                for j, b in enumerate(s.betas):
                    rows.append([f"{a:.8g}", f"{b:.8g}", f"{s.Z[i, j]:.10g}"])
        return header, rows
