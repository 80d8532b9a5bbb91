"""Reductions lab tab: one M, five scalars, five surfaces; sum vs mean; the Pareto cloud."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.experiments.reductions_lab import CASES, run_reductions_lab

from ..plots import style
from ..plots.base import fmt
from ..plots.surface_image import show_surface
from .base import ExperimentView, WrappedLabel, phase, show_head, shown_count

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
        "surface (same plane, same weights, same axis ranges, each with its colour scale) and "
        "its own gradient. Last panel: nearby weights by their per-output losses; most pairs "
        "cannot be ordered without choosing a reduction, and each reduction ranks a different "
        "point best."
    )
    animation_tip = (
        "the five reductions' surfaces appear one after another, each with its −gradient "
        "growing from the weights; then the nearby weights by their per-output losses, the "
        "ones no other beats on every output, and the point each reduction ranks best"
    )

    def build(self, canvas) -> None:
        self.info = WrappedLabel("Press Run to compare the reductions.")
        self.images, self.arrows, self.plots, self.bars = [], [], [], []
        for name in CASES:
            p = pg.PlotItem()
            p.setTitle(f"<b>{name}</b><br>(press Run)", size="8.5pt")
            p.setAspectLocked(True)
            p.setLabel("bottom", "α")
            p.setLabel("left", "β")
            img = pg.ImageItem(axisOrder="col-major")
            img.setColorMap(style.SURFACE_CMAP)
            p.addItem(img)
            bar = pg.ColorBarItem(
                values=(0, 1),
                colorMap=style.SURFACE_CMAP,
                label="log10 of this scalar",
                interactive=False,
                width=8,
            )
            bar.setImageItem(img)
            arrow = p.plot([], [], pen=style.MEAN_PEN)
            point = pg.ScatterPlotItem([0], [0], size=9, brush=style.POINT_BRUSH, pen=pg.mkPen("w"))
            p.addItem(point)
            self.images.append(img)
            self.arrows.append(arrow)
            self.plots.append(p)
            self.bars.append(bar)
        q = self.pareto_plot = pg.PlotItem()
        q.setTitle(
            "<b>why a scalar</b>: nearby weights<br>by their per-output losses", size="8.5pt"
        )
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
        # decreasing sizes: a point that is best by several reductions shows every marker
        for (name, (sym, colour)), size in zip(BEST_SYMBOLS.items(), (20, 14, 9)):
            item = pg.ScatterPlotItem(
                size=size,
                symbol=sym,
                brush=pg.mkBrush(colour),
                pen=pg.mkPen("k"),
                name=f"best by {name}",
            )
            q.addItem(item)
            self.best_items[name] = item

    def reflow(self, width: int, height: int) -> None:
        panels = [*zip(self.plots, self.bars), (self.pareto_plot, None)]
        cols = 3 if width >= 860 else 2
        cells = [(self.info, 0, 0, 1, 2 * cols)]
        for k, (plot, bar) in enumerate(panels):
            r, c = 1 + k // cols, 2 * (k % cols)
            if bar is None:
                cells.append((plot, r, c, 1, 2))
            else:
                cells += [(plot, r, c, 1, 1), (bar, r, c + 1, 1, 1)]
        rows = (len(panels) + cols - 1) // cols
        self.arrange(cols, cells, col_stretch=(1, 0) * cols, row_stretch=(0, *([1] * rows)))

    def compute(self, context, progress, cancel, quick: bool = False, partial=None):
        return run_reductions_lab(
            context.config, context.params, quick=quick, progress=progress, cancel=cancel
        )

    @staticmethod
    def _arrow_tip(result, k: int) -> np.ndarray:
        """Where panel ``k``'s −gradient arrow ends (0.6 of the half-width, from 0)."""
        span = (result.alphas[-1] - result.alphas[0]) / 2
        return -result.arrows[k] / max(float(np.hypot(*result.arrows[k])), 1e-300) * 0.6 * span

    @staticmethod
    def _cloud_xy(result) -> np.ndarray:
        """The cloud as drawn: two outputs' losses, or (index, loss) with one output."""
        F = result.cloud
        if F.shape[1] == 1:
            return np.column_stack([np.arange(len(F), dtype=np.float64), F[:, 0]])
        return F

    def draw_growing(self, result, fraction: float) -> None:
        """The reductions one after another (the first half: a surface, its arrow growing),
        then the cloud of nearby weights, its Pareto front, the best point of each."""
        n = len(result.names)
        grow = phase(fraction, 0.0, 0.5) * n
        for k in range(n):
            self.images[k].setVisible(grow > k)
            tip = self._arrow_tip(result, k) * min(1.0, max(0.0, grow - k))
            self.arrows[k].setData([0, tip[0]], [0, tip[1]])
        F = self._cloud_xy(result)
        cloud, front = phase(fraction, 0.5, 0.75), phase(fraction, 0.75, 0.9)
        show_head(self.cloud, F[:, 0], F[:, 1], cloud)
        show_head(self.front, F[result.pareto, 0], F[result.pareto, 1], front)
        shown = shown_count(len(self.best_items), phase(fraction, 0.9, 1.0))
        for j, (name, item) in enumerate(self.best_items.items()):
            i = result.best[name]
            item.setData([F[i, 0]] if j < shown else [], [F[i, 1]] if j < shown else [])

    def draw(self, result) -> None:
        a, b = result.alphas, result.betas
        for k, name in enumerate(result.names):
            show_surface(self.images[k], self.bars[k], result.surfaces[k], a, b, smooth=3)
            self.images[k].setVisible(True)
            tip = self._arrow_tip(result, k)
            self.arrows[k].setData([0, tip[0]], [0, tip[1]])
            self.plots[k].setTitle(
                f"<b>{name}</b><br>{fmt(result.scalars[k])} · |∇| "
                f"{fmt(result.grad_norms[k])} · cos {result.cosines[k]:.2f}",
                size="8.5pt",
            )
            # the same axis ranges in every panel: the whole grid
            self.plots[k].setRange(xRange=(a[0], a[-1]), yRange=(b[0], b[-1]), padding=0.02)
        one = result.cloud.shape[1] == 1  # one output (a CSV with one target): against index
        F = self._cloud_xy(result)
        self.pareto_plot.setLabel("bottom", "nearby weights (index)" if one else "loss of output 1")
        self.pareto_plot.setLabel("left", "loss" if one else "loss of output 2")
        self.cloud.setData(F[:, 0], F[:, 1])
        self.front.setData(F[result.pareto, 0], F[result.pareto, 1])
        for name, item in self.best_items.items():
            i = result.best[name]
            item.setData([F[i, 0]], [F[i, 1]])
        i, j = result.incomparable
        arrow = style.COLOUR_NAMES[style.RED]
        seed = self._context().config.seed if self._context else 0
        self.info.set_text(
            f"One fixed batch of <b>B = {result.batch_size} training samples</b> (drawn once "
            f"with seed {seed}; not the live view's current batch), the same weights, five "
            f"scalars. Each panel: log10 of its scalar on one plane (α, β: filter-normalised "
            f"random directions), its own colour scale; {arrow} line: the direction of its "
            f"−gradient; title: the scalar, |∇| its gradient's length and <b>cos</b> the cosine "
            f"between its gradient and the mean's (1 = same direction)"
            f"<br><b>sum vs mean</b>: |∇sum| / |∇mean| = {result.grad_ratio:.6g} = "
            f"B; max |∇sum − B ∇mean| = {fmt(result.max_abs_grad_diff)}; one SGD step with lr "
            f"on the sum vs B·lr on the mean: max |Δθ| = {fmt(result.max_abs_step_diff)}<br>"
            + (
                f"<b>why a scalar</b>: points {i} and {j} cannot be ordered "
                f"({', '.join(fmt(x) for x in F[i])}) vs ({', '.join(fmt(x) for x in F[j])}); "
                f"{int(result.pareto.sum())} of {len(F)} nearby weights are not dominated"
                if result.cloud.shape[1] > 1
                else "<b>why a scalar</b>: with one output the loss is already one number: "
                f"any two of the {len(F)} nearby weights can be ordered (x: point index)"
            )
        )
