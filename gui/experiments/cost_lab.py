"""Gradient cost lab tab: seconds per averaged gradient for the three strategies."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from core.experiments.cost_lab import BATCH_SIZES, run_cost_lab

from ..plots import style
from ..plots.axes import use_log_axes
from ..plots.base import fmt
from .base import ExperimentView, WrappedLabel, shown_count

COLOURS = {"scalar": style.GREEN, "per_sample_vectorised": style.BLUE, "per_sample_loop": style.RED}
LABELS = {
    "scalar": "scalar: one backward pass",
    "per_sample_vectorised": "per-sample, vectorised",
    "per_sample_loop": "per-sample loop: B passes",
}


class CostLabView(ExperimentView):
    object_name = "costLabPlot"
    file_stem = "cost_lab"
    title = "Gradient cost lab"
    help_text = (
        "Seconds per averaged gradient on a network of the current shape, for B = 1 … 256: "
        "backpropagating the scalar once, computing all per-sample gradients in one "
        "vectorised pass, or looping over the samples (B backward passes). Each point is "
        "measured several times with live training paused: the line is the median, the band "
        "the range. Right: how many partial derivatives each computes."
    )
    pauses_training = True
    animation_tip = (
        "the batch sizes measured one after another, from B = 1 to 256: the loop's time climbs "
        "with B while one scalar backward pass stays nearly flat"
    )

    def build(self, canvas) -> None:
        self.info = WrappedLabel("Press Run to measure (live training pauses meanwhile).")
        t = self.time_plot = pg.PlotItem(title="Time per averaged gradient")
        use_log_axes(t, x=True, y=True)
        t.setLabel("bottom", "batch size B")
        t.setLabel("left", "milliseconds")
        t.showGrid(x=True, y=True, alpha=0.25)
        # top left: the curves rise to the right, so that corner stays empty
        legend = t.addLegend(offset=(5, 5), labelTextSize="9pt")
        legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        self.curves, self.bands = {}, {}
        for k, c in COLOURS.items():
            lo = t.plot([], [], pen=style.NO_PEN)
            hi = t.plot([], [], pen=style.NO_PEN)
            band = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush((*c, 60)))
            t.addItem(band)
            self.bands[k] = (lo, hi)
            self.curves[k] = t.plot(
                [],
                [],
                pen=pg.mkPen(c, width=2),
                symbol="o",
                symbolSize=7,
                symbolBrush=pg.mkBrush(c),
                symbolPen=style.NO_PEN,
                name=LABELS[k],
            )
        legend.addItem(
            pg.BarGraphItem(x=[0], height=[1], width=1, brush=pg.mkBrush((*style.GREY, 60))),
            "band: range of the repeats",
        )
        self.current_line = pg.InfiniteLine(
            np.log10(32),
            angle=90,
            pen=style.GRID_PEN,
            label="current B",
            labelOpts={"position": 0.5, "color": style.GREY, "anchors": [(0, 0.5), (0, 0.5)]},
        )
        t.addItem(self.current_line)
        p = self.partials_plot = pg.PlotItem(title="Partials computed")
        use_log_axes(p, x=True, y=True)
        p.setLabel("bottom", "batch size B")
        p.setLabel("left", "partials")
        p.showGrid(x=True, y=True, alpha=0.25)
        p.addLegend(offset=(5, 5), labelTextSize="9pt")
        self.p_scalar = p.plot([], [], pen=pg.mkPen(style.GREEN, width=2), name="scalar: P")
        self.p_sample = p.plot([], [], pen=pg.mkPen(style.RED, width=2), name="per-sample: B × P")

    def reflow(self, width: int, height: int) -> None:
        cells = [(self.info, 0, 0, 1, 2), (self.time_plot, 1, 0, 1, 1)]
        cells.append((self.partials_plot, 1, 1, 1, 1))
        self.arrange("wide", cells, col_stretch=(3, 2), row_stretch=(0, 1))

    def _draw_up_to(self, result, largest: float) -> None:
        """The timings and partials of the batch sizes up to ``largest``."""
        for k, curve in self.curves.items():
            B, seconds = result.series(k)
            shown = B <= largest
            curve.setData(B[shown], 1e3 * np.asarray(seconds)[shown])
            Bb, lo, hi = result.band(k)
            shown = Bb <= largest
            self.bands[k][0].setData(Bb[shown], 1e3 * lo[shown])
            self.bands[k][1].setData(Bb[shown], 1e3 * hi[shown])
        Bs = np.array(result.batch_sizes(), dtype=float)
        Bs = Bs[Bs <= largest]
        self.p_scalar.setData(Bs, np.full(len(Bs), float(result.n_params)))
        self.p_sample.setData(Bs, Bs * result.n_params)

    def draw_growing(self, result, fraction: float) -> None:
        """One batch size after another, from the smallest."""
        sizes = result.batch_sizes()
        self._draw_up_to(result, sizes[shown_count(len(sizes), fraction) - 1])

    def uses_live_weights(self) -> bool:
        return False  # the time of a pass does not depend on the weights' values

    def compute(self, context, progress, cancel, quick: bool = False, partial=None):
        cfg = context.config
        sizes = [context.n_in, *cfg.hidden, context.n_out]
        return run_cost_lab(
            sizes,
            cfg.activation,
            BATCH_SIZES,
            repeats=3 if quick else 5,
            min_time=0.002 if quick else 0.02,
            seed=cfg.seed,
            params=context.params,
            progress=progress,
            cancel=cancel,
            partial=partial,
        )

    def draw(self, result) -> None:
        self._draw_up_to(result, np.inf)
        B = self._context().config.batch_size
        measured = result.batch_sizes()
        if B not in measured:
            B = min(measured, key=lambda b: abs(np.log(b / B)))
        self.current_line.setValue(np.log10(B))
        loop = result.ratio("per_sample_loop", B)
        vec = result.ratio("per_sample_vectorised", B)
        sizes = "-".join(map(str, result.layer_sizes))
        lo_b, hi_b = measured[0], measured[-1]
        growth = ""
        if hi_b > lo_b:
            growth = (
                f"<br>from B = {lo_b} to B = {hi_b} ({hi_b // lo_b}× the samples) the scalar "
                f"pass takes {fmt(result.growth('scalar'))}× longer, the loop "
                f"{fmt(result.growth('per_sample_loop'))}× longer"
            )
        vec_text = (
            f"vectorised per-sample = {fmt(vec)} ×"
            if vec == vec
            else f"vectorised per-sample not measured at B = {B}"
        )
        if result.vectorised_max_batch < hi_b:
            limit = result.vectorised_max_batch
            vec_text += (
                f" (it holds a B × P matrix: measured up to B = {limit} only)"
                if limit
                else " (it holds a B × P matrix, too large here at any B)"
            )
        so_far = "" if result.complete else " <i>(batch sizes measured so far)</i>"
        self.info.set_text(
            f"<b>{sizes}</b>, P = {result.n_params:,}, median of {result.repeats} timings, "
            f"live training paused{so_far} · at B = {B}: "
            f"<b>per-sample loop = {fmt(loop)} × the scalar backward pass</b>; {vec_text}; "
            f"partials {B * result.n_params:,} instead of {result.n_params:,}{growth}<br>"
            f"every strategy gives the same mean gradient: max |difference| = "
            f"{fmt(result.max_abs_diff)}"
        )
