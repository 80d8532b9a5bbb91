"""Reductions lab tab: one M, five scalars, five surfaces; sum vs mean; the Pareto cloud."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.experiments.reductions_lab import CASES, run_reductions_lab

from ..plots import style
from ..plots.base import fmt
from ..plots.surface_image import show_surface
from .base import ExperimentView

BEST_SYMBOLS = {
    "mean": ("o", style.RED),
    "weighted outputs": ("t", style.ORANGE),
    "max": ("s", style.PURPLE),
}


class ReductionsView(ExperimentView):
    object_name = "reductionsPlot"
    file_stem = "reductions"
    title = "Reductions lab"
    help_text = (
        "The same loss matrix M turned into a scalar five ways. Each scalar has its own "
        "surface (same plane, same weights) and its own gradient. Right: nearby weights by "
        "their per-output losses; most pairs cannot be ordered without choosing a reduction, "
        "and each reduction ranks a different point best."
    )

    def build(self, canvas) -> None:
        self.info = canvas.addLabel(
            "Press Run to compare the reductions.",
            row=0,
            col=0,
            colspan=4,
            justify="left",
            size="10pt",
        )
        self.images, self.arrows, self.plots = [], [], []
        for k, name in enumerate(CASES):
            p = canvas.addPlot(row=1 + k // 3, col=k % 3, title=name)
            p.setAspectLocked(True)
            p.setLabel("bottom", "α")
            p.setLabel("left", "β")
            img = pg.ImageItem(axisOrder="col-major")  # small multiples: no colour bars
            img.setColorMap(style.SURFACE_CMAP)
            p.addItem(img)
            arrow = p.plot([], [], pen=style.MEAN_PEN)
            point = pg.ScatterPlotItem([0], [0], size=9, brush=style.POINT_BRUSH, pen=pg.mkPen("w"))
            p.addItem(point)
            self.images.append(img)
            self.arrows.append(arrow)
            self.plots.append(p)
        q = self.pareto_plot = canvas.addPlot(row=2, col=2, title="Why a scalar: nearby weights")
        q.setLabel("bottom", "loss of output 1")
        q.setLabel("left", "loss of output 2")
        for side in ("bottom", "left"):
            q.getAxis(side).enableAutoSIPrefix(False)  # losses as they are, not "x0.001"
        q.addLegend(offset=(-5, 5), labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 200))
        self.cloud = pg.ScatterPlotItem(
            size=5, brush=pg.mkBrush((*style.GREY, 120)), pen=style.NO_PEN, name="nearby weights"
        )
        self.front = pg.ScatterPlotItem(
            size=7, brush=pg.mkBrush(style.BLUE), pen=style.NO_PEN, name="not dominated (Pareto)"
        )
        q.addItem(self.cloud)
        q.addItem(self.front)
        self.best_items = {}
        for name, (sym, colour) in BEST_SYMBOLS.items():
            item = pg.ScatterPlotItem(
                size=14,
                symbol=sym,
                brush=pg.mkBrush(colour),
                pen=pg.mkPen("k"),
                name=f"best by {name}",
            )
            q.addItem(item)
            self.best_items[name] = item

    def compute(self, context, progress, cancel, quick: bool = False):
        return run_reductions_lab(
            context.config, context.params, quick=quick, progress=progress, cancel=cancel
        )

    def draw(self, result) -> None:
        a, b = result.alphas, result.betas
        span = (a[-1] - a[0]) / 2
        for k, name in enumerate(result.names):
            show_surface(self.images[k], None, result.surfaces[k], a, b)
            tip = -result.arrows[k] / max(float(np.hypot(*result.arrows[k])), 1e-300) * 0.6 * span
            self.arrows[k].setData([0, tip[0]], [0, tip[1]])
            self.plots[k].setTitle(
                f"{name}: scalar {fmt(result.scalars[k])}, |∇| {fmt(result.grad_norms[k])}, "
                f"cos {result.cosines[k]:.2f}",
                size="9pt",
            )
        F = result.cloud
        self.cloud.setData(F[:, 0], F[:, 1])
        self.front.setData(F[result.pareto, 0], F[result.pareto, 1])
        for name, item in self.best_items.items():
            i = result.best[name]
            item.setData([F[i, 0]], [F[i, 1]])
        i, j = result.incomparable
        self.info.setText(
            f"Same batch (B = {result.batch_size}), same weights, five scalars; each panel: "
            f"log10 of its scalar on one plane, red: the direction of its −gradient<br>"
            f"<b>sum vs mean</b>: |∇sum| / |∇mean| = {result.grad_ratio:.6g} = B; max |∇sum − "
            f"B ∇mean| = {fmt(result.max_abs_grad_diff)}; one SGD step with lr on the sum vs "
            f"B·lr on the mean: max |Δθ| = {fmt(result.max_abs_step_diff)}<br>"
            f"<b>why a scalar</b>: points {i} and {j} cannot be ordered "
            f"({', '.join(fmt(x) for x in F[i])}) vs ({', '.join(fmt(x) for x in F[j])}); "
            f"{int(result.pareto.sum())} of {len(F)} nearby weights are not dominated"
        )
