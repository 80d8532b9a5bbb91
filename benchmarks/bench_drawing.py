"""Drawing cost against a plain pyqtgraph scene, and the cost of recording (issue 13).

Used by bench_gui.py (sections 8 and 9), in its process and its run, so that the ratios are
measured under the same load:

- the reference: five plots with a 2,000-point curve each and a 41 x 41 image, 1,600 x 1,000,
  written the plain way (``plot.plot`` once, ``setData`` / ``setImage`` per frame, pyqtgraph's
  defaults otherwise), redrawn by a 33 ms timer. GUI-thread ms per redraw is the thread's CPU
  time per redraw (not inflated when another process takes the core), and also the wall time
  of the update plus the paint that follows;
- the window's figure is the same: the GUI thread's CPU per redraw over the live period;
- the replay: the same detailed snapshots drawn by the window's views, each frame followed by
  a frame of the reference, GUI-thread CPU per frame of each. Each frame's events are
  processed until a round paints nothing (``settle``): the reference repaints ~3.3 times per
  setData (its auto-ranges and axes follow the data, each change asking for another paint),
  and with one ``processEvents`` per frame more than half of those paints fell into the
  window's next frame and were charged to it (the ratio read 1.9 where it is ~0.93);
- recording: the window live with a Record running (target: the whole window, .mp4 at 30 fps
  in a temporary folder) against the window live without it, one after the other; and the
  window's training with its views not drawn at all ("undrawn": the engine, the worker and an
  idle GUI thread), which is the "bare" of the 85 % target.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer

REF_SIZE = (1600, 1000)
REF_POINTS = 2000
REF_GRID = 41
REF_PLOTS = 5


def thread_cpu() -> float:
    """CPU seconds of the calling thread."""
    return time.thread_time()


def spin(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(max(0, int(round(seconds * 1000))), loop.quit)
    loop.exec()


class _TimedLayout(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget whose paint events are timed."""

    def __init__(self) -> None:
        super().__init__()
        self.paint_ms: list[float] = []

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        t0 = time.perf_counter()
        super().paintEvent(ev)
        self.paint_ms.append((time.perf_counter() - t0) * 1e3)


class ReferenceScene:
    """Five plots of 2,000-point curves and a 41 x 41 image, redrawn the plain way."""

    def __init__(self, rng: np.random.Generator) -> None:
        w = self.widget = _TimedLayout()
        w.resize(*REF_SIZE)
        x = np.linspace(0.0, 10.0, REF_POINTS)
        self.x = x
        self.curves = []
        plots = []
        for k in range(REF_PLOTS):
            p = w.addPlot(row=k // 2, col=k % 2, title=f"plot {k + 1}")
            p.setLabel("bottom", "x")
            p.setLabel("left", "y")
            plots.append(p)
            self.curves.append(p.plot(x, np.zeros_like(x), pen="y"))
        self.image = pg.ImageItem()
        plots[0].addItem(self.image)
        # 16 frames of data to cycle through (random walks, a moving bump)
        self.ys = np.cumsum(rng.normal(size=(16, REF_PLOTS, REF_POINTS)), axis=2)
        g = np.linspace(-1, 1, REF_GRID)
        self.images = [
            np.exp(-((g[:, None] - 0.1 * np.sin(k)) ** 2 + g[None, :] ** 2) * 3)
            + 0.05 * rng.normal(size=(REF_GRID, REF_GRID))
            for k in range(16)
        ]
        self.frame = 0
        self.update_ms: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self.redraw)

    def redraw(self) -> None:
        t0 = time.perf_counter()
        k = self.frame % 16
        for c, y in zip(self.curves, self.ys[k]):
            c.setData(self.x, y)
        self.image.setImage(self.images[k])
        self.frame += 1
        self.update_ms.append((time.perf_counter() - t0) * 1e3)


@dataclass
class DrawCost:
    label: str
    redraws: int
    seconds: float
    cpu_ms_per_redraw: float
    wall_ms_per_redraw: float  # update + paint

    @property
    def redraws_per_s(self) -> float:
        return self.redraws / self.seconds


def measure_reference(seconds: float, rng: np.random.Generator) -> DrawCost:
    ref = ReferenceScene(rng)
    ref.widget.show()
    spin(0.3)  # first layout and paint
    ref.update_ms.clear()
    ref.widget.paint_ms.clear()
    n0 = ref.frame
    cpu0, t0 = thread_cpu(), time.perf_counter()
    ref.timer.start()
    spin(seconds)
    ref.timer.stop()
    spin(0.05)  # the paint after the last update
    dt, cpu = time.perf_counter() - t0, thread_cpu() - cpu0
    n = max(ref.frame - n0, 1)
    wall = (sum(ref.update_ms) + sum(ref.widget.paint_ms)) / n
    ref.widget.close()
    return DrawCost("plain pyqtgraph reference scene", n, dt, 1e3 * cpu / n, wall)


def window_cost(label: str, period) -> DrawCost:
    """The window's figure from a bench_gui Period (GUI-thread CPU over the period)."""
    n = max(period.redraws, 1)
    wall = (period.draw_ms_total + period.paint_ms_total) / n
    return DrawCost(label, period.redraws, period.seconds, 1e3 * period.cpu["gui"] / n, wall)


class Undrawn:
    """While active, the window takes its snapshots but draws nothing (bench-only patch)."""

    def __init__(self, window) -> None:
        self.window = window

    def __enter__(self) -> Undrawn:
        timer = self.window.timer
        timer.timeout.disconnect()
        timer.timeout.connect(self._skip)
        return self

    def _skip(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        timer = self.window.timer
        timer.timeout.disconnect()
        timer.timeout.connect(self.window._redraw)


class Recording:
    """While active, the window's Record runs (the whole window, .mp4, 30 fps); frames from
    the backing store (the offscreen default) or by ``QWidget.grab`` (the desktop default)."""

    def __init__(self, window, target: str = "window", from_backing_store: bool = True) -> None:
        self.window = window
        self.target = target
        self.from_backing_store = from_backing_store
        self.folder = tempfile.mkdtemp(prefix="bench_record_")
        self.path = os.path.join(self.folder, "bench.mp4")
        self.frames = self.dropped = 0
        self.grab_ms: list[float] = []
        self.encoder_cpu = 0.0
        self.size = 0

    def __enter__(self) -> Recording:
        rec = self.window.recorder
        rec.from_backing_store = self.from_backing_store
        if not rec.start(self.path, self.target):
            why = self.window.statusBar().currentMessage()
            raise RuntimeError(f"recording did not start: {why}")
        return self

    def __exit__(self, *exc) -> None:
        rec = self.window.recorder
        clip = rec.clip
        self.grab_ms = list(rec.grab_ms)
        thread = clip._thread if clip is not None else None
        rec.wait(30.0)
        if clip is not None:
            self.frames, self.dropped = clip.frames, clip.dropped
        if os.path.exists(self.path):
            self.size = os.path.getsize(self.path)
        assert thread is None or not thread.is_alive()


def encoder_threads_cpu(proc) -> float:
    """CPU seconds of this process's threads other than the calling one (psutil)."""
    me = threading.get_native_id()
    return sum(t.user_time + t.system_time for t in proc.threads() if t.id != me)


def record_snapshots(config, n: int = 90, warm: int = 100) -> list:
    """``n`` detailed snapshots of a session trained in this process (a surface every 15
    steps when due), after ``warm`` steps: the same frames for every replay."""
    from core import Session

    s = Session(config)
    snaps = []
    for i in range(warm + 3 * n):
        if i % 15 == 0 and s.needs_surface():
            s.compute_surface()
        snap = s.step(detail=i % 3 == 0)
        if i >= warm and i % 3 == 0:
            snaps.append(snap)
    return snaps[:n]


@dataclass
class Replay:
    """GUI-thread CPU ms per frame of the window's views and of the reference, frames
    interleaved (one of each in turn, so that the machine's load weighs on both alike), and
    the paint events per frame of each."""

    frames: int
    window_ms: float
    reference_ms: float
    view_update_ms: dict
    window_paints: float = 0.0
    reference_paints: float = 0.0

    @property
    def ratio(self) -> float:
        return self.window_ms / self.reference_ms


class PaintCounter(QObject):
    """Counts the paint events the application delivers (an event filter on it)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt's name
        if ev.type() == QEvent.Type.Paint:
            self.n += 1
        return False


def settle(app, counter: PaintCounter, max_rounds: int = 10) -> int:
    """Process events until a round paints nothing: every paint a frame causes (a plain
    pyqtgraph scene repaints two or three times per setData as its ranges and axes follow)
    is charged to that frame, not to the next scene's. Returns the paints."""
    n0 = counter.n
    for _ in range(max_rounds):
        n = counter.n
        app.processEvents()
        if counter.n == n:
            break
    return counter.n - n0


def replay(window, snaps: list, rng: np.random.Generator, app) -> Replay:
    """Draw ``snaps`` in ``window``'s views (each view's ``show_snapshot`` as a frame of the
    live stream, which writes its text at most every ``LIVE_TEXT_INTERVAL``, then the event
    loop paints what changed) alternating with frames of the reference scene; the window's
    status bar and timers are not involved (the window should be paused)."""
    ref = ReferenceScene(rng)
    ref.widget.show()
    views = window.views
    upd = {name: 0.0 for name in views}
    counter = PaintCounter()
    app.installEventFilter(counter)
    paints = {"window": 0, "reference": 0}

    def window_frame(snap) -> float:
        t0 = thread_cpu()
        for name, v in views.items():
            t = thread_cpu()
            v.show_snapshot(snap, live=True)  # the running stream's frames
            upd[name] += thread_cpu() - t
        paints["window"] += settle(app, counter)
        return thread_cpu() - t0

    def reference_frame() -> float:
        t0 = thread_cpu()
        ref.redraw()
        paints["reference"] += settle(app, counter)
        return thread_cpu() - t0

    for snap in snaps[:5]:  # warm: first layouts, caches
        window_frame(snap)
        reference_frame()
    for name in upd:
        upd[name] = 0.0
    paints.update(window=0, reference=0)
    w_total = r_total = 0.0
    body = snaps[5:]
    for snap in body:
        w_total += window_frame(snap)
        r_total += reference_frame()
    app.removeEventFilter(counter)
    ref.widget.close()
    n = max(len(body), 1)
    per_view = {k: 1e3 * v / n for k, v in upd.items()}
    return Replay(
        n, 1e3 * w_total / n, 1e3 * r_total / n, per_view,
        paints["window"] / n, paints["reference"] / n,
    )  # fmt: skip
