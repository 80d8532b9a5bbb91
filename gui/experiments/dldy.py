"""The dL/dY misconception tab: averaging output deltas before the backward pass."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.experiments.dldy import run_misconception

from ..plots import style
from ..plots.base import fmt
from ..plots.surface_image import add_surface_image, show_surface
from .base import ExperimentView, WrappedLabel, phase, show_head


def _hex(rgb) -> str:
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"


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
    animation_tip = (
        "the true gradient and the averaged-dL/dY vector grow from the weights on the "
        "surface, then the cosine, relative error and round-off difference are traced step "
        "by step through training"
    )

    def build(self, canvas) -> None:
        self.info = WrappedLabel("Press Run to compare.")
        s = self.surface_plot = pg.PlotItem(title="Loss around the weights")
        s.setLabel("bottom", "along the true gradient")
        s.setLabel("left", "averaged-delta direction (orthogonal part)")
        self.image, self.colorbar = add_surface_image(canvas.ci, s, row=1, col=1)
        canvas.ci.removeItem(self.colorbar)
        legend = s.addLegend(offset=(5, 5), labelTextSize="8pt")
        legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        self.true_arrow = s.plot([], [], pen=style.MEAN_PEN, name="−true gradient")
        self.avg_arrow = s.plot(
            [], [], pen=pg.mkPen(style.SKY, width=2.5), name="−g̃: averaged dL/dY, backpropagated"
        )
        c = self.cos_plot = pg.PlotItem()
        # the title names the two curves in their colours (a legend box would cover them)
        c.setTitle(
            f"averaged delta g̃ vs true gradient g:<br><span style='color:{_hex(style.BLUE)}'>"
            f"cosine</span>, <span style='color:{_hex(style.ORANGE)}'>relative error "
            f"|g̃ − g| / |g|</span>",
            size="9.5pt",
        )
        c.setLabel("bottom", "step")
        c.setLabel("left", "cosine, relative error")
        c.showGrid(x=True, y=True, alpha=0.2)
        self.cos_curve = c.plot([], [], pen=pg.mkPen(style.BLUE, width=1.5))
        self.rel_curve = c.plot([], [], pen=pg.mkPen(style.ORANGE, width=1.5))
        d = self.diff_plot = pg.PlotItem()
        d.setTitle("mean of per-sample gradients<br>− true gradient", size="9.5pt")
        d.setLabel("bottom", "step")
        d.setLabel("left", "max |difference|")
        d.getAxis("left").enableAutoSIPrefix(False)  # the scale is in the label, set per run
        self.diff_curve = d.plot(
            [],
            [],
            pen=pg.mkPen(style.GREEN, width=1.5),
            symbol="o",
            symbolSize=4,
            symbolBrush=pg.mkBrush(style.GREEN),
        )
        d.setXLink(c)

    def reflow(self, width: int, height: int) -> None:
        info, s, bar, c, d = (
            self.info,
            self.surface_plot,
            self.colorbar,
            self.cos_plot,
            self.diff_plot,
        )
        if width >= 1.3 * height:
            cells = [(info, 0, 0, 1, 3), (s, 1, 0, 2, 1), (bar, 1, 1, 2, 1)]
            cells += [(c, 1, 2, 1, 1), (d, 2, 2, 1, 1)]
            self.arrange("wide", cells, col_stretch=(5, 0, 4), row_stretch=(0, 1, 1))
        else:
            cells = [(info, 0, 0, 1, 3), (s, 1, 0, 1, 2), (bar, 1, 2, 1, 1)]
            cells += [(c, 2, 0, 1, 1), (d, 2, 1, 1, 2)]
            self.arrange("narrow", cells, col_stretch=(1, 1, 0), row_stretch=(0, 3, 2))

    def compute(self, context, progress, cancel, quick: bool = False, partial=None):
        return run_misconception(
            context.config, context.params, quick=quick, progress=progress, cancel=cancel
        )

    def _draw_arrows(self, result, length: float = 1.0) -> None:
        """The two arrows from the weights, at ``length`` (0 … 1) of their length."""
        a = result.alphas
        span = (a[-1] - a[0]) / 2
        longest = max(np.hypot(*result.arrow_true), np.hypot(*result.arrow_averaged), 1e-300)
        for curve, v in (
            (self.true_arrow, result.arrow_true),
            (self.avg_arrow, result.arrow_averaged),
        ):
            tip = v / longest * 0.8 * span * length
            curve.setData([0, tip[0]], [0, tip[1]])

    @staticmethod
    def _diff_unit(result) -> float:
        """The difference's unit: a power of ten at its largest value (round-off, ~1e-17: a
        view range that small is below what the plot's transforms resolve)."""
        top = float(np.max(result.per_sample_diff)) if len(result.per_sample_diff) else 0.0
        return 10.0 ** np.floor(np.log10(top)) if top > 0 else 1e-17

    def _draw_curves(self, result, fraction: float = 1.0) -> None:
        """The three curves over the first ``fraction`` of the steps."""
        diff = np.asarray(result.per_sample_diff) / self._diff_unit(result)
        for curve, y in (
            (self.cos_curve, result.cosine),
            (self.rel_curve, result.relative_error),
            (self.diff_curve, diff),
        ):
            show_head(curve, result.steps, y, fraction)

    def draw_growing(self, result, fraction: float) -> None:
        """The arrows grow from the weights (the first quarter), then the curves along the
        steps."""
        self._draw_arrows(result, phase(fraction, 0.0, 0.25))
        self._draw_curves(result, phase(fraction, 0.25, 1.0))

    def draw(self, result) -> None:
        show_surface(self.image, self.colorbar, result.Z, result.alphas, result.betas, smooth=4)
        a, b = result.alphas, result.betas
        self._draw_arrows(result)
        # the panel is the grid: the surface fills it
        self.surface_plot.setRange(xRange=(a[0], a[-1]), yRange=(b[0], b[-1]), padding=0)
        self._draw_curves(result)
        diff = np.asarray(result.per_sample_diff)
        top = float(np.max(diff)) if len(diff) else 0.0
        unit = self._diff_unit(result)
        self.diff_plot.setLabel("left", f"max |difference| (× {unit:.0e})")
        self.diff_plot.setYRange(0, top / unit * 1.15 if top > 0 else 1.0, padding=0)
        rel_max = float(np.max(result.relative_error))
        over = (
            f"<br>A relative error above 1 (here up to {rel_max:.2f}) means the averaged-delta "
            f"vector g̃ is further from the gradient g than g is long: |g̃ − g| > |g|, because "
            f"g̃ is longer than g or points partly away from it."
            if rel_max > 1
            else ""
        )
        self.info.set_text(
            f"Averaging the rows of dL/dY, then backpropagating through the batch-mean "
            f"activations (B = {result.batch_size}, minibatches drawn by this experiment's own "
            f"training copy): <b>cosine {result.cosine[-1]:.3f}, relative error "
            f"{result.relative_error[-1]:.3f}</b> at step {int(result.steps[-1])} (mean over "
            f"the run: cosine {np.mean(result.cosine):.3f})<br>Averaging the per-parameter "
            f"per-sample gradients: max |difference| = "
            f"<b>{fmt(float(np.max(result.per_sample_diff)))}</b> (round-off): the gradient "
            f"of the mean is the mean of the gradients.{over}"
        )
