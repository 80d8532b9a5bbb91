"""Live tracking of the sharpness lambda_max on one fixed training batch (issue 12, section 1).

``SharpnessTracker`` measures lambda_max of the Hessian of the reduced loss on a batch fixed at
(re)start, warm-started from the previous eigenvector (``core.curvature.top_eigenpair``), at a
cadence chosen from measured times so that measuring costs about ``budget`` of training time,
as ``core.noise_scale.NoiseScaleTracker`` does: interval = ceil(seconds per measurement /
(budget x seconds per training step)). Each measurement is a frozen ``Sharpness`` carrying the
optimiser's stability limit (None for Adam) and the step it was measured at.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .cadence import Cadence
from .curvature import stability_limit, top_eigenpair

__all__ = ["COST_FRACTION", "MAX_INTERVAL", "TOL", "Sharpness", "SharpnessTracker"]

COST_FRACTION = 0.10  #: the share of training time tracking may take
MAX_INTERVAL = 1000  #: steps between measurements at most
TOL = 1e-4  #: relative tolerance of each (warm-started) measurement


@dataclass(frozen=True)
class Sharpness:
    """One measurement of lambda_max.

    lambda_max : float, largest Hessian eigenvalue of the reduced loss on the tracked batch
    stability_limit : float or None, the optimiser's limit on it then (None for Adam)
    step : int, the session's step count at the weights measured
    n_hvp : int, Hessian-vector products spent
    """

    lambda_max: float
    stability_limit: float | None
    step: int
    n_hvp: int


class SharpnessTracker:
    """The running lambda_max on one fixed batch of the training set.

    Call ``observe`` once per training step (before the update). It measures when due (the
    first step, then every ``interval`` steps) and returns the newest ``Sharpness``.

    Parameters
    ----------
    X : (b, n_in) float64, T : (b, n_out) or (b,) labels, the fixed batch
    budget : share of training time (default ``COST_FRACTION``)
    interval : a fixed number of steps between measurements instead (tests, benchmarks)
    tol : relative tolerance of each measurement
    clock : seconds, for the measurements' cost (a fake one in tests)
    """

    def __init__(
        self,
        X: np.ndarray,
        T: np.ndarray,
        budget: float = COST_FRACTION,
        interval: int | None = None,
        tol: float = TOL,
        clock=time.perf_counter,
    ) -> None:
        if not 0 < budget < 1:
            raise ValueError(f"the budget must be a share of training time in (0, 1), got {budget}")
        self.tol = tol
        self.cadence = Cadence(budget, interval, MAX_INTERVAL, clock)
        self.restart(X, T)

    # the cadence's figures, read by tests and benchmarks
    interval = property(lambda self: self.cadence.interval)
    seconds_measuring = property(lambda self: self.cadence.seconds_measuring)
    measurements = property(lambda self: self.cadence.measurements)

    def restart(self, X: np.ndarray, T: np.ndarray) -> None:
        """Forget the measurements (new batch, loss or network): measure at the next step."""
        self.X = np.asarray(X, dtype=np.float64)
        self.T = np.asarray(T)  # targets, or integer labels for cross_entropy
        self.current: Sharpness | None = None
        self.history: list[Sharpness] = []
        self._v: np.ndarray | None = None
        self.cadence.reset()

    def observe(
        self,
        step: int,
        net,
        loss_kw: dict,
        optimizer: str,
        lr: float,
        momentum: float = 0.9,
        last_step_seconds: float = 0.0,
    ) -> Sharpness | None:
        """Note one training step; measure if due. Returns the newest measurement.

        loss_kw : ``loss``, ``reduction`` and the rest as for ``net.hessian_operator``
        last_step_seconds : the whole previous training step, measuring included
        """
        if not self.cadence.due(last_step_seconds):
            return self.current
        t0 = self.cadence.clock()
        op = net.hessian_operator(self.X, self.T, **loss_kw)
        r = top_eigenpair(op, net.n_params, self._v, self.tol)
        self.cadence.measured(self.cadence.clock() - t0)
        if not np.isfinite(r.value):
            return self.current
        self._v = r.vector
        s = Sharpness(float(r.value), stability_limit(optimizer, lr, momentum), int(step), r.n_hvp)
        self.current = s
        self.history.append(s)
        return s

    def rows(self) -> list[tuple[int, float, float | None]]:
        """(step, lambda_max, stability_limit) per measurement, for ``curvature.csv``."""
        return [(s.step, s.lambda_max, s.stability_limit) for s in self.history]
