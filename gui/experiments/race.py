"""Batch-size race tab: B = 1 (plain SGD), 8, 32 and the whole set, from the same start."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QLineEdit

from core.data import train_size_of
from core.experiments.race import parse_batch_sizes, run_batch_race

from ..plots import style
from ..plots.axes import use_log_axes
from ..plots.base import fmt
from ..plots.surface_image import add_surface_image, show_surface
from .base import ExperimentView, LegendRow, WrappedLabel

#: one colour and one line style per run, so that runs differ in both (colour blindness,
#: grey-scale print) and a path hidden under another still shows its dashes
RUN_COLOURS = (
    style.RED,
    style.BLUE,
    style.GREEN,
    style.PURPLE,
    style.ORANGE,
    style.SKY,
    style.BLACK,
    style.GREY,
)
_S = Qt.PenStyle
RUN_STYLES = (
    _S.SolidLine,
    _S.DashLine,
    _S.DotLine,
    _S.DashDotLine,
    _S.DashDotDotLine,
    _S.SolidLine,
    _S.DashLine,
    _S.DotLine,
)


def run_pen(k: int, width: float = 2.0) -> pg.QtGui.QPen:
    pen = pg.mkPen(RUN_COLOURS[k], width=width, style=RUN_STYLES[k])
    pen.setCosmetic(True)
    return pen


def _label(B: int, n: int) -> str:
    if B == 1:
        return "B = 1 (plain SGD)"
    if B == n:
        return f"B = {n} (full batch)"
    return f"B = {B}"


def curves_of(run) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """A run's validation loss against steps, samples seen and time (ms), where it is finite
    and positive (log axes), and the samples seen at those evaluations."""
    ok = np.isfinite(run.val_loss) & (run.val_loss > 0)
    xs = (
        np.maximum(run.steps, 1),
        np.maximum(run.samples_seen, 1),
        np.maximum(1e3 * run.seconds, 1e-2),  # ms
    )
    return [(x[ok], run.val_loss[ok]) for x in xs], np.asarray(run.samples_seen)[ok]


class BatchRaceView(ExperimentView):
    object_name = "batchRacePlot"
    file_stem = "batch_race"
    title = "Batch-size race"
    help_text = (
        "The same initial weights (fresh ones of the seed, or the current ones if ticked) and "
        "data trained with several batch sizes, each seeing the same number of samples (the "
        "same number of epochs). Per-sample updates (B = 1) "
        "zig-zag because single samples pull in different directions; the minibatch mean "
        "takes smoother steps; small batches can still get further on the same samples."
    )
    animation_tip = (
        "the paths grow on the surface and the loss curves with them, every run at the same "
        "number of samples seen"
    )
    animation_button_name = "batchRaceAnimationButton"

    def _build_options(self) -> None:
        """The batch sizes, the start and their error line."""
        self.sizes_edit = QLineEdit("1, 8, 32, all")
        self.sizes_edit.setObjectName("batchRaceSizesEdit")
        self.sizes_edit.setToolTip(
            "Batch sizes to race, comma separated; 'all' = the whole "
            "training set. Press Enter or Run."
        )
        self.sizes_edit.returnPressed.connect(lambda: self.start())
        self.sizes_error = QLabel()
        self.sizes_error.setObjectName("batchRaceSizesError")
        self.sizes_error.setStyleSheet("color: #c0392b;")
        self.sizes_error.setWordWrap(True)
        self.sizes_error.setVisible(False)
        self.from_current = QCheckBox("Start from the &current weights")
        self.from_current.setObjectName("batchRaceFromCurrent")
        self.from_current.setToolTip(
            "Off (default): every run starts from the fresh initial weights of the seed, so "
            "the race does not depend on how long the live run has trained. On: every run "
            "starts from the live network's current weights."
        )
        lab = QLabel("&Batch sizes:")
        lab.setBuddy(self.sizes_edit)
        self.options.addWidget(lab)
        self.options.addWidget(self.sizes_edit, 1)
        self.options.addWidget(self.from_current)
        self.options.addWidget(self.sizes_error, 2)

    def build(self, canvas) -> None:
        self._build_options()
        self.info = WrappedLabel("Press Run to race.")
        s = self.surface_plot = pg.PlotItem(title="Paths on one loss surface (PCA plane)")
        s.setAspectLocked(True)  # both directions on the same scale
        s.setLabel("bottom", "principal direction 1")
        s.setLabel("left", "principal direction 2")
        self.image, self.colorbar = add_surface_image(canvas.ci, s, row=1, col=1)
        canvas.ci.removeItem(self.colorbar)
        # the key of the surface and the curves, in a row of its own: over the surface it hid
        # a corner of it, where a path may run
        self.legend_row = LegendRow()
        self.legend = self.legend_row.legend
        self.waiting_text = pg.TextItem(
            "the loss surface and the paths are drawn\nwhen every run has finished",
            color=style.GREY,
            anchor=(0.5, 0.5),
        )
        s.addItem(self.waiting_text)
        self.waiting_text.setVisible(False)
        self.paths, self.ends, self.curves = [], [], []
        xlabels = ("steps", "samples seen", "training time (ms)")
        self.curve_plots = []
        for xlabel in xlabels:
            p = pg.PlotItem()
            use_log_axes(p, x=True, y=True)
            p.setLabel("bottom", xlabel)
            p.setLabel("left", "val loss")
            p.showGrid(x=True, y=True, alpha=0.2)
            self.curve_plots.append(p)
        for k in range(len(RUN_COLOURS)):
            self.paths.append(s.plot([], [], pen=run_pen(k)))
            end = pg.ScatterPlotItem(
                size=7, symbol="o", brush=pg.mkBrush(RUN_COLOURS[k]), pen=pg.mkPen("w")
            )
            s.addItem(end)
            self.ends.append(end)
            self.curves.append([p.plot([], [], pen=run_pen(k, 1.5)) for p in self.curve_plots])
        # last: the common start, a small hollow circle over the paths' first points
        self.start_marker = pg.ScatterPlotItem(
            size=10, symbol="o", brush=pg.mkBrush(None), pen=pg.mkPen(style.BLACK, width=1.5)
        )
        s.addItem(self.start_marker)
        self.start_marker.setZValue(10)
        self.legend.addItem(self.start_marker, "common start")
        self.legend_row.fit()

    def reflow(self, width: int, height: int) -> None:
        info, key, s, bar = self.info, self.legend_row, self.surface_plot, self.colorbar
        c = self.curve_plots
        if (width >= 1.45 * height or width >= 1500) and height >= 500:
            # the surface on the left; the three loss curves stacked on the right
            cells = [(info, 0, 0, 1, 3), (key, 1, 0, 1, 3), (s, 2, 0, 3, 1), (bar, 2, 1, 3, 1)]
            cells += [(p, 2 + r, 2, 1, 1) for r, p in enumerate(c)]
            self.arrange("wide", cells, col_stretch=(5, 0, 4), row_stretch=(0, 0, 1, 1, 1))
        else:
            # narrow: the surface on top, the three loss curves side by side below
            cells = [(info, 0, 0, 1, 4), (key, 1, 0, 1, 4), (s, 2, 0, 1, 3), (bar, 2, 3, 1, 1)]
            cells += [(p, 3, col, 1, 1 if col < 2 else 2) for col, p in enumerate(c)]
            self.arrange("narrow", cells, col_stretch=(1, 1, 1, 0), row_stretch=(0, 0, 3, 2))

    def uses_live_weights(self) -> bool:
        return self.from_current.isChecked()

    def batch_sizes(self) -> tuple[int, ...] | None:
        n = train_size_of(self._context().config) if self._context else 0
        try:
            sizes = parse_batch_sizes(self.sizes_edit.text(), n)
        except ValueError as e:
            self.sizes_error.setText(str(e))
            self.sizes_error.setVisible(True)
            return None
        self.sizes_error.setVisible(False)
        return sizes

    def start(self, quick: bool = False) -> None:
        if self.batch_sizes() is None:
            self.status.setText("not started: fix the batch sizes")
            return
        super().start(quick)

    def compute(self, context, progress, cancel, quick: bool = False, partial=None):
        sizes = parse_batch_sizes(self.sizes_edit.text(), train_size_of(context.config))
        return run_batch_race(
            context.config,
            sizes,
            params=context.params,
            quick=quick,
            progress=progress,
            cancel=cancel,
            partial=partial,
        )

    def draw(self, result) -> None:
        legend = self.legend
        legend.clear()
        for k in range(len(RUN_COLOURS)):
            self.paths[k].setData([], [])
            self.ends[k].setData([], [])
            for c in self.curves[k]:
                c.setData([], [])
        complete = result.complete and result.Z.size > 0
        self.image.setVisible(complete)
        self.waiting_text.setVisible(not complete)
        if complete:
            show_surface(self.image, self.colorbar, result.Z, result.alphas, result.betas, smooth=4)
        else:
            self.start_marker.setData([], [])
            self.surface_plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
            self.waiting_text.setPos(0, 0)
        parts = []
        for k, run in enumerate(result.runs[: len(RUN_COLOURS)]):
            label = _label(run.batch_size, result.n_train)
            legend.addItem(self.paths[k], label)
            if complete and len(run.path):
                self.paths[k].setData(run.path[:, 0], run.path[:, 1])
                self.ends[k].setData([run.path[-1, 0]], [run.path[-1, 1]])
            for curve, (x, y) in zip(self.curves[k], curves_of(run)[0]):
                curve.setData(x, y)
            end = f"val loss {fmt(run.val_loss[-1])}" + (
                f" (stopped: diverging at step {run.diverged_at})" if run.diverged_at else ""
            )
            parts.append(
                f"B={run.batch_size}: {int(run.steps[-1]):,} steps, "
                f"{int(run.samples_seen[-1]):,} samples → {end}"
            )
        if complete and result.runs and len(result.runs[0].path):
            p0 = result.runs[0].path[0]
            self.start_marker.setData([p0[0]], [p0[1]])
            legend.addItem(self.start_marker, "common start")
            a, b = result.alphas, result.betas
            self.surface_plot.setRange(xRange=(a[0], a[-1]), yRange=(b[0], b[-1]), padding=0.02)
        self.legend_row.fit()
        self._show_summary(result, parts)

    def _show_summary(self, result, parts: list[str]) -> None:
        """The header: the set-up, the leader and each run's end."""
        lead = result.leader()
        if lead is None:
            verdict = "<b>every run diverged</b>: lower the learning rate"
        else:
            verdict = (
                f"lowest validation loss after {lead[1]:,} samples: "
                f"<b>{_label(lead[0], result.n_train)}</b> ({fmt(lead[2])})"
            )
        start = (
            "the live network's current weights"
            if result.start == "current"
            else f"fresh initial weights (seed {self._seed()})"
        )
        so_far = "" if result.complete else " <i>(runs finished so far)</i>"
        thinned = (
            " · paths drawn through fewer stored points than the curves (a network this "
            "large is not kept at every step)"
            if result.thinned
            else ""
        )
        self.info.set_text(
            f"<b>{'-'.join(map(str, result.layer_sizes))}</b>, {result.optimizer}, "
            f"learning rate <b>{result.lr:g}</b>, every run from {start}; every run sees the "
            f"same <b>{result.samples_budget:,} samples</b> ({result.epochs:g} epochs of "
            f"{result.n_train:,}), so B = 1 takes {result.samples_budget:,} steps and the full "
            f"batch {int(np.ceil(result.epochs)):,} · {verdict}{so_far}<br>"
            + " · ".join(parts)
            + thinned
        )

    def has_complete_result(self) -> bool:
        """Every run finished and the surface computed (the paths are drawn on it)."""
        r = self.result
        return r is not None and r.complete and r.Z.size > 0 and bool(r.runs)

    def draw_growing(self, result, fraction: float) -> None:
        """The race from the common start to ``fraction`` of it: every run at the same
        fraction of its samples."""
        for k, run in enumerate(result.runs[: len(RUN_COLOURS)]):
            self._grow_run(k, run, fraction, result.samples_budget)

    def _grow_run(self, k: int, run, fraction: float, budget: int) -> None:
        """Run ``k`` drawn up to ``fraction`` of its samples: its path (by stored points)
        and its loss curves (the evaluations at no more samples)."""
        path = run.path
        if len(path):
            m = max(1, int(np.ceil(len(path) * fraction)))
            self.paths[k].setData(path[:m, 0], path[:m, 1])
            self.ends[k].setData([path[m - 1, 0]], [path[m - 1, 1]])
        curves, samples = curves_of(run)
        shown = samples <= fraction * budget + 1e-9
        for curve, (x, y) in zip(self.curves[k], curves):
            curve.setData(x[shown], y[shown])

    def _seed(self) -> int:
        return self._context().config.seed if self._context else 0
