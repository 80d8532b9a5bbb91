"""Batch-size race: the same initial weights and data trained with different batch sizes.

Batch size 1 is plain SGD (one update per sample); the whole training set is full-batch
gradient descent. Every run sees the same number of samples, ``epochs`` passes over the
training set (rounded up to whole steps), so B = 1 takes n_train steps per epoch and the full
batch one: the curves can be compared per step, per sample seen and per second of training.
By default every run starts from the fresh initial weights of the seed (``params`` starts them
from given weights instead). All trajectories are drawn on one loss surface: the plane of the
top two principal directions of all of them together, through the common start.

Cancellation is checked at every step (and between the pieces of a large batch's gradient),
so it takes effect within a fraction of a second at any network size; ``partial`` receives the
runs finished so far.

CSV (``BatchRaceResult.table``): ``batch_size,step,samples_seen,seconds,train_loss,val_loss``,
one row per recorded step of every run (``seconds`` = training time so far, evaluation
excluded; the losses are the mean loss over a fixed training subset and the validation set).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..data import MinibatchSampler, make_dataset
from ..landscape import Plane, loss_grid, pca_plane, project, random_plane
from ..mlp import MLP
from ..optimizers import make_optimizer
from ..seeds import rng_for
from ..training import Evaluation, Trainer, objective_for
from .cancellation import (
    CancelledError,
    check,
    grid_chunk_bytes,
    loss_and_gradient_in_pieces,
    mean_loss_in_pieces,
)

__all__ = ["BatchRaceResult", "RaceRun", "run_batch_race", "parse_batch_sizes"]


@dataclass(frozen=True)
class RaceRun:
    """One run. Arrays (n,) per recorded step; ``path`` (m, 2) in the plane."""

    batch_size: int
    steps: np.ndarray
    samples_seen: np.ndarray
    seconds: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    path: np.ndarray
    #: step at which the run was stopped as diverging (``core.training``'s rule: the loss
    #: or weights stopped being finite, or the loss grew 1e8-fold); its last recorded step
    #: is the last one whose loss was sane (0: never diverged)
    diverged_at: int = 0


@dataclass(frozen=True)
class BatchRaceResult:
    runs: tuple[RaceRun, ...]
    alphas: np.ndarray
    betas: np.ndarray
    Z: np.ndarray  #: (res, res) mean loss over the surface samples ((0, 0) while partial)
    n_train: int
    layer_sizes: tuple[int, ...]
    lr: float = float("nan")
    optimizer: str = ""
    start: str = "fresh"  #: "fresh" initial weights of the seed, or "current" given weights
    epochs: float = 0.0  #: passes over the training set every run makes
    complete: bool = True  #: False for the runs finished so far (no surface, no paths yet)
    thinned: bool = False  #: paths keep fewer points than the curves (a very large network)

    @property
    def samples_budget(self) -> int:
        """The samples every run sees: epochs x n_train (each rounded up to whole steps)."""
        return int(math.ceil(self.epochs * self.n_train))

    def leader(self) -> tuple[int, int, float] | None:
        """(batch size, samples, val loss): the run with the lowest validation loss after the
        same number of samples, the fewest any finished run saw (each run's loss is read off
        its curve there, linearly between recorded steps). Runs stopped as diverging are out;
        None if every run diverged."""
        ok = [r for r in self.runs if not r.diverged_at and np.isfinite(r.val_loss[-1])]
        if not ok:
            return None
        common = min(int(r.samples_seen[-1]) for r in ok)
        at = [float(np.interp(common, r.samples_seen, r.val_loss)) for r in ok]
        k = int(np.argmin(at))
        return ok[k].batch_size, common, at[k]

    def table(self) -> tuple[list[str], list[list]]:
        header = ["batch_size", "step", "samples_seen", "seconds", "train_loss", "val_loss"]
        rows = []
        for r in self.runs:
            for k in range(len(r.steps)):
                rows.append(
                    [
                        r.batch_size,
                        int(r.steps[k]),
                        int(r.samples_seen[k]),
                        f"{r.seconds[k]:.6g}",
                        f"{r.train_loss[k]:.8g}",
                        f"{r.val_loss[k]:.8g}",
                    ]
                )
        return header, rows


def parse_batch_sizes(text: str, n_train: int) -> tuple[int, ...]:
    """Parse "1, 8, 32, all" ("all" or "full" = the training set). ValueError with a reason."""
    sizes: list[int] = []
    for part in text.replace(";", ",").replace(" ", ",").split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part in ("all", "full"):
            b = n_train
        else:
            try:
                b = int(part)
            except ValueError:
                raise ValueError(f"{part!r} is not a whole number (or 'all')") from None
        if not 1 <= b <= n_train:
            raise ValueError(f"batch size {b} must be between 1 and the training set ({n_train})")
        if b in sizes:
            raise ValueError(f"batch size {b} appears twice")
        sizes.append(b)
    if not sizes:
        raise ValueError("give at least one batch size, e.g. '1, 8, 32, all'")
    if len(sizes) > 8:
        raise ValueError("at most 8 runs")
    return tuple(sizes)


#: bytes of stored weights (for the PCA plane and the paths) per race; beyond it the paths
#: keep fewer points (2048,2048 hidden units: 33.7 MB per point)
TRAJECTORY_BYTES = 1024 * 2**20


def run_batch_race(
    config: Config,
    batch_sizes=(1, 8, 32, None),
    params: np.ndarray | None = None,
    epochs: float = 5.0,
    quick: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    partial: Callable[[BatchRaceResult], None] | None = None,
) -> BatchRaceResult | None:
    """Train one run per batch size (None = the whole training set) from the same start, each
    for ``epochs`` passes over the training set (``quick``: at most 2).

    params : weights to start from (the live ones); None = the fresh initial weights of
        ``config.seed``.
    partial : called with the runs finished so far after each run but the last.
    Returns None if cancelled.
    """
    try:
        return _race(config, batch_sizes, params, epochs, quick, progress, cancel, partial)
    except CancelledError:
        return None


def _race(config, batch_sizes, params, epochs, quick, progress, cancel, partial):
    data = make_dataset(config)
    n = data.n_train
    sizes = [n if b is None else int(b) for b in batch_sizes]
    layer_sizes = config.layer_sizes(data.n_in, data.n_out)
    start = MLP(layer_sizes, config.activation, seed=config.seed)
    start_kind = "fresh"
    if params is not None and params.shape == start.params.shape:
        start.params[...] = params
        start_kind = "current"
    check(cancel)
    if quick:
        epochs = min(epochs, 2.0)
    eval_idx = np.arange(min(256, n))
    evals = ((data.X_train[eval_idx], data.T_train[eval_idx]), (data.X_val, data.T_val))
    keep = max(2, TRAJECTORY_BYTES // (8 * start.n_params * len(sizes)))
    total = len(sizes) + 1
    runs, trajectories = [], []
    common = {
        "n_train": n,
        "layer_sizes": tuple(layer_sizes),
        "lr": float(config.lr),
        "optimizer": config.optimizer,
        "start": start_kind,
        "epochs": float(epochs),
    }
    thinned = False
    for k, B in enumerate(sizes):
        if progress is not None:
            progress(k, total, f"B = {B}")
        run, traj, thin = _one_run(config, data, start, B, epochs, evals, cancel, keep)
        thinned = thinned or thin
        runs.append(run)
        trajectories.append(traj)
        if partial is not None and k < len(sizes) - 1:
            none = np.zeros(0)
            so_far = BatchRaceResult(
                tuple(runs), none, none, np.zeros((0, 0)), complete=False, **common
            )
            partial(so_far)
    if progress is not None:
        progress(len(sizes), total, "loss surface")
    check(cancel)
    paths, (alphas, betas, Z) = _surface(config, data, start, trajectories, quick, cancel)
    runs = [RaceRun(**{**r.__dict__, "path": p}) for r, p in zip(runs, paths)]
    if progress is not None:
        progress(total, total, "done")
    return BatchRaceResult(tuple(runs), alphas, betas, Z, thinned=thinned, **common)


def _surface(config: Config, data, start: MLP, trajectories, quick: bool, cancel):
    """(paths, (alphas, betas, Z)): every run's path (m, 2) on the plane of the top two
    principal directions of all of them through the start (random if they span no plane),
    and the mean loss over a grid around them (non-finite values as NaN)."""
    # the plane from the finite, not-exploded part of every path (a diverging run's last
    # points would otherwise decide the principal directions alone)
    scale = 1e3 * (1.0 + float(np.linalg.norm(start.params)))
    with np.errstate(all="ignore"):
        trajectories = [
            t[np.all(np.isfinite(t), axis=1) & (np.linalg.norm(t - start.params, axis=1) < scale)]
            for t in trajectories
        ]
    stacked = np.vstack(trajectories)
    rng = rng_for(config.seed, "race_plane")
    with np.errstate(all="ignore"):
        plane: Plane | None = pca_plane(stacked, start.params, rng)
    if plane is None:
        plane = random_plane(start, start.params, rng)
    paths = [project(plane, t)[0] for t in trajectories]
    allc = np.vstack(paths)
    lo, hi = allc.min(axis=0), allc.max(axis=0)
    span = max(float(np.max(hi - lo)) * 0.6, 1e-6)
    S = min(data.n_train, 128 if quick else 256)
    with np.errstate(all="ignore"):
        grid = loss_grid(
            start, data.X_train[:S], data.T_train[:S], plane, tuple((lo + hi) / 2), span,
            25 if quick else 41, config.loss, "mean", huber_delta=config.huber_delta,
            dtype=np.float32, chunk_bytes=grid_chunk_bytes(start.layer_sizes, S), cancel=cancel,
        )  # fmt: skip
    if grid is None:
        raise CancelledError
    alphas, betas, Z = grid
    return paths, (alphas, betas, np.where(np.isfinite(Z), Z, np.nan))


class _RunRecord:
    """A run's recorded steps (curves) and stored weights (at most ``keep``: every
    ``stride``-th record, the first and the last always)."""

    def __init__(self, net: MLP, evals, cancel, config: Config, stride: int) -> None:
        self.net, self.evals, self.cancel, self.config = net, evals, cancel, config
        self.stride = stride
        self.rows: dict[str, list] = {k: [] for k in _RECORDED}
        self.traj = [net.params.copy()]
        self.stored: list[bool] = []  #: per record: its weights are in ``traj``

    def record(self, step: int, samples: int, trained: float) -> None:
        """The losses over the evaluation subset and the validation set at ``step``."""
        cfg, net = self.config, self.net
        with np.errstate(all="ignore"):
            losses = [
                mean_loss_in_pieces(net, X, T, cfg.loss, cfg.huber_delta, self.cancel)
                for X, T in self.evals
            ]
        for key, v in zip(self.rows, (step, samples, trained, *losses)):
            self.rows[key].append(v)
        n = len(self.stored)
        self.stored.append(n % self.stride == 0)
        if self.stored[-1] and n:  # (the first record's weights are the start)
            self.traj.append(self.net.params.copy())

    def drop_after(self, step: int) -> None:
        """Forget the records after ``step`` (their update was undone)."""
        while self.rows["steps"][-1] > step:
            for v in self.rows.values():
                v.pop()
            if self.stored.pop():
                self.traj.pop()

    def finish(self) -> np.ndarray:
        """The stored weights (m, P), the current (last) ones included."""
        if not self.stored[-1] and np.all(np.isfinite(self.net.params)):
            self.traj.append(self.net.params.copy())
        return np.array(self.traj)


_RECORDED = ("steps", "samples_seen", "seconds", "train_loss", "val_loss")


def _one_run(config, data, start: MLP, B: int, epochs, evals, cancel, keep: int):
    """One run: (RaceRun without its path, trajectory (m, P) of stored weights, thinned).

    Trained by ``core.training.Trainer`` (its divergence rule: a diverging run stops at its
    last weights whose loss was sane, recorded as its last step); ``check(cancel)`` runs at
    every step and inside a large batch's gradient.
    """
    check(cancel)
    net = copy.deepcopy(start)  # the same start (and no 0.2 s of random init at 2048 wide)
    opt = make_optimizer(config.optimizer, net.n_params, config.lr, config.momentum)
    sampler = MinibatchSampler(data.n_train, rng_for(config.seed, "sampler"))
    objective = objective_for(config, data)
    trainer = Trainer(net, opt, sampler, data.X_train, data.T_train, objective)

    def evaluate(idx: np.ndarray) -> Evaluation:
        X, T = data.X_train[idx], data.T_train[idx]
        value, grad = loss_and_gradient_in_pieces(net, X, T, cancel=cancel, **objective(idx))
        return Evaluation(idx, value, grad)

    n_steps = max(1, math.ceil(epochs * data.n_train / B))
    every = max(1, n_steps // 150)
    stride = max(1, math.ceil((n_steps // every + 2) / max(1, keep - 1)))
    rec = _RunRecord(net, evals, cancel, config, stride)
    rec.record(0, 0, 0.0)
    trained, diverged = 0.0, 0
    for step in range(1, n_steps + 1):
        check(cancel)
        t0 = time.perf_counter()
        with np.errstate(all="ignore"):
            result = trainer.step(B, step, evaluate)
        trained += time.perf_counter() - t0
        if result.diverged:
            diverged, done = step, step - 1 - trainer.diverge(result.undo_last)
            rec.drop_after(done)
            if rec.rows["steps"][-1] != done:
                rec.record(done, done * B, trained)
            break
        if step % every == 0 or step == n_steps:
            rec.record(step, step * B, trained)
    arrays = {k: np.asarray(v, dtype=float) for k, v in rec.rows.items()}
    run = RaceRun(B, path=np.zeros((0, 2)), diverged_at=diverged, **arrays)
    return run, rec.finish(), stride > 1
