"""POSIX stop signals (SIGINT, SIGTERM, SIGHUP) delivered into Qt's event loop.

Python runs a signal handler only between bytecodes of the main thread, and the main thread
sits in Qt's C++ event loop, so a handler alone may wait until something else wakes Python
(and must not do real work anyway: it interrupts whatever was running). The usual remedy for
Qt: ``signal.set_wakeup_fd`` makes the interpreter's C-level handler write the signal's number
into a socket the moment it arrives; a ``QSocketNotifier`` on the other end wakes the event
loop, which emits ``received(signum)`` like any other event. The Python handler itself only
notes the signal.
"""

from __future__ import annotations

import signal
import socket

from PySide6.QtCore import QObject, QSocketNotifier, Signal

from core.remote import STOP_SIGNALS

__all__ = ["StopSignals"]


class StopSignals(QObject):
    """While installed, STOP_SIGNALS arrive as ``received(signum)`` in the GUI thread.

    Create and ``uninstall()`` in the main thread (Python's rule for signal handlers).
    ``first`` is the first signal received (0 if none), set the moment Python sees it.
    """

    received = Signal(int)

    def __init__(self, parent: QObject | None = None, signals=STOP_SIGNALS) -> None:
        super().__init__(parent)
        self.signals = tuple(signals)
        self.first = 0
        self._reader, self._writer = socket.socketpair()
        for s in (self._reader, self._writer):
            s.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._old = {sig: signal.signal(sig, self._note) for sig in self.signals}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._read)
        self.installed = True

    def _note(self, signum: int, frame) -> None:
        # No work here: the wake-up byte is already in the socket.
        if not self.first:
            self.first = signum

    def _read(self, *_) -> None:
        try:
            data = self._reader.recv(256)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            if signum in self.signals:
                if not self.first:
                    self.first = signum
                self.received.emit(signum)

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
