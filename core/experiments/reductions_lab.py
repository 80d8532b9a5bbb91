"""Reductions lab: the same loss matrix M made into a scalar five ways, and why a scalar at all.

On one minibatch and one set of weights:

* five reductions of the same M: ``mean``, ``sum``, ``max`` (the largest entry), ``weighted
  outputs`` (output 1 counts twice) and ``weighted samples`` (samples with x1 > 0 count twice).
  For each: the scalar, its gradient's norm and cosine with the mean's gradient, and its loss
  surface on one shared plane (filter-normalised random directions through the weights);
* sum vs mean: grad(sum) = B x grad(mean), so SGD on the sum with learning rate lr takes the
  same step as SGD on the mean with B x lr (both measured);
* why a scalar is needed: a cloud of nearby weights, each with its vector of per-output losses
  (L_1, L_2, L_3). Many pairs cannot be ordered (each is better on some output): the
  non-dominated (Pareto) ones are marked, and each reduction picks a different "best" point.

CSV (``ReductionsResult.table``): ``section,name,key,value`` rows; sections ``reduction``
(keys scalar, grad_norm, cosine_to_mean), ``sum_vs_mean`` (keys batch_size,
grad_ratio, max_abs_grad_diff, max_abs_step_diff), ``pareto`` (name = point index; keys
loss_output1.., pareto) and ``best`` (name = reduction; key point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..data import make_dataset
from ..landscape import loss_grid, project_vectors, random_plane
from ..mlp import MLP
from ..seeds import rng_for
from .cancellation import CancelledError, check, grid_chunk_bytes

__all__ = ["CASES", "ReductionsResult", "run_reductions_lab", "pareto_mask"]

CASES = ("mean", "sum", "max", "weighted outputs", "weighted samples")


@dataclass(frozen=True)
class ReductionsResult:
    names: tuple[str, ...]
    scalars: np.ndarray  #: (5,)
    grad_norms: np.ndarray  #: (5,)
    cosines: np.ndarray  #: (5,) with the mean's gradient
    arrows: np.ndarray  #: (5, 2) each gradient in the plane
    alphas: np.ndarray
    betas: np.ndarray
    surfaces: np.ndarray  #: (5, res, res)
    batch_size: int
    grad_ratio: float  #: |grad(sum)| / |grad(mean)|
    max_abs_grad_diff: float  #: max |grad(sum) - B grad(mean)|
    max_abs_step_diff: float  #: max |step(sum, lr) - step(mean, B lr)|
    cloud: np.ndarray  #: (N, O) per-output losses of nearby weights (row 0: the weights)
    pareto: np.ndarray  #: (N,) bool, not dominated
    best: dict  #: reduction -> index of the cloud point it ranks best
    incomparable: tuple[int, int]  #: two points neither of which is better on every output

    def table(self) -> tuple[list[str], list[list]]:
        rows: list[list] = []
        for k, name in enumerate(self.names):
            rows += [
                ["reduction", name, "scalar", f"{self.scalars[k]:.10g}"],
                ["reduction", name, "grad_norm", f"{self.grad_norms[k]:.10g}"],
                ["reduction", name, "cosine_to_mean", f"{self.cosines[k]:.10g}"],
            ]
        rows += [
            ["sum_vs_mean", "", "batch_size", self.batch_size],
            ["sum_vs_mean", "", "grad_ratio", f"{self.grad_ratio:.12g}"],
            ["sum_vs_mean", "", "max_abs_grad_diff", f"{self.max_abs_grad_diff:.3g}"],
            ["sum_vs_mean", "", "max_abs_step_diff", f"{self.max_abs_step_diff:.3g}"],
        ]
        for i, row in enumerate(self.cloud):
            for o, v in enumerate(row):
                rows.append(["pareto", i, f"loss_output{o + 1}", f"{v:.10g}"])
            rows.append(["pareto", i, "pareto", int(self.pareto[i])])
        for name, i in self.best.items():
            rows.append(["best", name, "point", int(i)])
        return ["section", "name", "key", "value"], rows


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """(N,) True where no other row is <= everywhere and < somewhere (minimisation)."""
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)  # le[j, i]: j <= i everywhere
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    dominated = np.any(le & lt, axis=0)
    return ~dominated


def run_reductions_lab(
    config: Config,
    params: np.ndarray | None = None,
    quick: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ReductionsResult | None:
    """The five reductions of one batch's M at the given weights (the seed's fresh ones if
    None), their surfaces on one random plane, and the Pareto cloud. None if cancelled."""
    data = make_dataset(config)
    sizes = config.layer_sizes(data.n_in, data.n_out)
    net = MLP(sizes, config.activation, seed=config.seed)
    if params is not None and params.shape == net.params.shape:
        net.params[...] = params
    theta = net.params.copy()
    try:
        return _lab(config, data, net, quick, progress, cancel)
    except CancelledError:
        return None
    finally:
        net.params[...] = theta


def _lab(config: Config, data, net: MLP, quick: bool, progress, cancel) -> ReductionsResult:
    check(cancel)
    rng = rng_for(config.seed, "reductions_lab")
    B = config.batch_size  # <= n_train: Config.validate
    idx = rng.permutation(data.n_train)[:B]
    X, T = data.X_train[idx], data.T_train[idx]
    v = np.asarray(config.output_weight_vector(data.n_out))
    s = np.where(X[:, 0] > 0, 2.0, 1.0)
    cases = [
        ("mean", {}),
        ("sum", {}),
        ("max", {}),
        ("weighted", {"output_weights": v}),
        ("weighted", {"sample_weights": s}),
    ]
    theta = net.params.copy()
    plane = random_plane(net, theta, rng)
    check(cancel)
    total = len(CASES) + 1
    scalars, grads, surfaces = [], [], []
    for k, (red, kw) in enumerate(cases):
        if progress is not None:
            progress(k, total, CASES[k])
        scalar, grad, (alphas, betas, Z) = _case(config, net, X, T, red, kw, plane, quick, cancel)
        scalars.append(scalar)
        grads.append(grad)
        surfaces.append(Z)
    G = np.array(grads)
    norms = np.linalg.norm(G, axis=1)
    g_mean, g_sum = G[0], G[1]
    lr = config.lr
    step_diff = float(np.max(np.abs((theta - lr * g_sum) - (theta - (lr * B) * g_mean))))
    if progress is not None:
        progress(len(CASES), total, "Pareto cloud")
    cloud = _cloud(config, net, X, T, rng, 120 if quick else 300, cancel)
    mask = pareto_mask(cloud)
    front = np.flatnonzero(mask)
    if progress is not None:
        progress(total, total, "done")
    return ReductionsResult(
        names=CASES,
        scalars=np.array(scalars),
        grad_norms=norms,
        cosines=G @ G[0] / np.maximum(norms * norms[0], 1e-300),
        arrows=project_vectors(plane, G),
        alphas=alphas,
        betas=betas,
        surfaces=np.array(surfaces),
        batch_size=B,
        grad_ratio=float(norms[1] / norms[0]) if norms[0] > 0 else float("nan"),
        max_abs_grad_diff=float(np.max(np.abs(g_sum - B * g_mean))),
        max_abs_step_diff=step_diff,
        cloud=cloud,
        pareto=mask,
        best=_best(cloud, v),
        incomparable=(int(front[0]), int(front[-1])) if len(front) > 1 else (0, 0),
    )


def _best(cloud: np.ndarray, v: np.ndarray) -> dict:
    """reduction -> index of the cloud point (N, O) it ranks best (v: output weights)."""
    return {
        "mean": int(np.argmin(cloud.mean(axis=1))),
        "weighted outputs": int(np.argmin(cloud @ (v / v.sum()))),
        "max": int(np.argmin(cloud.max(axis=1))),
    }


def _case(config: Config, net: MLP, X, T, reduction: str, kw: dict, plane, quick: bool, cancel):
    """One reduction of batch (X, T): its scalar, gradient (P,) and surface on ``plane``
    ((alphas, betas, Z)). Raises CancelledError."""
    hd = config.huber_delta
    scalar = net.loss(X, T, loss=config.loss, reduction=reduction, huber_delta=hd, **kw)
    check(cancel)
    grad = net.gradient(X, T, loss=config.loss, reduction=reduction, huber_delta=hd, **kw)
    check(cancel)
    out = loss_grid(
        net, X, T, plane, (0.0, 0.0), 1.0, 21 if quick else 35, config.loss, reduction,
        huber_delta=hd, dtype=np.float32, chunk_bytes=grid_chunk_bytes(net.layer_sizes, len(X)),
        cancel=cancel, **kw,
    )  # fmt: skip
    if out is None:
        raise CancelledError
    return scalar, grad, out


def _cloud(config: Config, net: MLP, X, T, rng, n_pts: int, cancel) -> np.ndarray:
    """Per-output mean losses (n_pts, O) of nearby weights (row 0: the weights themselves;
    non-finite values as the largest finite one). Leaves the net's weights changed (the
    caller restores them). Raises CancelledError."""
    theta = net.params.copy()
    loss, hd = config.loss, config.huber_delta
    cloud = np.empty((n_pts, net.n_out))
    cloud[0] = net.loss_matrix(X, T, loss, hd).mean(axis=0)
    for i in range(1, n_pts):
        check(cancel)  # every point: 0.1 s at 2048,2048 hidden units
        d = random_plane(net, theta, rng).d1
        net.params[...] = theta + 0.15 * rng.uniform(0.2, 1.0) * d
        with np.errstate(all="ignore"):
            cloud[i] = net.loss_matrix(X, T, loss, hd).mean(axis=0)
    return np.where(np.isfinite(cloud), cloud, np.nanmax(cloud[np.isfinite(cloud)]))
