"""Gradient cost lab: what a per-sample backward loop really costs.

For batch sizes B = 1, 2, 4, ..., 256, the seconds per averaged gradient by three strategies:

* ``scalar``: one backward pass of the reduced scalar loss (what libraries do);
* ``per_sample_vectorised``: all B per-sample gradients in one vectorised pass, then their mean;
* ``per_sample_loop``: B separate backward passes, one per sample, then their mean (the
  question's "32 times the work").

``partials`` counts the partial derivatives each strategy produces: P for the scalar, B x P for
the per-sample strategies (1,000,000 parameters and B = 32: 32,000,000 instead of 1,000,000).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..mlp import MLP

__all__ = ["STRATEGIES", "CostLabResult", "CostRow", "run_cost_lab"]

STRATEGIES = ("scalar", "per_sample_vectorised", "per_sample_loop")
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class CostRow:
    strategy: str
    batch_size: int
    seconds: float
    partials: int


@dataclass(frozen=True)
class CostLabResult:
    """Rows of (strategy, batch_size, seconds, partials) for one network."""

    layer_sizes: tuple[int, ...]
    n_params: int
    rows: tuple[CostRow, ...]
    max_abs_diff: float  #: largest |mean of per-sample - scalar gradient| seen

    def series(self, strategy: str) -> tuple[np.ndarray, np.ndarray]:
        """(batch sizes, seconds) of one strategy."""
        rows = [r for r in self.rows if r.strategy == strategy]
        return (
            np.array([r.batch_size for r in rows], dtype=float),
            np.array([r.seconds for r in rows]),
        )

    def seconds(self, strategy: str, batch_size: int) -> float:
        for r in self.rows:
            if r.strategy == strategy and r.batch_size == batch_size:
                return r.seconds
        return float("nan")

    def ratio(self, strategy: str, batch_size: int, over: str = "scalar") -> float:
        return self.seconds(strategy, batch_size) / self.seconds(over, batch_size)

    def table(self) -> tuple[list[str], list[list]]:
        header = ["strategy", "batch_size", "seconds", "partials"]
        return header, [
            [r.strategy, r.batch_size, f"{r.seconds:.6g}", r.partials] for r in self.rows
        ]


def _best_time(fn: Callable[[], object], repeats: int, min_time: float) -> float:
    """Best over ``repeats`` of the mean time per call, each repeat >= ``min_time`` s."""
    fn()  # warm up (allocations, caches)
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_time / one))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def _strategies(net: MLP, X: np.ndarray, T: np.ndarray):
    """The three ways to the averaged gradient on batch (X, T), as zero-argument callables
    writing into preallocated buffers."""
    B, P = X.shape[0], net.n_params
    G = np.empty((B, P))
    acc = np.empty(P)

    def scalar():
        return net.gradient(X, T)

    def vectorised():
        net.per_sample_gradients(X, T, out=G)
        return G.mean(axis=0, out=acc)

    def loop():
        acc.fill(0.0)
        for i in range(B):
            np.add(acc, net.gradient(X[i : i + 1], T[i : i + 1], reduction="sum"), out=acc)
        return np.divide(acc, B, out=acc)

    return scalar, vectorised, loop


def run_cost_lab(
    layer_sizes,
    activation: str = "tanh",
    batch_sizes=BATCH_SIZES,
    repeats: int = 5,
    min_time: float = 0.01,
    seed: int = 0,
    params: np.ndarray | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> CostLabResult | None:
    """Time the three strategies on a network of ``layer_sizes`` (MSE, mean reduction).

    params : optional weights to use (e.g. the live session's); random data from ``seed``.
    Returns None if ``cancel()`` became true.
    """
    net = MLP(layer_sizes, activation, seed=seed)
    if params is not None:
        net.params[...] = params
    rng = np.random.default_rng(seed)
    P = net.n_params
    rows: list[CostRow] = []
    worst = 0.0
    total = len(batch_sizes) * len(STRATEGIES)
    done = 0
    for B in batch_sizes:
        X = rng.normal(size=(B, net.n_in))
        T = rng.normal(size=(B, net.n_out))
        scalar, vectorised, loop = _strategies(net, X, T)
        g = scalar()
        worst = max(
            worst, float(np.max(np.abs(vectorised() - g))), float(np.max(np.abs(loop() - g)))
        )
        for name, fn in zip(STRATEGIES, (scalar, vectorised, loop)):
            if cancel is not None and cancel():
                return None
            if progress is not None:
                progress(done, total, f"{name}, B = {B}")
            secs = _best_time(fn, repeats, min_time)
            rows.append(CostRow(name, B, secs, P if name == "scalar" else B * P))
            done += 1
    if progress is not None:
        progress(total, total, "done")
    return CostLabResult(tuple(net.layer_sizes), P, tuple(rows), worst)
