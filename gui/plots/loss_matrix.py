"""Loss matrix: M of the current batch (outputs x batch), beside it dL/dY (the matrix the
backward pass of the scalar starts from), the per-sample losses L_i with their weights w_i, and
the reduction that turns M into the one scalar that is backpropagated."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF

from core.data import scale_caption
from core.losses import Loss, get_loss
from core.snapshot import Snapshot

from . import style
from .base import ViewWidget, coloured, fmt, integer_ticks, set_data, sticky_range


def per_sample_formula(loss: Loss) -> str:
    """How sample i's column of M becomes its own loss L_i for this loss."""
    if loss.sum_outputs:
        return f"L<sub>i</sub> = Σ<sub>o</sub> M<sub>oi</sub> ({loss.label} sums outputs)"
    return "L<sub>i</sub> = mean<sub>o</sub> M<sub>oi</sub>"


#: how the L_i become the scalar, by reduction
FORMULA = {
    "mean": "scalar = (1/B) Σ<sub>i</sub> L<sub>i</sub>",
    "sum": "scalar = Σ<sub>i</sub> L<sub>i</sub> = B × mean",
    "max": "scalar = max<sub>o,i</sub> M<sub>oi</sub> (★)",
    "weighted": "scalar = Σ<sub>i</sub> s<sub>i</sub> L<sub>i</sub> / Σ s",
}


def _axis_width_for(axis: pg.AxisItem, lo: float, hi: float) -> float:
    """The width a vertical axis needs for its tick labels over (lo, hi), its ticks and its
    title (pyqtgraph's own sum, from the labels it would write)."""
    font = axis.style.get("tickFont") or axis.font()
    fm = QFontMetricsF(font)
    size = max(axis.geometry().height(), 50.0)
    text = 0.0
    for spacing, values in axis.tickValues(lo, hi, size):
        for label in axis.tickStrings(values, axis.autoSIPrefixScale * axis.scale, spacing):
            text = max(text, fm.horizontalAdvance(label))
    w = text + axis.style["tickTextOffset"][0] + max(0, axis.style["tickLength"])
    if axis.label.isVisible():
        w += axis.label.boundingRect().height() * 0.8
    return w + 2


class LossMatrixPlot(ViewWidget):
    object_name = "lossMatrixPlot"
    #: place in the live grid by its number of columns: (row, col, rowspan, colspan)
    grid_place = {2: (2, 0, 1, 1), 3: (1, 0, 1, 1)}
    title = "Loss matrix M"
    help_text = (
        "M holds one loss per output and sample: outputs x batch (3 x 32), each column one "
        "sample. Libraries do not backpropagate M: a reduction turns it into one number, "
        "because only numbers can be compared. Each sample's column becomes its own loss L_i "
        "(blue bars), and the L_i combine with weights w_i (red-orange diamonds, right axis) "
        "into the scalar. Beside M: dL/dY, the derivative of that scalar with respect to the "
        "outputs (outputs x batch). The libraries do backpropagate a scalar, and its backward "
        "pass begins with this matrix."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info = self.addLabel("", row=0, col=0, colspan=2, justify="left", size="8pt")
        p = self.plot = self.addPlot(row=1, col=0)
        p.setLabel("left", "output o")
        p.hideAxis("bottom")
        p.invertY(True)
        p.setMouseEnabled(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(style.MATRIX_CMAP)
        p.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=(0, 1), colorMap=style.MATRIX_CMAP, label="M", interactive=False, width=10
        )
        self.colorbar.setImageItem(self.image)
        self.addItem(self.colorbar, row=1, col=1)
        self.max_marker = pg.ScatterPlotItem(
            size=13, symbol="star", brush=pg.mkBrush("w"), pen=pg.mkPen("k", width=1)
        )
        p.addItem(self.max_marker)
        # --- dL/dY beside M: what the scalar's backward pass starts from
        d = self.dldy_plot = self.addPlot(row=2, col=0)
        d.hideAxis("bottom")
        d.invertY(True)
        d.setMouseEnabled(x=False, y=False)
        self.dldy_image = pg.ImageItem(axisOrder="col-major")
        self.dldy_image.setColorMap(style.SIGNED_CMAP)
        d.addItem(self.dldy_image)
        self.dldy_bar = pg.ColorBarItem(
            values=(-1, 1), colorMap=style.SIGNED_CMAP, label="dL/dY", interactive=False, width=10
        )
        self.dldy_bar.setImageItem(self.dldy_image)
        self.addItem(self.dldy_bar, row=2, col=1)
        # --- per-sample losses (bars, left axis) and weights w_i (diamonds, their own axis)
        b, wax = self._build_bars()
        # one width for the left axes, so their labels line up; plain numbers (an SI prefix
        # such as "x0.001" would rescale the losses)
        for axis in (p.getAxis("left"), b.getAxis("left"), d.getAxis("left"), wax):
            axis.enableAutoSIPrefix(False)
        self._left_width = 0
        self._left_range: tuple[float, float] | None = None
        self._align_left_axes()
        d.setLabel("left", "output o")
        self._clip_notes: list[str] = []
        self._dldy_caption = ""
        self._arrangement = ""
        self._arrange("stack")
        self._shape = None
        self._m_top = self._d_top = self._w_top = None  # colour and weight scales shown

    def _build_bars(self):
        """The per-sample losses L_i (bars) and weights w_i (diamonds on their own axis)."""
        b = self.bar_plot = self.addPlot(row=3, col=0)
        b.setLabel("bottom", "sample i (a column of M)")
        b.setLabel("left", coloured("L<sub>i</sub>", style.BLUE))
        b.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=style.BAR_BRUSH)
        b.addItem(self.bars)
        self.w_view = pg.ViewBox(enableMouse=False)
        b.showAxis("right")
        b.scene().addItem(self.w_view)
        wax = b.getAxis("right")
        wax.linkToView(self.w_view)
        wax.setLabel(coloured("w<sub>i</sub> ◆", style.RED))
        self.w_view.setXLink(b)
        b.getViewBox().sigResized.connect(self._sync_w_view)
        self.weight_curve = pg.ScatterPlotItem(
            size=6, symbol="d", brush=pg.mkBrush(style.RED), pen=style.NO_PEN
        )
        self.w_view.addItem(self.weight_curve)
        return b, wax

    def _arrange(self, kind: str) -> None:
        """ "stack": M over dL/dY over the bars (a room of normal height); "side": M beside
        dL/dY over the bars (a short, wide room, where the stack left each a strip);
        "compact": the stack without titles, M and dL/dY named on their axes and dL/dY's
        sentence in the header (the smallest room, 1024 x 640)."""
        ci = self.ci
        items = (self.info, self.plot, self.colorbar, self.dldy_plot, self.dldy_bar, self.bar_plot)
        for item in items:
            ci.removeItem(item)
        if kind == "side":
            ci.addItem(self.info, row=0, col=0, colspan=4)
            ci.addItem(self.plot, row=1, col=0)
            ci.addItem(self.colorbar, row=1, col=1)
            ci.addItem(self.dldy_plot, row=1, col=2)
            ci.addItem(self.dldy_bar, row=1, col=3)
            ci.addItem(self.bar_plot, row=2, col=0, colspan=4)
            rows, cols = (0, 1, 1, 0), (1, 0, 1, 0)
        else:
            ci.addItem(self.info, row=0, col=0, colspan=2)
            ci.addItem(self.plot, row=1, col=0)
            ci.addItem(self.colorbar, row=1, col=1)
            ci.addItem(self.dldy_plot, row=2, col=0)
            ci.addItem(self.dldy_bar, row=2, col=1)
            ci.addItem(self.bar_plot, row=3, col=0)
            rows, cols = (0, 2, 2, 3), (1, 0, 0, 0)
        # side by side, M's axis names the output rows of both
        self.dldy_plot.showAxis("left", kind != "side")
        compact = kind == "compact"
        ci.layout.setVerticalSpacing(2 if compact else 6)
        for plot, name in ((self.plot, "M"), (self.dldy_plot, "dL/dY")):
            plot.setLabel("left", name if compact else "output o")
            if compact:
                plot.setTitle(None)
                plot._bs_text = None  # set again on leaving compact
                self._pending_text.pop(id(plot), None)  # and not by a kept-back one
        for k, f in enumerate(rows):
            ci.layout.setRowStretchFactor(k, f)
        for k, f in enumerate(cols):
            ci.layout.setColumnStretchFactor(k, f)
        self._arrangement = kind

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        # pyqtgraph resizes during __init__, and again in close() after deleting the items
        if hasattr(self, "_clip_notes") and not getattr(self, "closed", False):
            self._choose_arrangement()

    def _choose_arrangement(self) -> None:
        header = max(self.info.height(), self.info.itemRect().height())
        w, h = self.width(), self.height() - header
        if self.height() < 290:
            kind = "compact"
        else:
            kind = "side" if (h < 260 and w > 1.5 * h + 60) else "stack"
        if kind != self._arrangement:
            self._arrange(kind)

    def _align_left_axes(self) -> None:
        """One width for the three left axes, so M's columns, dL/dY's and the bars line up:
        at least 46 px, more when the bars' tick labels need it (0.005, 4e+07), so that no
        label runs under the axis title."""
        bar_axis = self.bar_plot.getAxis("left")
        lo, hi = self.bar_plot.getViewBox().viewRange()[1]
        if (lo, hi) == self._left_range:  # sticky: the range changes in jumps
            return
        self._left_range = (lo, hi)
        need = 46.0
        if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
            need = max(need, _axis_width_for(bar_axis, lo, hi))
        width = int(np.ceil(need))
        if width != self._left_width:
            self._left_width = width
            for plot in (self.plot, self.dldy_plot, self.bar_plot):
                plot.getAxis("left").setWidth(width)

    def _sync_w_view(self) -> None:
        self.w_view.setGeometry(self.bar_plot.getViewBox().sceneBoundingRect())
        self.w_view.linkedViewChanged(self.bar_plot.getViewBox(), self.w_view.XAxis)

    def draw(self, snap: Snapshot) -> None:
        M = np.asarray(snap.M)
        B, O = M.shape
        hi, clipped = _top_level(M, self._m_top)
        self._m_top = hi
        self.image.setImage(np.ascontiguousarray(M), autoLevels=False, levels=(0.0, hi))
        if self.colorbar.levels() != (0.0, hi):  # an unchanged bar keeps its cached axis
            self.colorbar.setLevels((0.0, hi))
        if self._arrangement != "compact":
            self.set_title(self.plot, f"M ({O}×{B}, outputs × batch)", size="8pt")
        self._clip_notes = [f"M > {fmt(hi, 2)} (max {_max_text(M)})"] if clipped else []
        if (B, O) != self._shape:  # setRect after setImage: it scales the current image
            self._shape = (B, O)
            self.image.setRect(QRectF(-0.5, -0.5, B, O))
            for plot in (self.plot, self.dldy_plot):
                plot.getAxis("left").setTicks([[(o, str(o + 1)) for o in range(O)]])
            # each plot gets its own x-range (linked views align by screen position, and the
            # bar plot is narrower than M's: its right axis holds the weights)
            for plot in (self.plot, self.dldy_plot):
                plot.setRange(xRange=(-0.5, B - 0.5), yRange=(-0.5, O - 0.5), padding=0)
            self.bar_plot.setXRange(-0.5, B - 0.5, padding=0)
        integer_ticks(self.bar_plot.getAxis("bottom"), B)  # whole sample numbers
        self._draw_dldy(snap, B, O)
        L = np.asarray(snap.per_sample_loss)
        w = np.asarray(snap.weights)
        self.bars.setOpts(x=np.arange(B), height=L, width=0.8)
        Lf = L[np.isfinite(L)]
        # ranges kept while the data fit them well (a new range each frame re-rendered the
        # axes' text every frame)
        sticky_range(self.bar_plot, "y", 0.0, float(Lf.max()) if Lf.size and Lf.max() > 0 else 1.0)
        self._align_left_axes()
        set_data(self.weight_curve, np.arange(B), w)
        wf = w[np.isfinite(w)]
        w_top = float(wf.max()) * 1.1 if wf.size and wf.max() > 0 else 1.0
        if w_top != self._w_top:
            self._w_top = w_top
            self.w_view.setYRange(0.0, w_top)
        cfg = snap.config
        if cfg.reduction == "max":
            i, o = np.unravel_index(int(np.nanargmax(M)), M.shape)
            set_data(self.max_marker, [i], [o])
        else:
            set_data(self.max_marker, [], [])
        info = self._info_text(snap, w, B, O)
        caption = scale_caption(snap.config, snap.task)  # CSV data: which scale M is on
        self.set_text(self.info, f"{info} · {caption}" if caption else info)
        self._choose_arrangement()  # the header's height may have changed

    def _draw_dldy(self, snap: Snapshot, B: int, O: int) -> None:
        D = snap.dLdY
        if D is None:
            self.dldy_image.clear()
            self.set_title(self.dldy_plot, "dL/dY (not available)", size="9pt")
            return
        D = np.asarray(D)
        top, clipped = _top_level(np.abs(D), self._d_top)
        self._d_top = top
        self.dldy_image.setImage(np.ascontiguousarray(D), autoLevels=False, levels=(-top, top))
        self.dldy_image.setRect(QRectF(-0.5, -0.5, B, O))
        if self.dldy_bar.levels() != (-top, top):
            self.dldy_bar.setLevels((-top, top))
        cfg = snap.config
        if cfg.loss == "mse" and cfg.reduction == "mean":
            formula = "= 2(Y−T)/(O·B)"
        else:
            formula = "= w<sub>i</sub> ∂L<sub>i</sub>/∂Y<sub>i</sub>"
        if clipped:
            self._clip_notes.append(f"|dL/dY| > {fmt(top, 2)}")
        self._dldy_caption = f"dL/dY {formula}: backprop starts here"
        if self._arrangement != "compact":
            self.set_title(self.dldy_plot, self._dldy_caption, size="8pt")

    def _info_text(self, snap: Snapshot, w: np.ndarray, B: int, O: int) -> str:
        cfg = snap.config
        if snap.output_weights is not None and cfg.reduction == "weighted":
            v = ", ".join(f"{x:.3g}" for x in snap.output_weights)
            row = f"L<sub>i</sub> = Σ<sub>o</sub> u<sub>o</sub> M<sub>oi</sub>, u = ({v})"
        elif cfg.reduction == "max":
            row = "L<sub>i</sub> = max<sub>o</sub> M<sub>oi</sub>"
        else:
            row = per_sample_formula(get_loss(cfg.loss))
        ws = np.unique(np.round(w, 12))
        wtxt = (
            f"w<sub>i</sub> = {fmt(ws[0])}"
            if len(ws) == 1
            else f"w<sub>i</sub> {fmt(w.min())}…{fmt(w.max())}"
        )
        if self._arrangement == "compact":  # four short lines: the smallest room
            short = {"mean": "mean<sub>i</sub> L<sub>i</sub>", "sum": "Σ<sub>i</sub> L<sub>i</sub>"}
            scalar = short.get(cfg.reduction, FORMULA[cfg.reduction].split("= ", 1)[-1])
            clip = f"<br>colours clipped: {', '.join(self._clip_notes)}" * bool(self._clip_notes)
            return (
                f"<b>{cfg.loss}</b>, <b>{cfg.reduction}</b>: {row}, scalar = {scalar}<br>"
                f"<b>backpropagated: one scalar {fmt(snap.loss, 6)}</b> ({O}×{B} M)<br>"
                f"{self._dldy_caption}{clip}"
            )
        compact = ""
        note = ""
        if cfg.reduction == "sum" and not get_loss(cfg.loss).sum_outputs:
            note = f" (Keras's sum; torch's is {O}×)"
        clip = f"<br>colours clipped: {', '.join(self._clip_notes)}" if self._clip_notes else ""
        return (
            f"<b>{cfg.loss}</b>, <b>{cfg.reduction}</b>: {row}, {FORMULA[cfg.reduction]}{note}, "
            f"{wtxt}<br><b>backpropagated: one scalar = {fmt(snap.loss, 6)}</b> "
            f"(this step's {O}×{B} M){clip}{compact}"
        )

    def table(self):
        snap = self.snapshot
        if snap is None:
            return ["sample"], []
        B, O = snap.M.shape
        D = snap.dLdY
        header = [
            "sample",
            *[f"M_output{o + 1}" for o in range(O)],
            "L_i",
            "w_i",
            *([f"dLdY_output{o + 1}" for o in range(O)] if D is not None else []),
        ]
        rows = [
            [
                i,
                *[f"{snap.M[i, o]:.10g}" for o in range(O)],
                f"{snap.per_sample_loss[i]:.10g}",
                f"{snap.weights[i]:.10g}",
                *([f"{D[i, o]:.10g}" for o in range(O)] if D is not None else []),
            ]
            for i in range(B)
        ]
        return header, rows


def _max_text(A: np.ndarray) -> str:
    finite = A[np.isfinite(A)]
    return fmt(float(finite.max()), 2) if finite.size else "not finite"


def _ceil2(x: float) -> float:
    """``x`` > 0 rounded up to two significant digits (0.01234 -> 0.013)."""
    e = np.floor(np.log10(x)) - 1
    return float(np.ceil(x / 10**e - 1e-9) * 10**e)


def _top_level(A: np.ndarray, shown: float | None = None) -> tuple[float, bool]:
    """The top of a colour scale for values A >= 0: the 98th percentile of the finite values
    (one outlier must not turn the rest black), rounded up to two significant digits, and
    whether anything lies above it. ``shown``, the top on screen, is kept while the
    percentile lies between 60 % and 100 % of it (a scale that moved every frame re-rendered
    its colour bar's axis every frame)."""
    finite = A[np.isfinite(A)]
    # a small matrix (B = 1: three entries) is shown whole; percentiles need numbers
    q = 98 if finite.size >= 50 else 100
    hi = float(np.percentile(finite, q)) if finite.size else 1.0
    hi = hi if hi > 0 else (float(finite.max()) if finite.size and finite.max() > 0 else 1.0)
    if shown is not None and 0.6 * shown <= hi <= shown:
        hi = shown
    else:
        hi = _ceil2(hi)
    clipped = bool(finite.size and finite.max() > hi * (1 + 1e-9)) or finite.size < A.size
    return hi, clipped
