"""The critical batch size (McCandlish, Kaplan, Amodei et al., "An Empirical Model of
Large-Batch Training", 2018), measured on the current task.

From one fresh initialisation (the seed's), batch sizes B = 1, 2, 4, ... up to the whole
training set (``quick``: 1, 4, 16, ... and the whole set) each train to the same target loss;
the steps S and the samples E = B S they need are recorded. The paper's trade-off

    S / S_min - 1 = (E / E_min - 1)^(-1),   equivalently   S(B) = S_min + E_min / B,

is fitted to the points (``fit_tradeoff``), giving S_min (the fewest steps, at B -> inf),
E_min (the fewest samples, at B -> 0) and the critical batch size B_crit = E_min / S_min: below
it a larger batch saves steps almost for free, above it samples are wasted.

How it is measured (each choice stated where the result is shown):

* **Loss**: the task's loss with the ``mean`` reduction (the paper's setting); "the loss" is
  the mean over the whole training set, checked every ``check_every`` steps (at least 64
  checks before the expected crossing, so S is read to 1/64 of itself), never on one batch.
* **Target**: the loss the full batch reaches in ``ref_steps`` steps (300; quick: 100) with
  its best learning rate, i.e. the lowest loss after ``ref_steps`` steps among the rates tried.
* **Learning rate per B**, on the log grid ``config.lr x 2^k``: the full batch climbs the grid
  from ``config.lr`` up and down while the loss after ``ref_steps`` improves (down also while
  every rate so far diverged); each smaller B starts at the best rate of the next larger B
  and steps down the grid while it needs fewer steps, at most log2(ratio of the two B) + 1
  halvings (the paper's optimal rate
  eps(B) = eps_max / (1 + B_noise / B) never rises as B falls, and falls at most in
  proportion to B). The best is the rate with the fewest steps to the target.
* **Budget**: a run stops once it has used twice the samples of the next larger B that reached
  the target (the model says smaller batches need fewer samples), or more steps than the best
  rate so far at this B (it can no longer win), or when it diverges (``core.training``'s
  rule: the minibatch loss or the weights not finite, or the loss 1e8 x its first value).
  A B that never reaches the target has empty cells in the CSV.
* **B_noise** = tr(Σ)/|G|² of the per-sample gradients over the whole training set
  (``core.noise_scale.exact_moments``, the "simple" noise scale the paper compares with
  B_crit), at the weights where the full batch reached the target (and, for comparison, at
  the start).

Pure NumPy; one BLAS thread (these small GEMMs run several times slower with OpenBLAS's helper
thread on two busy cores). ``cancel`` is checked at every step; ``partial`` receives the batch
sizes done so far.

CSV: ``critical_batch.csv`` (``CriticalBatchResult.table``):
``batch_size,lr,steps_to_target,samples_to_target``; ``critical_batch_fit.csv``
(``fit_table``): ``key,value`` rows for S_min, E_min, B_crit, B_noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ..config import Config
from ..data import MinibatchSampler, make_dataset
from ..mlp import MLP
from ..noise_scale import exact_moments
from ..optimizers import make_optimizer
from ..seeds import rng_for
from ..training import BatchObjective, Evaluation, Trainer
from .cancellation import (
    CancelledError,
    check,
    loss_and_gradient_in_pieces,
    mean_loss_in_pieces,
)

__all__ = [
    "BatchPoint",
    "CriticalBatchResult",
    "TradeoffFit",
    "batch_sizes_for",
    "fit_tradeoff",
    "run_critical_batch",
    "train_to_target",
]

REF_STEPS = 300  #: steps the full batch gets to define the target loss (quick: QUICK_REF_STEPS)
QUICK_REF_STEPS = 100
CHECKS = 64  #: loss checks before the expected crossing: S is read to 1/CHECKS of itself
GRID_DOWN, GRID_UP = 20, 8  #: the rate grid: config.lr x 2^k, k = -GRID_DOWN .. GRID_UP
SAMPLE_SLACK = 2.0  #: a run may use this many times the samples of the next larger B


@dataclass(frozen=True)
class TradeoffFit:
    """S(B) = S_min + E_min / B fitted to measured points (log-space least squares)."""

    S_min: float
    E_min: float
    rms_log: float  #: root mean square of log(S_fit / S) over the points
    n_points: int

    @property
    def B_crit(self) -> float:
        """E_min / S_min: the batch size at which S = 2 S_min and E = 2 E_min."""
        return self.E_min / self.S_min

    def steps(self, B: np.ndarray) -> np.ndarray:
        """S (n,) on the fitted curve at batch sizes B (n,)."""
        return self.S_min + self.E_min / np.asarray(B, dtype=np.float64)


def fit_tradeoff(B, S) -> TradeoffFit | None:
    """Fit S/S_min - 1 = (E/E_min - 1)^-1, E = B S, to points (B (n,), S (n,)).

    On the curve S = S_min (1 + B_crit / B) and E = E_min (1 + B / B_crit), so the law is
    S = S_min + E_min / B: a linear least-squares start with relative residuals, then
    Gauss-Newton on log S with log-parameters (both stay positive). Points that are not
    finite and positive are left out; None with fewer than three distinct batch sizes left.
    """
    B = np.asarray(B, dtype=np.float64).ravel()
    S = np.asarray(S, dtype=np.float64).ravel()
    ok = np.isfinite(B) & np.isfinite(S) & (B > 0) & (S > 0)
    B, S = B[ok], S[ok]
    if len(np.unique(B)) < 3:
        return None
    A = np.stack([1.0 / S, 1.0 / (B * S)], axis=1)  # (S_min + E_min/B) / S = 1
    coef = np.linalg.lstsq(A, np.ones(len(S)), rcond=None)[0]
    if not np.all(coef > 0):
        coef = np.array([S.min() / 2, (B * S).min() / 2])
    theta = np.log(coef)

    def residual(th):
        return np.log(np.exp(th[0]) + np.exp(th[1]) / B) - np.log(S)

    r = residual(theta)
    for _ in range(100):
        a, e = np.exp(theta)
        m = a + e / B
        J = np.stack([a / m, e / (B * m)], axis=1)
        step = np.linalg.lstsq(J, -r, rcond=None)[0]
        t = 1.0
        while t > 1e-6:  # halve the step until the fit improves
            r_new = residual(theta + t * step)
            if r_new @ r_new <= r @ r:
                break
            t /= 2
        theta, done = theta + t * step, float(np.abs(t * step).max()) < 1e-12
        r = residual(theta)
        if done:
            break
    S_min, E_min = np.exp(theta)
    return TradeoffFit(float(S_min), float(E_min), float(np.sqrt(np.mean(r**2))), len(S))


def batch_sizes_for(n_train: int, quick: bool = False) -> tuple[int, ...]:
    """1, 2, 4, ... below ``n_train``, then ``n_train`` (``quick``: powers of 4)."""
    factor = 4 if quick else 2
    sizes, b = [], 1
    while b < n_train:
        sizes.append(b)
        b *= factor
    return (*sizes, n_train)


@dataclass(frozen=True)
class Trace:
    """What one training run saw: ``reached`` the step of the first check at or below the
    target (0: not reached); the loss at each check (steps (k,), losses (k,))."""

    reached: int
    steps: np.ndarray
    losses: np.ndarray
    diverged: bool


def train_to_target(
    net: MLP,
    opt,
    X: np.ndarray,
    T: np.ndarray,
    B: int,
    rng: np.random.Generator,
    target: float,
    max_steps: int,
    check_every: int,
    loss: str = "mse",
    huber_delta: float = 1.0,
    cancel: Callable[[], bool] | None = None,
) -> Trace:
    """Train ``net`` in place with minibatches of B from (X (n, n_in), T (n, n_out)) and the
    optimiser ``opt`` (``core.optimizers``; mean reduction) until the mean loss over the whole
    set, checked every ``check_every`` steps and at ``max_steps``, is <= ``target``; or it
    diverges (``core.training``'s rule, at every step); or ``max_steps`` pass. Raises
    ``CancelledError``."""
    objective = BatchObjective(loss, "mean", huber_delta)
    kw = objective(np.arange(0))
    trainer = Trainer(net, opt, MinibatchSampler(len(X), rng), X, T, objective)

    def evaluate(idx: np.ndarray) -> Evaluation:
        value, grad = loss_and_gradient_in_pieces(net, X[idx], T[idx], cancel=cancel, **kw)
        return Evaluation(idx, value, grad)

    first = mean_loss_in_pieces(net, X, T, loss, huber_delta, cancel)
    steps, losses = [0], [first]
    for step in range(1, max_steps + 1):
        check(cancel)
        result = trainer.step(B, step, evaluate)
        if result.diverged:
            trainer.diverge(result.undo_last)
            return Trace(0, np.array(steps), np.array(losses), True)
        if step % check_every and step != max_steps:
            continue
        value = mean_loss_in_pieces(net, X, T, loss, huber_delta, cancel)
        steps.append(step)
        losses.append(value)
        if value <= target:
            return Trace(step, np.array(steps), np.array(losses), False)
    return Trace(0, np.array(steps), np.array(losses), False)


@dataclass(frozen=True)
class BatchPoint:
    """One batch size: its best rate and what it needed (steps 0: target not reached).
    ``tried``: (lr, steps or 0) for every rate run, in the order run."""

    batch_size: int
    lr: float
    steps: int
    tried: tuple[tuple[float, int], ...] = ()

    @property
    def reached(self) -> bool:
        return self.steps > 0

    @property
    def samples(self) -> int:
        return self.batch_size * self.steps


@dataclass(frozen=True)
class CriticalBatchResult:
    points: tuple[BatchPoint, ...]  #: from the full batch down
    fit: TradeoffFit | None
    target_loss: float
    initial_loss: float
    ref_steps: int
    B_noise: float  #: at the weights where the full batch reached the target
    B_noise_start: float  #: at the fresh initial weights
    n_train: int
    layer_sizes: tuple[int, ...]
    optimizer: str
    loss: str
    lr_grid: tuple[float, ...]
    quick: bool = False
    complete: bool = True  #: False for the batch sizes done so far

    @property
    def ratio(self) -> float:
        """B_crit / B_noise (NaN if either is undefined)."""
        if self.fit is None or not self.B_noise > 0:
            return float("nan")
        return self.fit.B_crit / self.B_noise

    def table(self) -> tuple[list[str], list[list]]:
        header = ["batch_size", "lr", "steps_to_target", "samples_to_target"]
        rows = []
        for p in sorted(self.points, key=lambda p: p.batch_size):
            if p.reached:
                rows.append([p.batch_size, f"{p.lr:.6g}", p.steps, p.samples])
            else:
                rows.append([p.batch_size, "", "", ""])
        return header, rows

    def fit_table(self) -> tuple[list[str], list[list]]:
        f = self.fit

        def cell(v: float) -> str:
            return f"{v:.8g}" if math.isfinite(v) else ""

        nan = float("nan")
        values = (
            ("S_min", f.S_min if f else nan),
            ("E_min", f.E_min if f else nan),
            ("B_crit", f.B_crit if f else nan),
            ("B_noise", self.B_noise),
        )
        return ["key", "value"], [[k, cell(v)] for k, v in values]


@dataclass
class _Task:
    """Everything the runs share: data, start, rate grid, loss."""

    X: np.ndarray
    T: np.ndarray
    start: MLP
    work: MLP
    config: Config
    grid: tuple[float, ...]
    cancel: Callable[[], bool] | None

    def run(self, B: int, k: int, target: float, max_steps: int, every: int) -> Trace:
        """One run from the start with batch B and rate grid[k] (the same batches for every
        rate of one B)."""
        cfg = self.config
        self.work.params[...] = self.start.params
        opt = make_optimizer(cfg.optimizer, self.work.n_params, self.grid[k], cfg.momentum)
        rng = rng_for(cfg.seed, "critical_batch", B)
        with np.errstate(all="ignore"):
            return train_to_target(
                self.work, opt, self.X, self.T, B, rng, target, max_steps, every,
                cfg.loss, cfg.huber_delta, self.cancel,
            )  # fmt: skip


def _first_below(trace: Trace, target: float) -> int:
    """The first checked step with the loss at or below ``target`` (0: none)."""
    hit = np.flatnonzero(trace.losses[1:] <= target)
    return int(trace.steps[1 + hit[0]]) if hit.size else 0


def _reference(task: _Task, ref_steps: int):
    """The full batch: climb the rate grid from config.lr while the loss after ``ref_steps``
    improves. Returns (target, BatchPoint of the full batch, weights at the target)."""
    n = len(task.X)
    every = max(1, ref_steps // CHECKS)
    k0 = GRID_DOWN  # grid[GRID_DOWN] == config.lr
    traces: dict[int, Trace] = {}
    weights: dict[int, np.ndarray] = {}

    def final(k: int) -> float:
        if k not in traces:
            traces[k] = task.run(n, k, -np.inf, ref_steps, every)
            weights[k] = task.work.params.copy()
        tr = traces[k]
        return float(tr.losses[-1]) if not tr.diverged else np.inf

    best = k0
    for direction in (1, -1):
        k = k0 + direction
        # down the grid also while every rate so far diverged (a set rate far too large)
        while 0 <= k < len(task.grid) and (
            final(k) < final(best) or (direction < 0 and not math.isfinite(final(best)))
        ):
            best = k if final(k) < final(best) else best
            k += direction
        if best != k0:
            break  # going up helped: no need to look down
    target = final(best)
    if not math.isfinite(target):
        lo = task.grid[0]
        raise ValueError(f"no learning rate down to {lo:.3g} kept the full batch's loss finite")
    reached = {k: _first_below(tr, target) for k, tr in traces.items()}
    fastest = min((k for k in reached if reached[k]), key=lambda k: (reached[k], -k))
    tried = tuple((task.grid[k], reached[k]) for k in sorted(traces))
    point = BatchPoint(n, task.grid[fastest], reached[fastest], tried)
    return target, point, weights[best]


def _measure(task: _Task, B: int, target: float, larger: BatchPoint, ratio: float) -> BatchPoint:
    """Batch size B: from the best rate of the next larger reached B, down the grid while the
    steps to the target fall (at most log2(ratio) + 1 halvings)."""
    hi = task.grid.index(larger.lr)
    lo = max(0, hi - int(round(math.log2(ratio))) - 1)
    budget = max(1, math.ceil(SAMPLE_SLACK * larger.samples / B))
    every = max(1, larger.steps // CHECKS)  # S(B) >= S(larger): at least CHECKS checks
    best_k, best_s, tried = hi, 0, []
    for k in range(hi, lo - 1, -1):
        cap = min(budget, best_s) if best_s else budget
        s = task.run(B, k, target, cap, every).reached
        tried.append((task.grid[k], s))
        if s and (not best_s or s < best_s):
            best_k, best_s = k, s
        elif best_s:
            break  # slower than the rate above it: the best is found
    return BatchPoint(B, task.grid[best_k] if best_s else float("nan"), best_s, tuple(tried))


def _noise_scale(net: MLP, X: np.ndarray, T: np.ndarray, config: Config, cancel) -> float:
    """B_noise = tr(Σ)/|G|² over the whole set (X (n, n_in), T (n, n_out)), in pieces with
    ``check(cancel)`` between: Σ|g_i|² and Σ g_i add over pieces."""
    kw = {"loss": config.loss, "reduction": "mean", "huber_delta": config.huber_delta}
    n, per = len(X), max(256, 2**22 // max(1, net.n_params))
    total, sum_sq = np.zeros(net.n_params), 0.0
    for a in range(0, n, per):
        check(cancel)
        m = min(n, a + per) - a
        gsq, trace, G = exact_moments(net, X[a : a + m], T[a : a + m], kw)
        sum_sq += (trace * (m - 1) if m > 1 else 0.0) + m * gsq
        total += m * G
    G = total / n
    grad_sq = float(G @ G)
    trace = (sum_sq - n * grad_sq) / (n - 1) if n > 1 else float("nan")
    return trace / grad_sq if grad_sq > 0 and trace >= 0 else float("nan")


def run_critical_batch(
    config: Config,
    quick: bool = False,
    batch_sizes: tuple[int, ...] | None = None,
    ref_steps: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    partial: Callable[[CriticalBatchResult], None] | None = None,
) -> CriticalBatchResult | None:
    """Measure steps and samples to a common target for each batch size and fit the trade-off.

    batch_sizes : increasing, the last the whole training set (default ``batch_sizes_for``).
    ref_steps : the full batch's steps that define the target (default 300; quick 100).
    Returns None if cancelled. Raises ValueError if the full batch diverges at every rate.
    """
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return _critical(config, quick, batch_sizes, ref_steps, progress, cancel, partial)
    except CancelledError:
        return None


def _critical(config, quick, batch_sizes, ref_steps, progress, cancel, partial):
    data = make_dataset(config)
    n = data.n_train
    sizes = tuple(batch_sizes) if batch_sizes else batch_sizes_for(n, quick)
    ref_steps = int(ref_steps or (QUICK_REF_STEPS if quick else REF_STEPS))
    layer_sizes = tuple(config.layer_sizes(data.n_in, data.n_out))
    start = MLP(list(layer_sizes), config.activation, seed=config.seed)
    grid = tuple(config.lr * 2.0**k for k in range(-GRID_DOWN, GRID_UP + 1))
    task = _Task(data.X_train, data.T_train, start, MLP(list(layer_sizes), config.activation),
                 config, grid, cancel)  # fmt: skip
    total = len(sizes) + 1

    def say(done: int, text: str) -> None:
        if progress is not None:
            progress(done, total, text)

    say(0, f"full batch: the target loss ({ref_steps} steps)")
    target, point, at_target = _reference(task, ref_steps)
    points = [point]
    common = {
        "target_loss": target, "ref_steps": ref_steps, "n_train": n,
        "layer_sizes": layer_sizes, "optimizer": config.optimizer, "loss": config.loss,
        "lr_grid": grid, "quick": bool(quick),
    }  # fmt: skip
    initial = mean_loss_in_pieces(start, task.X, task.T, config.loss, config.huber_delta, cancel)
    for done, B in enumerate(reversed(sizes[:-1]), start=1):
        larger = _last(points)
        say(done, f"B = {B} (target {target:.4g})")
        points.append(_measure(task, B, target, larger, larger.batch_size / B))
        if partial is not None and done < len(sizes) - 1:
            partial(_result(points, common, initial, np.nan, np.nan, complete=False))
    say(len(sizes), "noise scale B_noise")
    task.work.params[...] = at_target
    b_noise = _noise_scale(task.work, task.X, task.T, config, cancel)
    b_start = _noise_scale(start, task.X, task.T, config, cancel)
    say(total, "done")
    return _result(points, common, initial, b_noise, b_start)


def _last(points: list[BatchPoint]) -> BatchPoint:
    """The smallest batch size that reached the target (the reference always did)."""
    return [p for p in points if p.reached][-1]


def _result(points, common, initial, b_noise, b_start, complete=True) -> CriticalBatchResult:
    reached = [p for p in points if p.reached]
    fit = fit_tradeoff([p.batch_size for p in reached], [p.steps for p in reached])
    return CriticalBatchResult(
        tuple(points), fit, initial_loss=initial, B_noise=b_noise, B_noise_start=b_start,
        complete=complete, **common,
    )  # fmt: skip
