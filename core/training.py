"""One training step, the same for the live session and every experiment.

A step is: draw a minibatch (``MinibatchSampler``), forward and backward pass at the current
weights (the reduced scalar and its gradient), the divergence rule, the optimiser's update.
``Trainer.step`` does them in that order; what differs between its users is passed in:

* ``evaluate(idx)``: the forward and backward pass (default ``Trainer.evaluate``: one
  ``net.backprop``). The session's also computes the gradient statistics and what the views
  draw; the batch-size race's goes in pieces so that Cancel is heard within a large batch.
  It returns anything with ``.loss`` (float) and ``.grad`` (P,).
* ``before_update(evaluation)``: work at the weights the gradient was taken at, once the rule
  has passed them (the session's noise-scale and sharpness measurements, the dL/dY
  experiment's comparisons).

The divergence rule (``DivergenceRule``), one for the whole engine. A step diverges when

1. the minibatch loss or its gradient is not finite, or the loss exceeds ``DIVERGENCE_FACTOR``
   (1e8) times its reference, the first finite loss since the run (or its settings) began:
   the loss at the *current* weights blew up, so the update that led to them is undone
   (``Trainer.diverge(undo_last=True)``) and the run stops at the last weights whose loss
   was sane; or
2. the update itself makes a weight non-finite: that update is undone at once.

Either way the optimiser's state (momentum, Adam's moments) is cleared. The factor is the live
session's (1e8): a minibatch loss, unlike a mean over a fixed evaluation set, jumps between
batches (at B = 1 by orders of magnitude), so a lower factor stops healthy small-batch runs.

Example::

    opt = make_optimizer("sgd", net.n_params, 0.05)
    trainer = Trainer(net, opt, sampler, data.X_train, data.T_train, objective_for(config, data))
    for k in range(1, 101):
        result = trainer.step(32, k)
        if result.diverged:
            trainer.diverge(result.undo_last)
            break
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import Config
from .data import Dataset, MinibatchSampler
from .mlp import MLP, Backprop

__all__ = [
    "DIVERGENCE_FACTOR",
    "BatchObjective",
    "DivergenceRule",
    "Evaluation",
    "StepResult",
    "Trainer",
    "objective_for",
]

DIVERGENCE_FACTOR = 1e8  #: a loss this many times its reference counts as diverged


@dataclass(frozen=True)
class BatchObjective:
    """What a training batch's scalar is: ``objective(idx)`` gives the keyword arguments of
    ``net.loss/gradient/backprop`` for the training batch ``idx`` (B,): loss, reduction, Huber
    delta and, for the weighted reduction, the per-output weights (O,) and the batch's rows
    of the training set's sample weights (n_train,). (A class, not a closure: a session
    holding one is pickled to the engine process.)"""

    loss: str = "mse"
    reduction: str = "mean"
    huber_delta: float = 1.0
    output_weights: np.ndarray | None = None
    sample_weights: np.ndarray | None = None

    def __call__(self, idx: np.ndarray) -> dict:
        kw = {"loss": self.loss, "reduction": self.reduction, "huber_delta": self.huber_delta}
        if self.reduction == "weighted":
            kw["output_weights"] = self.output_weights
            kw["sample_weights"] = self.sample_weights[idx]
        return kw


def objective_for(config: Config, data: Dataset) -> BatchObjective:
    """The ``BatchObjective`` of ``config`` on the training set of ``data``."""
    if config.reduction != "weighted":
        return BatchObjective(config.loss, config.reduction, config.huber_delta)
    ow = np.asarray(config.output_weight_vector(data.n_out), dtype=np.float64)
    return BatchObjective(config.loss, "weighted", config.huber_delta, ow, data.weights_train)


@dataclass(frozen=True)
class Evaluation:
    """Batch ``idx`` (B,): its reduced loss and gradient (P,) at the current weights; ``bp``
    the factored pass that made them (None when computed in pieces)."""

    idx: np.ndarray
    loss: float
    grad: np.ndarray
    bp: Backprop | None = None


@dataclass(frozen=True)
class StepResult:
    """What one ``Trainer.step`` did.

    idx : (B,) the minibatch; evaluation : what ``evaluate`` returned (after
    ``before_update``); diverged : why the rule stopped the run ("" if it trained);
    undo_last : the loss at the current weights blew up, so the update before led there.
    """

    idx: np.ndarray
    evaluation: Any
    diverged: str = ""
    undo_last: bool = False


class DivergenceRule:
    """The engine's one divergence rule (module docstring): a verdict on a step's loss and
    gradient against ``factor`` times the reference loss. ``reference`` is the first finite
    loss seen since ``restart()`` (at least 1e-12); ``factor`` defaults to
    ``DIVERGENCE_FACTOR``."""

    def __init__(self, factor: float | None = None) -> None:
        self.factor = DIVERGENCE_FACTOR if factor is None else factor
        self.reference: float | None = None

    def restart(self) -> None:
        """Forget the reference: the next finite loss becomes it (new run or settings)."""
        self.reference = None

    def verdict(self, loss: float, grad: np.ndarray, step: int) -> str:
        """Why step ``step`` diverged, or "" if its loss and gradient (P,) are sane."""
        if self.reference is None and np.isfinite(loss):
            self.reference = max(abs(float(loss)), 1e-12)
        if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
            return f"the loss became {loss} at step {step}"
        if loss > self.factor * self.reference:
            return (
                f"the loss grew to {loss:.3g}, over {self.factor:.0e} times its value "
                f"when these settings began ({self.reference:.3g}), at step {step}"
            )
        return ""


class Trainer:
    """Sample, forward and backward, divergence rule, update (module docstring).

    net, optimizer, sampler : trained in place (public attributes: the session swaps the
        optimiser or sampler when settings change)
    X, T : (n, n_in), (n, n_out) the training rows the batch indices point into
    objective : idx -> keyword arguments of the net's loss API (``objective_for``)
    """

    def __init__(
        self,
        net: MLP,
        optimizer,
        sampler: MinibatchSampler,
        X: np.ndarray,
        T: np.ndarray,
        objective: Callable[[np.ndarray], dict],
        rule: DivergenceRule | None = None,
    ) -> None:
        self.net = net
        self.optimizer = optimizer
        self.sampler = sampler
        self.X, self.T = X, T
        self.objective = objective
        self.rule = DivergenceRule() if rule is None else rule
        self._before = net.params.copy()  #: the weights before the last update
        self._can_undo = False

    def evaluate(self, idx: np.ndarray) -> Evaluation:
        """Loss and gradient of training batch ``idx`` (B,) by one factored pass."""
        bp = self.net.backprop(self.X[idx], self.T[idx], **self.objective(idx))
        return Evaluation(idx, bp.reduced.value, bp.gradient(), bp)

    def step(
        self,
        batch: int | np.ndarray,
        step: int,
        evaluate: Callable[[np.ndarray], Any] | None = None,
        before_update: Callable[[Any], Any] | None = None,
        update: bool = True,
    ) -> StepResult:
        """One step: ``batch`` samples drawn from the sampler (or the given indices (B,)),
        ``evaluate``, the rule, ``before_update`` (whose non-None return replaces the
        evaluation) and, if ``update``, the optimiser's step. ``step`` numbers the step in
        messages. Nothing is undone here: on a verdict call ``diverge``."""
        idx = self.sampler.next(int(batch)) if np.isscalar(batch) else np.asarray(batch)
        ev = (self.evaluate if evaluate is None else evaluate)(idx)
        why = self.rule.verdict(ev.loss, ev.grad, step)
        if why:
            return StepResult(idx, ev, why, undo_last=True)
        if before_update is not None:
            ev = before_update(ev) or ev
        return StepResult(idx, ev, self.update(ev.grad, step) if update else "")

    def update(self, grad: np.ndarray, step: int) -> str:
        """The optimiser's update with gradient (P,); one that makes a weight non-finite is
        undone at once and its reason returned ("" after a good update)."""
        np.copyto(self._before, self.net.params)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: checked right here
            self.optimizer.step(self.net.params, grad)
        if np.all(np.isfinite(self.net.params)):
            self._can_undo = True
            return ""
        np.copyto(self.net.params, self._before)
        self._can_undo = False
        return f"the weights became infinite at step {step}"

    @property
    def can_undo(self) -> bool:
        """Whether the weights before the last update are still at hand."""
        return self._can_undo

    def diverge(self, undo_last: bool) -> bool:
        """The rule's consequences: undo the last update if ``undo_last`` (and it is at hand)
        and clear the optimiser's state. True if an update was undone."""
        undone = undo_last and self._can_undo
        if undone:
            np.copyto(self.net.params, self._before)
            self._can_undo = False
        self.optimizer.reset()
        return undone

    def restart(self, params: np.ndarray | None = None) -> None:
        """A new start (weights restored from elsewhere, or new settings): no update to undo,
        the rule's reference forgotten."""
        if params is not None:
            np.copyto(self.net.params, params)
        self._can_undo = False
        self.rule.restart()
