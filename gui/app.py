"""QApplication set-up and the interactive entry point."""

from __future__ import annotations

import signal
import sys

from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from core import Config, Session

from .plots import style


def make_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), with names for QSettings and the plot style."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("Batchscope")
    app.setApplicationName("Batchscope")
    app.setApplicationDisplayName("Batchscope")
    icon = style_icon()
    if icon is not None:
        app.setWindowIcon(icon)
    style.configure()
    if getattr(app, "garbage_collector", None) is None:
        # Python's cyclic collector runs whenever an allocation crosses a threshold, in any
        # thread, even inside a Qt call. Inside QObject::disconnect (which holds Qt's
        # signal-slot mutexes) it once freed a closed window's widgets, whose destructors
        # wanted the same mutex: the GUI hung for good (reproduced under the test suite).
        # pyqtgraph's GarbageCollector turns automatic collection off and collects on a
        # 0.5 s timer, in the GUI thread, between events: never inside Qt, never in a worker.
        app.garbage_collector = GarbageCollector(interval=0.5)
    return app


# Chatter of Qt's offscreen platform plugin about window-manager features it does not have;
# it means nothing to someone rendering pictures from the command line.
_OFFSCREEN_NOISE = ("This plugin does not support",)


def quiet_offscreen_messages() -> None:
    """Drop the offscreen plugin's "does not support ..." warnings; print the rest as Qt would.

    Only for the headless command line: the tests keep pytest-qt's own message capture.
    """

    def handler(mode: QtMsgType, context, message: str) -> None:
        if mode == QtMsgType.QtWarningMsg and message.startswith(_OFFSCREEN_NOISE):
            return
        print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def style_icon() -> QIcon | None:
    from .main_window import RESOURCES

    path = RESOURCES / "icon.svg"
    return QIcon(str(path)) if path.exists() else None


def run(config: Config | None = None, session: Session | None = None) -> int:
    """Open the window and train until it is closed; returns the exit status."""
    app = make_app()
    from .main_window import MainWindow

    window = MainWindow(config, session=session, run=True)
    window.show()
    # Ctrl+C in the terminal or a polite kill closes the window as the user would (settings
    # saved, engine stopped). Python runs signal handlers only between bytecodes, so a timer
    # gives the interpreter a moment every 200 ms while Qt's loop runs.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.close())
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(200)
    return app.exec()
