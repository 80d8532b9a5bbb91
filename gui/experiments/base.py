"""The common shape of an experiment tab: a Run button, a progress bar, a Cancel button, a
status line, and a pyqtgraph canvas that draws the result.

The computation runs in its own QThread (``ExperimentRunner``), so the window and the live
training stay responsive; it polls a thread-safe cancel flag between pieces of work.
Subclasses implement ``compute(context, progress, cancel)`` (pure NumPy, called in the worker
thread, returns a result or None if cancelled) and ``draw(result)`` (GUI thread), plus
``table()`` for CSV.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.config import Config

from ..plots.base import ViewWidget


@dataclass(frozen=True)
class Context:
    """What an experiment needs from the live window: the settings and the current weights
    (a copy, or None for a fresh network)."""

    config: Config
    params: Any = None
    n_in: int = 5
    n_out: int = 3


class ExperimentRunner(QObject):
    """Runs ``fn(progress, cancel)`` once in a QThread and reports back by signals."""

    progressed = Signal(int, int, str)
    done = Signal(object)
    failed = Signal(str, str)

    def __init__(self, fn) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(lambda d, t, s: self.progressed.emit(d, t, s), self._cancel.is_set)
        except Exception as e:  # reported in the tab; the window carries on
            self.failed.emit(f"{type(e).__name__}: {e}", traceback.format_exc())
            return
        self.done.emit(result)


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


class ExperimentView(QWidget):
    """A tab holding one experiment. ``self.canvas`` (objectName = ``object_name``) is the
    pyqtgraph layout to draw in; ``self.result`` the last result."""

    object_name = ""
    file_stem = ""
    title = ""
    help_text = ""

    finished = Signal(object)

    def __init__(self, context_provider, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName(self.object_name + "Tab")
        self._context = context_provider
        self.result = None
        self._started = 0.0
        self._thread: QThread | None = None
        self._runner: ExperimentRunner | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        self.run_button = QPushButton(f"Run {self.title.lower()}")
        self.run_button.setObjectName(self.object_name + "RunButton")
        self.run_button.setToolTip(f"Run the experiment on the current settings. {self.help_text}")
        self.run_button.clicked.connect(self.start)
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
        for w in (self.run_button, self.cancel_button):
            bar.addWidget(w)
        bar.addWidget(self.progress, 1)
        lay.addLayout(bar)
        self.options = QHBoxLayout()
        lay.addLayout(self.options)
        lay.addWidget(self.status)
        self.canvas = Canvas(self)
        lay.addWidget(self.canvas, 1)
        self.build(self.canvas)

    # ----------------------------------------------------------- to implement
    def build(self, canvas: pg.GraphicsLayoutWidget) -> None:  # pragma: no cover
        """Create the plot items once."""
        raise NotImplementedError

    def compute(self, context: Context, progress, cancel, quick: bool = False):  # noqa: ARG002
        """The experiment itself (worker thread, no Qt). Returns a result or None."""
        raise NotImplementedError

    def draw(self, result) -> None:  # pragma: no cover
        raise NotImplementedError

    def table(self) -> tuple[list[str], list[list]]:
        if self.result is None:
            return ["note"], [["not run yet"]]
        return self.result.table()

    # --------------------------------------------------------------- running
    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, quick: bool = False) -> None:
        if self._thread is not None:
            return
        ctx = self._context()
        runner = ExperimentRunner(lambda p, c: self.compute(ctx, p, c, quick))
        thread = QThread()
        thread.setObjectName(self.object_name + "Thread")
        runner.moveToThread(thread)
        thread.started.connect(runner.run)
        runner.progressed.connect(self._on_progress)
        runner.done.connect(self._on_done)
        runner.failed.connect(self._on_failed)
        runner.done.connect(thread.quit)
        runner.failed.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._runner = thread, runner
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setFormat("starting…")
        self.status.setText("running…")
        self._started = time.perf_counter()
        thread.start()

    def cancel(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            self.status.setText("cancelling…")

    def shutdown(self, timeout_ms: int = 3000) -> None:
        """Cancel and wait for the thread (window close)."""
        thread = self._thread
        if thread is not None:
            self._runner.cancel()
            thread.quit()
            thread.wait(timeout_ms)

    def run_blocking(self, quick: bool = True) -> None:
        """Compute in the calling thread and draw (headless export)."""
        result = self.compute(self._context(), lambda d, t, s: None, lambda: False, quick)
        if result is not None:
            self.result = result
            self.draw(result)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"%p %  {text}")

    def _on_done(self, result) -> None:
        if result is None:
            self.status.setText("cancelled: the previous result is kept")
            self.progress.setFormat("cancelled")
        else:
            self.result = result
            self.draw(result)
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat("done")
            self.status.setText(f"done in {time.perf_counter() - self._started:.1f} s")
        self.finished.emit(result)

    def _on_failed(self, summary: str, details: str) -> None:
        self.status.setText(f"failed: {summary}")
        self.status.setToolTip(details)
        self.progress.setFormat("failed")
        self.finished.emit(None)

    def _on_thread_finished(self) -> None:
        self._thread = None
        self._runner = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    # ---------------------------------------------------------------- export
    def export_png(self, path: str) -> None:
        self.canvas.export_png(path)

    def export_svg(self, path: str) -> None:
        self.canvas.export_svg(path)

    def export_csv(self, path: str) -> None:
        self.canvas.export_csv(path)
