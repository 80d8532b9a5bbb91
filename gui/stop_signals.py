"""POSIX stop signals (SIGINT, SIGTERM, SIGHUP) delivered into Qt's event loop.

Python runs a signal handler only between bytecodes of the main thread, and the main thread
may sit in Qt's C++ event loop, so a handler alone can wait until something else wakes Python
(and must not do real work anyway: it interrupts whatever was running). The usual remedy for
Qt, used here: ``signal.set_wakeup_fd`` makes the interpreter's C-level handler write a byte
into a socket the moment a signal arrives, and a ``QSocketNotifier`` on the other end wakes
an idle event loop, which runs Python, which runs the handler.

The handler itself only notes the signal and posts a high-priority event to this object
(``QCoreApplication.postEvent`` is thread-safe and calls no Python, so it is safe between two
bytecodes of any Python code); the event emits ``received(signum)``. When the window is busy
drawing (its Python code runs all the time then), the handler runs within microseconds and
the event comes right after the current event handler, instead of after the socket is polled
again (measured: up to ~2 s later on a loaded machine, frames of 100-300 ms each).
"""

from __future__ import annotations

import signal
import socket

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSocketNotifier, Qt, Signal

from core.remote import STOP_SIGNALS

__all__ = ["StopSignals"]


class StopSignals(QObject):
    """While installed, STOP_SIGNALS arrive as ``received(signum)`` in the GUI thread.

    Create and ``uninstall()`` in the main thread (Python's rule for signal handlers).
    ``first`` is the first signal received (0 if none), set the moment Python sees it.
    ``early``: called with the signal number *instead* while it is set (the app sets it
    until its event loop runs: before that there is no window to close, so it ends at once).
    """

    received = Signal(int)

    def __init__(self, parent: QObject | None = None, signals=STOP_SIGNALS) -> None:
        super().__init__(parent)
        self.signals = tuple(signals)
        self.first = 0
        self.early = None
        self._pending: list[int] = []
        self._event_type = QEvent.Type(QEvent.registerEventType())
        self._reader, self._writer = socket.socketpair()
        for s in (self._reader, self._writer):
            s.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._old = {sig: signal.signal(sig, self._note) for sig in self.signals}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self.installed = True

    def _note(self, signum: int, frame) -> None:
        """The Python-level handler: note, and post an event. No other work here."""
        if not self.first:
            self.first = signum
        if self.early is not None:
            self.early(signum)
            return
        self._pending.append(signum)
        QCoreApplication.postEvent(
            self, QEvent(self._event_type), Qt.EventPriority.HighEventPriority.value
        )

    def event(self, e: QEvent) -> bool:
        if e.type() == self._event_type:
            pending, self._pending = self._pending, []
            for signum in pending:
                self.received.emit(signum)
            return True
        return super().event(e)

    def _drain(self, *_) -> None:
        # Only wakes the loop (Python then runs _note); the bytes themselves are not needed.
        try:
            while self._reader.recv(256):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def uninstall(self) -> None:
        """Put back the previous handlers and wake-up fd; close the sockets."""
        if not self.installed:
            return
        self.installed = False
        self._notifier.setEnabled(False)
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._old_fd)
        self._reader.close()
        self._writer.close()
