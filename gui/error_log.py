"""The error log: unexpected errors, with their tracebacks, in a rotated file.

Where: ``QStandardPaths``' state location (on Linux ``~/.local/state/Batchscope/Batchscope``)
in ``logs/batchscope.log``; ``BATCHSCOPE_LOG_DIR`` names another folder (tests). At most
``MAX_BYTES`` per file and ``BACKUPS`` older files (``batchscope.log.1`` ...). The folder and
the file are created at the first entry, so a session without errors leaves nothing behind.

What: errors reported by the engine process (its traceback comes with the report), the
engine's unexpected ends and restarts, and, once ``install_hooks()`` has run (the window's
``gui.run`` does it), any uncaught exception in the window's process.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Signal

__all__ = ["ErrorLog", "log_folder", "error_log_of"]

LOG_NAME = "batchscope.log"
MAX_BYTES = 1_000_000
BACKUPS = 3


def log_folder() -> Path:
    """The folder for the log: BATCHSCOPE_LOG_DIR, else the platform's state (or, where
    there is none, local data) location + ``logs``."""
    env = os.environ.get("BATCHSCOPE_LOG_DIR")
    if env:
        return Path(env)
    for kind in (
        QStandardPaths.StandardLocation.StateLocation,
        QStandardPaths.StandardLocation.AppLocalDataLocation,
    ):
        where = QStandardPaths.writableLocation(kind)
        if where:
            return Path(where) / "logs"
    return Path(tempfile.gettempdir()) / "batchscope-logs"


class ErrorLog(QObject):
    """A rotated log file and the hooks that fill it.

    Signals
    -------
    errorLogged(str) : an uncaught exception's one-line summary (emitted from any thread;
        connect queued to show it)
    """

    errorLogged = Signal(str)

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__()
        self.folder = Path(folder) if folder is not None else log_folder()
        self.path = self.folder / LOG_NAME
        # A logger of its own: a second ErrorLog (a test's) does not write into this file,
        # and nothing reaches the root logger (or the terminal) through it.
        self.logger = logging.getLogger(f"batchscope.{id(self):x}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.handler: logging.Handler | None = None  # made at the first entry
        self._old_hooks = None

    def make_folder(self) -> Path:
        """Create the folder (at the first entry, or to show it); where that is impossible
        (no writable home), a temporary folder is better than no log."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            self.folder = Path(tempfile.mkdtemp(prefix="batchscope-logs-"))
            self.path = self.folder / LOG_NAME
        return self.folder

    def _write(self, level: int, text: str) -> None:
        if self.handler is None:
            self.make_folder()
            self.handler = logging.handlers.RotatingFileHandler(
                self.path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
            )
            self.handler.setFormatter(
                logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s")
            )
            self.logger.addHandler(self.handler)
        self.logger.log(level, "%s", text)
        self.handler.flush()

    # ------------------------------------------------------------------ entries
    def error(self, summary: str, details: str = "") -> None:
        """An error with its traceback (or other details) below the summary."""
        self._write(logging.ERROR, f"{summary}\n{details.rstrip()}" if details else summary)

    def warning(self, text: str) -> None:
        self._write(logging.WARNING, text)

    # -------------------------------------------------------------------- hooks
    def install_hooks(self) -> None:
        """Log uncaught exceptions (the GUI thread's, which PySide6 hands to sys.excepthook,
        and other threads') with their traceback, then let the previous hooks print them."""
        if self._old_hooks is not None:
            return
        self._old_hooks = (sys.excepthook, threading.excepthook)
        old_sys, old_thread = self._old_hooks

        def sys_hook(kind, value, tb) -> None:
            self._uncaught(kind, value, tb)
            old_sys(kind, value, tb)

        def thread_hook(args) -> None:
            self._uncaught(args.exc_type, args.exc_value, args.exc_traceback)
            old_thread(args)

        sys.excepthook = sys_hook
        threading.excepthook = thread_hook

    def uninstall_hooks(self) -> None:
        if self._old_hooks is not None:
            sys.excepthook, threading.excepthook = self._old_hooks
            self._old_hooks = None

    def _uncaught(self, kind, value, tb) -> None:
        if kind is None or issubclass(kind, (KeyboardInterrupt, SystemExit)):
            return
        summary = f"{kind.__name__}: {value}"
        details = "".join(traceback.format_exception(kind, value, tb))
        self.error(f"uncaught exception: {summary}", details)
        self.errorLogged.emit(summary)

    def close(self) -> None:
        self.uninstall_hooks()
        if self.handler is not None:
            self.logger.removeHandler(self.handler)
            self.handler.close()
            self.handler = None


def error_log_of(app) -> ErrorLog:
    """The application's error log (made at the first call; kept on the QApplication)."""
    log = getattr(app, "error_log", None)
    if log is None:
        log = app.error_log = ErrorLog()
    return log
