"""1/sqrt(B), measured: the standard error of the minibatch mean gradient against B.

Not from a formula: at the current weights, many minibatches of each size B = 1, 2, 4 ... 256
are drawn from the training set (uniformly, with replacement, so every draw is B independent
samples) and the distance of each minibatch's mean gradient from the training set's mean
gradient G is measured. The root mean square of that distance over the draws is the measured
standard error; the prediction drawn over it is sqrt(tr(Sigma) / B), with
tr(Sigma) = sum_i ||g_i - G||^2 / (n - 1) over the n training samples.

The draws need no (B, P) gradients: with the centred Gram matrix
``Kc[i, j] = (g_i - G) . (g_j - G)`` (n x n, from the per-layer factors of one backward pass
over the set), ``||mean_{i in S} g_i - G||^2 = sum_{i, j in S} Kc[i, j] / B^2``.

Example::

    rng = np.random.default_rng(0)
    bp = net.backprop(X_train, T_train)
    bn = measure_batch_noise(bp, rng)
    bn.slope                       # ~ -0.5
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["BATCH_SIZES", "BatchNoise", "BatchNoiseJob", "MAX_POPULATION", "measure_batch_noise"]

BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MAX_POPULATION = 2048  #: a larger training set is represented by this many of its samples
#: index lookups allowed per batch size (draws x B^2): bounds the cost of the large sizes
GATHER_BUDGET = 1 << 20
MIN_DRAWS, MAX_DRAWS = 48, 512


@dataclass(frozen=True)
class BatchNoise:
    """The measured and predicted standard error of the mean gradient (arrays read-only).

    batch_sizes : (K,) int
    std_error_measured : (K,) RMS over draws of ||mean gradient of a minibatch - G||
    std_error_predicted : (K,) sqrt(tr(Sigma) / B)
    draws : (K,) int, minibatches drawn for each size
    n_population : samples the minibatches were drawn from (the training set, or a fixed
        random subset of MAX_POPULATION of it)
    trace_sigma : tr(Sigma) of the per-sample gradients over those samples
    mean_norm : ||G||
    slope : least-squares slope of log(measured) against log(B) (-1/2 for the 1/sqrt(B) law)
    step : the training step whose weights were measured; seconds : what it cost
    """

    batch_sizes: np.ndarray
    std_error_measured: np.ndarray
    std_error_predicted: np.ndarray
    draws: np.ndarray
    n_population: int
    trace_sigma: float
    mean_norm: float
    slope: float
    step: int = 0
    seconds: float = 0.0

    def rows(self) -> list[tuple[int, float, float]]:
        """(batch_size, std_error_measured, std_error_predicted) per batch size."""
        return [
            (int(b), float(m), float(p))
            for b, m, p in zip(self.batch_sizes, self.std_error_measured, self.std_error_predicted)
        ]


def _centred_gram(K: np.ndarray) -> np.ndarray:
    """H K H with H = I - 11^T/n, in O(n^2): (g_i - G) . (g_j - G)."""
    r = K.mean(axis=0)
    return K - r[None, :] - r[:, None] + r.mean()


def loglog_slope(batch_sizes, values) -> float:
    """Least-squares slope of log(values) against log(batch_sizes) (finite, positive only)."""
    b = np.asarray(batch_sizes, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(b[ok]), np.log(v[ok]), 1)[0])


def measure_batch_noise(
    gs,
    rng: np.random.Generator,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    step: int = 0,
) -> BatchNoise | None:
    """Draw minibatches of each size from the n samples of ``gs`` and measure the spread of
    their mean gradient.

    Parameters
    ----------
    gs : the per-sample gradients of the n samples, any object with ``gram() -> (n, n)`` and
        ``norms_sq() -> (n,)`` (``core.mlp.Backprop`` or ``core.gradstats.DenseGradients``)
    rng : np.random.Generator for the draws
    batch_sizes : the sizes B to measure (each may exceed n: draws are with replacement)

    Returns None when the gradients are not finite (a diverging run) or n < 2.
    """
    job = BatchNoiseJob(gs, rng, batch_sizes, step)
    while not job.advance():
        pass
    return job.result


class BatchNoiseJob:
    """``measure_batch_noise`` in pieces of a few ms each, so that a loop can do other work
    between them (the engine trains and sends snapshots: in one go the measurement kept it
    from both for ~50-90 ms). The same draws in the same order: the result equals
    ``measure_batch_noise``'s with the same rng.

    Pieces: the Gram matrix ``ROWS`` rows at a time (``gs.gram_rows``; one piece for a ``gs``
    without it), then one batch size each. ``advance()`` does the next piece and returns True
    once done; ``result`` is then the BatchNoise (None if it could not be measured).
    """

    ROWS = 256

    def __init__(self, gs, rng, batch_sizes=BATCH_SIZES, step: int = 0) -> None:
        self.gs, self.rng, self.step = gs, rng, step
        self.sizes = np.asarray(batch_sizes, dtype=np.int64)
        self.done = False
        self.result: BatchNoise | None = None
        self.seconds = 0.0  #: the pieces' own time, not the wall time between them
        self._rows: list[np.ndarray] = []
        self._Kc: np.ndarray | None = None
        self._measured = np.empty(len(self.sizes))
        self._draws = np.empty(len(self.sizes), dtype=np.int64)
        self._k = 0

    def advance(self) -> bool:
        if self.done:
            return True
        t0 = time.perf_counter()
        try:
            if self._Kc is None:
                self._gram_piece()
            else:
                self._size_piece()
        finally:
            self.seconds += time.perf_counter() - t0
        if self.done and self.result is not None:
            self.result = dataclasses.replace(self.result, seconds=self.seconds)
        return self.done

    def _gram_piece(self) -> None:
        """The next rows of K; with all of them, K centred (or the job ends: no result)."""
        gs = self.gs
        if not hasattr(gs, "gram_rows"):
            self._rows = [np.asarray(gs.gram(), dtype=np.float64)]
        else:
            start = sum(len(r) for r in self._rows)
            n = gs.batch_size
            self._rows.append(gs.gram_rows(start, min(n, start + self.ROWS)))
            if start + self.ROWS < n:
                return
        K = np.concatenate(self._rows) if len(self._rows) > 1 else self._rows[0]
        self._rows = []
        if K.shape[0] < 2 or not np.all(np.isfinite(K)):
            self.done = True
            return
        self._K_mean = float(K.mean())
        self._Kc = _centred_gram(K)

    def _size_piece(self) -> None:
        """The draws for the next batch size; after the last one, the result."""
        Kc, rng = self._Kc, self.rng
        n = Kc.shape[0]
        B = int(self.sizes[self._k])
        R = int(np.clip(GATHER_BUDGET // (B * B), MIN_DRAWS, MAX_DRAWS))
        chunk = max(1, GATHER_BUDGET // (4 * B * B))  # ~16 MB of gathered entries at most
        total = 0.0
        done = 0
        while done < R:
            r = min(chunk, R - done)
            idx = rng.integers(0, n, size=(r, B))
            sq = Kc[idx[:, :, None], idx[:, None, :]].sum(axis=(1, 2)) / float(B * B)
            total += float(np.maximum(sq, 0.0).sum())
            done += r
        self._draws[self._k] = R
        self._measured[self._k] = np.sqrt(total / R)
        self._k += 1
        if self._k == len(self.sizes):
            self._finish()

    def _finish(self) -> None:
        Kc, sizes = self._Kc, self.sizes
        n = Kc.shape[0]
        trace = max(float(np.trace(Kc)), 0.0) / (n - 1)
        mean_norm = float(np.sqrt(max(self._K_mean, 0.0)))  # ||G||^2 = mean_ij g_i . g_j
        predicted = np.sqrt(trace / sizes)
        out = [np.ascontiguousarray(a) for a in (sizes, self._measured, predicted, self._draws)]
        for a in out:
            a.flags.writeable = False
        self.result = BatchNoise(
            batch_sizes=out[0],
            std_error_measured=out[1],
            std_error_predicted=out[2],
            draws=out[3],
            n_population=n,
            trace_sigma=trace,
            mean_norm=mean_norm,
            slope=loglog_slope(sizes, out[1]),
            step=self.step,
        )
        self._Kc = None
        self.done = True
