"""The dL/dY misconception tab: averaging output deltas before the backward pass."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.experiments.dldy import run_misconception

from ..plots import style
from ..plots.base import fmt
from ..plots.surface_image import add_surface_image, show_surface
from .base import ExperimentView


class MisconceptionView(ExperimentView):
    object_name = "misconceptionPlot"
    file_stem = "misconception"
    title = "dL/dY misconception"
    help_text = (
        "Averaging the rows of dL/dY into one vector and backpropagating it through the "
        "batch-mean activations (and the batch-mean derivative) is not the gradient: the true "
        "backward pass multiplies each sample's delta by its own activations. Averaging the "
        "per-parameter per-sample gradients instead gives the gradient to round-off."
    )

    def build(self, canvas) -> None:
        self.info = canvas.addLabel(
            "Press Run to compare.", row=0, col=0, colspan=3, justify="left", size="10pt"
        )
        s = self.surface_plot = canvas.addPlot(
            row=1, col=0, rowspan=2, title="Loss around the weights"
        )
        s.setAspectLocked(True)
        s.setLabel("bottom", "along the true gradient")
        s.setLabel("left", "the averaged-delta direction (orthogonal part)")
        self.image, self.colorbar = add_surface_image(canvas.ci, s, row=1, col=1, rowspan=2)
        s.addLegend(offset=(5, 5), labelTextSize="9pt")
        self.true_arrow = s.plot([], [], pen=style.MEAN_PEN, name="−true gradient")
        self.avg_arrow = s.plot(
            [], [], pen=pg.mkPen(style.SKY, width=2.5), name="−averaged dL/dY, backpropagated"
        )
        c = self.cos_plot = canvas.addPlot(row=1, col=2, title="averaged-delta vs true gradient")
        c.setLabel("bottom", "step")
        c.setLabel("left", "value")
        c.addLegend(offset=(-5, -5), labelTextSize="9pt")
        c.showGrid(x=True, y=True, alpha=0.2)
        self.cos_curve = c.plot([], [], pen=pg.mkPen(style.BLUE, width=1.5), name="cosine")
        self.rel_curve = c.plot(
            [], [], pen=pg.mkPen(style.ORANGE, width=1.5), name="relative error"
        )
        d = self.diff_plot = canvas.addPlot(
            row=2, col=2, title="mean of per-sample gradients − true gradient"
        )
        d.setLabel("bottom", "step")
        d.setLabel("left", "max |difference|")
        self.diff_curve = d.plot(
            [],
            [],
            pen=pg.mkPen(style.GREEN, width=1.5),
            symbol="o",
            symbolSize=4,
            symbolBrush=pg.mkBrush(style.GREEN),
        )
        d.setXLink(c)
        canvas.ci.layout.setColumnStretchFactor(0, 3)
        canvas.ci.layout.setColumnStretchFactor(2, 3)

    def compute(self, context, progress, cancel, quick: bool = False):
        return run_misconception(
            context.config, context.params, quick=quick, progress=progress, cancel=cancel
        )

    def draw(self, result) -> None:
        show_surface(self.image, self.colorbar, result.Z, result.alphas, result.betas)
        a = result.alphas
        span = (a[-1] - a[0]) / 2
        longest = max(np.hypot(*result.arrow_true), np.hypot(*result.arrow_averaged), 1e-300)
        for curve, v in (
            (self.true_arrow, result.arrow_true),
            (self.avg_arrow, result.arrow_averaged),
        ):
            tip = v / longest * 0.8 * span
            curve.setData([0, tip[0]], [0, tip[1]])
        self.cos_curve.setData(result.steps, result.cosine)
        self.rel_curve.setData(result.steps, result.relative_error)
        diff = np.asarray(result.per_sample_diff)
        self.diff_curve.setData(result.steps, diff)
        # on the scale of round-off (1e-15), so that "zero" reads as zero
        self.diff_plot.setYRange(0, max(1e-15, float(diff.max()) * 1.2), padding=0)
        self.info.setText(
            f"Averaging the rows of dL/dY, then backpropagating through the batch-mean "
            f"activations (B = {result.batch_size}): <b>cosine {result.cosine[-1]:.3f}, "
            f"relative error {result.relative_error[-1]:.3f}</b> at step "
            f"{int(result.steps[-1])} (mean over the run: cosine "
            f"{np.mean(result.cosine):.3f})<br>Averaging the per-parameter per-sample gradients:"
            f" max |difference| = <b>{fmt(float(np.max(result.per_sample_diff)))}</b> "
            f"(round-off): the gradient of the mean is the mean of the gradients."
        )
