"""Commands: what the controls ask of a session, applied between two steps.

They are small frozen dataclasses so they can be queued from the GUI thread and read by the
worker thread; ``Session.apply`` carries them out and returns the messages to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Command", "Update", "Reset", "RecomputeSurface"]


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


Command = Update | Reset | RecomputeSurface
