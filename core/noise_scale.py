"""The gradient noise scale of the training set, B_noise = tr(Σ) / |G|² (McCandlish et al. 2018).

G (P,) is the mean of the per-sample gradients g_i over the whole training set (n samples) at
the current weights, and Σ their covariance, tr(Σ) = Σ_i |g_i − G|² / (n − 1). B_noise is the
batch size at which the noise in a minibatch gradient is as large as the signal:
E|ḡ_B − G|² = tr(Σ)(1/B − 1/n) for a batch of B drawn without replacement.

Why not from the one minibatch: E|ḡ_B|² = |G|² + tr(Σ)(1/B − 1/n), so the one-batch ratio
tr(Σ_B)/|ḡ_B|² tends to B as soon as |G|² is small against tr(Σ)/B (any converged run): it
echoes the batch size instead of measuring the noise. Two estimators that do not:

* **exact** (``exact_moments``): every few steps, one pass over the whole training set in
  chunks; |G|² from the full-batch gradient and Σ_i |g_i|² from the per-sample squared norms,
  which the factored backward pass gives without forming the n x P matrix;
  tr(Σ) = (Σ_i |g_i|² − n |G|²) / (n − 1). Used when n <= ``EXACT_MAX_SAMPLES``.
* **two-batch** (``two_batch_estimates``, McCandlish et al. 2018, Appendix A): from the squared
  norms of the mean gradient of a small batch (the minibatch, B_s) and a larger independent
  sample (B_b, growing with the estimate so that it resolves |G|²), unbiased estimates of
  tr(Σ) and |G|²; each is averaged separately over the measurements of the recent steps (a
  window that widens as the run ages) and B_noise is the ratio of the averages, with a
  standard error from their spread (``TwoBatchAverage``). Used for larger training sets.

``NoiseScaleTracker`` runs either at a cadence chosen from measured times so that its cost
stays near ``COST_FRACTION`` of training time, and says how old its value is. Late in a run
|G| at the current weights is mostly SGD's own jitter around the minimum, so the exact value
moves from step to step (10-90 % range about 3x, benchmarks/bench_noise_scale.py) and grows
roughly with B/lr; the exact mode reports the range of its last ``RECENT`` values.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from .cadence import Cadence

__all__ = [
    "COST_FRACTION",
    "EXACT_MAX_SAMPLES",
    "NoiseEstimate",
    "NoiseScaleTracker",
    "TwoBatchAverage",
    "big_batch_size",
    "exact_moments",
    "two_batch_estimates",
]

EXACT_MAX_SAMPLES = 4096  #: training sets up to this size get the exact noise scale
COST_FRACTION = 0.10  #: the share of training time the estimator may take
CHUNK_BYTES = 16 * 2**20  #: activations held at once by the exact pass
EMA_DECAY = 0.95  #: per measurement, for a TwoBatchAverage made without its own
#: The session's two-batch averages take the measurements of the last
#: max(WINDOW_MIN_STEPS, WINDOW_FRACTION x steps since the estimate restarted) steps, equally
#: weighted. An exponential average (0.95 a measurement, or exp(-steps/window)) remembered the
#: first steps, when |G|^2 was 100x larger, and read 19 or 30 where the exact value was 325
#: (step 500, n = 8,000).
WINDOW_MIN_STEPS = 50
WINDOW_FRACTION = 0.25
BIG_BATCH_MIN = 512  #: the two-batch estimator's larger sample: at least this many ...
BIG_BATCH_FACTOR = 8  #: ... and at least this many times the minibatch
BIG_BATCH_MAX = 16_384  #: ... and grows with the noise scale up to this (computed in chunks)
MAX_INTERVAL = 100_000  #: steps between measurements, at most
RECENT = 10  #: exact values whose range is reported


@dataclass(frozen=True)
class NoiseEstimate:
    """The training set's gradient noise at the weights of step ``step``.

    noise_scale : tr(Σ) / |G|², NaN when |G|² is not resolved (its estimate is <= 0)
    noise_scale_err : one standard error of ``noise_scale`` (0 for the exact value, NaN
        while the two-batch averages hold fewer than three measurements)
    trace_sigma : tr(Σ) (estimate), grad_sq : |G|² (estimate)
    mode : "exact" or "two-batch"
    step : the session's step count when measured (its weights: before update step + 1)
    samples : n (exact) or the larger sample's size B_b (two-batch)
    measurements : how many measurements the value rests on (1 for exact; two-batch: those
        made in the last ``window`` steps)
    window : (two-batch) the steps averaged over; 0 for exact
    interval : the current number of steps between measurements
    recent_lo, recent_hi : (exact) the smallest and largest of the last ``RECENT`` exact
        values (NaN before three): late in a run the value at the current weights moves from
        step to step with SGD's own jitter, and this says by how much
    """

    noise_scale: float
    noise_scale_err: float
    trace_sigma: float
    grad_sq: float
    mode: str
    step: int
    samples: int
    measurements: int = 1
    interval: int = 1
    recent_lo: float = float("nan")
    recent_hi: float = float("nan")
    window: int = 0


def _ratio(trace: float, grad_sq: float) -> float:
    """tr(Σ)/|G|², NaN where |G|² is not positive or the ratio overflows (never inf)."""
    if not grad_sq > 0:
        return float("nan")
    r = trace / grad_sq
    return float(r) if math.isfinite(r) else float("nan")


def _chunk_rows(net) -> int:
    """Samples per chunk so that a chunk's activations and deltas stay near CHUNK_BYTES."""
    per_sample = 8 * 4 * sum(net.layer_sizes)
    return max(1, CHUNK_BYTES // per_sample)


def exact_moments(net, X, T, loss_kw: dict | None = None, chunk: int | None = None):
    """Exact |G|² and tr(Σ) of the per-sample gradients over a whole set, in chunks.

    Parameters
    ----------
    net : core.mlp.MLP
    X : (n, n_in) float64, T : (n, n_out) targets (or class labels)
    loss_kw : keyword arguments of ``net.backprop`` (loss, reduction, huber_delta,
        output_weights, sample_weights (n,)); g_i is the gradient of sample i's own loss L_i,
        so the sample weights do not enter (they are sliced along with the chunks)
    chunk : samples per backward pass (default: from ``CHUNK_BYTES``)

    Returns
    -------
    grad_sq : float, |G|² with G (P,) = (1/n) Σ_i g_i
    trace_sigma : float, (Σ_i |g_i|² − n |G|²) / (n − 1); NaN for n = 1
    G : (P,) float64
    """
    kw = dict(loss_kw or {})
    sw = kw.pop("sample_weights", None)
    n = len(X)
    if n < 1:
        raise ValueError("the set is empty")
    step = _chunk_rows(net) if chunk is None else int(chunk)
    G = np.zeros(net.n_params)
    part = np.empty(net.n_params)
    sum_sq = 0.0
    for a in range(0, n, step):
        b = min(n, a + step)
        if sw is not None:
            kw["sample_weights"] = sw[a:b]
        bp = net.backprop(X[a:b], T[a:b], **kw)
        sum_sq += float(bp.norms_sq().sum())
        G += bp.combine(np.ones(b - a), out=part)
    G /= n
    grad_sq = float(G @ G)
    trace = max(sum_sq - n * grad_sq, 0.0) / (n - 1) if n > 1 else float("nan")
    return grad_sq, trace, G


def two_batch_estimates(
    g_small_sq: float, b_small: int, g_big_sq: float, b_big: int, n: int | None = None
) -> tuple[float, float]:
    """Unbiased estimates (tr(Σ), |G|²) from |ḡ|² of a small and a big batch.

    McCandlish et al. 2018, Appendix A, for batches drawn independently of each other and,
    within a batch, without replacement from a set of n (n = None: an unlimited population),
    using E|ḡ_B|² = |G|² + tr(Σ)(1/B − 1/n):

    * tr(Σ) ≈ (|ḡ_s|² − |ḡ_b|²) / (1/B_s − 1/B_b)
    * |G|² ≈ (B_b |ḡ_b|² − B_s |ḡ_s|²) / (B_b − B_s) + tr(Σ)/n

    Either may come out negative for one draw: only averages of them are meaningful.
    """
    if not 1 <= b_small < b_big:
        raise ValueError(f"need 1 <= B_small < B_big, got {b_small} and {b_big}")
    if n is not None and b_big > n:
        raise ValueError(f"B_big = {b_big} is larger than the set ({n})")
    trace = (g_small_sq - g_big_sq) / (1.0 / b_small - 1.0 / b_big)
    grad_sq = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small)
    if n is not None:
        grad_sq += trace / n
    return float(trace), float(grad_sq)


def big_batch_size(b_small: int, n: int, noise_scale: float = float("nan")) -> int:
    """The larger sample of the two-batch estimator: max(8 B_s, 512, 2 x the current noise
    scale estimate up to ``BIG_BATCH_MAX``), at most n.

    |ḡ_b|² resolves |G|² only when B_b is above the noise scale (its noise is tr(Σ)/B_b against
    a signal tr(Σ)/B_noise), so the sample grows with the estimate; a larger sample costs more,
    and the cadence spaces the measurements out to keep the budget.
    """
    want = max(BIG_BATCH_FACTOR * b_small, BIG_BATCH_MIN)
    if math.isfinite(noise_scale) and noise_scale > 0:
        want = max(want, min(int(2 * noise_scale), BIG_BATCH_MAX))
    return int(min(n, want))


class TwoBatchAverage:
    """Averages of the two-batch estimates over recent steps, and their ratio.

    Two ways to weigh the estimates x_k (the last ``KEEP`` are kept):

    * exponential (``estimate()``): weight decay^(m−k), m measurements so far (``add`` may give
      each its own decay);
    * a window of steps (``estimate(now, window)``): equal weights for the measurements made
      in the last ``window`` steps (at least the newest). Early in training |G|^2 falls by
      orders of magnitude, and even a small exponential weight on the first steps ruled the
      average; a window forgets them entirely.

    The mean is the weighted mean and its standard error sqrt(var / n_eff) with
    n_eff = (Σw)² / Σw². The ratio tr(Σ)/|G|² of the averages (not the average of ratios)
    gets its error by the delta method, including the covariance of the two estimates (which
    share the same batches).
    """

    KEEP = 4096

    def __init__(self, decay: float = EMA_DECAY) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._rows: deque[tuple[float, float, float, float]] = deque(maxlen=self.KEEP)

    def add(self, trace: float, grad_sq: float, decay: float | None = None, step: int = 0) -> None:
        """One more pair, measured at ``step``; ``decay`` (default ``self.decay``) multiplies
        the earlier pairs' exponential weights."""
        d = self.decay if decay is None else decay
        self._rows.append((float(trace), float(grad_sq), float(step), d))
        self.count += 1

    def _weights(self, now: float | None, window: float | None) -> tuple[np.ndarray, np.ndarray]:
        R = np.array(self._rows, dtype=np.float64).reshape(-1, 4)
        if window is None:
            # w_k = product of the decays given after k: a reversed cumulative product
            d = np.append(R[1:, 3], 1.0)
            w = np.cumprod(d[::-1])[::-1]
        else:
            w = (R[:, 2] > now - window).astype(np.float64)
            w[-1] = 1.0
        return R, w

    def estimate(
        self, now: float | None = None, window: float | None = None
    ) -> tuple[float, float, float, float, int]:
        """(noise_scale, its standard error, tr(Σ), |G|², measurements used).

        noise_scale is NaN while the averaged |G|² is not positive; the error is NaN with
        fewer than three measurements' worth of weight.
        """
        nan = float("nan")
        if self.count == 0:
            return nan, nan, nan, nan, 0
        R, w = self._weights(now, window)
        W = w.sum()
        S, G2 = float(w @ R[:, 0] / W), float(w @ R[:, 1] / W)
        used = int(np.count_nonzero(w > 0))
        ratio = _ratio(S, G2)
        n_eff = W * W / float(w @ w)
        if used < 3 or n_eff < 2.5 or not math.isfinite(ratio):  # no spread to speak of
            return ratio, nan, S, G2, used
        corr = n_eff / (n_eff - 1.0)
        ds, dg = R[:, 0] - S, R[:, 1] - G2
        var_s = float(w @ (ds * ds)) / W * corr
        var_g = float(w @ (dg * dg)) / W * corr
        cov = float(w @ (ds * dg)) / W * corr
        rel = var_s / S**2 + var_g / G2**2 - 2.0 * cov / (S * G2) if S != 0 else var_g / G2**2
        err = abs(ratio) * math.sqrt(max(rel, 0.0) / n_eff)
        return ratio, err, S, G2, used


class NoiseScaleTracker:
    """The session's running estimate of the training set's noise scale.

    Call ``observe`` once per training step, before the update, with the minibatch's |ḡ|².
    It measures when due (the first step, then every ``interval`` steps) and returns the
    newest ``NoiseEstimate`` (or None before the first). The interval is chosen from
    measured times so that measuring costs about ``budget`` of training time:
    interval = ceil(seconds per measurement / (budget x seconds per training step)).

    Parameters
    ----------
    n_train : training-set size; exact mode when n_train <= ``exact_max``
    rng : np.random.Generator for the two-batch estimator's larger samples
    budget : share of training time (default ``COST_FRACTION``)
    interval : a fixed number of steps between measurements instead (tests, benchmarks)
    decay : of the two-batch averages, per measurement (default: by steps, see
        ``WINDOW_MIN_STEPS``)
    clock : seconds, for the measurements' cost (a fake one in tests)
    """

    def __init__(
        self,
        n_train: int,
        rng: np.random.Generator,
        budget: float = COST_FRACTION,
        exact_max: int = EXACT_MAX_SAMPLES,
        interval: int | None = None,
        decay: float | None = None,
        clock=time.perf_counter,
    ) -> None:
        self.rng = rng
        self.exact_max = exact_max
        self.cadence = Cadence(budget, interval, MAX_INTERVAL, clock)
        self.decay = decay
        self.average = TwoBatchAverage(EMA_DECAY if decay is None else decay)
        self.restart(n_train)

    # the cadence's figures, read by tests and benchmarks
    interval = property(lambda self: self.cadence.interval)
    seconds_measuring = property(lambda self: self.cadence.seconds_measuring)
    measurements = property(lambda self: self.cadence.measurements)

    @property
    def mode(self) -> str:
        return "exact" if self.n_train <= self.exact_max else "two-batch"

    def restart(self, n_train: int) -> None:
        """Forget the estimate (new data, loss or network): measure at the next step."""
        self.n_train = int(n_train)
        self.current: NoiseEstimate | None = None
        self.average.reset()
        self.cadence.reset()
        self._age = 0  # steps observed since the restart
        self._recent: list[float] = []  # the last RECENT exact values

    def request(self) -> None:
        """Measure at the next ``observe`` whatever the interval."""
        self.cadence.request()

    def observe(
        self,
        step: int,
        net,
        X: np.ndarray,
        T: np.ndarray,
        loss_kw: dict,
        batch_grad_sq: float,
        batch_size: int,
        last_step_seconds: float = 0.0,
    ) -> NoiseEstimate | None:
        """Note one training step; measure if due. Returns the newest estimate.

        step : the session's step count now (the weights are those before update step + 1)
        X : (n, n_in), T : (n, n_out) the training set; loss_kw : as for ``exact_moments``
        batch_grad_sq : |ḡ|² of this step's minibatch (the plain mean of its g_i)
        last_step_seconds : the whole previous training step, measuring included
        """
        self._age += 1
        if not self.cadence.due(last_step_seconds):
            return self.current
        t0 = self.cadence.clock()
        # One BLAS thread: the set-sized GEMMs would otherwise start OpenBLAS's helper thread,
        # which on two busy cores made a pass ~10x slower (measured: 2.8 ms alone, 24-48 ms
        # with the helper, default network, 1,024 samples, another process running).
        with threadpool_limits(limits=1, user_api="blas"):
            if self.mode == "exact":
                est = self._exact(step, net, X, T, loss_kw)
            else:
                est = self._two_batch(step, net, X, T, loss_kw, batch_grad_sq, batch_size)
        self.cadence.measured(self.cadence.clock() - t0)
        if est is not None:
            self.current = replace(est, interval=self.interval)
        return self.current

    # ------------------------------------------------------------------ inside
    def _exact(self, step, net, X, T, loss_kw) -> NoiseEstimate | None:
        if len(X) < 2:
            return None
        grad_sq, trace, _ = exact_moments(net, X, T, loss_kw)
        if not (math.isfinite(grad_sq) and math.isfinite(trace)):
            return None
        ratio = _ratio(trace, grad_sq)
        if math.isfinite(ratio):
            self._recent = [*self._recent[-(RECENT - 1) :], ratio]
        lo = hi = float("nan")
        if len(self._recent) >= 3:
            lo, hi = min(self._recent), max(self._recent)
        return NoiseEstimate(
            ratio, 0.0, trace, grad_sq, "exact", step, len(X), recent_lo=lo, recent_hi=hi
        )

    def _two_batch(self, step, net, X, T, loss_kw, g_small_sq, b_small) -> NoiseEstimate | None:
        n = len(X)
        hint = self.current.noise_scale if self.current is not None else float("nan")
        b_big = big_batch_size(b_small, n, hint)
        if b_big <= b_small:
            return None  # the minibatch is the whole set: nothing larger to compare with
        idx = np.sort(self.rng.choice(n, b_big, replace=False))
        kw = dict(loss_kw)
        if kw.get("sample_weights") is not None:
            kw["sample_weights"] = kw["sample_weights"][idx]
        g_big_sq = exact_moments(net, X[idx], T[idx], kw)[0]  # in chunks: bounded memory
        if not (math.isfinite(g_big_sq) and math.isfinite(g_small_sq)):
            return None
        trace, grad_sq = two_batch_estimates(g_small_sq, b_small, g_big_sq, b_big, n)
        self.average.add(trace, grad_sq, step=step)
        window = 0
        if self.decay is None:  # a window of the recent steps
            window = int(max(WINDOW_MIN_STEPS, WINDOW_FRACTION * self._age))
            ratio, err, S, G2, used = self.average.estimate(step, window)
        else:
            ratio, err, S, G2, used = self.average.estimate()
        return NoiseEstimate(ratio, err, S, G2, "two-batch", step, b_big, used, window=window)
