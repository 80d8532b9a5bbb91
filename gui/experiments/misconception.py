"""The dL/dY misconception tab: averaging the output deltas before the backward pass is not
averaging the gradients (core/experiments/misconception.py states the procedure exactly)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.experiments.misconception import run_misconception

from ..plots import style
from ..plots.base import fmt
from ..plots.surface_image import add_surface_image, show_surface
from .base import ExperimentView

AVERAGED = style.PURPLE
ZERO_FLOOR = 1e-19  #: where an exact 0 is drawn on the log axis
N_CONTOURS = 8
EPS = float(np.finfo(float).eps)


class MisconceptionView(ExperimentView):
    object_name = "misconceptionPlot"
    file_stem = "misconception"
    title = "dL/dY misconception"
    help_text = (
        "A copy of the network is trained with the true gradient. At every few steps the "
        "learner's procedure is applied to the same minibatch: the rows of dL/dY (one per "
        "sample, weighted as the reduction weighs the samples) are averaged into one output "
        "delta, which is backpropagated through the batch-mean activations and the batch-mean "
        "activation derivatives (dW = outer(delta, mean activation)). Its cosine and relative "
        "error against the true gradient are plotted, next to the difference between the true "
        "gradient and the mean of the per-parameter per-sample gradients, which is round-off. "
        "Left: the minibatch loss on the plane of both directions, with both as arrows."
    )

    def build(self, canvas) -> None:
        self.run_button.setText("Run the dL/dY comparison")  # the base lower-cases the title
        self.info = canvas.addLabel(
            "Press Run to compare.", row=0, col=0, colspan=3, justify="left", size="10pt"
        )
        s = self.surface_plot = canvas.addPlot(
            row=1, col=0, rowspan=2, title="Minibatch loss on the plane of both directions"
        )
        s.setAspectLocked(True)
        s.setLabel("bottom", "along the true gradient")
        s.setLabel("left", "averaged-delta direction, ⊥ part")
        self.image, self.colorbar = add_surface_image(canvas.ci, s, row=1, col=1, rowspan=2)
        self.contours = []
        for _ in range(N_CONTOURS):
            iso = pg.IsocurveItem(level=0.0, pen=style.CONTOUR_PEN)
            iso.setParentItem(self.image)
            self.contours.append(iso)
        self.true_arrow = s.plot([], [], pen=style.MEAN_PEN)
        # thinner than the red arrow and above it: where the two coincide (B = 1) both show
        self.avg_arrow = s.plot([], [], pen=pg.mkPen(AVERAGED, width=1.5))
        self.heads = []
        for z, curve, colour, size in (
            (11, self.true_arrow, style.RED, 16),
            (12, self.avg_arrow, AVERAGED, 11),
        ):
            curve.setZValue(z)
            head = pg.ArrowItem(
                angle=0, headLen=size, tipAngle=30, pen=style.NO_PEN, brush=pg.mkBrush(colour)
            )
            head.setZValue(z + 2)
            s.addItem(head)
            self.heads.append(head)
        self.point = pg.ScatterPlotItem(
            [0], [0], size=10, brush=pg.mkBrush(style.BLACK), pen=pg.mkPen("w", width=1.5)
        )
        self.point.setZValue(14)
        s.addItem(self.point)
        legend = s.addLegend(
            offset=(5, 5), labelTextSize="9pt", brush=pg.mkBrush(255, 255, 255, 200)
        )
        legend.addItem(self.true_arrow, "−gradient of the scalar loss")
        legend.addItem(self.avg_arrow, "−averaged dL/dY, backpropagated")
        self.legend_labels = [label for _, label in legend.items]

        c = self.cos_plot = canvas.addPlot(row=1, col=2, title="Averaged delta vs the gradient")
        c.setLabel("bottom", "training step")
        c.setLabel("left", "cosine · relative error")
        c.showGrid(x=True, y=True, alpha=0.2)
        # the cosine's full range [-1, 1]: the legend sits in its (usually empty) lower part
        c.addLegend(offset=(-5, -5), labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 200))
        self.cos_curve = c.plot([], [], pen=pg.mkPen(style.BLUE, width=1.5), name="cosine")
        self.rel_curve = c.plot(
            [], [], pen=pg.mkPen(style.ORANGE, width=1.5), name="relative error"
        )
        dash = pg.QtCore.Qt.PenStyle.DashLine
        self.cos_x_curve = c.plot(
            [],
            [],
            pen=pg.mkPen((*style.BLUE, 170), width=1, style=dash),
            name="cosine, via mean input",
        )
        self.rel_x_curve = c.plot(
            [],
            [],
            pen=pg.mkPen((*style.ORANGE, 170), width=1, style=dash),
            name="rel. error, via mean input",
        )
        c.addItem(pg.InfiniteLine(1.0, angle=0, pen=style.GRID_PEN))

        d = self.diff_plot = canvas.addPlot(row=2, col=2, title="max |g − g_true|, log scale")
        d.setLogMode(y=True)
        d.setLabel("bottom", "training step")
        d.setLabel("left", "max |difference|")
        d.getAxis("left").enableAutoSIPrefix(False)
        d.getAxis("left").setTicks([[(float(e), f"1e{e}") for e in range(-21, 7, 3)], []])
        d.showGrid(x=True, y=True, alpha=0.2)
        legend = d.addLegend(labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 200))
        # in the middle of the log axis: the error sits near the top, round-off near the foot
        legend.anchor((1, 0.5), (1, 0.5), offset=(-5, 0))
        self.avg_diff_curve = d.plot(
            [], [], pen=pg.mkPen(AVERAGED, width=1.5), name="averaged dL/dY rows, backpropagated"
        )
        self.ps_curve = d.plot(
            [],
            [],
            pen=pg.mkPen(style.GREEN, width=1.5),
            symbol="o",
            symbolSize=4,
            symbolPen=style.NO_PEN,
            symbolBrush=pg.mkBrush(style.GREEN),
            name="mean of per-sample gradients, w · G",
        )
        self.eps_curve = d.plot(
            [], [], pen=pg.mkPen(style.GREY, width=1, style=dash), name="machine ε × max |g_true|"
        )
        self.roundoff_text = pg.TextItem("round-off", color=style.GREEN, anchor=(0, 1))
        self.error_text = pg.TextItem("the misconception's error", color=AVERAGED, anchor=(0, 0))
        for item in (self.roundoff_text, self.error_text):
            item.setVisible(False)
            d.addItem(item)
        d.setXLink(c)
        lay = canvas.ci.layout
        lay.setColumnStretchFactor(0, 5)
        lay.setColumnStretchFactor(2, 4)
        lay.setRowStretchFactor(1, 1)
        lay.setRowStretchFactor(2, 1)

    def compute(self, context, progress, cancel, quick: bool = False):
        return run_misconception(
            context.config, context.params, quick=quick, progress=progress, cancel=cancel
        )

    def draw(self, result) -> None:
        self._draw_surface(result)
        steps = np.asarray(result.steps)
        self.cos_curve.setData(steps, result.cosine)
        self.rel_curve.setData(steps, result.relative_error)
        self.cos_x_curve.setData(steps, result.cosine_mean_input)
        self.rel_x_curve.setData(steps, result.relative_error_mean_input)
        values = np.concatenate([result.cosine, result.relative_error])
        values = values[np.isfinite(values)]
        lo = -1.05
        hi = max(1.1, min(5.0, float(values.max()) * 1.05 if values.size else 1.0))
        self.cos_plot.setYRange(lo, hi, padding=0)
        self.cos_plot.setXRange(0, max(float(steps[-1]), 1.0), padding=0.02)

        ps = np.asarray(result.per_sample_diff)
        n_zero = int(np.sum(ps == 0))
        self.ps_curve.setData(steps, np.maximum(ps, ZERO_FLOOR))
        self.avg_diff_curve.setData(steps, np.maximum(result.max_abs_diff_averaged, ZERO_FLOOR))
        self.eps_curve.setData(steps, np.maximum(EPS * np.asarray(result.max_abs_true), ZERO_FLOOR))
        top = max(float(np.max(result.max_abs_diff_averaged)), float(np.max(ps)), 1e-15)
        self.diff_plot.setYRange(np.log10(ZERO_FLOOR) - 0.5, np.log10(top) + 1.0, padding=0)
        x0 = float(steps[0])
        low = float(np.max(np.maximum(ps, ZERO_FLOOR)))
        high = float(np.min(np.maximum(result.max_abs_diff_averaged, ZERO_FLOOR)))
        self.roundoff_text.setPos(x0, np.log10(low) + 0.3)
        self.error_text.setPos(x0, np.log10(high) - 0.3)
        self.roundoff_text.setVisible(True)
        zeros = f" ({n_zero}/{len(ps)} exactly 0, at {ZERO_FLOOR:.0e})" if n_zero else ""
        self.roundoff_text.setText(f"round-off{zeros}")
        # with B = 1 the learner's vector is the gradient: no separate error level to name
        differs = np.max(result.max_abs_diff_averaged) > 1e-12 * max(np.max(result.max_abs_true), 1)
        self.error_text.setVisible(bool(differs))

        k = -1
        diverged = (
            f" · <b>diverged</b> at step {result.diverged_at}: stopped there"
            if result.diverged_at is not None
            else ""
        )
        # short lines: a LabelItem is as wide as its longest line (readable at 1280 × 800)
        self.info.setText(
            "<b>Averaging the rows of dL/dY, then backpropagating through the batch-mean "
            "activations</b>:<br>"
            f"cosine <b>{result.cosine[k]:.3f}</b>, relative error "
            f"<b>{result.relative_error[k]:.3f}</b> at step {int(steps[k])} "
            f"(B = {result.batch_size}; median cosine over the run "
            f"{np.median(result.cosine):.3f}){diverged};<br>"
            f"through one forward pass of the mean input instead: cosine "
            f"{result.cosine_mean_input[k]:.3f}, relative error "
            f"{result.relative_error_mean_input[k]:.3f}.<br>"
            f"<b>Averaging the per-parameter per-sample gradients</b> (w · G): max |diff| "
            f"<b>{fmt(float(ps.max()))}</b>, round-off."
        )
        after = "(one step of lr: loss {})"
        self.legend_labels[0].setText(
            f"−gradient of the scalar loss {after.format(fmt(result.loss_after_true, 4))}"
        )
        self.legend_labels[1].setText(
            f"−averaged dL/dY, backpropagated {after.format(fmt(result.loss_after_averaged, 4))}"
        )

    def _draw_surface(self, result) -> None:
        out = show_surface(self.image, self.colorbar, result.Z, result.alphas, result.betas)
        a, b = np.asarray(result.alphas), np.asarray(result.betas)
        if out is not None:
            L, lo, hi = out
            for iso, level in zip(self.contours, np.linspace(lo, hi, N_CONTOURS + 2)[1:-1]):
                iso.setData(L, level=level)
        span = float(a[-1] - a[0]) / 2
        arrows = (np.asarray(result.arrow_true), np.asarray(result.arrow_averaged))
        # One scale for both, so their lengths compare; the longer reaches 80 % of the span.
        longest = max(max(float(np.hypot(*v)) for v in arrows), 1e-300)
        self._scale = 0.8 * span / longest
        for curve, head, v in zip((self.true_arrow, self.avg_arrow), self.heads, arrows):
            tip = v * self._scale
            curve.setData([0.0, tip[0]], [0.0, tip[1]])
            head.setPos(float(tip[0]), float(tip[1]))
            head.setStyle(angle=180 - float(np.degrees(np.arctan2(v[1], v[0]))))
            head.setVisible(bool(np.hypot(*v) > 0))
        self.surface_plot.setRange(xRange=(a[0], a[-1]), yRange=(b[0], b[-1]), padding=0.02)
        self.surface_plot.disableAutoRange()
        self.surface_plot.setLabel(
            "left",
            "averaged-delta direction, ⊥ part"
            if result.plane_d2.startswith("averaged")
            else "a random direction ⊥ (the two coincide)",
        )
        self.surface_plot.setTitle(
            f"Minibatch loss {fmt(result.loss_here, 4)} at step {result.surface_step}: "
            "plane of both arrows"
        )
