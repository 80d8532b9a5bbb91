"""Batchscope's engine: a pure-NumPy MLP with scalar and per-sample gradients.

Never imports Qt: usable from a script or a notebook.

>>> from core import MLP
>>> net = MLP([5, 32, 32, 3], activation="tanh", seed=0)
"""

from .commands import RecomputeSurface, Reset, Update
from .config import Config, ConfigError
from .curvature import stability_limit, top_eigenvalue
from .mlp import MLP, HessianOperator
from .session import DivergedError, Session
from .snapshot import Snapshot

__all__ = [
    "MLP",
    "Config",
    "ConfigError",
    "DivergedError",
    "HessianOperator",
    "RecomputeSurface",
    "Reset",
    "Session",
    "Snapshot",
    "Update",
    "stability_limit",
    "top_eigenvalue",
]
