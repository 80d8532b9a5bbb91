"""The Record button: a clip of the window, of one view or of the tab on screen, in real time.

Pressing Record (``recordButton``, Ctrl+Shift+R) asks where to save (.mp4 or .gif, the folder
and format remembered in QSettings) and records until it is pressed again; the status bar
shows the elapsed time and the size written. A 30 Hz timer grabs the target on the window's
thread when the window has redrawn since the last frame (``QWidget.grab``: the widget painted
into a picture, whatever covers the window on screen; on the offscreen platform a copy of the
backing store) and hands the pixels to a ``BackgroundClip``, which encodes them in a thread of
its own (PyAV's x264 at the "ultrafast" preset, one thread: the other core stays with
training). A
frame carries its time, so the clip plays in real time even when a grab comes late; when the
encoder falls behind, frames are dropped, never queued without bound.

Each experiment tab's animation (its result growing: the batch-size race's paths on the
surface, the critical batch size's points then its fit, …) is written by
``record_animation`` from any view that has ``animation_frames`` (see
gui/experiments/base.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QImage
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QToolButton,
    QWidget,
)

from .recorder import BackgroundClip, ClipWriter, RecordError, clip_format, qimage_to_bgra

RECORD_FPS = 30
#: x264 for live recording: "ultrafast" encodes a 1600 x 1000 window frame in ~3 ms (the
#: default preset ~60 ms, "veryfast" ~4-25 ms); one thread leaves the other core to training
#: (benchmarks/bench_gui.py, section 9, measures the cost)
LIVE_PRESET = "ultrafast"
LIVE_THREADS = 1
#: while nothing is redrawn (paused), a frame at most this often (seconds)
IDLE_FRAME_S = 0.5
#: a GIF is held in memory until it is written (~0.25 MB a frame): it stops after this long
GIF_MAX_SECONDS = 60
FILTERS = {"mp4": "MP4 video, H.264 (*.mp4)", "gif": "GIF animation (*.gif)"}
STATUS_MS = 250  #: how often the elapsed time and size are refreshed


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


def default_folder() -> str:
    """The user's movies folder if it exists, else the home folder."""
    for loc in (QStandardPaths.StandardLocation.MoviesLocation,
                QStandardPaths.StandardLocation.HomeLocation):  # fmt: skip
        path = QStandardPaths.writableLocation(loc)
        if path and os.path.isdir(path):
            return path
    return os.path.expanduser("~")


def ask_clip_path(parent: QWidget, settings: Callable, stem: str) -> str | None:
    """A save dialog for a clip: ``<stem>-<date-time>.<last format>`` in the last folder; the
    choice is remembered. None if cancelled."""
    s = settings()
    folder = str(s.value("record/folder", "") or "") or default_folder()
    kind = str(s.value("record/format", "mp4") or "mp4")
    kind = kind if kind in FILTERS else "mp4"
    name = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.{kind}"
    order = [kind, *(k for k in FILTERS if k != kind)]
    path, chosen = QFileDialog.getSaveFileName(
        parent,
        "Record a clip",
        os.path.join(folder, name),
        ";;".join(FILTERS[k] for k in order),
    )
    if not path:
        return None
    if not Path(path).suffix:  # the filter names the format when the name does not
        path += "." + next((k for k, f in FILTERS.items() if f == chosen), kind)
    s.setValue("record/folder", os.path.dirname(os.path.abspath(path)))
    s.setValue("record/format", Path(path).suffix.lower().lstrip("."))
    return path


def fully_shown(widget: QWidget) -> bool:
    """True if no ancestor clips ``widget`` (a view scrolled partly out of sight is not:
    the backing store holds other widgets where it is hidden)."""
    top_left, w = QPoint(0, 0), widget
    while not w.isWindow() and w.parentWidget() is not None:
        top_left = w.mapToParent(top_left)
        w = w.parentWidget()
        if not w.rect().contains(QRect(top_left, widget.size())):
            return False
    return True


def grab_image(widget: QWidget, from_backing_store: bool) -> QImage:
    """The pixels of ``widget`` as shown. ``from_backing_store``: copy them from the window's
    backing store (QScreen.grabWindow: no repaint, ~2 ms for a 1600 x 1000 window), which is
    exact on the offscreen platform for a widget no ancestor clips; otherwise (and if that
    fails) ``QWidget.grab`` paints the widget again into a picture (as much work as a
    repaint, but right whatever covers the window on the desktop)."""
    if from_backing_store and fully_shown(widget):
        win = widget.window()
        screen = widget.screen()
        if screen is not None and win.windowHandle() is not None:
            pos = widget.mapTo(win, QPoint(0, 0)) if widget is not win else QPoint(0, 0)
            px = screen.grabWindow(win.winId(), pos.x(), pos.y(), widget.width(), widget.height())
            if not px.isNull() and px.width() >= widget.width():
                return px.toImage()
    return widget.grab().toImage()


def record_animation(
    frames: Iterator[QWidget], path: str, fps: int = RECORD_FPS, process_events: bool = True
) -> int:
    """Write one clip frame per item of ``frames`` (each a widget to grab once it is
    drawn); returns the number of frames. Raises RecordError."""
    n = 0
    with ClipWriter(path, fps) as clip:
        for widget in frames:
            if process_events:
                QApplication.processEvents()
            clip.add(qimage_to_bgra(widget.grab().toImage()))
            n += 1
    if n == 0:
        raise RecordError(f"{Path(path).name}: nothing to record")
    return n


def export_animation_dialog(view, stem: str, n_frames: int = 90) -> str | None:
    """Ask for a clip file and write ``view.animation_frames(n_frames)`` into it; the tab's
    status line says where (or why not). Returns the path written, or None."""
    from .config_files import settings

    path = ask_clip_path(view, settings, f"batchscope-{stem}")
    if not path:
        return None
    return export_animation(view, path, n_frames)


def export_animation(view, path: str, n_frames: int = 90) -> str | None:
    """Write ``view``'s animation to ``path``; one message on failure (None returned)."""
    try:
        n = record_animation(view.animation_frames(n_frames), path)
    except RecordError as e:
        view.status.setText(f"animation not written: {e}")
        show_record_error(view, str(e))
        return None
    view.status.setText(f"animation written: {path} ({n} frames)")
    return path


def show_record_error(parent: QWidget, text: str) -> QMessageBox:
    """One non-modal message; the window carries on behind it."""
    box = QMessageBox(
        QMessageBox.Icon.Warning, "Recording failed", text, QMessageBox.StandardButton.Ok, parent
    )
    box.setObjectName("recordErrorBox")
    box.setModal(False)
    box.show()
    return box


class RecordControl(QObject):
    """The Record button, its target menu, its shortcut and the status readout of a window.

    window : the QMainWindow; needs ``views`` ({name: view}) and ``tabs`` (QTabWidget)
    settings : callable returning the app's QSettings (folder and format remembered)

    The button and the readout go into the window's status bar; the menu's action
    (Ctrl+Shift+R, ``recordAction``) calls ``toggle`` and is given by ``bind_action``.
    """

    recordingChanged = Signal(bool)
    finished = Signal(str)  #: the path of a finished clip
    failed = Signal(str)  #: the one-line reason a recording failed

    def __init__(
        self,
        window,
        settings: Callable,
        fps: int = RECORD_FPS,
        preset: str | None = LIVE_PRESET,
        threads: int = LIVE_THREADS,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings
        self.fps = fps
        self._writer_kw = {"preset": preset, "threads": threads}
        self.clip: BackgroundClip | None = None
        self.path = ""
        self.target = "window"
        self._widget: QWidget | None = None
        self._t0 = 0.0
        self._last_pts = -1
        self._last_drawn: int | None = None  # window.redraw_count at the last frame
        self._last_frame_t = 0.0
        self._note = ""  #: said with the "recorded" message (why it stopped by itself)
        #: frames from the window's backing store (see grab_image); by default where that is
        #: exact: the offscreen platform (headless, tests, benchmarks)
        self.from_backing_store = QGuiApplication.platformName() == "offscreen"
        self.grab_ms: list[float] = []  #: window-thread time per frame grabbed (benchmarks)
        self.error_box: QMessageBox | None = None
        self._make_widgets()
        self._tick = QTimer(self)
        self._tick.setTimerType(Qt.TimerType.PreciseTimer)
        self._tick.setInterval(max(1, round(1000 / fps)))
        self._tick.timeout.connect(self._grab)
        self._status = QTimer(self)
        self._status.setInterval(STATUS_MS)
        self._status.timeout.connect(self._show_status)
        self._finishing = QTimer(self)
        self._finishing.setInterval(50)
        self._finishing.timeout.connect(self._check_finished)
        window.installEventFilter(self)

    # ------------------------------------------------------------------ widgets
    def _make_widgets(self) -> None:
        w = self.window
        self.action: QAction | None = None  # the menu's, given by bind_action
        tip = (
            "Record the window (or the view chosen in this button's menu) to .mp4 or .gif "
            "until pressed again (Ctrl+Shift+R)"
        )
        b = self.button = QToolButton()
        b.setObjectName("recordButton")
        b.setText("● Rec")
        b.setToolTip(tip)
        b.setCheckable(True)
        b.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        b.setAutoRaise(True)
        b.clicked.connect(self._on_clicked)
        menu = self.menu = QMenu("Record", b)
        menu.setObjectName("recordTargetMenu")
        group = QActionGroup(menu)
        self.target_actions: dict[str, QAction] = {}
        for key, label in self.targets():
            a = menu.addAction(label)
            a.setCheckable(True)
            a.setObjectName(f"recordTarget_{key}")
            a.setChecked(key == self.target)
            a.triggered.connect(lambda _=False, k=key: self.set_target(k))
            group.addAction(a)
            self.target_actions[key] = a
        b.setMenu(menu)
        self.label = QLabel("")
        self.label.setObjectName("recordStatusLabel")
        self.label.setVisible(False)
        sb = w.statusBar()
        sb.insertPermanentWidget(0, self.label)
        sb.insertPermanentWidget(0, b)

    def bind_action(self, action: QAction) -> None:
        """The menu's Record action (gui/actions.py): its text follows the recording."""
        self.action = action
        self._sync_button()

    def targets(self) -> list[tuple[str, str]]:
        """(key, menu label) of everything that can be recorded."""
        views = [(name, f"View: {view.title}") for name, view in self.window.views.items()]
        return [("window", "The whole window"), ("tab", "The tab on screen"), *views]

    def set_target(self, key: str) -> None:
        """What the next recording shows: "window", "tab" or a view's name."""
        if key not in self.target_actions:
            raise ValueError(f"unknown record target {key!r}")
        self.target = key
        self.target_actions[key].setChecked(True)

    def target_widget(self, key: str | None = None) -> QWidget:
        key = key or self.target
        if key == "window":
            return self.window
        if key == "tab":
            return self.window.tabs.currentWidget()
        return self.window.views[key]

    # ---------------------------------------------------------------- recording
    @property
    def recording(self) -> bool:
        return self.clip is not None and self._tick.isActive()

    def _on_clicked(self) -> None:
        self.toggle()

    def toggle(self) -> None:
        """Stop a recording, or ask where to save and start one."""
        if self.recording:
            self.stop()
        elif self.clip is None:  # not while the last clip is still being finished
            path = ask_clip_path(self.window, self.settings, f"batchscope-{self.target}")
            if path:
                self.start(path)
        self._sync_button()

    def start(self, path: str, target: str | None = None) -> bool:
        """Start recording ``target`` (default: the chosen one) to ``path``; False, with one
        message, if the file cannot be written."""
        if self.clip is not None:
            return False
        if target is not None:
            self.set_target(target)
        try:
            clip_format(path)
            self.clip = BackgroundClip(path, self.fps, **self._writer_kw)
        except RecordError as e:
            self._fail(str(e))
            return False
        self.path = path
        self._widget = self.target_widget()
        self._t0 = time.perf_counter()
        self._last_pts = -1
        self._last_drawn = None
        self._note = ""
        self.grab_ms = []
        self._grab()
        self._tick.start()
        self._status.start()
        self._show_status()
        self.label.setVisible(True)
        self._sync_button()
        self.recordingChanged.emit(True)
        return True

    def _grab(self) -> None:
        clip, widget = self.clip, self._widget
        if clip is None or widget is None:
            return
        if clip.error is not None:
            self.stop()
            return
        t = time.perf_counter()
        if clip.writer.kind == "gif" and t - self._t0 > GIF_MAX_SECONDS:
            self._note = f" (a GIF stops after {GIF_MAX_SECONDS} s: record .mp4 for longer)"
            self.stop()
            return
        pts = round((t - self._t0) * self.fps)
        if pts <= self._last_pts or not widget.isVisible() or widget.width() < 2:
            return
        # nothing redrawn since the last frame: the clip holds it (a frame now and then still
        # catches what the user changes while training is paused)
        drawn = getattr(self.window, "redraw_count", None)
        if drawn == self._last_drawn and t - self._last_frame_t < IDLE_FRAME_S:
            return
        frame = qimage_to_bgra(grab_image(widget, self.from_backing_store))
        if clip.put(frame, pts):
            self._last_pts = pts
            self._last_drawn, self._last_frame_t = drawn, t
        self.grab_ms.append((time.perf_counter() - t) * 1e3)

    def stop(self) -> None:
        """Stop grabbing; the file is finished in the encoder's thread (the status bar says
        when it is written)."""
        if self.clip is None or not self._tick.isActive():
            return
        self._tick.stop()
        self._status.stop()
        self.clip.finish()
        self.label.setText(f"saving {Path(self.path).name}…")
        self._finishing.start()
        self._sync_button()
        self.recordingChanged.emit(False)

    def wait(self, timeout: float = 10.0) -> bool:
        """Stop and wait until the file is written (closing the window, tests); True if it
        was (or nothing was recording)."""
        self.stop()
        deadline = time.monotonic() + timeout
        while self.clip is not None and time.monotonic() < deadline:
            if self.clip.done():
                self._check_finished()
            else:
                time.sleep(0.01)
        return self.clip is None

    def _check_finished(self) -> None:
        clip = self.clip
        if clip is None or not clip.done():
            return
        self._finishing.stop()
        self.clip = None
        try:
            clip.close(0)
        except RecordError as e:
            self._fail(str(e))
            return
        seconds = (clip.writer._last_pts + 1) / self.fps
        size = megabytes(os.path.getsize(self.path)) if os.path.exists(self.path) else "?"
        text = f"recorded {self.path}: {clock(seconds)}, {clip.frames} frames, {size}"
        if clip.dropped:
            text += f" ({clip.dropped} frames dropped: the encoder fell behind)"
        text, self._note = text + self._note, ""
        self.label.setVisible(False)
        self.window.statusBar().showMessage(text, 10000)
        self._sync_button()
        self.finished.emit(self.path)

    def _fail(self, text: str) -> None:
        self._tick.stop()
        self._status.stop()
        self._finishing.stop()
        if self.clip is not None:
            self.clip.finish()  # the thread ends by itself; nothing more to say
        self.clip = None
        self.label.setVisible(False)
        self.window.statusBar().showMessage(f"Recording failed: {text}", 10000)
        self.error_box = show_record_error(self.window, text)
        self._sync_button()
        self.failed.emit(text)

    def _show_status(self) -> None:
        clip = self.clip
        if clip is None:
            return
        if clip.error is not None:
            self._fail(clip.error)
            return
        elapsed = clock(time.perf_counter() - self._t0)
        size = clip.writer.size_bytes()
        written = megabytes(size) if size else f"{clip.frames} frames"
        self.label.setText(f"<b style='color:#c0392b'>●</b> REC {elapsed} · {written}")

    def _sync_button(self) -> None:
        on = self.recording
        self.button.setChecked(on)
        self.button.setText("■ Stop" if on else "● Rec")
        self.button.setEnabled(on or self.clip is None)
        if self.action is not None:
            self.action.setText("Stop &recording" if on else "&Record a clip…")

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if obj is self.window and event.type() == QEvent.Type.Close:
            self.wait()  # a clip being recorded is finished, not left broken
        return False
