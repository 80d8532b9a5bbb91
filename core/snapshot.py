"""Snapshot: a frozen record of one training step, everything the window draws.

Snapshots cross from the worker thread to the GUI thread, so every array in one is read-only
(``flags.writeable = False``) and never written again by the session. ``run_id`` changes on a
reset or a network rebuild so the window can drop stale snapshots.

Arrays (B = batch size, O = outputs, P = parameters, K = parameters shown, N = path points):

* ``M`` (B, O) the current batch's loss matrix; ``per_sample_loss`` (B,) L_i;
  ``weights`` (B,) w_i with ``loss == weights @ per_sample_loss``;
  ``output_weights`` (O,) how a row of M becomes L_i (None for max, which picks the largest)
* ``dLdY`` (B, O) d(scalar)/dY: the matrix the backward pass of the scalar starts from (row i
  is w_i dL_i/dY_i; for mse with the mean, 2 (Y - T) / (O B)); the GUI shows it as O x B
* ``batch_noise`` the measured standard error of the mean gradient against B
  (``core.batch_noise.BatchNoise``, redone every few seconds; None before the first)
* ``grad_shown`` (K,) the gradient of the scalar loss (one backward pass) at parameters
  ``shown_index`` (K,); ``mean_shown`` (K,) sum_i w_i g_i from the per-sample gradients;
  ``band_lo``/``band_hi`` (K,) 10th/90th percentile of the per-sample values (None when the
  per-sample matrix is too large to hold)
* ``spread`` (B, 2) each g_i's components along the mean-gradient direction and the main
  direction of disagreement; ``spread_mean`` (2,)
* ``point`` (2,), ``path`` (N, 2): the current weights and the recent trajectory in the
  landscape plane; ``fan`` (B, 2) and ``arrow`` (2,): the per-sample gradients and the
  batch gradient in the plane's coordinates (as gradients: the step goes against them)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batch_noise import BatchNoise
from .config import Config
from .gradstats import GradStats
from .landscape import Surface
from .sharpness import Sharpness

__all__ = ["HISTORY_FIELDS", "History", "Snapshot", "freeze"]

#: the per-step columns of a History, in its field order
HISTORY_FIELDS = (
    "steps",
    "loss",
    "train_loss",
    "val_loss",
    "grad_norm",
    "noise_scale",
    "batch_size",
)


def freeze(a: np.ndarray | None) -> np.ndarray | None:
    """A read-only contiguous copy of ``a`` (or None)."""
    if a is None:
        return None
    out = np.array(a, dtype=np.float64 if a.dtype.kind == "f" else a.dtype, copy=True, order="C")
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class History:
    """Per-step records since the last reset (read-only views; NaN where not measured).

    steps (n,), loss (n,) the backpropagated scalar of each batch, val_loss (n,) and
    train_loss (n,) measured every ``eval_every`` steps, grad_norm (n,), noise_scale (n,) the
    training set's noise scale at the steps it was measured (``core.noise_scale``; NaN at the
    others, never inf), batch_size (n,). ``events``: (step, text) for changes of settings. Past
    ``core.history.MAX_ROWS`` rows, a row stands for several steps (their mean).
    """

    steps: np.ndarray
    loss: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    grad_norm: np.ndarray
    noise_scale: np.ndarray
    batch_size: np.ndarray
    events: tuple[tuple[int, str], ...] = ()
    start: int = 0  #: index of the first record (a part of a history, see core.remote)
    #: how many times a long record has merged its rows in pairs (see core.history)
    generation: int = 0

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Snapshot:
    """Everything the window needs for one step (see the module docstring for shapes)."""

    run_id: int
    step: int
    epoch: int
    samples_seen: int
    config: Config
    layer_sizes: tuple[int, ...]
    param_names: tuple[str, ...]
    param_bounds: tuple[int, ...]
    batch_size: int
    loss: float
    M: np.ndarray
    per_sample_loss: np.ndarray
    weights: np.ndarray
    output_weights: np.ndarray | None
    grad_norm: float
    stats: GradStats
    history: History
    train_loss: float
    val_loss: float
    seconds_per_step: float
    steps_per_second: float
    n_train: int = 0
    task: str = "regression"
    diverged: bool = False
    message: str = ""
    dLdY: np.ndarray | None = None
    batch_noise: BatchNoise | None = None
    #: the newest lambda_max on the session's fixed batch (``core.sharpness``), or None
    sharpness: Sharpness | None = None
    # --- detail (None in light snapshots) -------------------------------------------------
    detail: bool = False
    shown_index: np.ndarray | None = None
    grad_shown: np.ndarray | None = None
    mean_shown: np.ndarray | None = None
    band_lo: np.ndarray | None = None
    band_hi: np.ndarray | None = None
    max_abs_diff: float = float("nan")
    spread: np.ndarray | None = None
    spread_mean: np.ndarray | None = None
    plane_kind: str = ""
    point: np.ndarray | None = None
    off_plane: float = float("nan")
    path: np.ndarray | None = None
    fan: np.ndarray | None = None
    arrow: np.ndarray | None = None
    surface: Surface | None = None
    surface_id: int = 0  #: the id of ``surface`` (kept when a light copy drops the surface)
    surface_age_steps: int = 0
    #: wall seconds of training since the weights the surface was computed at (0 when the run
    #: has not stepped since; nan without a surface)
    surface_age_seconds: float = float("nan")

    @property
    def n_params(self) -> int:
        return self.param_bounds[-1]
