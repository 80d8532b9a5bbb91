"""Loss curves: the backpropagated scalar, train and validation loss against step; gradient
norm and noise scale below; at the bottom the sharpness lambda_max against the optimiser's
stability limit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from core.curvature import stability_limit
from core.data import scale_caption
from core.snapshot import Snapshot

from . import style
from .axes import LogAxisItem
from .base import ViewWidget, fmt, set_data, sticky_range, thin_to_pixels

N_EVENT_LINES = 8
LAMBDA_RGB = style.RED  #: the sharpness lambda_max
LIMIT_RGB = style.BLACK  #: the optimiser's stability limit (dashed)

#: (run id, [(step, lambda_max, stability limit or None), ...]) of the engine's whole record
CurvatureSource = Callable[[], tuple[int, list[tuple[int, float, float | None]]]]


def _finite(x: np.ndarray, y: np.ndarray, positive: bool = False):
    keep = np.isfinite(y)
    if positive:
        keep &= y > 0
    return x[keep], y[keep]


def _gapped(x: np.ndarray, y: np.ndarray, positive: bool = False):
    """Points of a per-step series whose undefined values (inf, or <= 0 on a log axis) break
    the line instead of being bridged; draw with ``connect="finite"``. NaN means "not
    measured at this step" and is dropped."""
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep].astype(np.float64, copy=True)
    bad = ~np.isfinite(y)
    if positive:
        bad |= y <= 0
    y[bad] = np.nan
    return x, y


def _staircase(steps: np.ndarray, limit: np.ndarray, last: float):
    """The stability limit as steps (x (2n,), y (2n,)): each value holds from its
    measurement to the next (the learning rate changes between two of them), the last one up
    to step ``last``; NaN (Adam: none) leaves a gap."""
    if not len(steps):
        return np.zeros(0), np.zeros(0)
    ends = np.append(steps[1:], max(last, float(steps[-1])))
    x = np.column_stack([steps, ends]).ravel()
    y = np.repeat(limit, 2)
    return x, y


def robust_top(values: list[np.ndarray]) -> tuple[float, float]:
    """(top of the y-range, largest value): the top is the largest value unless that is a
    spike far above the rest (a blow-up), then the 95th percentile of the finite values with
    room above it (the largest is then named in words)."""
    v = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in values])
    v = v[np.isfinite(v)]
    if not v.size:
        return float("nan"), float("nan")
    peak = float(v.max())
    first = abs(float(v[0]))
    top = max(2.0 * float(np.percentile(v, 95)), 1.1 * first)
    # a blow-up: far above where the curve started (the usual early drop is not clipped)
    return (top if peak > 10.0 * max(first, top / 2) else peak), peak


def _coloured(text: str, rgb: tuple[int, int, int]) -> str:
    """``text`` as rich text in the colour of its curve (the title is the legend)."""
    r, g, b = rgb
    return f"<span style='color: #{r:02x}{g:02x}{b:02x}; font-weight: 600'>{text}</span>"


class LossCurvePlot(ViewWidget):
    object_name = "lossCurvePlot"
    #: place in the live grid by its number of columns: (row, col, rowspan, colspan)
    grid_place = {2: (2, 1, 1, 1), 3: (1, 2, 1, 1)}
    title = "Loss curves"
    help_text = (
        "Top: the scalar backpropagated at each step (grey, noisy: one minibatch), and the "
        "mean loss over the training and validation sets. Bottom: the gradient norm and the "
        "noise scale B_noise = tr Σ/|G|² of the training set, measured every few steps (the "
        "line joins the measurements). Lowest: the sharpness λmax (the largest Hessian "
        "eigenvalue on a fixed training batch, measured every few steps) against the "
        "optimiser's stability limit (dashed: 2/lr for SGD, 2(1 + μ)/lr with momentum); a "
        "step along the sharpest direction overshoots once λmax is above it. Adam has none "
        "drawn: its limit applies to the preconditioned Hessian. Dotted lines mark changes "
        "of settings."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._build_loss_panel()
        self._build_gradient_panel()
        self._build_sharpness_panel()
        self._curv_rows: list[tuple[int, float, float | None]] = []
        self._curv_run = None
        #: the engine's whole lambda_max record when the window has it (headless rendering
        #: trains the session in this process); otherwise the measurements the view saw
        self.curvature_source: CurvatureSource | None = None
        self._arrangement = ""
        self._arrange("stacked")
        self._log_y = False
        self._events: tuple = ()

    def _build_loss_panel(self) -> None:
        """The top panel: the batch scalar, train and validation loss, the events' lines and
        the off-scale note."""
        top = self.top = self.addPlot(row=0, col=0, axisItems={"left": LogAxisItem("left")})
        top.setLabel("left", "loss")
        top.showGrid(x=True, y=True, alpha=0.2)
        # No legend boxes: in a short panel (1280 x 800) they covered the curves. The titles
        # name the curves in their colours instead (and carry the current values).
        self.batch = top.plot(
            [], [], pen=pg.mkPen((*style.GREY, 120), width=1), name="batch scalar"
        )
        self.train = top.plot([], [], pen=pg.mkPen(style.BLUE, width=1.5), name="train (mean)")
        self.val = top.plot([], [], pen=pg.mkPen(style.ORANGE, width=1.5), name="validation (mean)")
        thin_to_pixels(self.batch, self.train, self.val)
        self.event_lines = []
        for _ in range(N_EVENT_LINES):
            ln = pg.InfiniteLine(
                0,
                angle=90,
                pen=pg.mkPen(style.GREY, style=Qt.PenStyle.DotLine),
                label="",
                labelOpts={
                    "position": 0.85,
                    "color": style.GREY,
                    "rotateAxis": (1, 0),
                    "anchors": [(0, 0), (0, 0)],
                },
            )
            ln.setVisible(False)
            top.addItem(ln)
            self.event_lines.append(ln)
        # says where the loss left the plot when its y-range leaves out a spike
        self.off_scale = pg.TextItem("", color=style.RED, anchor=(1, 0))
        self.off_scale.setZValue(20)
        top.addItem(self.off_scale, ignoreBounds=True)

    def _build_gradient_panel(self) -> None:
        """The middle panel: the gradient norm (left axis) and the noise scale (its own view
        and right axis)."""
        top = self.top
        bot = self.bottom = self.addPlot(
            row=1,
            col=0,
            axisItems={"left": LogAxisItem("left"), "right": LogAxisItem("right")},
        )
        self.set_title(
            bot,
            # one short line: three panels share a view ~250 px tall at 1024 x 640
            f"{_coloured('|∇ scalar|', style.GREEN)} and "
            f"{_coloured('B<sub>noise</sub>', style.PURPLE)}",
            size="10pt",
        )
        # two quantities, two axes: the gradient norm on the left, the noise scale (a batch
        # size) on the right, each on its own log scale
        bot.setLabel("left", _coloured("|∇ scalar|", style.GREEN))
        bot.setLogMode(y=True)
        bot.showGrid(x=True, y=True, alpha=0.2)
        bot.setXLink(top)
        self.gnorm = bot.plot([], [], pen=pg.mkPen(style.GREEN, width=1), name="|∇ scalar|")
        self.noise_view = pg.ViewBox(enableMouse=False)
        bot.showAxis("right")
        bot.scene().addItem(self.noise_view)
        rax = bot.getAxis("right")
        rax.linkToView(self.noise_view)
        rax.setLogMode(False, True)
        rax.setLabel(_coloured("B<sub>noise</sub>", style.PURPLE))
        # the same right margin above, so the linked step axes line up (pyqtgraph links
        # views by their position on screen)
        top.showAxis("right")
        top.getAxis("right").setStyle(showValues=False)
        for side_axis in (rax, top.getAxis("right")):
            side_axis.setWidth(48)
        self.noise_view.setXLink(bot)
        bot.getViewBox().sigResized.connect(self._sync_noise_view)
        self.noise = pg.PlotDataItem(
            [], [], pen=pg.mkPen(style.PURPLE, width=1), name="noise scale B_noise"
        )
        thin_to_pixels(self.gnorm, self.noise)
        self.noise_view.addItem(self.noise)

    def _build_sharpness_panel(self) -> None:
        """The lowest panel: lambda_max (solid, dots at the measurements) and the stability
        limit (dashed steps) on one log axis, the step axis linked to the others."""
        sh = self.sharp = self.addPlot(
            row=2, col=0, axisItems={"left": LogAxisItem("left"), "right": LogAxisItem("right")}
        )
        sh.setLabel("bottom", "step")
        sh.setLabel("left", "curvature")
        sh.setLogMode(y=True)
        sh.showGrid(x=True, y=True, alpha=0.2)
        self.top.getAxis("bottom").setStyle(showValues=False)  # read off the panels below
        sh.showAxis("right")
        sh.getAxis("right").setStyle(showValues=False)
        sh.getAxis("right").setWidth(48)  # the same right margin as the panels above
        self.lam_curve = sh.plot(
            [], [], pen=pg.mkPen(LAMBDA_RGB, width=1.5), symbol="o", symbolSize=3,
            symbolPen=None, symbolBrush=pg.mkBrush(LAMBDA_RGB), name="λmax",
        )  # fmt: skip
        self.limit_curve = sh.plot(
            [], [], pen=pg.mkPen(LIMIT_RGB, width=1.5, style=Qt.PenStyle.DashLine),
            name="stability limit",
        )  # fmt: skip
        # the title is the legend (names in the curves' colours, with the newest values):
        # a legend box would cover the curves in a panel this small

    def _arrange(self, kind: str) -> None:
        """ "stacked": the three panels one above the other, their step axes aligned (a room
        of normal height); "side": the loss on top, the gradient and the sharpness panels side
        by side below it (a short room: stacked, each got a strip ~30 px tall)."""
        if kind == self._arrangement:
            return
        self._arrangement = kind
        ci = self.ci
        for item in (self.top, self.bottom, self.sharp):
            ci.removeItem(item)
        side = kind == "side"
        ci.addItem(self.top, row=0, col=0, colspan=2 if side else 1)
        ci.addItem(self.bottom, row=1, col=0)
        ci.addItem(self.sharp, row=1 if side else 2, col=1 if side else 0)
        # pyqtgraph links step axes by their place on screen: only panels one above the
        # other can share one (side by side, each is given the same range in ``draw``)
        for plot in (self.bottom, self.sharp):
            plot.setXLink(None if side else self.top)
            if side:
                plot.setXRange(*self.top.viewRange()[0], padding=0)
        # the step values under the middle panel only when it is a lowest one
        self.bottom.getAxis("bottom").setStyle(showValues=side)
        self.bottom.setLabel("bottom", "step" if side else "")
        for k, f in enumerate((3, 2, 0) if side else (3, 2, 2)):
            ci.layout.setRowStretchFactor(k, f)
        for k, f in enumerate((1, 1) if side else (1, 0)):
            ci.layout.setColumnStretchFactor(k, f)

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        # pyqtgraph resizes during __init__, and again in close() after deleting the items
        if hasattr(self, "sharp") and not getattr(self, "closed", False):
            self._arrange("side" if self.height() < 300 else "stacked")

    def set_log_y(self, on: bool) -> None:
        self._log_y = bool(on)
        self.top.setLogMode(y=self._log_y)
        self.top.enableAutoRange(axis="y", enable=True)
        if self.snapshot is not None:
            self.draw(self.snapshot)

    def draw(self, snap: Snapshot) -> None:
        h = snap.history
        x = np.asarray(h.steps, dtype=np.float64)
        pos = self._log_y
        set_data(self.batch, *_gapped(x, np.asarray(h.loss), pos), connect="finite")
        set_data(self.train, *_finite(x, np.asarray(h.train_loss), pos))
        set_data(self.val, *_finite(x, np.asarray(h.val_loss), pos))
        set_data(self.gnorm, *_gapped(x, np.asarray(h.grad_norm), True), connect="finite")
        # not drawn across stretches where it is undefined (inf, or 0 at B = 1)
        nx, ny = _gapped(x, np.asarray(h.noise_scale), True)
        with np.errstate(invalid="ignore"):
            ny = np.log10(ny)  # its own log axis (the right one) reads log10 values
        set_data(self.noise, nx, ny, connect="finite")
        fin = ny[np.isfinite(ny)]
        if fin.size:
            lo, hi = float(fin.min()), float(fin.max())
            pad = max(0.1, 0.05 * (hi - lo))
            self.noise_view.setYRange(lo - pad, hi + pad, padding=0)
        if len(x):
            # the step axis grows in jumps, not every frame (ticks regenerate on each change)
            for plot in (self.top, self.bottom, self.sharp):
                if plot is self.top or self._arrangement == "side":
                    sticky_range(plot, "x", 0.0, float(x[-1]))
            note = ""
            if not pos:
                # the y-range follows the curves, not one spike (a blow-up before divergence)
                recent = [np.asarray(getattr(h, f))[-2000:] for f in ("loss", "train_loss")]
                top_y, peak = robust_top(recent)
                if np.isfinite(top_y):
                    sticky_range(self.top, "y", 0.0, top_y)
                    if peak > top_y * 1.0001:
                        k = int(np.nanargmax(np.where(np.isfinite(recent[0]), recent[0], -1)))
                        where = int(np.asarray(h.steps)[-2000:][k]) if len(recent[0]) else 0
                        note = f"▲ off scale: {fmt(peak)} at step {where}"
            self._set_off_scale(note)
        events = tuple(e for e in h.events if e[1])[-N_EVENT_LINES:]
        if events != self._events:  # the lines' labels are HTML: touch them only on change
            self._events = events
            for ln, ev in zip(self.event_lines, events + (None,) * N_EVENT_LINES):
                if ev is None:
                    ln.setVisible(False)
                else:
                    ln.setValue(ev[0] + 0.5)
                    ln.label.setFormat(ev[1].split(":")[0])
                    ln.setVisible(True)
        self.set_title(
            self.top,
            f"step {snap.step}: {_coloured(f'batch {fmt(snap.loss)}', style.GREY)} · "
            f"{_coloured(f'train {fmt(snap.train_loss)}', style.BLUE)} · "
            f"{_coloured(f'val. {fmt(snap.val_loss)}', style.ORANGE)}",
            size="10pt",
        )
        self._draw_sharpness(snap)
        caption = scale_caption(snap.config, snap.task)  # CSV data: which scale the loss is on
        if caption != getattr(self, "_caption", ""):
            self._caption = caption
            self.top.setLabel("left", f"loss ({caption})" if caption else "loss")

    def sharpness_text(self, snap: Snapshot) -> str:
        """lambda_max against the optimiser's stability limit, in words and in the curves'
        colours (the panel's title; a placeholder before the first measurement)."""
        sh, cfg = snap.sharpness, snap.config
        lam = _coloured(
            "λmax not measured yet" if sh is None else f"λmax {fmt(sh.lambda_max)}", LAMBDA_RGB
        )
        lim = stability_limit(cfg.optimizer, cfg.lr, cfg.momentum)
        if lim is None:
            return f"{lam} · Adam: none drawn, its limit is on the preconditioned Hessian"
        rule = {"sgd": "2/lr", "momentum": "2(1+μ)/lr"}.get(cfg.optimizer, "limit")
        # short: one line in the smallest room; the help says "stable below"
        return f"{lam} · {_coloured(f'- - {rule} = {fmt(lim)}', LIMIT_RGB)}"

    def curvature_rows(self) -> list[tuple[int, float, float | None]]:
        """(step, lambda_max, stability limit or None) of the run shown: the engine's whole
        record where the window has it, then the measurements seen since."""
        rows = self._curv_rows
        if self.curvature_source is not None:
            run, full = self.curvature_source()
            if run == self._curv_run and full:
                rows = list(full) + [r for r in rows if r[0] > full[-1][0]]
        return rows

    def _draw_sharpness(self, snap: Snapshot) -> None:
        sh = snap.sharpness
        if snap.run_id != self._curv_run:
            self._curv_run, self._curv_rows = snap.run_id, []
        if sh is not None:
            if self._curv_rows and sh.step < self._curv_rows[-1][0]:
                self._curv_rows = [r for r in self._curv_rows if r[0] < sh.step]
            if not self._curv_rows or self._curv_rows[-1][0] != sh.step:
                self._curv_rows.append((sh.step, sh.lambda_max, sh.stability_limit))
        rows = self.curvature_rows()
        steps = np.array([r[0] for r in rows], dtype=np.float64)
        lam = np.array([r[1] for r in rows], dtype=np.float64)
        lim = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64)
        set_data(self.lam_curve, *_finite(steps, lam, positive=True))
        set_data(self.limit_curve, *_staircase(steps, lim, float(snap.step)), connect="finite")
        self._fit_sharp_axis(np.concatenate([lam, lim]))
        self.set_title(self.sharp, self.sharpness_text(snap), size="10pt")

    def _fit_sharp_axis(self, values: np.ndarray) -> None:
        """A log axis when lambda_max and the limit span more than a factor of 4 (a small
        rate: the limit far above), else linear (on a log axis a narrow range showed a
        single tick label)."""
        v = values[np.isfinite(values) & (values > 0)]
        log = bool(v.size) and float(v.max()) > 4.0 * float(v.min())
        if log != getattr(self, "_sharp_log", True):
            self.sharp.setLogMode(y=log)
            self.sharp.enableAutoRange(axis="y")
        self._sharp_log = log

    def extra_tables(self) -> dict:
        """curvature.csv: every lambda_max measurement of the run (the engine's whole record
        where the window has it), with the stability limit then."""

        def f(v):
            return "" if v is None or not np.isfinite(v) else f"{v:.10g}"

        rows = [[s, f(lam), f(lim)] for s, lam, lim in self.curvature_rows()]
        return {"curvature": (["step", "lambda_max", "stability_limit"], rows)}

    def _sync_noise_view(self) -> None:
        vb = self.bottom.getViewBox()
        self.noise_view.setGeometry(vb.sceneBoundingRect())
        self.noise_view.linkedViewChanged(vb, self.noise_view.XAxis)

    def _set_off_scale(self, note: str) -> None:
        if note != getattr(self, "_off_note", None):
            self._off_note = note
            self.off_scale.setText(note)
        if note:
            (x0, x1), (_, y1) = self.top.getViewBox().viewRange()
            self.off_scale.setPos(x1, y1)

    def table(self):
        snap = self.snapshot
        header = [
            "step",
            "batch_loss",
            "train_loss",
            "val_loss",
            "grad_norm",
            "noise_scale",
            "batch_size",
        ]
        rows = []
        if snap is not None:
            h = snap.history

            def f(v):
                return "" if not np.isfinite(v) else f"{v:.10g}"

            for k in range(len(h)):
                rows.append(
                    [
                        int(h.steps[k]),
                        f(h.loss[k]),
                        f(h.train_loss[k]),
                        f(h.val_loss[k]),
                        f(h.grad_norm[k]),
                        f(h.noise_scale[k]),
                        int(h.batch_size[k]),
                    ]
                )
        return header, rows
