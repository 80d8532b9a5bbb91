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
from ..seeds import rng_for
from .cancellation import CancelledError, check

__all__ = ["STRATEGIES", "VECTORISED_BYTES", "CostLabResult", "CostRow", "run_cost_lab"]

STRATEGIES = ("scalar", "per_sample_vectorised", "per_sample_loop")
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


#: the vectorised per-sample strategy holds a (B, P) float64 matrix; above this many bytes it is
#: not measured (at 2048,2048 hidden units and B = 256 it would need 8.6 GB)
VECTORISED_BYTES = 256 * 2**20


@dataclass(frozen=True)
class CostRow:
    """One measured point: ``seconds`` is the median of ``repeats`` timings, ``low`` and
    ``high`` their smallest and largest."""

    strategy: str
    batch_size: int
    seconds: float
    partials: int
    low: float = float("nan")
    high: float = float("nan")


@dataclass(frozen=True)
class CostLabResult:
    """Rows of (strategy, batch_size, seconds, partials) for one network.

    ``complete`` is False for the partial result of a run that was cancelled (the rows of the
    batch sizes finished so far). ``vectorised_max_batch`` is the largest B at which the
    vectorised per-sample strategy fits in memory (``VECTORISED_BYTES``); above it that
    strategy has no rows.
    """

    layer_sizes: tuple[int, ...]
    n_params: int
    rows: tuple[CostRow, ...]
    max_abs_diff: float  #: largest |mean of per-sample - scalar gradient| seen
    repeats: int = 1
    complete: bool = True
    vectorised_max_batch: int = 0

    def series(self, strategy: str) -> tuple[np.ndarray, np.ndarray]:
        """(batch sizes, median seconds) of one strategy."""
        rows = [r for r in self.rows if r.strategy == strategy]
        return (
            np.array([r.batch_size for r in rows], dtype=float),
            np.array([r.seconds for r in rows]),
        )

    def band(self, strategy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(batch sizes, lowest, highest seconds over the repeats) of one strategy."""
        rows = [r for r in self.rows if r.strategy == strategy]
        return (
            np.array([r.batch_size for r in rows], dtype=float),
            np.array([r.low for r in rows]),
            np.array([r.high for r in rows]),
        )

    def batch_sizes(self) -> tuple[int, ...]:
        return tuple(sorted({r.batch_size for r in self.rows}))

    def seconds(self, strategy: str, batch_size: int) -> float:
        for r in self.rows:
            if r.strategy == strategy and r.batch_size == batch_size:
                return r.seconds
        return float("nan")

    def ratio(self, strategy: str, batch_size: int, over: str = "scalar") -> float:
        return self.seconds(strategy, batch_size) / self.seconds(over, batch_size)

    def growth(self, strategy: str) -> float:
        """Median seconds at the largest measured B over those at the smallest."""
        B, s = self.series(strategy)
        return float(s[-1] / s[0]) if len(s) > 1 else float("nan")

    def table(self) -> tuple[list[str], list[list]]:
        header = ["strategy", "batch_size", "seconds", "partials"]
        return header, [
            [r.strategy, r.batch_size, f"{r.seconds:.6g}", r.partials] for r in self.rows
        ]


def _timings(
    fn: Callable[[], object], repeats: int, min_time: float, cancel: Callable[[], bool] | None
) -> np.ndarray:
    """(repeats,) mean seconds per call, each repeat lasting >= ``min_time`` s; ``check`` between
    calls (and inside ``fn`` where it loops)."""
    check(cancel)
    fn()  # warm up (allocations, caches)
    check(cancel)
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_time / one))
    out = np.empty(repeats)
    for k in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            check(cancel)
            fn()
        out[k] = (time.perf_counter() - t0) / n
    return out


def _strategies(net: MLP, X: np.ndarray, T: np.ndarray, cancel=None, vectorised_ok=True):
    """The three ways to the averaged gradient on batch (X, T), as zero-argument callables
    writing into preallocated buffers (the vectorised one is None when it does not fit)."""
    B, P = X.shape[0], net.n_params
    G = np.empty((B, P)) if vectorised_ok else None
    acc = np.empty(P)

    def scalar():
        return net.gradient(X, T)

    def vectorised():
        net.per_sample_gradients(X, T, out=G)
        return G.mean(axis=0, out=acc)

    def loop():
        acc.fill(0.0)
        for i in range(B):
            check(cancel)  # one backward pass per sample: the loop is where the time goes
            np.add(acc, net.gradient(X[i : i + 1], T[i : i + 1], reduction="sum"), out=acc)
        return np.divide(acc, B, out=acc)

    return scalar, (vectorised if vectorised_ok else None), loop


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
    partial: Callable[[CostLabResult], None] | None = None,
) -> CostLabResult | None:
    """Time the three strategies on a network of ``layer_sizes`` (MSE, mean reduction).

    Each point is measured ``repeats`` times (median, lowest and highest kept).
    params : optional weights to use (e.g. the live session's); random data from ``seed``.
    partial : called with the result so far after each batch size (``complete=False``).
    Returns None if ``cancel()`` became true (``check`` is polled inside every strategy's
    calls, so this happens within one backward pass).
    """
    net = MLP(layer_sizes, activation, seed=seed)
    if params is not None:
        net.params[...] = params
    if cancel is not None and cancel():
        return None
    rng = rng_for(seed, "data")
    P = net.n_params
    rows: list[CostRow] = []
    worst = 0.0
    total = len(batch_sizes) * len(STRATEGIES)
    vec_max = max([0, *(b for b in batch_sizes if b * P * 8 <= VECTORISED_BYTES)])

    def result(complete: bool) -> CostLabResult:
        return CostLabResult(
            tuple(net.layer_sizes), P, tuple(rows), worst, repeats, complete, vec_max
        )

    try:
        for k, B in enumerate(batch_sizes):
            X = rng.normal(size=(B, net.n_in))
            T = rng.normal(size=(B, net.n_out))
            fns = _strategies(net, X, T, cancel, vectorised_ok=B <= vec_max)
            worst = max(worst, _disagreement(fns, cancel))

            def say(j: int, name: str, k=k, B=B) -> None:
                if progress is not None:
                    progress(k * len(STRATEGIES) + j, total, f"{name}, B = {B}")

            rows += _measure(fns, B, P, repeats, min_time, cancel, say)
            if partial is not None and B != batch_sizes[-1]:
                partial(result(False))
    except CancelledError:
        return None
    if progress is not None:
        progress(total, total, "done")
    return result(True)


def _disagreement(fns, cancel) -> float:
    """The largest |per-sample strategy - scalar gradient| of one batch."""
    check(cancel)
    g = fns[0]().copy()
    worst = 0.0
    for fn in fns[1:]:
        if fn is not None:
            check(cancel)
            worst = max(worst, float(np.max(np.abs(fn() - g))))
    return worst


def _measure(fns, B: int, P: int, repeats: int, min_time: float, cancel, say) -> list[CostRow]:
    """The timed rows of one batch size (a strategy that does not fit has none)."""
    rows = []
    for j, (name, fn) in enumerate(zip(STRATEGIES, fns)):
        if fn is None:
            continue
        say(j, name)
        t = _timings(fn, repeats, min_time, cancel)
        partials = P if name == "scalar" else B * P
        rows.append(CostRow(name, B, float(np.median(t)), partials, float(t.min()), float(t.max())))
    return rows
