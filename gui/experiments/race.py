"""Batch-size race tab: B = 1 (plain SGD), 8, 32 and the whole set, from the same start."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QLineEdit

from core.experiments.race import parse_batch_sizes, run_batch_race

from ..plots import style
from ..plots.axes import use_log_axes
from ..plots.base import fmt
from ..plots.surface_image import add_surface_image, show_surface
from .base import ExperimentView

RUN_COLOURS = (
    style.RED,
    style.ORANGE,
    style.BLUE,
    style.GREEN,
    style.PURPLE,
    style.SKY,
    style.BLACK,
    style.GREY,
)


def _label(B: int, n: int) -> str:
    if B == 1:
        return "B = 1 (plain SGD)"
    if B == n:
        return f"B = {n} (full batch)"
    return f"B = {B}"


class BatchRaceView(ExperimentView):
    object_name = "batchRacePlot"
    file_stem = "batch_race"
    title = "Batch-size race"
    help_text = (
        "The same initial weights and data trained with several batch sizes, each seeing the "
        "same number of samples. Per-sample updates (B = 1) zig-zag because single samples pull "
        "in different directions; the minibatch mean takes smoother steps; small batches can "
        "still get close in fewer samples."
    )

    def build(self, canvas) -> None:
        self.sizes_edit = QLineEdit("1, 8, 32, all")
        self.sizes_edit.setObjectName("batchRaceSizesEdit")
        self.sizes_edit.setToolTip(
            "Batch sizes to race, comma separated; 'all' = the whole "
            "training set. Press Enter or Run."
        )
        self.sizes_edit.returnPressed.connect(self.start)
        self.sizes_error = QLabel()
        self.sizes_error.setObjectName("batchRaceSizesError")
        self.sizes_error.setStyleSheet("color: #c0392b;")
        self.sizes_error.setVisible(False)
        lab = QLabel("&Batch sizes:")
        lab.setBuddy(self.sizes_edit)
        self.options.addWidget(lab)
        self.options.addWidget(self.sizes_edit, 1)
        self.options.addWidget(self.sizes_error, 2)
        self.info = canvas.addLabel(
            "Press Run to race.", row=0, col=0, colspan=3, justify="left", size="10pt"
        )
        s = self.surface_plot = canvas.addPlot(
            row=1, col=0, rowspan=3, title="Paths on one loss surface (PCA plane)"
        )
        s.setLabel("bottom", "principal direction 1")
        s.setLabel("left", "principal direction 2")
        self.image, self.colorbar = add_surface_image(canvas.ci, s, row=1, col=1, rowspan=3)
        s.addLegend(offset=(5, 5), labelTextSize="9pt")
        self.start_marker = pg.ScatterPlotItem(
            size=12, symbol="s", brush=pg.mkBrush("w"), pen=pg.mkPen("k")
        )
        s.addItem(self.start_marker)
        titles = (
            ("step", "loss vs steps"),
            ("samples seen", "loss vs samples seen"),
            ("training time (ms)", "loss vs wall time"),
        )
        self.curve_plots = []
        for r, (xlabel, title) in enumerate(titles):
            p = canvas.addPlot(row=1 + r, col=2, title=title)
            use_log_axes(p, x=True, y=True)
            p.setLabel("bottom", xlabel)
            p.setLabel("left", "val loss")
            p.showGrid(x=True, y=True, alpha=0.2)
            self.curve_plots.append(p)
        canvas.ci.layout.setColumnStretchFactor(0, 3)
        canvas.ci.layout.setColumnStretchFactor(2, 2)
        self.paths, self.curves = [], []
        for c in RUN_COLOURS:
            self.paths.append(s.plot([], [], pen=pg.mkPen(c, width=1.5)))
            self.curves.append(
                [p.plot([], [], pen=pg.mkPen(c, width=1.5)) for p in self.curve_plots]
            )

    def batch_sizes(self) -> tuple[int, ...] | None:
        n = self._context().config.train_size() if self._context else 0
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

    def compute(self, context, progress, cancel, quick: bool = False):
        sizes = parse_batch_sizes(self.sizes_edit.text(), context.config.train_size())
        return run_batch_race(
            context.config,
            sizes,
            params=context.params,
            quick=quick,
            progress=progress,
            cancel=cancel,
        )

    def draw(self, result) -> None:
        show_surface(self.image, self.colorbar, result.Z, result.alphas, result.betas)
        a, b = result.alphas, result.betas
        legend = self.surface_plot.legend
        legend.clear()
        for k in range(len(RUN_COLOURS)):
            self.paths[k].setData([], [])
            for c in self.curves[k]:
                c.setData([], [])
        parts = []
        for k, run in enumerate(result.runs[: len(RUN_COLOURS)]):
            label = _label(run.batch_size, result.n_train)
            self.paths[k].setData(run.path[:, 0], run.path[:, 1])
            legend.addItem(self.paths[k], label)
            ok = np.isfinite(run.val_loss) & (run.val_loss > 0)
            xs = (
                np.maximum(run.steps, 1),
                np.maximum(run.samples_seen, 1),
                np.maximum(1e3 * run.seconds, 1e-2),  # ms
            )
            for curve, x in zip(self.curves[k], xs):
                curve.setData(x[ok], run.val_loss[ok])
            end = f"{fmt(run.val_loss[-1])}" + (
                f" (diverged at {run.diverged_at})" if run.diverged_at else ""
            )
            parts.append(f"B={run.batch_size}: {int(run.steps[-1])} steps → val {end}")
        if result.runs:
            p0 = result.runs[0].path[0]
            self.start_marker.setData([p0[0]], [p0[1]])
        self.surface_plot.setRange(xRange=(a[0], a[-1]), yRange=(b[0], b[-1]), padding=0.02)
        lead = result.leader()
        verdict = (
            f"lowest validation loss after {lead[1]:,} samples: "
            f"<b>{_label(lead[0], result.n_train)}</b> ({fmt(lead[2])})"
            if lead is not None
            else "<b>every run diverged</b>: lower the learning rate"
        )
        self.info.setText(
            f"<b>{'-'.join(map(str, result.layer_sizes))}</b>: every run sees at least "
            f"{int(min(r.samples_seen[-1] for r in result.runs)):,} samples (the full batch "
            f"takes a minimum number of steps) · {verdict}<br>" + " · ".join(parts)
        )
