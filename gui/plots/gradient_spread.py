"""Per-sample gradient spread: how much the B per-sample gradients disagree."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from core.snapshot import Snapshot

from . import style
from .axes import use_log_axes
from .base import ViewWidget, coloured, fmt, integer_ticks, sticky_range

N_BINS = 20
_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 73)), np.sin(np.linspace(0, 2 * np.pi, 73))])


class GradientSpreadPlot(ViewWidget):
    object_name = "gradientSpreadPlot"
    #: place in the live grid by its number of columns: (row, col, rowspan, colspan);
    #: three panels side by side, so two columns wide in three
    grid_place = {2: (0, 1, 1, 1), 3: (0, 1, 1, 2)}
    title = "Per-sample gradient spread"
    help_text = (
        "Each blue dot is one sample's gradient g_i, seen along the mean gradient (x) and along "
        "the direction in which the samples disagree most (y); the red-orange star is their mean "
        "ḡ and the pink ellipse holds about 86 % of them (2 standard deviations; needs B ≥ 3). "
        "Histogram and bars: cosine of each g_i with the mean and |g_i| (orange: pointing "
        "against the mean). The 1/√B panel: the standard error of the minibatch mean gradient, "
        "measured by drawing "
        "many minibatches of each size B from the training set, against the prediction "
        "√(tr Σ / B): it shrinks like 1/√B. Top: the noise scale B_noise = tr Σ/|G|² of the "
        "training set (G, Σ: mean and covariance of all its g_i) at the current weights, and "
        "how many steps old it is; a batch much smaller than B_noise is mostly noise. The "
        "ratio from this batch alone tends to B, not to B_noise: its |ḡ|² holds tr Σ/B of noise "
        "on top of |G|², which dominates once |G|² is small."
    )

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info = self.addLabel("", row=0, col=0, colspan=2, justify="left", size="9pt")
        self._build_scatter()
        self._build_noise_panel()
        self._build_histogram()
        self._build_norms()
        self._arrangement = "grid"
        self._arrange("grid")
        self._edges = np.linspace(-1, 1, N_BINS + 1)

    def _build_scatter(self) -> None:
        """The g_i in the plane of the mean gradient: samples, mean star, 2 sigma ellipse."""
        sc = self.scatter_plot = self.addPlot(row=1, col=0)
        sc.setLabel("bottom", "along ḡ")
        sc.setLabel("left", "across ḡ")
        sc.showGrid(x=True, y=True, alpha=0.25)
        sc.addItem(pg.InfiniteLine(0, angle=90, pen=style.GRID_PEN))
        sc.addItem(pg.InfiniteLine(0, angle=0, pen=style.GRID_PEN))
        self.ellipse = sc.plot([], [], pen=pg.mkPen(style.PURPLE, width=1.5))
        self.mean = pg.ScatterPlotItem(
            size=14, symbol="star", brush=style.POINT_BRUSH, pen=pg.mkPen("k", width=1)
        )
        sc.addItem(self.mean)
        # drawn over the star: with B = 1 the one sample is its own mean (then a ring)
        self.samples = pg.ScatterPlotItem(size=7, brush=style.SAMPLE_BRUSH, pen=style.NO_PEN)
        sc.addItem(self.samples)
        self._one_sample = False

    def _build_noise_panel(self) -> None:
        """1/sqrt(B), measured: standard error of the mean gradient against B (log-log)."""
        # --- 1/sqrt(B), measured: standard error of the mean gradient against B (log-log)
        nb = self.noise_plot = self.addPlot(row=2, col=0)
        use_log_axes(nb, x=True, y=True)
        nb.setLabel("bottom", "batch size B")
        nb.setLabel("left", "std. error")
        nb.showGrid(x=True, y=True, alpha=0.2)
        self.noise_predicted = nb.plot(
            [], [], pen=pg.mkPen(style.RED, width=1.5, style=Qt.PenStyle.DashLine)
        )
        self.noise_measured = nb.plot(
            [],
            [],
            pen=pg.mkPen(style.BLUE, width=1),
            symbol="o",
            symbolSize=6,
            symbolBrush=style.BLUE,
            symbolPen=style.NO_PEN,
        )
        self.noise_current_b = pg.InfiniteLine(0, angle=90, pen=style.GRID_PEN)
        nb.addItem(self.noise_current_b)
        self.set_title(
            nb,
            f"1/√B, measured: {coloured('● drawn minibatches', style.BLUE)} · "
            f"{coloured('-- √(tr Σ / B)', style.RED)}",
            size="9pt",
        )
        self._noise_id = None

    def _build_histogram(self) -> None:
        """The cosines of the g_i with the mean, with it and against it."""
        h = self.hist_plot = self.addPlot(row=1, col=1)
        h.setLabel("left", "samples")
        h.setLabel("bottom", "cosine")
        h.setXRange(-1, 1, padding=0.02)
        self.hist_for = h.plot(
            [], [], stepMode="center", fillLevel=0, brush=style.BAR_BRUSH, pen=style.NO_PEN
        )
        self.hist_against = h.plot(
            [], [], stepMode="center", fillLevel=0, brush=style.BAR_AGAINST_BRUSH, pen=style.NO_PEN
        )
        h.addItem(pg.InfiniteLine(0, angle=90, pen=pg.mkPen(style.BLACK, width=1)))

    def _build_norms(self) -> None:
        """|g_i| per sample as bars (with the mean / against it) and |mean| as a line."""
        n = self.norm_plot = self.addPlot(row=2, col=1)
        self.set_title(
            n,
            f"{coloured('|g_i|', style.BLUE)} · {coloured('-- |ḡ|', style.RED)}",
            size="9pt",
        )
        n.setLabel("bottom", "sample i")
        n.setLabel("left", "norm")
        self._ticks_b = None
        # two bar items (with the mean / against it) updated with arrays only: one brush
        # each, made once, instead of a list of per-bar brushes every frame
        self.bars = pg.BarGraphItem(
            x=[], height=[], width=0.8, brush=style.BAR_BRUSH, pen=style.NO_PEN
        )
        self.bars_against = pg.BarGraphItem(
            x=[], height=[], width=0.8, brush=style.BAR_AGAINST_BRUSH, pen=style.NO_PEN
        )
        n.addItem(self.bars)
        n.addItem(self.bars_against)
        # no text label on the line: an InfiniteLine re-lays its label's HTML on every move
        self.mean_norm = pg.InfiniteLine(
            0, angle=0, pen=pg.mkPen(style.RED, width=2, style=Qt.PenStyle.DashLine)
        )
        n.addItem(self.mean_norm)

    def draw(self, snap: Snapshot) -> None:
        st = snap.stats
        B = snap.batch_size
        if snap.spread is not None:
            self._draw_scatter(snap)
        self._draw_batch_noise(snap)
        cos = np.asarray(st.cosines)
        counts, _ = np.histogram(cos, bins=self._edges)
        against = np.where(self._edges[1:] <= 0, counts, 0)
        self.hist_for.setData(self._edges, counts - against)
        self.hist_against.setData(self._edges, against)
        norms = np.asarray(st.per_sample_norms)
        x = np.arange(len(norms))
        against_mask = cos < 0
        self.bars.setOpts(x=x[~against_mask], height=norms[~against_mask], width=0.8)
        self.bars_against.setOpts(x=x[against_mask], height=norms[against_mask], width=0.8)
        self.mean_norm.setValue(st.mean_norm)
        sticky_range(self.norm_plot, "x", -0.5, len(norms) - 0.5)
        integer_ticks(self.norm_plot.getAxis("bottom"), len(norms))  # whole sample numbers
        sticky_range(self.norm_plot, "y", 0.0, max(float(norms.max()), st.mean_norm))
        sticky_range(self.hist_plot, "y", 0.0, float(counts.max()))
        if B < 2:
            self.set_title(self.hist_plot, "cos(g_i, ḡ): 1 (B = 1: g_1 is ḡ)", size="9pt")
        else:
            self.set_title(
                self.hist_plot,
                f"cos(g_i, ḡ): {coloured(f'{st.frac_against:.0%} against', style.ORANGE)}",
                size="9pt",
            )
        self.set_text(self.info, noise_scale_text(snap))
        self._choose_arrangement()  # the header's height may have changed

    def _draw_scatter(self, snap: Snapshot) -> None:
        """The g_i (B, 2) in the plane, their mean and 2 sigma ellipse, the title."""
        xy = np.asarray(snap.spread)
        one = len(xy) == 1
        if one != self._one_sample:  # one sample: a ring around the star, not under it
            self._one_sample = one
            if one:
                self.samples.setSize(20)
                self.samples.setBrush(pg.mkBrush(None))
                self.samples.setPen(pg.mkPen(style.BLUE, width=2))
            else:
                self.samples.setSize(7)
                self.samples.setBrush(style.SAMPLE_BRUSH)
                self.samples.setPen(style.NO_PEN)
        self.samples.setData(xy[:, 0], xy[:, 1])
        mx, my = snap.spread_mean
        self.mean.setData([mx], [my])
        ok = len(xy) > 2 and np.all(np.isfinite(xy))
        if ok:
            C = np.cov(xy.T)
            vals, vecs = np.linalg.eigh(C)
            ell = vecs @ (np.sqrt(np.maximum(vals, 0))[:, None] * 2 * _CIRCLE)
            self.ellipse.setData(ell[0] + xy[:, 0].mean(), ell[1] + xy[:, 1].mean())
        else:  # nothing from an earlier batch size may linger
            self.ellipse.setData([], [])
        ex, ey = self.ellipse.getData()
        for k, (axis, e) in enumerate(zip("xy", (ex, ey))):
            ev = np.asarray(e if e is not None and len(e) else [0.0])
            lo = min(float(xy[:, k].min()), float(ev.min()), 0.0)
            hi = max(float(xy[:, k].max()), float(ev.max()), 0.0)
            sticky_range(self.scatter_plot, axis, lo, hi)
        ell_txt = (
            coloured("◯ 2σ", style.PURPLE) if ok else coloured("ellipse needs B ≥ 3", style.PURPLE)
        )
        who = "the one g_i = ḡ" if one else "g_i"
        if self._arrangement == "pair":
            ell_txt += " (a larger view adds cos and |g_i|)"
        self.set_title(
            self.scatter_plot,
            f"{coloured('● ' + who, style.BLUE)} · {coloured('★ ḡ', style.RED)} · {ell_txt}",
            size="9pt",
        )

    def _arrange(self, kind: str) -> None:
        """ "grid": the scatter over the 1/sqrt(B) panel, the cosines over the norms (room of
        a normal height); "columns": the scatter and the 1/sqrt(B) panel full height, the
        cosines over the norms between them (a short room); "row": the four side by side (a
        short, wide room); "pair": the scatter and the 1/sqrt(B) panel only (the smallest
        room). In a short room a 2 x 2 grid left each plot a strip."""
        ci = self.ci
        for item in (self.info, self.scatter_plot, self.noise_plot, self.hist_plot, self.norm_plot):
            if item in ci.items:  # ("pair" leaves two out)
                ci.removeItem(item)
        if kind == "columns":
            ci.addItem(self.info, row=0, col=0, colspan=3)
            ci.addItem(self.scatter_plot, row=1, col=0, rowspan=2)
            ci.addItem(self.hist_plot, row=1, col=1)
            ci.addItem(self.norm_plot, row=2, col=1)
            ci.addItem(self.noise_plot, row=1, col=2, rowspan=2)
            stretch = (4, 3, 3, 0)
        elif kind == "pair":
            ci.addItem(self.info, row=0, col=0, colspan=2)
            ci.addItem(self.scatter_plot, row=1, col=0)
            ci.addItem(self.noise_plot, row=1, col=1)
            stretch = (3, 2, 0, 0)
        elif kind == "row":
            ci.addItem(self.info, row=0, col=0, colspan=4)
            ci.addItem(self.scatter_plot, row=1, col=0)
            ci.addItem(self.noise_plot, row=1, col=1)
            ci.addItem(self.hist_plot, row=1, col=2)
            ci.addItem(self.norm_plot, row=1, col=3)
            stretch = (3, 2, 2, 2)
        else:
            ci.addItem(self.info, row=0, col=0, colspan=2)
            ci.addItem(self.scatter_plot, row=1, col=0)
            ci.addItem(self.noise_plot, row=2, col=0)
            ci.addItem(self.hist_plot, row=1, col=1)
            ci.addItem(self.norm_plot, row=2, col=1)
            stretch = (3, 2, 0, 0)
        for col, f in enumerate(stretch):
            ci.layout.setColumnStretchFactor(col, f)
        ci.layout.setRowStretchFactor(1, {"grid": 3, "columns": 1, "row": 1, "pair": 1}[kind])
        ci.layout.setRowStretchFactor(2, {"grid": 2, "columns": 1, "row": 0, "pair": 0}[kind])
        # the smallest room (1024 x 640) shows the two main panels; the others come back
        # when there is room (the scatter's title says so)
        for plot in (self.hist_plot, self.norm_plot):
            plot.setVisible(kind != "pair")
        self._arrangement = kind

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        # pyqtgraph resizes during __init__, and again in close() after deleting the items
        if hasattr(self, "norm_plot") and not getattr(self, "closed", False):
            self._choose_arrangement()

    def _choose_arrangement(self) -> None:
        header = max(self.info.height(), self.info.itemRect().height())
        w, h = self.width(), self.height() - header
        if self.height() < 300 and w < 480:
            kind = "pair"
        elif h >= 300 or w < 1.35 * h + 60:
            kind = "grid"
        else:
            kind = "row" if w > 1.9 * h + 60 else "columns"
        if kind != self._arrangement:
            self._arrange(kind)

    def _draw_batch_noise(self, snap: Snapshot) -> None:
        """The measured 1/sqrt(B) panel (redrawn when a new measurement arrives)."""
        bn = snap.batch_noise
        self.noise_current_b.setValue(np.log10(max(snap.batch_size, 1)))
        if getattr(self, "_noise_b", None) != snap.batch_size:
            self._noise_b = snap.batch_size
            self.noise_plot.setLabel("bottom", f"B (dotted: now {snap.batch_size})")
        key = None if bn is None else (bn.step, bn.seconds, bn.n_population)
        if key == self._noise_id:
            return
        self._noise_id = key
        if bn is None:
            self.noise_measured.setData([], [])
            self.noise_predicted.setData([], [])
            self.set_title(self.noise_plot, "1/√B, measured: waiting for a measurement", size="9pt")
            return
        b = np.asarray(bn.batch_sizes, dtype=np.float64)
        self.noise_measured.setData(b, np.asarray(bn.std_error_measured))
        self.noise_predicted.setData(b, np.asarray(bn.std_error_predicted))
        self.set_title(
            self.noise_plot,
            f"{coloured('● measured', style.BLUE)} · {coloured('-- √(tr Σ/B)', style.RED)} · "
            f"slope {bn.slope:.2f}",
            size="9pt",
        )

    def noise_table(self) -> tuple[list[str], list[list]]:
        """noise_vs_batch.csv: the measured and predicted standard error for each B."""
        header = ["batch_size", "std_error_measured", "std_error_predicted"]
        bn = None if self.snapshot is None else self.snapshot.batch_noise
        rows = [] if bn is None else [[b, f"{m:.10g}", f"{p:.10g}"] for b, m, p in bn.rows()]
        return header, rows

    def extra_tables(self) -> dict:
        """Further CSV files this view writes on export: {file stem: (header, rows)}."""
        return {"noise_vs_batch": self.noise_table()}

    def table(self):
        snap = self.snapshot
        header = [
            "sample",
            "along_mean",
            "along_disagreement",
            "cosine_to_mean",
            "norm",
            "per_sample_loss",
            "weight",
        ]
        rows = []
        if snap is not None and snap.spread is not None:
            st = snap.stats
            for i in range(snap.batch_size):
                rows.append(
                    [
                        i,
                        f"{snap.spread[i, 0]:.10g}",
                        f"{snap.spread[i, 1]:.10g}",
                        f"{st.cosines[i]:.10g}",
                        f"{st.per_sample_norms[i]:.10g}",
                        f"{snap.per_sample_loss[i]:.10g}",
                        f"{snap.weights[i]:.10g}",
                    ]
                )
        return header, rows


def _big(x: float) -> str:
    """A noise scale for the header: 1,020 rather than 1.02e+03."""
    return f"{x:,.0f}" if np.isfinite(x) and abs(x) >= 100 else fmt(x)


def noise_scale_text(snap: Snapshot) -> str:
    """The header: the training set's noise scale (how it was measured, how old), the SNR and
    standard error from it, and the one-batch ratio named as what it is. Undefined values are
    said in words, never shown as inf or nan."""
    st = snap.stats
    B = snap.batch_size
    ns, mode = st.noise_scale, st.noise_scale_mode
    n_age = st.noise_scale_age
    age = "this step" if n_age == 0 else f"{n_age:,} step{'s' if n_age > 1 else ''} ago"
    if mode == "":
        value, how = "not measured yet", ""
    elif mode == "exact":
        how = f": exact over all {st.noise_scale_samples:,} training samples, {age}"
        lo, hi = st.noise_scale_recent_lo, st.noise_scale_recent_hi
        if np.isfinite(lo) and np.isfinite(hi):  # it moves from step to step: by how much
            how += f" (recent: {_big(lo)}–{_big(hi)})"
        value = f"<b>{_big(ns)}</b>" if np.isfinite(ns) else "undefined: |G| = 0"
    else:
        over = f" in the last {st.noise_scale_window:,} steps" if st.noise_scale_window else ""
        how = (
            f": two-batch estimate, {st.noise_scale_measurements:,} draws of "
            f"{st.noise_scale_samples:,}{over}, {age}"
        )
        if not np.isfinite(ns):
            value = "not resolved yet: |G|² is still below its noise"
        elif np.isfinite(st.noise_scale_err):
            value = f"<b>{_big(ns)} ± {_big(st.noise_scale_err)}</b>"
        else:
            value = f"<b>{_big(ns)}</b> (± needs 3 draws)"
    line1 = f"<b>B = {B}</b> · noise scale B<sub>noise</sub> = tr Σ/|G|² = {value}{how}"
    if np.isfinite(st.snr) and np.isfinite(st.std_error):
        line2 = (
            f"SNR = B/B<sub>noise</sub> = {fmt(st.snr)} · std. error of the mean gradient "
            f"√(tr Σ/B) = <b>{fmt(st.std_error)}</b> vs |G| = {fmt(np.sqrt(st.grad_sq))}"
        )
    elif np.isfinite(st.std_error):
        line2 = f"std. error of the mean gradient √(tr Σ/B) = <b>{fmt(st.std_error)}</b>"
    else:
        line2 = "SNR and std. error of the mean gradient: once B<sub>noise</sub> is measured"
    if B < 2:
        line3 = "this batch alone (tr Σ<sub>B</sub>/|ḡ|²): needs B ≥ 2"
    elif np.isfinite(st.noise_scale_batch):
        line3 = (
            f"this batch alone: tr Σ<sub>B</sub>/|ḡ|² = {_big(st.noise_scale_batch)}, on "
            f"average below B = {B}, since |ḡ|² ≈ |G|² + tr Σ/B"
        )
    else:
        line3 = "this batch alone: tr Σ<sub>B</sub>/|ḡ|² undefined (ḡ = 0)"
    return f"{line1}<br>{line2}<br>{line3}"
