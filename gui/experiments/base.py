"""The common shape of an experiment tab: a Run button, a progress bar, a Cancel button, a
status line, and a pyqtgraph canvas that draws the result.

The computation runs in a daemon ``threading.Thread``, not a QThread: a QThread object
destroyed while its thread still runs aborts the whole process ("QThread: Destroyed while
thread ... is still running"), which closing the window mid-experiment once did, whereas a
daemon thread that has not yet seen its cancel flag simply ends with the process. The
experiments poll a thread-safe cancel flag between small pieces of work (at most ~0.3 s at
2048,2048 hidden units, ``benchmarks/bench_cancel.py``), so Cancel and closing the window
stop them within half a second; ``shutdown`` waits at most the time it is given.
Results come back as queued signals of an ``ExperimentRunner`` QObject living in the GUI
thread.

Starting never blocks the window: an experiment that needs the live weights asks the engine
for them (``Context.fetch_params``) and says "waiting for the engine" until they arrive as a
message. Subclasses implement ``compute(context, progress, cancel, quick, partial)`` (pure
NumPy, worker thread; returns a result or None if cancelled; may pass results so far to
``partial``) and ``draw(result)`` (GUI thread), plus ``table()`` for CSV, and
``draw_growing(result, fraction)`` for the tab's animation (Export animation…: the finished
result growing, frame by frame, on its own axes held fixed; ``animation_frames``).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsTextItem,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.config import Config
from core.replies import ParamsCopy

from ..plots.base import ViewWidget
from ..record_control import export_animation_dialog

#: the smallest a plot panel (title and axes included) may become, px
PLOT_MIN = (160, 130)

#: how long an experiment waits for the engine's copy of the weights before starting from
#: fresh weights of the same shape (and saying so)
PARAMS_TIMEOUT_MS = 10_000


def shown_count(n: int, fraction: float) -> int:
    """How many of ``n`` things in order are shown at ``fraction`` (0 … 1) of an animation:
    none at 0, the first just after, the last at the end."""
    return min(n, max(0, math.ceil(fraction * n - 1e-9)))


def phase(fraction: float, start: float, end: float) -> float:
    """Where ``fraction`` of the whole animation is within its part from ``start`` to ``end``
    (0 before, 1 after)."""
    return min(1.0, max(0.0, (fraction - start) / (end - start)))


def show_head(item, x, y, fraction: float) -> None:
    """Draw the first ``shown_count(len(x), fraction)`` points of (x, y) in ``item`` (a
    curve or scatter): a curve grows along x, points appear in their order."""
    m = shown_count(len(x), fraction)
    item.setData(np.asarray(x)[:m], np.asarray(y)[:m])


@dataclass(frozen=True)
class Context:
    """What an experiment needs from the live window: the settings, the current weights (a
    copy, or None for fresh weights), and ways to reach the engine without blocking.

    fetch_params(callback) : asks the engine for a copy of the weights; ``callback`` gets a
        ``core.replies.ParamsCopy`` later, as a message in the GUI thread
    local_params() : a ParamsCopy of the session held in this process, at once (headless
        rendering, where that session is the one trained; nothing waits for the engine)
    pause_training() : pauses live training, returns the function that resumes it
    """

    config: Config
    params: Any = None
    n_in: int = 5
    n_out: int = 3
    fetch_params: Callable[[Callable[[Any], None]], None] | None = None
    local_params: Callable[[], ParamsCopy] | None = None
    pause_training: Callable[[], Callable[[], None]] | None = None

    def with_weights(self, got: ParamsCopy | None) -> Context:
        """This context with the engine's answer ``got`` applied, unless the network is about
        to be rebuilt to other sizes (then fresh weights)."""
        if got is None:
            return self
        sizes = got.layer_sizes
        if list(sizes[1:-1]) != list(self.config.hidden):
            return self
        return dataclasses.replace(self, params=got.params, n_in=sizes[0], n_out=sizes[-1])


class ExperimentRunner(QObject):
    """Runs ``fn(progress, cancel, partial)`` once in a daemon thread and reports back by
    signals (emitted from that thread, delivered queued in the GUI thread)."""

    progressed = Signal(int, int, str)
    partial = Signal(object)
    done = Signal(object)
    failed = Signal(str, str)

    def __init__(self, fn) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()
        self.thread: threading.Thread | None = None

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def start(self, name: str) -> None:
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> bool:
        """Wait at most ``timeout`` s for the thread; True if it has ended."""
        if self.thread is None:
            return True
        self.thread.join(max(0.0, timeout))
        return not self.thread.is_alive()

    def run(self) -> None:
        try:
            result = self._fn(
                lambda d, t, s: self.progressed.emit(d, t, s),
                self._cancel.is_set,
                self.partial.emit,
            )
        except Exception as e:  # reported in the tab; the window carries on
            self.failed.emit(f"{type(e).__name__}: {e}", traceback.format_exc())
            return
        self.done.emit(None if self._cancel.is_set() else result)


class FittedRow(pg.GraphicsWidget):
    """A row of a canvas's layout whose height follows its width (``_fit``, from
    ``self._width``); its minimum width is zero."""

    def __init__(self) -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(0)
        self._width = 400.0
        self._height = -1.0
        #: called when the row's height changed (its owner may need more room)
        self.height_changed: Callable[[], None] | None = None

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt's name)
        w = float(ev.newSize().width())
        if abs(w - self._width) > 0.5:
            self._width = w
            self._fit()

    def _fit(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def _set_height(self, h: float) -> None:
        changed = abs(h - self._height) > 0.5
        self._height = h
        self.setMinimumHeight(h)
        self.setMaximumHeight(h)
        self.setPreferredHeight(h)
        self.updateGeometry()
        if changed and self.height_changed is not None:
            self.height_changed()


class WrappedLabel(FittedRow):
    """Rich text that wraps to the width the layout gives it (a pyqtgraph LabelItem keeps one
    line and, when the line is longer than the view, widens the whole layout past the
    window's edge). Its height follows its text."""

    def __init__(self, html: str = "", size_pt: float = 9.5) -> None:
        super().__init__()
        self.item = QGraphicsTextItem(self)
        font = self.item.font()
        font.setPointSizeF(size_pt)
        self.item.setFont(font)
        self.item.setDefaultTextColor(pg.mkColor(pg.getConfigOption("foreground")))
        self.set_text(html)

    def set_text(self, html: str) -> None:
        self.item.setHtml(html)
        self._fit()

    def text(self) -> str:
        return self.item.toPlainText()

    def _fit(self) -> None:
        self.item.setTextWidth(max(40.0, self._width))
        self._set_height(float(self.item.boundingRect().height()))


class LegendRow(FittedRow):
    """A legend in a row of its own above the plots, so that it hides no data: as many
    entries side by side as the width holds (``self.legend``, a pyqtgraph LegendItem; call
    ``fit`` after changing its entries)."""

    def __init__(self, size_pt: str = "9pt") -> None:
        super().__init__()
        self.legend = pg.LegendItem(labelTextSize=size_pt, frame=False, horSpacing=5)
        self.legend.layout.setContentsMargins(4, 2, 4, 2)
        self.legend.setParentItem(self)
        self.legend.anchor(itemPos=(0.5, 0), parentPos=(0.5, 0))
        self._fit()

    def fit(self) -> None:
        self._fit()

    def _fit(self) -> None:
        legend = self.legend
        if not legend.items:
            self._set_height(0.0)
            return
        # the most columns whose width fits (entries fill the rows in turn)
        for cols in range(len(legend.items), 0, -1):
            legend.setColumnCount(cols)
            need = legend.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize)
            if need.width() <= self._width:
                break
        # the legend sizes itself from its items' last geometry: give it what they need
        legend.setGeometry(QRectF(0, 0, need.width(), need.height()))
        self._set_height(need.height())


class Canvas(ViewWidget):
    """The experiment's drawing area; exports like the live views."""

    def __init__(self, owner: ExperimentView) -> None:
        self._owner = owner
        super().__init__()
        self.setObjectName(owner.object_name)
        self.setToolTip(owner.help_text)

    def draw(self, snap) -> None:  # experiments draw results, not snapshots
        pass

    def table(self):
        return self._owner.table()

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(ev)
        if self._owner.built:  # the summary's height follows its width
            self._owner.fit_canvas()


class ExperimentView(QWidget):
    """A tab holding one experiment. ``self.canvas`` (objectName = ``object_name``) is the
    pyqtgraph layout to draw in; ``self.result`` the last result drawn (a partial one after
    a cancelled run that had finished some of its parts)."""

    object_name = ""
    file_stem = ""
    title = ""
    help_text = ""
    #: pause live training while it runs (it measures time)
    pauses_training = False
    #: what the exported animation shows (its button's tooltip)
    animation_tip = ""
    #: the animation button's objectName (default: ``object_name`` + "AnimationButton")
    animation_button_name = ""

    finished = Signal(object)

    def __init__(self, context_provider, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName(self.object_name + "Tab")
        self._context = context_provider
        self.result = None
        self._started = 0.0
        self._runner: ExperimentRunner | None = None  # the current or last run
        self._active = False  # from Run until the run reports back (or is cancelled)
        self._waiting = 0  # token of the weights request being waited for (0: none)
        self._token = 0
        self._resume: Callable[[], None] | None = None
        self._partial_drawn = False
        self._params_timer = QTimer(self)
        self._params_timer.setSingleShot(True)
        self._params_timer.timeout.connect(self._on_params_timeout)
        self._pending_ctx: Context | None = None
        self._pending_quick = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(self._make_bar())
        self.options = QHBoxLayout()
        lay.addLayout(self.options)
        lay.addWidget(self.status)
        self.built = False  # reflow only once build() has made the items
        self.canvas = Canvas(self)
        # Below the size its panels need to stay readable (the window's minimum size) the
        # canvas scrolls instead of squeezing the plots to strips or cutting them off.
        self.scroll = QScrollArea()
        self.scroll.setObjectName(self.object_name + "Scroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.canvas)
        lay.addWidget(self.scroll, 1)
        self.build(self.canvas)
        self.built = True
        for row in vars(self).values():  # a taller summary or legend needs a taller canvas
            if isinstance(row, FittedRow):
                row.height_changed = lambda: QTimer.singleShot(0, self.fit_canvas)
        self.fit_canvas()

    def _make_bar(self) -> QHBoxLayout:
        """Run, Cancel, the progress bar and Export animation (and the status line below)."""
        bar = QHBoxLayout()
        self.run_button = QPushButton(f"Run {self.title.lower()}")
        self.run_button.setObjectName(self.object_name + "RunButton")
        self.run_button.setToolTip(f"Run the experiment on the current settings. {self.help_text}")
        self.run_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName(self.object_name + "CancelButton")
        self.cancel_button.setToolTip("Stop the experiment; the last complete result stays.")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setObjectName(self.object_name + "Progress")
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setObjectName(self.object_name + "Status")
        self.status.setWordWrap(True)
        a = self.animation_button = QPushButton("Export &animation…")
        a.setObjectName(self.animation_button_name or self.object_name + "AnimationButton")
        a.setToolTip(f"Save the result as a clip (.mp4 or .gif): {self.animation_tip}")
        a.setEnabled(False)
        a.clicked.connect(lambda: export_animation_dialog(self, self.file_stem))
        for w in (self.run_button, self.cancel_button):
            bar.addWidget(w)
        bar.addWidget(self.progress, 1)
        bar.addWidget(a)
        return bar

    # ----------------------------------------------------------- to implement
    def build(self, canvas: pg.GraphicsLayoutWidget) -> None:  # pragma: no cover
        """Create the plot items once."""
        raise NotImplementedError

    def compute(self, context: Context, progress, cancel, quick: bool = False, partial=None):  # noqa: ARG002
        """The experiment itself (worker thread, no Qt). Returns a result or None."""
        raise NotImplementedError

    def draw(self, result) -> None:  # pragma: no cover
        raise NotImplementedError

    def reflow(self, width: int, height: int) -> None:
        """Rearrange the panels for a canvas of this size (fewer columns when narrow)."""

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(ev)
        if self.built:
            self.fit_canvas()

    def fit_canvas(self) -> None:
        """Arrange the panels for the room the tab has, then give the canvas the minimum size
        that arrangement needs (more than the room: the tab scrolls)."""
        if getattr(self, "_fitting", False):
            return
        self._fitting = True
        try:
            self._fit_canvas()
        finally:
            self._fitting = False

    def _fit_canvas(self) -> None:
        room = self.scroll.viewport().size()
        self.reflow(room.width(), room.height())
        ci = self.canvas.ci
        ci.layout.invalidate()
        need = ci.effectiveSizeHint(Qt.SizeHint.MinimumSize)
        self.canvas.setMinimumSize(
            max(260, int(need.width()) + 2), max(180, int(need.height()) + 2)
        )
        # a top-level layout grows to its minimum whenever that rises, and never shrinks
        # back on its own: keep it on the view
        ci.setGeometry(QRectF(self.canvas.viewport().rect()))

    def arrange(self, key, cells, col_stretch=(), row_stretch=()) -> None:
        """Put the canvas's items in the grid ``cells`` = [(item, row, col, rowspan, colspan)]
        (items created once; only their places change), unless ``key`` is the current
        arrangement. ``col_stretch`` / ``row_stretch``: stretch factor per column / row."""
        if getattr(self, "_arrangement", None) == key:
            return
        self._arrangement = key
        ci = self.canvas.ci
        for item in list(ci.items):
            ci.removeItem(item)
        grid = ci.layout
        for k in range(8):  # forget the last arrangement: its rows and columns now empty
            grid.setColumnStretchFactor(k, 0)
            grid.setRowStretchFactor(k, 0)
        for item, row, col, rowspan, colspan in cells:
            ci.addItem(item, row=row, col=col, rowspan=rowspan, colspan=colspan)
            if isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem):
                item.setMinimumSize(*PLOT_MIN)  # smaller is not readable: scroll instead
        for k, f in enumerate(col_stretch):
            grid.setColumnStretchFactor(k, f)
        for k, f in enumerate(row_stretch):
            grid.setRowStretchFactor(k, f)
        # pyqtgraph activates the layout at every addItem; while it was half built that
        # resized the layout to a bogus size (16777215 px wide): put it back on the view
        ci.setGeometry(QRectF(self.canvas.viewport().rect()))

    def uses_live_weights(self) -> bool:
        """Whether the experiment starts from the live weights (asked of the engine)."""
        return True

    def table(self) -> tuple[list[str], list[list]]:
        if self.result is None:
            return ["note"], [["not run yet"]]
        return self.result.table()

    # --------------------------------------------------------------- running
    def is_running(self) -> bool:
        """From Run until the result (or the cancellation) is reported."""
        return self._active

    def is_waiting_for_engine(self) -> bool:
        return self._waiting != 0

    def start(self, quick: bool = False) -> None:
        """Start the experiment; never blocks (the weights, if needed, come as a message)."""
        if self._active:
            return
        ctx = self._context()
        self._active = True
        self._partial_drawn = False
        self.run_button.setEnabled(False)
        self.animation_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._started = time.perf_counter()
        if self.pauses_training and ctx.pause_training is not None:
            self._resume = ctx.pause_training()
        if self.uses_live_weights() and ctx.fetch_params is not None:
            self._token += 1
            token = self._waiting = self._token
            self._pending_ctx, self._pending_quick = ctx, quick
            self.progress.setFormat("waiting for the engine…")
            self.status.setText(
                "waiting for the engine: a copy of the current weights arrives between two "
                "training steps"
            )
            self._params_timer.start(PARAMS_TIMEOUT_MS)
            ctx.fetch_params(lambda got: self._on_params(token, got))
            return
        self._launch(ctx, quick)

    def _on_params(self, token: int, got) -> None:
        if token != self._waiting:
            return  # cancelled meanwhile, or timed out
        self._waiting = 0
        self._params_timer.stop()
        self._launch(self._pending_ctx.with_weights(got), self._pending_quick)

    def _on_params_timeout(self) -> None:
        if not self._waiting:
            return
        self._waiting = 0
        self._launch(self._pending_ctx, self._pending_quick, note="the engine did not answer")

    def _launch(self, ctx: Context, quick: bool, note: str = "") -> None:
        self._pending_ctx = None
        runner = ExperimentRunner(
            lambda progress, cancel, partial: self.compute(ctx, progress, cancel, quick, partial)
        )
        queued = Qt.ConnectionType.QueuedConnection
        runner.progressed.connect(self._on_progress, queued)
        runner.partial.connect(self._on_partial, queued)
        runner.done.connect(self._on_done, queued)
        runner.failed.connect(self._on_failed, queued)
        self._runner = runner
        self.progress.setFormat("starting…")
        weights = (
            "from the current weights"
            if ctx.params is not None
            else "from fresh weights" + (f" ({note})" if note else "")
        )
        self.status.setText(f"running {weights}…")
        runner.start(self.object_name + "Thread")

    def cancel(self) -> None:
        """Ask the experiment to stop; it does within a fraction of a second."""
        if self._waiting:
            self._waiting = 0
            self._params_timer.stop()
            self._pending_ctx = None
            self._finish("cancelled before it started: the previous result is kept", None)
            return
        if self._runner is not None and self._active:
            self._runner.cancel()
            self.status.setText("cancelling…")

    def shutdown(self, timeout_s: float = 1.0) -> bool:
        """Cancel and wait at most ``timeout_s`` for the thread (window close); True if it
        ended. A thread still running is a daemon: it cannot hold the process open."""
        self._waiting = 0
        self._params_timer.stop()
        runner = self._runner
        if runner is None:
            return True
        runner.cancel()
        return runner.join(timeout_s)

    def run_blocking(self, quick: bool = True) -> str:
        """Compute in the calling thread and draw (headless export). Returns "" when done,
        else why it failed (said in the tab as a failed live run is; the previous result
        is kept)."""
        ctx = self._context()
        if self.uses_live_weights() and ctx.local_params is not None:
            ctx = ctx.with_weights(ctx.local_params())
        try:
            result = self.compute(ctx, lambda d, t, s: None, lambda: False, quick, None)
        except Exception as e:  # as ExperimentRunner does for a live run
            summary = f"{type(e).__name__}: {e}"
            self.status.setText(f"failed: {summary}")
            self.status.setToolTip(traceback.format_exc())
            return summary
        if result is not None:
            self.show_result(result)
        return ""

    def show_result(self, result) -> None:
        """Keep ``result`` and draw it; the animation can be exported once it is complete and
        no run is going on."""
        self.result = result
        self.draw(result)
        self.fit_canvas()
        self.animation_button.setEnabled(not self._active and self.has_complete_result())

    def _on_progress(self, done: int, total: int, text: str) -> None:
        if not self._active:
            return
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"%p %  {text}")

    def _on_partial(self, result) -> None:
        if not self._active or self._runner is None or self._runner.cancelled():
            return
        self._partial_drawn = True
        self.show_result(result)

    def _on_done(self, result) -> None:
        if result is None:
            kept = (
                "the parts finished before it stay drawn"
                if self._partial_drawn
                else "the previous result is kept"
            )
            self.progress.setFormat("cancelled")
            self._finish(f"cancelled: {kept}", None)
            return
        self.show_result(result)
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat("done")
        self._finish(f"done in {time.perf_counter() - self._started:.1f} s", result)

    def _on_failed(self, summary: str, details: str) -> None:
        self.status.setToolTip(details)
        self.progress.setFormat("failed")
        self._finish(f"failed: {summary}", None)

    def _finish(self, text: str, result) -> None:
        self.status.setText(text)
        if text.startswith("cancelled before"):
            self.progress.setFormat("cancelled")
        self._active = False
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.animation_button.setEnabled(self.has_complete_result())
        resume, self._resume = self._resume, None
        if resume is not None:
            resume()
        self.finished.emit(result)

    # ------------------------------------------------------------- animation
    def has_complete_result(self) -> bool:
        """Whether the last result is whole (not the part of a cancelled run)."""
        return self.result is not None and getattr(self.result, "complete", True)

    def draw_growing(self, result, fraction: float) -> None:  # pragma: no cover
        """Draw ``result`` as it stands at ``fraction`` (0 < fraction <= 1) of the animation,
        from the finished result (nothing is computed again); 1 shows all of it."""
        raise NotImplementedError

    def animation_frames(self, n_frames: int = 90):
        """Draw the result growing in ``n_frames`` frames (``draw_growing``), yielding the
        canvas after each, on the axes of the whole result (held meanwhile); the whole result
        is drawn again at the end, also when the clip stops early. Nothing without a
        complete result."""
        if not self.has_complete_result():
            return
        result = self.result
        held = []
        for item in self.canvas.ci.items:  # the whole result's axes, held while it grows
            if isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem):
                vb = item.getViewBox()
                held.append((vb, vb.autoRangeEnabled()))
                vb.disableAutoRange()
        # no new run (nor a second clip) may draw into the canvas while frames are taken
        self.run_button.setEnabled(False)
        self.animation_button.setEnabled(False)
        try:
            for f in range(1, n_frames + 1):
                self.draw_growing(result, f / n_frames)
                yield self.canvas
        finally:
            for vb, (x, y) in held:
                vb.enableAutoRange(x=x, y=y)
            self.show_result(result)
            self.run_button.setEnabled(not self._active)

    # ---------------------------------------------------------------- export
    def export_png(self, path: str) -> None:
        self.canvas.export_png(path)

    def export_svg(self, path: str) -> None:
        self.canvas.export_svg(path)

    def export_csv(self, path: str) -> None:
        self.canvas.export_csv(path)
