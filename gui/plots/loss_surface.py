"""Loss surface: the scalar loss on a plane through the weights, with the path, the current
point, the mean-gradient arrow and the fan of per-sample gradients."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.landscape import surface_plan
from core.snapshot import Snapshot

from . import style
from .base import ViewWidget, coloured, fmt
from .surface_image import add_surface_image, contour_segments, log_levels, show_surface

N_CONTOURS = 9
SMOOTH = 4  #: the grid is drawn bilinearly interpolated at this many times its resolution
MIN_STEP_FRACTION = 0.22  #: the step arrow is drawn at least this fraction of the room

PLANE_TEXT = {
    "gradient": "d1 = ḡ, d2 = main disagreement",
    "random": "filter-normalised random (Li et al. 2018)",
    "pca": "top 2 principal directions of the path",
}


def no_surface_reason(snap: Snapshot) -> str:
    """Why the engine computes no live surface for this network ("" if it does): the plan of
    ``core.landscape.surface_plan``, which the engine follows, has no grid within budget."""
    sizes, cfg = snap.layer_sizes, snap.config
    n_samples = min(cfg.surface_samples, snap.n_train) if snap.n_train else cfg.surface_samples
    if surface_plan(sizes, cfg.surface_resolution, n_samples)[0] != 0:
        return ""
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return (
        f"no live surface: {n_params:,} parameters are too many to evaluate a grid of them "
        "within the time budget"
    )


class LossSurfacePlot(ViewWidget):
    object_name = "lossSurfacePlot"
    #: place in the live grid by its number of columns: (row, col, rowspan, colspan);
    #: the largest view, two rows high in two columns
    grid_place = {2: (0, 0, 2, 1), 3: (0, 0, 1, 1)}
    title = "Loss surface"
    help_text = (
        "The scalar loss (log10, colour) on a plane through the current weights. White line: "
        "the path so far. Thin light-blue arrows: the B per-sample descent directions (-g_i); "
        "red-orange arrow: the gradient of the scalar reversed, the direction of the step. "
        "Arrows are scaled to fit the plot (all per-sample arrows by one factor, so their "
        "lengths compare). Change the reduction and the surface itself changes: a different "
        "scalar is being minimised."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info = self.addLabel("", row=0, col=0, colspan=2, justify="left", size="9pt")
        self.plot = self.addPlot(row=1, col=0)
        p = self.plot
        p.setLabel("bottom", "α  (along d1)")
        p.setLabel("left", "β  (along d2)")
        p.setAspectLocked(True)
        p.showGrid(x=False, y=False)
        self.image, self.colorbar = add_surface_image(self.ci, p, row=1, col=1)
        # every contour line in one item, as segments (vectorised marching squares)
        self.contours = pg.PlotCurveItem(pen=style.CONTOUR_PEN, connect="pairs")
        self.contours.setSkipFiniteCheck(True)
        p.addItem(self.contours)
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
        self._step_boost = 1.0
        self._extent: tuple[float, float, float, float] | None = None
        self._shown_surface = None
        self._colour_note = ""
        # the surface fills the plot: on a resize the view crops the square grid to the plot's
        # shape instead of leaving bands
        p.getViewBox().sigResized.connect(self._on_plot_resized)

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
        fan = np.nan_to_num(-np.asarray(snap.fan), nan=0.0, posinf=0.0, neginf=0.0)
        arrow = np.nan_to_num(-np.asarray(snap.arrow), nan=0.0, posinf=0.0, neginf=0.0)
        # Every arrow stays on the plot: the longest reaches 90 % of the way from the point to
        # the nearest edge in view; all per-sample arrows share that one factor.
        room = self._room(px, py, span)
        lengths = np.hypot(fan[:, 0], fan[:, 1]) if len(fan) else np.zeros(0)
        step_len = float(np.hypot(*arrow))
        longest = max(float(lengths.max()) if lengths.size else 0.0, step_len, 1e-300)
        self._scale = 0.9 * room / longest
        # the step arrow is drawn long enough to be seen beside the point (and said so)
        self._step_boost = 1.0
        if 0 < step_len * self._scale < MIN_STEP_FRACTION * room:
            self._step_boost = MIN_STEP_FRACTION * room / (step_len * self._scale)
        seg = np.empty((2 * len(fan), 2))
        seg[0::2] = (px, py)
        seg[1::2] = (px, py) + fan * self._scale
        self.fan.setData(seg[:, 0], seg[:, 1])
        tip = np.array([px, py]) + arrow * self._scale * self._step_boost
        self.arrow_line.setData([px, tip[0]], [py, tip[1]])
        self.arrow_head.setPos(*tip)
        self.arrow_head.setStyle(angle=180 - np.degrees(np.arctan2(arrow[1], arrow[0])))
        self.arrow_head.setVisible(step_len > 0)
        kind = snap.plane_kind
        self.set_text(self.info, self._info_text(snap, s, PLANE_TEXT.get(kind, kind)))

    def _room(self, px: float, py: float, span: float) -> float:
        """Distance from the point to the nearest edge of what the plot shows."""
        if self._extent is None:
            return span
        x0, x1, y0, y1 = self._extent
        room = min(px - x0, x1 - px, py - y0, y1 - py)
        return room if room > 0 else span * 0.5

    def _info_text(self, snap: Snapshot, s, plane: str) -> str:
        if s is None:
            res = no_surface_reason(snap) or "computing the surface…"
        else:
            age = snap.surface_age_seconds
            age_txt = "up to date" if not age > 0 else f"{age:.1f} s old"
            age_txt = f"surface {age_txt}"
            if age != age:  # nan: no age known
                age_txt = f"{snap.surface_age_steps} steps old"
            res = (
                f"<b>{age_txt}</b>: {s.resolution}×{s.resolution} grid, {s.n_samples} samples, "
                f"{s.seconds * 1000:.0f} ms"
            )
        boost = f", the step ×{self._step_boost:.0f} longer" if self._step_boost >= 1.5 else ""
        note = f" · {self._colour_note}" if self._colour_note and s is not None else ""
        marks = (
            ""
            if self.legend.isVisible()
            else f"{coloured('white', (90, 90, 90))}: path · {coloured('light blue', style.SKY)}: "
            f"−g<sub>i</sub> · {coloured('red-orange', style.RED)}: −g, the step · "
        )
        return (
            f"<b>Plane</b>: {plane} · off-plane {fmt(snap.off_plane)}<br>{res}<br>"
            f"{marks}{coloured('●', style.RED)} the weights now · thin white lines: contours · "
            f"arrows shrunk to fit{boost}{note}"
        )

    def _on_plot_resized(self) -> None:
        """Fill the plot with the surface; in a small plot the legend box would hide much of
        the surface, so the header names the marks in their colours instead. The colour bar
        spans the plot's height, not the row's: its end labels (which reach 15 px past the
        bar) then stay inside the view."""
        self._fit_view()
        below = max(15.0, self.plot.getAxis("bottom").height())
        if getattr(self, "_bar_below", None) != below:
            self._bar_below = below
            self.colorbar.layout.setContentsMargins(0, 15, 0, below)
        vb = self.plot.getViewBox()
        show = vb.width() >= 330 and vb.height() >= 330
        if show != self.legend.isVisible():
            self.legend.setVisible(show)
            if self.snapshot is not None and not getattr(self, "closed", False):
                self.draw(self.snapshot)

    def _fit_view(self) -> None:
        """Show the part of the surface that fills the plot (no bands): the whole grid along
        the plot's shorter side, cropped along the longer one (aspect kept 1:1)."""
        s = self._shown_surface
        if s is None:
            return
        vb = self.plot.getViewBox()
        w, h = vb.width(), vb.height()
        if w <= 0 or h <= 0:
            return
        a, b = s.alphas, s.betas
        ca, cb = (a[0] + a[-1]) / 2, (b[0] + b[-1]) / 2
        half = min(a[-1] - a[0], b[-1] - b[0]) / 2
        hx, hy = (half * w / h, half) if w >= h else (half, half * h / w)
        # inside the grid: crop the longer side; never beyond the surface
        if hx > half:
            hx, hy = half, half * h / w
        elif hy > half:
            hx, hy = half * w / h, half
        self._extent = (ca - hx, ca + hx, cb - hy, cb + hy)
        vb.setRange(xRange=(ca - hx, ca + hx), yRange=(cb - hy, cb + hy), padding=0)

    def _set_surface(self, s) -> None:
        self._surface_id = s.surface_id
        out = show_surface(self.image, self.colorbar, s.Z, s.alphas, s.betas, smooth=SMOOTH)
        if out is None:
            return
        _, lo, hi = out
        # Contours from the computed grid, not the interpolated image (16x fewer cells), in
        # plane coordinates; all levels in one vectorised pass (pyqtgraph's IsocurveItem
        # took ~35 ms a surface, twice a second, on the window's thread)
        coarse = log_levels(s.Z)[0]
        seg = contour_segments(coarse, np.linspace(lo, hi, N_CONTOURS + 2)[1:-1], s.alphas, s.betas)
        self.contours.setData(seg[:, 0], seg[:, 1], connect="pairs")
        Z = np.asarray(s.Z)
        finite = Z[np.isfinite(Z) & (Z > 0)]
        clipped = finite.size < Z.size or (
            finite.size and (np.log10(finite.max()) > hi + 1e-9 or np.log10(finite.min()) < lo)
        )
        label = "log₁₀ loss (ends clipped)" if clipped else "log₁₀ loss"
        self._colour_note = ""
        if clipped and finite.size:
            self._colour_note = (
                f"colour: loss {fmt(10**lo, 2)}–{fmt(10**hi, 2)}, clipped (max "
                f"{fmt(float(finite.max()), 2)}"
                + (", some not finite)" if finite.size < Z.size else ")")
            )
        if getattr(self.colorbar, "_bs_label", None) != label:
            self.colorbar._bs_label = label
            self.colorbar.getAxis("left").setLabel(label)
        # The view follows the surface and fills the plot with it.
        self.plot.disableAutoRange()
        self._shown_surface = s
        self._fit_view()

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
