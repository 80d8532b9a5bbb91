"""Requests to the engine: what the window asks of a training session.

Settings commands (``Update``, ``Reset``, ``RecomputeSurface``) are applied by
``Session.apply`` between two steps, which returns the messages to show. Run control
(``Run``, ``Step``, ``Stop``) and ``RequestParams`` are handled by the engine's loop
(``core.remote``). All are small frozen dataclasses, so they can be queued from the GUI
thread, pickled to the engine's process and dispatched on their type; the engine answers
with the messages of ``core.replies``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Command",
    "Update",
    "Reset",
    "RecomputeSurface",
    "Run",
    "Step",
    "Stop",
    "RequestParams",
    "Request",
]


@dataclass(frozen=True)
class Update:
    """Change some settings (Config field names), e.g. ``Update({"batch_size": 8})``."""

    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reset:
    """Start the run again from fresh weights (same settings); clears the history."""


@dataclass(frozen=True)
class RecomputeSurface:
    """Recentre the landscape plane on the current weights and recompute the surface."""


@dataclass(frozen=True)
class Run:
    """Train continuously (``running=True``) or pause."""

    running: bool


@dataclass(frozen=True)
class Step:
    """Train on ``n`` more minibatches, then stay paused (each step's snapshot is sent)."""

    n: int = 1


@dataclass(frozen=True)
class Stop:
    """End the engine's loop (it answers ``core.replies.Stopped``)."""


@dataclass(frozen=True)
class RequestParams:
    """Ask for a copy of the weights, taken between two steps (answer:
    ``core.replies.ParamsCopy``)."""


#: the settings commands: applied by ``Session.apply`` and counted by the checkpoints
Command = Update | Reset | RecomputeSurface
#: anything the window sends to the engine
Request = Update | Reset | RecomputeSurface | Run | Step | Stop | RequestParams
