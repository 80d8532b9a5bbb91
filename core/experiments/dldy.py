"""The dL/dY misconception: averaging the output deltas before the backward pass.

A learner asked whether one may average the rows of the B x n_out matrix dL/dY into one
n_out-vector and backpropagate that. Stated exactly, the procedure computed here is:

1. delta_L = sum_i w_i dL_i/dY_i (n_out,): the reduction's weighted average of the rows
   (for ``mean`` the plain average row of d(scalar)/dY times B, i.e. the mean delta);
2. for each layer l from the top, with abar_{l-1} the batch mean of the layer's input
   activations and fbar' the batch mean of the hidden derivative f'(z_{l-1, i}):
   dW_l = outer(delta_l, abar_{l-1}),  db_l = delta_l,
   delta_{l-1} = (W_l^T delta_l) * fbar'_{l-1}.

It is not the gradient: the true backward pass multiplies *each* sample's delta by *its own*
activations, ``dW_l = sum_i w_i outer(delta_{l,i}, a_{l-1,i})``, and the mean of products is not
the product of means. With B = 1 the two coincide. Averaging the per-parameter per-sample
gradients instead (``w @ G``) is exactly the gradient, to round-off.

CSV (``MisconceptionResult.table``):
``step,cosine,relative_error,norm_true,norm_averaged_delta,max_abs_diff_per_sample_mean``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..data import MinibatchSampler, make_dataset
from ..gradstats import MATERIALISE_LIMIT_BYTES
from ..landscape import Plane, loss_grid, project_vectors
from ..losses import Objective, as_one_hot
from ..mlp import MLP
from ..optimizers import make_optimizer
from ..seeds import rng_for
from ..training import Evaluation, Trainer, objective_for
from .cancellation import CancelledError, check, grid_chunk_bytes

__all__ = ["MisconceptionResult", "averaged_delta_gradient", "run_misconception"]


def averaged_delta_gradient(
    net: MLP, X, T, loss: str = "mse", reduction: str = "mean", huber_delta: float = 1.0, **kw
) -> np.ndarray:
    """The (P,) "gradient" from backpropagating the averaged dL/dY row (module docstring)."""
    objective = Objective.of(loss, reduction, huber_delta=huber_delta, **kw)
    T = as_one_hot(T, net.n_out)
    inputs, Zs, Y = net._forward(X)
    _, red = objective.evaluate(Y, T)
    delta = red.weights @ objective.grad(Y, T, red.coefficients)  # (n_out,)
    g = np.empty(net.n_params)
    for k in range(len(net.layers) - 1, -1, -1):
        sl = net.slices[k]
        abar = inputs[k].mean(axis=0)
        g[sl.w_start : sl.w_stop] = np.outer(delta, abar).ravel()
        g[sl.b_start : sl.b_stop] = delta
        if k:
            Z = Zs[k - 1]
            fbar = net._act.derivative(Z, inputs[k], np.empty_like(Z)).mean(axis=0)
            delta = (net.layers[k][0].T @ delta) * fbar
    return g


@dataclass(frozen=True)
class MisconceptionResult:
    steps: np.ndarray
    cosine: np.ndarray
    relative_error: np.ndarray
    norm_true: np.ndarray
    norm_averaged: np.ndarray
    per_sample_diff: np.ndarray
    alphas: np.ndarray
    betas: np.ndarray
    Z: np.ndarray
    arrow_true: np.ndarray  #: (2,) -gradient in the plane
    arrow_averaged: np.ndarray  #: (2,) -averaged-delta "gradient" in the plane
    batch_size: int

    def table(self) -> tuple[list[str], list[list]]:
        header = [
            "step",
            "cosine",
            "relative_error",
            "norm_true",
            "norm_averaged_delta",
            "max_abs_diff_per_sample_mean",
        ]
        rows = [
            [
                int(self.steps[k]),
                f"{self.cosine[k]:.10g}",
                f"{self.relative_error[k]:.10g}",
                f"{self.norm_true[k]:.10g}",
                f"{self.norm_averaged[k]:.10g}",
                f"{self.per_sample_diff[k]:.3g}",
            ]
            for k in range(len(self.steps))
        ]
        return header, rows


def run_misconception(
    config: Config,
    params: np.ndarray | None = None,
    steps: int = 400,
    quick: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> MisconceptionResult | None:
    """Train a copy with the true gradient (``core.training.Trainer``: its divergence rule
    ends the run early) and compare the averaged-delta procedure with it along the way;
    finish with a loss surface through both directions. None if cancelled."""
    try:
        return _misconception(config, params, steps, quick, progress, cancel)
    except CancelledError:
        return None


class _Comparisons:
    """The recorded comparisons, made at the weights each step's gradient was taken at."""

    def __init__(self, net: MLP, data, objective, cancel) -> None:
        self.net, self.data, self.objective, self.cancel = net, data, objective, cancel
        self.rows: dict[str, list] = {k: [] for k in ("steps", "cos", "rel", "nt", "na", "ps")}
        self.last: tuple | None = None  #: (X, T, objective, g, ga) of the newest record

    def compare(self, step: int, ev: Evaluation) -> None:
        """The true gradient (the scalar's backward pass), the averaged-delta one and the
        weighted mean of the per-sample gradients on the step's batch."""
        net, idx = self.net, ev.idx
        X, T, kw = self.data.X_train[idx], self.data.T_train[idx], self.objective(idx)
        g = net.gradient(X, T, **kw)
        check(self.cancel)
        ga = averaged_delta_gradient(net, X, T, **kw)
        check(self.cancel)
        # the per-sample gradients themselves (B, P), then their weighted mean; the factored
        # combine is used only where G would be too large to hold
        w = ev.bp.reduced.weights
        if len(idx) * net.n_params * 8 <= MATERIALISE_LIMIT_BYTES:
            mean_of_samples = w @ ev.bp.per_sample()
        else:
            mean_of_samples = ev.bp.combine(w)
        nt, na = np.linalg.norm(g), np.linalg.norm(ga)
        for key, v in zip(
            self.rows,
            (
                step,
                float(g @ ga / max(nt * na, 1e-300)),
                float(np.linalg.norm(ga - g) / max(nt, 1e-300)),
                float(nt),
                float(na),
                float(np.max(np.abs(mean_of_samples - g))),
            ),
        ):
            self.rows[key].append(v)
        self.last = (X, T, kw, g, ga)


def _misconception(config, params, steps, quick, progress, cancel):
    data = make_dataset(config)
    net = MLP(config.layer_sizes(data.n_in, data.n_out), config.activation, seed=config.seed)
    if params is not None and params.shape == net.params.shape:
        net.params[...] = params
    if quick:
        steps = min(steps, 60)
    opt = make_optimizer(config.optimizer, net.n_params, config.lr, config.momentum)
    sampler = MinibatchSampler(data.n_train, rng_for(config.seed, "sampler"))
    trainer = Trainer(net, opt, sampler, data.X_train, data.T_train, objective_for(config, data))
    B = config.batch_size  # <= n_train: Config.validate
    every = max(1, steps // 100)
    rec = _Comparisons(net, data, trainer.objective, cancel)
    for step in range(steps + 1):
        check(cancel)  # every step: 0.03 s at 2048,2048 hidden units
        if progress is not None and step % max(1, steps // 20) == 0:
            progress(step, steps + 1, f"step {step}")
        due = step % every == 0 or step == steps
        with np.errstate(all="ignore"):
            result = trainer.step(
                B,
                step + 1,
                before_update=(lambda ev, k=step: rec.compare(k, ev)) if due else None,
                update=step < steps,
            )
        if result.diverged:
            trainer.diverge(result.undo_last)
            break
    if rec.last is None:
        return None
    out = _surface(net, config, rec.last, quick, cancel)
    if out is None:
        return None
    if progress is not None:
        progress(steps + 1, steps + 1, "done")
    arr = {k: np.asarray(v, dtype=float) for k, v in rec.rows.items()}
    return MisconceptionResult(
        arr["steps"], arr["cos"], arr["rel"], arr["nt"], arr["na"], arr["ps"], *out, B
    )


def _surface(net: MLP, config: Config, last: tuple, quick: bool, cancel):
    """(alphas, betas, Z, arrow_true, arrow_averaged) on the plane through the current weights
    spanned by the newest true gradient and the averaged-delta one; None if cancelled."""
    X, T, kw, g, ga = last
    d1 = g / max(np.linalg.norm(g), 1e-300)
    d2 = ga - (ga @ d1) * d1
    if np.linalg.norm(d2) < 1e-12 * max(np.linalg.norm(ga), 1e-300):
        r = rng_for(config.seed, "misconception_plane").normal(size=g.shape)
        d2 = r - (r @ d1) * d1
    d2 /= np.linalg.norm(d2)
    plane = Plane(net.params.copy(), d1, d2, "gradient vs averaged delta")
    span = max(20 * config.lr * max(np.linalg.norm(g), np.linalg.norm(ga)), 1e-3)
    out = loss_grid(
        net, X, T, plane, (0.0, 0.0), span, 21 if quick else 35,
        dtype=np.float32, chunk_bytes=grid_chunk_bytes(net.layer_sizes, len(X)),
        cancel=cancel, **kw,
    )  # fmt: skip
    if out is None:
        return None
    arrows = project_vectors(plane, np.stack([-g, -ga]))
    return (*out, arrows[0], arrows[1])
