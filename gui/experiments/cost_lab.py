"""Gradient cost lab tab: seconds per averaged gradient for the three strategies."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.experiments.cost_lab import BATCH_SIZES, run_cost_lab

from ..plots import style
from ..plots.axes import use_log_axes
from ..plots.base import fmt
from .base import ExperimentView

COLOURS = {"scalar": style.GREEN, "per_sample_vectorised": style.BLUE, "per_sample_loop": style.RED}
LABELS = {
    "scalar": "scalar: one backward pass",
    "per_sample_vectorised": "per-sample, vectorised, then mean",
    "per_sample_loop": "per-sample loop: B backward passes, then mean",
}


class CostLabView(ExperimentView):
    object_name = "costLabPlot"
    file_stem = "cost_lab"
    title = "Gradient cost lab"
    help_text = (
        "Seconds per averaged gradient on the current network, for B = 1 … 256: backpropagating "
        "the scalar once, computing all per-sample gradients in one vectorised pass, or looping "
        "over the samples (B backward passes). Right: how many partial derivatives each computes."
    )

    def build(self, canvas) -> None:
        self.info = canvas.addLabel(
            "Press Run to measure.", row=0, col=0, colspan=2, justify="left", size="10pt"
        )
        t = self.time_plot = canvas.addPlot(row=1, col=0, title="Time per averaged gradient")
        use_log_axes(t, x=True, y=True)
        t.setLabel("bottom", "batch size B")
        t.setLabel("left", "milliseconds")
        t.showGrid(x=True, y=True, alpha=0.25)
        # top left: the curves rise to the right, so that corner stays empty
        t.addLegend(offset=(5, 5), labelTextSize="9pt")
        self.curves = {
            k: t.plot(
                [],
                [],
                pen=pg.mkPen(c, width=2),
                symbol="o",
                symbolSize=7,
                symbolBrush=pg.mkBrush(c),
                symbolPen=style.NO_PEN,
                name=LABELS[k],
            )
            for k, c in COLOURS.items()
        }
        self.current_line = pg.InfiniteLine(
            np.log10(32),
            angle=90,
            pen=style.GRID_PEN,
            label="current B",
            labelOpts={"position": 0.5, "color": style.GREY, "anchors": [(0, 0.5), (0, 0.5)]},
        )
        t.addItem(self.current_line)
        p = self.partials_plot = canvas.addPlot(row=1, col=1, title="Partial derivatives computed")
        use_log_axes(p, x=True, y=True)
        p.setLabel("bottom", "batch size B")
        p.setLabel("left", "partials")
        p.showGrid(x=True, y=True, alpha=0.25)
        p.addLegend(offset=(5, 5), labelTextSize="9pt")
        self.p_scalar = p.plot([], [], pen=pg.mkPen(style.GREEN, width=2), name="scalar: P")
        self.p_sample = p.plot([], [], pen=pg.mkPen(style.RED, width=2), name="per-sample: B × P")
        canvas.ci.layout.setColumnStretchFactor(0, 3)
        canvas.ci.layout.setColumnStretchFactor(1, 2)

    def compute(self, context, progress, cancel, quick: bool = False):
        cfg = context.config
        sizes = [context.n_in, *cfg.hidden, context.n_out]
        return run_cost_lab(
            sizes,
            cfg.activation,
            BATCH_SIZES,
            repeats=2 if quick else 5,
            min_time=0.002 if quick else 0.02,
            seed=cfg.seed,
            params=context.params,
            progress=progress,
            cancel=cancel,
        )

    def draw(self, result) -> None:
        for k, curve in self.curves.items():
            B, seconds = result.series(k)
            curve.setData(B, 1e3 * np.asarray(seconds))
        Bs = np.array([b for b in BATCH_SIZES], dtype=float)
        self.p_scalar.setData(Bs, np.full(len(Bs), float(result.n_params)))
        self.p_sample.setData(Bs, Bs * result.n_params)
        B = self._context().config.batch_size
        if B not in BATCH_SIZES:
            B = min(BATCH_SIZES, key=lambda b: abs(np.log(b / B)))
        self.current_line.setValue(np.log10(B))
        loop = result.ratio("per_sample_loop", B)
        vec = result.ratio("per_sample_vectorised", B)
        sizes = "-".join(map(str, result.layer_sizes))
        self.info.setText(
            f"<b>{sizes}</b>, P = {result.n_params:,} · at B = {B}: "
            f"<b>per-sample loop = {fmt(loop)} × the scalar backward pass</b><br>vectorised "
            f"per-sample = {fmt(vec)} ×; partials {B * result.n_params:,} instead of "
            f"{result.n_params:,}<br>every strategy gives the same mean gradient: "
            f"max |difference| = {fmt(result.max_abs_diff)}"
        )
