"""Critical batch size tab: steps and samples to one target loss for B = 1, 2, 4, ... the
whole set, the paper's trade-off fitted to them, and B_crit beside the noise scale B_noise."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from core.experiments.critical_batch import CriticalBatchResult, run_critical_batch

from ..plots import style
from ..plots.axes import use_log_axes
from ..plots.base import make_wrapping
from .base import ExperimentView, WrappedLabel, phase, show_head, shown_count

POINT = style.BLUE  #: measured points
FIT = style.ORANGE  #: the fitted curve
CRIT = style.GREEN  #: B_crit
NOISE = style.PURPLE  #: B_noise (the live view's colour for the noise scale)
#: the steps-samples panel's room left of E_min, as a fraction of the samples' span (log):
#: no point can need fewer samples than E_min, so E_min's label there hides none
E_MIN_ROOM = 0.2
#: the animation: the points until this fraction of it, then the fit until the next
POINTS_PART, FIT_PART = 0.6, 0.9


def _span(rgb, text: str) -> str:
    r, g, b = rgb
    return f"<span style='color:#{r:02x}{g:02x}{b:02x}'><b>{text}</b></span>"


def _n(x: float) -> str:
    """A count or batch size for the text: 17.7, 5,180, 9,930 (— if undefined)."""
    if not math.isfinite(x):
        return "—"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"


def _vline(rgb, style_: Qt.PenStyle, label: str) -> pg.InfiniteLine:
    pen = pg.mkPen(rgb, width=1.5, style=style_)
    line = pg.InfiniteLine(
        0, angle=90, pen=pen, label=label,
        labelOpts={"position": 0.92, "color": rgb, "anchors": [(0, 0), (0, 0)]},
    )  # fmt: skip
    line.setVisible(False)
    return line


class CriticalBatchView(ExperimentView):
    object_name = "criticalBatchPlot"
    file_stem = "critical_batch"
    title = "Critical batch size"
    help_text = (
        "From the fresh initial weights of the seed, batch sizes B = 1, 2, 4, … up to the whole "
        "training set each train to the same target loss (what the full batch reaches in 300 "
        "steps at its best learning rate; quick: 100 steps, B = 1, 4, 16, …), with the "
        "learning rate tuned for each B on a log grid. The steps S and samples E = B·S they "
        "need are fitted with S/S_min − 1 = (E/E_min − 1)⁻¹ (McCandlish et al. 2018): "
        "B_crit = E_min/S_min. Below B_crit a bigger batch saves steps almost for free; above "
        "it, samples are wasted. Beside it, the noise scale B_noise = tr Σ/|G|² of the same "
        "task (at the weights where the full batch reaches the target, and at the start), "
        "which the paper finds predicts B_crit roughly across many tasks."
    )
    animation_tip = (
        "the measured points appear one batch size at a time, from B = 1, then the fitted "
        "trade-off curve grows from small B to large, then B_crit and B_noise are marked"
    )

    def build(self, canvas) -> None:
        self.info = WrappedLabel("Press Run to measure (several seconds at the default settings).")
        self.plots: list[pg.PlotItem] = []
        self.points, self.curves = [], []
        self.crit_lines, self.noise_lines = [], []
        labels = (
            ("samples to target E", "steps to target S"),
            ("batch size B", "steps to target S"),
            ("batch size B", "samples to target E"),
        )
        for k, (xl, yl) in enumerate(labels):
            p = pg.PlotItem()
            use_log_axes(p, x=True, y=True)
            p.setLabel("bottom", xl)
            p.setLabel("left", yl)
            p.showGrid(x=True, y=True, alpha=0.2)
            curve = p.plot([], [], pen=pg.mkPen(FIT, width=2))
            # a PlotDataItem, not a ScatterPlotItem: only the former follows the log axes
            dots = p.plot(
                [], [], pen=None, symbol="o", symbolSize=8, symbolBrush=pg.mkBrush(POINT),
                symbolPen=pg.mkPen("w", width=1),
            )  # fmt: skip
            if k:  # the batch-size panels: where B_crit and B_noise are
                for lines, rgb, st, text in (
                    (self.crit_lines, CRIT, Qt.PenStyle.DashLine, "B_crit"),
                    (self.noise_lines, NOISE, Qt.PenStyle.DotLine, "B_noise"),
                ):
                    line = _vline(rgb, st, text)
                    p.addItem(line, ignoreBounds=True)
                    lines.append(line)
            self.plots.append(p)
            self.curves.append(curve)
            self.points.append(dots)
        # on the steps-samples curve: the point (2 E_min, 2 S_min), where B = B_crit
        self.crit_point = self.plots[0].plot(
            [], [], pen=None, symbol="d", symbolSize=12, symbolBrush=pg.mkBrush(CRIT),
            symbolPen=pg.mkPen("k", width=1),
        )  # fmt: skip
        # the fit's asymptotes, S -> S_min (B large) and E -> E_min (B small), dotted grey:
        # S_min and E_min in panel 1 (horizontal, vertical), S_min in 2, E_min in 3; each
        # label where the curve is far (position along the line, text anchor); in panel 1
        # both in the empty strip left of E_min (E_MIN_ROOM), where no point can be
        self.asymptotes = []
        for plot, angle, text, pos, anchor in (
            (self.plots[0], 0, "S_min", 0.02, (0, 1)),
            (self.plots[0], 90, "E_min", 0.5, (1.15, 0.5)),  # a gap from the line
            (self.plots[1], 0, "S_min", 0.08, (0, 1)),
            (self.plots[2], 0, "E_min", 0.92, (1, 1)),
        ):
            line = pg.InfiniteLine(
                0, angle=angle, pen=pg.mkPen(style.GREY, width=1, style=Qt.PenStyle.DotLine),
                label=text, labelOpts={"position": pos, "color": style.GREY,
                                       "anchors": [anchor, anchor]},
            )  # fmt: skip
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self.asymptotes.append(line)
        self._set_titles()

    def _set_titles(self) -> None:
        """The titles are the legend: each names its marks in their colours."""
        meas, fit = _span(POINT, "● measured"), _span(FIT, "— fit")
        self.plots[0].setTitle(
            f"steps against samples: {meas}, {fit}, {_span(CRIT, '◆ B = B_crit')}", size="9pt"
        )
        self.plots[1].setTitle(f"steps against B: {meas}, {fit} S_min + E_min/B", size="9pt")
        self.plots[2].setTitle(f"samples against B: {meas}, {fit} E_min (1 + B/B_crit)", size="9pt")
        for p in self.plots:  # titles wrap in a narrow panel instead of widening it
            make_wrapping(p.titleLabel, p)

    def reflow(self, width: int, height: int) -> None:
        a, b, c = self.plots
        if width >= 720 or width >= 1.6 * height:
            cells = [(self.info, 0, 0, 1, 3), (a, 1, 0, 1, 1), (b, 1, 1, 1, 1), (c, 1, 2, 1, 1)]
            self.arrange("row", cells, col_stretch=(1, 1, 1), row_stretch=(0, 1))
        else:
            cells = [(self.info, 0, 0, 1, 2), (a, 1, 0, 1, 2), (b, 2, 0, 1, 1), (c, 2, 1, 1, 1)]
            self.arrange("grid", cells, col_stretch=(1, 1), row_stretch=(0, 1, 1))

    def uses_live_weights(self) -> bool:
        return False  # one fresh initialisation of the seed, by design

    def compute(self, context, progress, cancel, quick: bool = False, partial=None):
        return run_critical_batch(
            context.config, quick=quick, progress=progress, cancel=cancel, partial=partial
        )

    def extra_tables(self) -> dict:
        """critical_batch_fit.csv beside critical_batch.csv."""
        if self.result is None:
            return {}
        return {"critical_batch_fit": self.result.fit_table()}

    @staticmethod
    def _measured(result: CriticalBatchResult) -> tuple[np.ndarray, np.ndarray]:
        """(B, S) of the batch sizes that reached the target, from the smallest B."""
        pts = sorted((p for p in result.points if p.reached), key=lambda p: p.batch_size)
        B = np.array([p.batch_size for p in pts], dtype=np.float64)
        return B, np.array([p.steps for p in pts], dtype=np.float64)

    def _draw_points(self, B: np.ndarray, S: np.ndarray) -> None:
        for dots, (x, y) in zip(self.points, ((B * S, S), (B, S), (B, B * S))):
            dots.setData(x, y)

    def draw(self, result: CriticalBatchResult) -> None:
        B, S = self._measured(result)
        self._draw_points(B, S)
        lo, hi = self._b_range(result, B)
        self._draw_b_lines(result)
        self._draw_fit(result.fit, B, lo, hi)
        for p in self.plots[1:]:
            p.setXRange(math.log10(lo), math.log10(hi), padding=0.04)
        for p in self.plots:
            p.enableAutoRange(axis="y")
        self._samples_range(result.fit, B * S)
        self.info.set_text(self.summary(result))
        self.info.setToolTip(self.details(result))

    def _samples_range(self, fit, E: np.ndarray) -> None:
        """Panel 1's samples axis: the points and the curve, and room left of E_min."""
        p = self.plots[0]
        if fit is None or not len(E):
            p.enableAutoRange(axis="x")
            return
        x = self.curves[0].getOriginalDataset()[0]
        lo = math.log10(min(fit.E_min, E.min()))
        hi = math.log10(max(E.max(), x.max()))
        p.setXRange(lo - E_MIN_ROOM * (hi - lo), hi, padding=0.02)

    def draw_growing(self, result: CriticalBatchResult, fraction: float) -> None:
        """The measured points one batch size at a time from B = 1, then the fitted curve
        from small B to large with its asymptotes, then B = B_crit, B_crit and B_noise."""
        B, S = self._measured(result)
        n = shown_count(len(B), phase(fraction, 0.0, POINTS_PART))
        self._draw_points(B[:n], S[:n])
        grow = phase(fraction, POINTS_PART, FIT_PART)
        self._draw_fit(result.fit if grow > 0 else None, B, *self._b_range(result, B))
        for curve in self.curves:
            x, y = curve.getOriginalDataset()
            if x is not None:
                show_head(curve, x, y, grow)
        marks = fraction >= FIT_PART
        if marks:
            self._draw_b_lines(result)
        else:
            self.crit_point.setData([], [])
        for line in self.crit_lines + self.noise_lines:
            line.setVisible(marks and line.isVisible())

    def _draw_b_lines(self, result: CriticalBatchResult) -> None:
        """B_crit and B_noise as vertical lines in the batch-size panels (hidden if undefined)."""
        crit = result.fit.B_crit if result.fit else math.nan
        for k, line in enumerate(self.crit_lines + self.noise_lines):
            value, other = (crit, result.B_noise) if k < 2 else (result.B_noise, crit)
            ok = math.isfinite(value) and value > 0
            line.setVisible(ok)
            if ok:
                line.setValue(math.log10(value))  # the axes are log10
                # the larger one's label to the left of its line: it stays inside the plot
                side = 1 if math.isfinite(other) and value > other else 0
                line.label.anchors = [(side, 0), (side, 0)]
                line.label.updatePosition()

    def _draw_fit(self, fit, B: np.ndarray, lo: float, hi: float) -> None:
        """The fitted curve in each panel, the point B = B_crit, the asymptotes S_min, E_min."""
        for line in self.asymptotes:
            line.setVisible(fit is not None)
        if fit is None:
            for curve in self.curves:
                curve.setData([], [])
            self.crit_point.setData([], [])
            return
        b = np.geomspace(lo, hi, 200)
        s = fit.steps(b)
        for curve, (x, y) in zip(self.curves[1:], ((b, s), (b, b * s))):
            curve.setData(x, y)
        # against samples: over the batch sizes measured (E grows without bound in B)
        b = np.geomspace(B.min() / 1.5, B.max() * 1.5, 200) if len(B) else b
        s = fit.steps(b)
        self.curves[0].setData(b * s, s)
        self.crit_point.setData([2 * fit.E_min], [2 * fit.S_min])
        for line, value in zip(self.asymptotes, (fit.S_min, fit.E_min, fit.S_min, fit.E_min)):
            line.setValue(math.log10(value))

    @staticmethod
    def _b_range(result: CriticalBatchResult, B: np.ndarray) -> tuple[float, float]:
        """The batch sizes drawn: every B measured, and B_crit and B_noise if defined."""
        values = [1.0, float(result.n_train), *B.tolist()]
        if result.fit is not None:
            values.append(result.fit.B_crit)
        values.append(result.B_noise)
        values = [v for v in values if math.isfinite(v) and v > 0]
        return min(values) / 1.5, max(values) * 1.5

    def summary(self, r: CriticalBatchResult) -> str:
        """The numbers and how they were made, in short lines (the details: the tooltip)."""
        full = next(p for p in r.points if p.batch_size == r.n_train)
        head = (
            f"<b>{'-'.join(map(str, r.layer_sizes))}</b>, {r.optimizer}, {r.loss}, seed "
            f"{self._seed()} · target: training loss <b>{r.target_loss:.4g}</b> (the full "
            f"batch's after {r.ref_steps} steps at lr {full.lr:g}) · lr per B: the best on a "
            f"× 2 grid"
        )
        if full.lr >= r.lr_grid[-1]:
            head += " (<b>the grid's largest rate: a larger one may be faster</b>)"
        missed = sorted(p.batch_size for p in r.points if not p.reached)
        if missed:
            head += f" · <b>B = {', '.join(map(str, missed))}: target not reached</b>"
        if not r.complete:
            return f"{head}<br><i>batch sizes measured so far; the noise scale comes last</i>"
        return f"{head}<br>{self._verdict(r)}"

    @staticmethod
    def _verdict(r: CriticalBatchResult) -> str:
        f = r.fit
        if f is None:
            return "fewer than three batch sizes reached the target: nothing to fit"
        ratio = r.ratio
        text = (
            f"{_span(CRIT, f'B_crit = {_n(f.B_crit)}')} (S_min {_n(f.S_min)} steps, E_min "
            f"{_n(f.E_min)} samples) · {_span(NOISE, f'B_noise = {_n(r.B_noise)}')} at the "
            f"target · <b>B_crit / B_noise = {ratio:.2g}</b>"
        )
        start = f.B_crit / r.B_noise_start if r.B_noise_start > 0 else math.nan
        if math.isfinite(ratio) and not 0.2 <= ratio <= 5 and math.isfinite(start):
            text += (
                f"<br>B_noise {'grows' if r.B_noise > r.B_noise_start else 'shrinks'} as the "
                f"loss falls ({_n(r.B_noise_start)} at the start: "
                f"B_crit / B_noise = {start:.2g} there): which value predicts B_crit depends "
                f"on where the steps are spent."
            )
        return text

    @staticmethod
    def details(r: CriticalBatchResult) -> str:
        """How it was measured, in full (the summary's tooltip)."""
        grid = f"{r.lr_grid[0]:.3g} … {r.lr_grid[-1]:.3g}"
        fit = f"; the fit's rms error {100 * r.fit.rms_log:.0f} % (in log S)" if r.fit else ""
        return (
            f"Loss: {r.loss} with the mean reduction, over the whole training set "
            f"({r.n_train:,} samples), from {r.initial_loss:.3g} at the start. Target: the "
            f"lowest loss the full batch reaches in {r.ref_steps} steps among the rates it "
            f"tried. Learning rate per B: the grid {grid} (× 2 apart); each B starts at the "
            f"next larger B's best rate and halves it while that needs fewer steps. A run "
            f"stops after twice the samples of the next larger B (smaller batches need fewer). "
            f"B_noise = tr Σ/|G|² of the per-sample gradients over the training set, at the "
            f"weights where the full batch reached the target{fit}."
        )

    def _seed(self) -> int:
        return self._context().config.seed if self._context else 0
