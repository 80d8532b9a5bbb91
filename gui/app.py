"""QApplication set-up and the interactive entry point."""

from __future__ import annotations

import os
import signal
import sys
import threading

from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDialog

from core import Config, Session

from .error_log import error_log_of
from .plots import style
from .stop_signals import StopSignals


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
    from .config_files import RESOURCES

    path = RESOURCES / "icon.svg"
    return QIcon(str(path)) if path.exists() else None


def run(config: Config | None = None, session: Session | None = None) -> int:
    """Open the window and train until it is closed; returns the exit status.

    SIGINT, SIGTERM and SIGHUP close the window as Ctrl+Q does (settings saved, engine
    stopped); the process then ends by that signal's default action, so a shell, ``timeout``
    or a service manager sees what ended it. A second signal while closing, or a close that
    takes over ``FORCE_EXIT_S``, ends the process at once.
    """
    app = make_app()
    stop = StopSignals(app)
    # Until the event loop runs there is no window to close yet (the previous settings stay
    # as they were): a stop signal ends the process at once (its engine sees its end).
    stop.early = _end_by
    log = error_log_of(app)
    log.install_hooks()
    from .main_window import MainWindow

    window = MainWindow(config, session=session, run=True)
    window.show()

    def on_signal(signum: int) -> None:
        if ended_by:
            _end_by(signum)  # asked twice: now
        ended_by.append(signum)
        watchdog = threading.Timer(FORCE_EXIT_S, _end_by, (signum,))
        watchdog.daemon = True
        watchdog.start()
        for w in app.topLevelWidgets():  # a dialog's own event loop would keep us
            if isinstance(w, QDialog) and w.isVisible():
                w.reject()
        window.close()
        app.quit()

    ended_by: list[int] = []
    stop.received.connect(on_signal)
    stop.early = None  # from here on, a signal closes the window (queued until exec runs)
    status = app.exec()
    stop.uninstall()
    log.close()
    if ended_by:
        _end_by(ended_by[0])
    return status


#: a close asked for by a signal that takes longer than this ends the process at once
FORCE_EXIT_S = 5.0


def _end_by(signum: int) -> None:
    """End this process by ``signum``'s default action (after our own clean-up)."""
    if threading.current_thread() is not threading.main_thread():
        os._exit(128 + signum)  # the watchdog: handlers can only be changed in the main thread
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # not reached where the default action ends the process
