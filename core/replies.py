"""What the engine says back to the window (``core.remote``): one small frozen dataclass per
kind of message, dispatched on its type (``core.commands`` holds the other direction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .snapshot import Snapshot

__all__ = [
    "SnapshotReady",
    "Notes",
    "CommandFailed",
    "StateChanged",
    "EngineError",
    "SurfaceBusy",
    "ParamsCopy",
    "Checkpoint",
    "Stopped",
    "Ended",
    "Reply",
    "ENGINE_STATES",
]

#: the states the engine reports
ENGINE_STATES = ("running", "paused", "diverged")


@dataclass(frozen=True)
class SnapshotReady:
    """A snapshot (light while in the pipe: see ``core.remote.SnapshotMirror``)."""

    snapshot: Snapshot


@dataclass(frozen=True)
class Notes:
    """Short texts for the status bar ("network rebuilt: ...")."""

    texts: tuple[str, ...]


@dataclass(frozen=True)
class CommandFailed:
    """A settings command was refused (``ConfigError``'s field and message); nothing changed."""

    field: str
    message: str


@dataclass(frozen=True)
class StateChanged:
    """The engine's state: one of ``ENGINE_STATES``."""

    state: str


@dataclass(frozen=True)
class EngineError:
    """An unexpected exception in the engine (the run pauses with its state kept)."""

    summary: str
    details: str


@dataclass(frozen=True)
class SurfaceBusy:
    """A loss surface is being computed (``busy``) or is done."""

    busy: bool


@dataclass(frozen=True)
class ParamsCopy:
    """The answer to ``RequestParams``: the layer sizes and a copy of the weights.

    layer_sizes : (n_in, hidden..., n_out)
    params : (P,) float64, the flat parameter vector
    """

    layer_sizes: tuple[int, ...]
    params: np.ndarray


@dataclass(frozen=True)
class Checkpoint:
    """What a new engine needs to carry on (``Session.training_state()``, with
    ``commands_applied``: the settings commands applied so far)."""

    state: dict


@dataclass(frozen=True)
class Stopped:
    """The engine's loop ended as asked (``core.commands.Stop``)."""


@dataclass(frozen=True)
class Ended:
    """Parent side only: the engine's process has ended (``how``: 'killed by SIGKILL', ...)."""

    how: str


Reply = (
    SnapshotReady
    | Notes
    | CommandFailed
    | StateChanged
    | EngineError
    | SurfaceBusy
    | ParamsCopy
    | Checkpoint
    | Stopped
    | Ended
)
