"""Loss curves: the backpropagated scalar, train and validation loss against step; gradient
norm and noise scale below."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from core.snapshot import Snapshot

from . import style
from .axes import LogAxisItem
from .base import ViewWidget, fmt, sticky_range

N_EVENT_LINES = 8


def _finite(x: np.ndarray, y: np.ndarray, positive: bool = False):
    keep = np.isfinite(y)
    if positive:
        keep &= y > 0
    return x[keep], y[keep]


def _coloured(text: str, rgb: tuple[int, int, int]) -> str:
    """``text`` as rich text in the colour of its curve (the title is the legend)."""
    r, g, b = rgb
    return f"<span style='color: #{r:02x}{g:02x}{b:02x}; font-weight: 600'>{text}</span>"


class LossCurvePlot(ViewWidget):
    object_name = "lossCurvePlot"
    title = "Loss curves"
    help_text = (
        "Top: the scalar backpropagated at each step (grey, noisy: one minibatch), and the "
        "mean loss over the training and validation sets. Bottom: the gradient norm and the "
        "gradient noise scale. Dotted lines mark changes of settings."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        top = self.top = self.addPlot(
            row=0, col=0, title="Loss", axisItems={"left": LogAxisItem("left")}
        )
        top.setLabel("left", "loss")
        top.showGrid(x=True, y=True, alpha=0.2)
        top.setDownsampling(auto=True, mode="peak")
        top.setClipToView(True)
        # No legend boxes: in a short panel (1280 x 800) they covered the curves. The titles
        # name the curves in their colours instead (and carry the current values).
        self.batch = top.plot(
            [], [], pen=pg.mkPen((*style.GREY, 120), width=1), name="batch scalar"
        )
        self.train = top.plot([], [], pen=pg.mkPen(style.BLUE, width=1.5), name="train (mean)")
        self.val = top.plot([], [], pen=pg.mkPen(style.ORANGE, width=1.5), name="validation (mean)")
        bot = self.bottom = self.addPlot(row=1, col=0, axisItems={"left": LogAxisItem("left")})
        bot.setTitle(
            f"gradient: {_coloured('|∇ scalar|', style.GREEN)} and "
            f"{_coloured('noise scale B<sub>simple</sub>', style.PURPLE)}",
            size="10pt",
        )
        bot.setLabel("bottom", "step")
        bot.setLabel("left", "value (log)")
        bot.setLogMode(y=True)
        bot.showGrid(x=True, y=True, alpha=0.2)
        bot.setXLink(top)
        bot.setDownsampling(auto=True, mode="peak")
        bot.setClipToView(True)
        self.gnorm = bot.plot([], [], pen=pg.mkPen(style.GREEN, width=1), name="|∇ scalar|")
        self.noise = bot.plot(
            [], [], pen=pg.mkPen(style.PURPLE, width=1), name="noise scale B_simple"
        )
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
        self.ci.layout.setRowStretchFactor(0, 3)
        self.ci.layout.setRowStretchFactor(1, 2)
        self._log_y = False
        self._events: tuple = ()

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
        self.batch.setData(*_finite(x, np.asarray(h.loss), pos))
        self.train.setData(*_finite(x, np.asarray(h.train_loss), pos))
        self.val.setData(*_finite(x, np.asarray(h.val_loss), pos))
        self.gnorm.setData(*_finite(x, np.asarray(h.grad_norm), True))
        self.noise.setData(*_finite(x, np.asarray(h.noise_scale), True))
        if len(x):
            # the step axis grows in jumps, not every frame (ticks regenerate on each change)
            sticky_range(self.top, "x", 0.0, float(x[-1]))
            if not pos:
                y = np.asarray(h.loss)[-2000:]
                y = y[np.isfinite(y)]
                if y.size:
                    sticky_range(self.top, "y", 0.0, float(y.max()))
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
            f"step {snap.step}: {_coloured(f'batch scalar {fmt(snap.loss)}', style.GREY)} · "
            f"{_coloured(f'train {fmt(snap.train_loss)}', style.BLUE)} · "
            f"{_coloured(f'validation {fmt(snap.val_loss)}', style.ORANGE)}",
            size="10pt",
        )

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
