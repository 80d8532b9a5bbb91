"""The training session: owns the network, the data, the optimiser and the settings.

``step()`` trains on one minibatch and returns a frozen ``Snapshot``. Settings change between
steps through ``update(**changes)`` (or ``apply(command)``): a new batch size, learning rate,
loss, reduction or activation applies to the next step and keeps the weights; new layer sizes
(or a data set with other input/output sizes) build a new network. The loss history survives
both; only ``reset()`` clears it.

Each step is one ``core.training.Trainer`` step (sample, forward and backward, the divergence
rule, the optimiser's update) with the session's evaluation of the batch, a typed
``StepRecord``; the plane, surface and path live in ``core.landscape.Landscape``.

A step that breaks the engine's one divergence rule (``core.training``: a loss or weights not
finite, or a loss 1e8 times its value when the settings began) marks the session *diverged*:
the last weights whose loss was sane are restored, the optimiser state is cleared, and
``step()`` raises ``DivergedError`` until ``reset()`` or a change of settings.

Example::

    from core import Session
    s = Session()                  # 5-32-32-3 tanh, teacher data, B = 32, MSE, mean
    for _ in range(100):
        snap = s.step()
    s.update(batch_size=8, lr=0.02)
    print(snap.loss, snap.stats.noise_scale)
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .batch_noise import MAX_POPULATION, BatchNoise, BatchNoiseJob
from .commands import RecomputeSurface, Reset, Update
from .config import Config
from .curvature import overshoot
from .data import Dataset, MinibatchSampler, make_dataset
from .gradstats import (
    MATERIALISE_LIMIT_BYTES,
    DenseGradients,
    GradStats,
    disagreement_direction,
    gradient_stats,
)
from .history import HistoryBuffer
from .landscape import Landscape, Plane, Surface, loss_grid, project_vectors, surface_plan
from .losses import reduce
from .mlp import MLP, Backprop
from .noise_scale import NoiseScaleTracker
from .optimizers import make_optimizer
from .seeds import rng_for
from .sharpness import Sharpness, SharpnessTracker
from .snapshot import History, Snapshot, freeze
from .training import Trainer, objective_for

__all__ = ["Session", "DivergedError", "StepDetail", "StepRecord", "validate_changes"]

MAX_SHOWN_PARAMS = 4000  #: parameters drawn in the mean-gradient view
EVAL_SAMPLES = 512  #: samples for the train/validation loss curves
#: the measured 1/sqrt(B) panel is redone this often (or 30x its cost if more)
BATCH_NOISE_SECONDS = 3.0

_DATA_FIELDS = {
    "dataset",
    "n_samples",
    "val_fraction",
    "noise",
    "csv_path",
    "csv_inputs",
    "csv_targets",
    "csv_task",
    "csv_scale",
    "sample_weighting",
}
#: settings after which the training set's noise scale is measured afresh
_NOISE_FIELDS = {"loss", "reduction", "output_weights", "huber_delta", "activation"}
_SURFACE_FIELDS = {
    "loss",
    "reduction",
    "output_weights",
    "huber_delta",
    "surface_resolution",
    "surface_samples",
    "activation",
    "sample_weighting",
}


class DivergedError(RuntimeError):
    """The session diverged; reset or change a setting before stepping again."""


@dataclass(frozen=True)
class StepDetail:
    """What only the views draw for one batch (K = the parameters shown).

    plane : the plane the path and arrows are drawn on
    spread : (B, 2) each per-sample gradient along the mean's direction and the direction
        in which they disagree; spread_mean : (2,) the mean gradient there
    fan : (B, 2) the per-sample gradients in the plane; arrow : (2,) the gradient there
    shown_index : (K,) parameters drawn in the mean-gradient view; grad_shown, mean_shown :
        (K,) the scalar's gradient and the mean of the per-sample gradients there
    max_abs_diff : max |scalar gradient - mean of per-sample gradients| over all P
    band_lo, band_hi : (K,) 10th and 90th percentiles of the per-sample gradients (None when
        they are not materialised: ``MATERIALISE_LIMIT_BYTES``)
    """

    plane: Plane
    spread: np.ndarray
    spread_mean: np.ndarray
    fan: np.ndarray
    arrow: np.ndarray
    shown_index: np.ndarray
    grad_shown: np.ndarray
    mean_shown: np.ndarray
    max_abs_diff: float
    band_lo: np.ndarray | None = None
    band_hi: np.ndarray | None = None


@dataclass(frozen=True)
class StepRecord:
    """One batch evaluated at the current weights: the session's evaluation of a step.

    idx : (B,) the batch; bp : its factored pass; loss : the reduced scalar; grad : (P,) its
    gradient (the session's buffer: valid until the next evaluation); stats : the spread of
    the per-sample gradients; detail : for a snapshot that will be drawn, else None.
    """

    idx: np.ndarray
    bp: Backprop
    loss: float
    grad: np.ndarray
    stats: GradStats
    detail: StepDetail | None = None


class Session:
    """A live training run (see the module docstring).

    Parameters
    ----------
    config : Config, validated here (ConfigError names the field)
    """

    def __init__(self, config: Config | None = None) -> None:
        config = Config() if config is None else config
        config.validate()  # the declared data; a CSV's file is read next and checked too
        data = make_dataset(config)
        if config.dataset == "csv":
            config.validate(data)
        self.config = config
        self.data: Dataset = data
        self._run_ids = itertools.count(1)
        self.landscape = Landscape()  #: the plane, the surface and the path on it
        self._reset_history()
        self._build_network()

    # ----------------------------------------------------------------- set-up
    def _reset_history(self) -> None:
        self.step_count = 0
        self._history = HistoryBuffer()
        self._last_train = float("nan")
        self._last_val = float("nan")

    def _build_network(self) -> None:
        """A new network from ``config.seed``, a fresh optimiser, sampler and plane."""
        cfg = self.config
        self.run_id = next(self._run_ids)
        net = MLP(cfg.layer_sizes(self.data.n_in, self.data.n_out), cfg.activation, seed=cfg.seed)
        optimizer = make_optimizer(cfg.optimizer, net.n_params, cfg.lr, cfg.momentum)
        sampler = MinibatchSampler(self.data.n_train, rng_for(cfg.seed, "sampler"))
        d = self.data
        self.trainer = Trainer(net, optimizer, sampler, d.X_train, d.T_train, objective_for(cfg, d))
        self.landscape.start(net, rng_for(cfg.seed, "plane"))
        self._evals_before = (float("nan"), float("nan"))
        self._grad = np.empty(net.n_params)
        self._G: np.ndarray | None = None
        self.batch_noise: BatchNoise | None = None
        self._batch_noise_time = 0.0
        self._noise_rng = rng_for(cfg.seed, "batch_noise")
        self._last_idx = self.sampler.next(self.config.batch_size)
        self.sampler.samples_seen = 0
        self._noise_scale = NoiseScaleTracker(self.data.n_train, rng_for(cfg.seed, "noise_scale"))
        self._sharpness = SharpnessTracker(*self._sharpness_batch())
        self.diverged = False
        self.message = ""
        self.divergence = ""  #: why the run diverged, e.g. "the loss became inf at step 7"
        self._t_last = None
        self._sps = 0.0
        self._sec_step = 0.0
        self._use_samples(self.data)
        self.landscape.record()

    def _use_samples(self, data: Dataset) -> None:
        """The fixed training samples of the loss curves and of the live surface."""
        idx = np.arange(min(EVAL_SAMPLES, data.n_train))
        self._eval_train = (data.X_train[idx], data.T_train[idx])
        n_s = min(self.config.surface_samples, data.n_train)
        rng = rng_for(self.config.seed, "surface_samples")
        self._surf_idx = rng.choice(data.n_train, n_s, replace=False)

    # ------------------------------------------------------- what the trainer holds
    @property
    def net(self) -> MLP:
        return self.trainer.net

    @property
    def optimizer(self):
        return self.trainer.optimizer

    @optimizer.setter
    def optimizer(self, optimizer) -> None:
        self.trainer.optimizer = optimizer

    @property
    def sampler(self) -> MinibatchSampler:
        return self.trainer.sampler

    @sampler.setter
    def sampler(self, sampler: MinibatchSampler) -> None:
        self.trainer.sampler = sampler

    @property
    def plane(self) -> Plane | None:
        """The plane the path is drawn on (``landscape.plane``)."""
        return self.landscape.plane

    @property
    def surface(self) -> Surface | None:
        """The newest loss surface (``landscape.surface``)."""
        return self.landscape.surface

    @property
    def surface_compute_seconds(self) -> float:
        return self.landscape.compute_seconds

    # ----------------------------------------------------------------- commands
    def apply(self, command) -> list[str]:
        """Carry out a command from ``core.commands``; returns messages for the status bar."""
        if isinstance(command, Update):
            return self.update(**command.changes)
        if isinstance(command, Reset):
            self.reset()
            return ["reset: fresh weights, history cleared"]
        if isinstance(command, RecomputeSurface):
            self.landscape.forget_plane()
            return ["recomputing the loss surface"]
        raise TypeError(f"unknown command {command!r}")

    def update(self, **changes) -> list[str]:
        """Change settings between steps. Validates everything first: on ConfigError nothing
        changes. Returns what happened, e.g. ``["network rebuilt: 5-24-12-3"]``."""
        changes = {k: v for k, v in changes.items() if getattr(self.config, k, object()) != v}
        if not changes:
            return []
        if "hidden" in changes:
            changes["hidden"] = tuple(changes["hidden"])
        new = self.config.changed(changes)  # an unknown name is refused; values checked next
        new_data = self.data
        if _DATA_FIELDS & changes.keys():
            new.validate(changed=changes)  # Config.validate, the one check (declared data)
            new_data = make_dataset(new)
        if new_data is self.data or new.dataset == "csv":
            new.validate(new_data, changed=changes)  # the one check, on the data in hand
        # --- all checks passed: apply ---
        return self._apply_changes(new, new_data, changes)

    def _apply_changes(self, new: Config, new_data: Dataset, changes: dict) -> list[str]:
        """Apply validated settings ``new`` (and data) between steps; the messages."""
        old = self.config
        self.config = new
        msgs: list[str] = []
        rebuild = (
            "hidden" in changes
            or "seed" in changes
            or (new_data.n_in, new_data.n_out) != (self.data.n_in, self.data.n_out)
        )
        if new_data is not self.data:
            self.data = new_data
            if not rebuild:
                self.sampler = MinibatchSampler(new_data.n_train, rng_for(new.seed, "sampler"))
                self._use_samples(new_data)
                self._last_idx = self.sampler.next(new.batch_size)  # <= n_train: Config.validate
            msgs.append(f"data: {new.dataset} ({new_data.n_train} training samples)")
        if rebuild:
            self._build_network()
            msgs.append(
                f"network rebuilt: {'-'.join(map(str, self.net.layer_sizes))} "
                f"({self.net.n_params:,} parameters)"
            )
        else:
            self._keep_network(changes)
        self._restart_measurements(changes, rebuild)
        msgs += [
            f"{k}: {_fmt(getattr(old, k))} -> {_fmt(getattr(new, k))}"
            for k in changes
            if k != "hidden"
        ]
        self.trainer.rule.restart()  # the new settings' first loss is the new reference
        if self.diverged:
            self.diverged = False
            self.message = ""
            msgs.append("resumed after divergence")
        for m in msgs:
            self._history.events.append((self.step_count, m))
        return msgs

    def _keep_network(self, changes: dict) -> None:
        """Settings that keep the weights: the trainer's objective and data, the activation,
        the optimiser (new for another kind or momentum; the rate always), the surface's
        samples."""
        new = self.config
        self.trainer.X, self.trainer.T = self.data.X_train, self.data.T_train
        self.trainer.objective = objective_for(new, self.data)
        if "activation" in changes:
            self.net.set_activation(new.activation)
        if {"optimizer", "momentum"} & changes.keys():
            self.optimizer = make_optimizer(new.optimizer, self.net.n_params, new.lr, new.momentum)
        self.optimizer.lr = new.lr
        if "surface_samples" in changes:
            self._use_samples(self.data)

    def _restart_measurements(self, changes: dict, rebuild: bool) -> None:
        """What was measured under the old settings is measured afresh."""
        keys = changes.keys()
        if _SURFACE_FIELDS & keys:
            self.landscape.stale = True
        if not rebuild and (_NOISE_FIELDS | _DATA_FIELDS) & keys:
            self._noise_scale.restart(self.data.n_train)
        if keys - {"lr", "optimizer", "momentum"}:
            self._sharpness.restart(*self._sharpness_batch())  # measure afresh at next step
        if (_SURFACE_FIELDS | _DATA_FIELDS) & keys:
            self.batch_noise = None  # measured for another loss or data: redo at once
            self._batch_noise_time = 0.0
        if "plane" in keys:
            self.landscape.forget_plane()

    def reset(self) -> None:
        """Fresh weights from the seed, fresh optimiser; the history is cleared."""
        self._reset_history()
        self._build_network()
        self._sharpness.restart(*self._sharpness_batch())

    # ------------------------------------------------------- carry on elsewhere
    def training_state(self) -> dict:
        """What a new session needs to carry on this run where it stands (``restored``):
        the settings, weights ``params`` (P,), the optimiser and its state, the sampler's
        position, the step count, run id and the record's bookkeeping, but not the record's
        rows (whoever restores has them: the window's copy) nor the recent trajectory (the
        path on the surface starts again). Copies: later steps do not change it."""
        return {
            "config": self.config,
            "run_id": self.run_id,
            "step_count": self.step_count,
            "params": self.net.params.copy(),
            "optimizer": copy.deepcopy(self.optimizer),
            "sampler": copy.deepcopy(self.sampler),
            "last_idx": np.array(self._last_idx),
            "last_train": self._last_train,
            "last_val": self._last_val,
            "loss_ref": self.trainer.rule.reference,
            "diverged": self.diverged,
            "message": self.message,
            "surface_id": self.surface.surface_id if self.surface is not None else 0,
            "history": self._history.light_state(),
        }

    def training_state_nbytes(self) -> int:
        """About how many bytes ``training_state()`` holds (weights and optimiser vectors)."""
        vectors = [v for v in vars(self.optimizer).values() if isinstance(v, np.ndarray)]
        return self.net.params.nbytes + sum(v.nbytes for v in vectors)

    @classmethod
    def restored(cls, state: dict, rows: History) -> Session:
        """A session that carries on from ``state`` (``training_state()``) with the record
        ``rows`` (its History at that moment). ConfigError if the settings no longer build
        (a CSV file gone), ValueError if the weights do not fit the network they build."""
        s = cls(state["config"])
        params = np.asarray(state["params"], dtype=np.float64)
        if params.shape != s.net.params.shape:
            raise ValueError(
                f"the saved weights ({params.size:,}) do not fit the network the settings "
                f"build ({s.net.n_params:,})"
            )
        s._history = HistoryBuffer.from_rows(rows, state["history"])
        s.run_id = state["run_id"]
        s._run_ids = itertools.count(s.run_id + 1)
        s.landscape.count_surfaces_from(state["surface_id"])
        s.step_count = state["step_count"]
        s.trainer.restart(params)
        s.optimizer = state["optimizer"]
        s.sampler = state["sampler"]
        s._last_idx = np.asarray(state["last_idx"])
        s._last_train, s._last_val = state["last_train"], state["last_val"]
        s.trainer.rule.reference = state["loss_ref"]
        s.diverged, s.message = state["diverged"], state["message"]
        s.landscape.trajectory.restart()  # the path starts again from here
        s.landscape.record()
        return s

    # --------------------------------------------------------------- training
    def step(self, detail: bool = True) -> Snapshot:
        """Train on one minibatch and return its Snapshot.

        detail : also compute what only the drawing needs (percentile bands, the spread's
        directions, plane projections). The worker asks for detail only for snapshots it
        will draw, so training speed does not depend on drawing.
        """
        if self.diverged:
            raise DivergedError(self.message)
        # Overflow on the way to divergence is expected and handled below, not warned about.
        with np.errstate(all="ignore"):
            return self._step(detail)

    def _step(self, detail: bool) -> Snapshot:
        """One step of ``core.training.Trainer`` with the session's evaluation; then the
        curves, the history and the path."""
        t0 = time.perf_counter()
        cfg = self.config
        idx = self.sampler.next(cfg.batch_size)  # 1 <= B <= n_train: Config.validate
        self._last_idx = idx
        result = self.trainer.step(
            idx, self.step_count + 1, lambda i: self._evaluate(i, detail), self._before_update
        )
        if result.diverged:
            return self._diverge(result.diverged, detail, result.undo_last)
        rec: StepRecord = result.evaluation
        self.step_count += 1
        train, val = self._measure_curves()
        self._history.append(
            steps=self.step_count,
            loss=rec.loss,
            train_loss=train,
            val_loss=val,
            grad_norm=float(np.linalg.norm(rec.grad)),
            # measured values only (NaN in between): the curve joins the measurements
            noise_scale=(
                rec.stats.noise_scale
                if rec.stats.noise_scale_step == self.step_count - 1
                else np.nan
            ),
            batch_size=len(idx),
        )
        self.landscape.record()
        self._time_step(t0)
        return self._snapshot(rec)

    def _before_update(self, rec: StepRecord) -> StepRecord:
        """At the weights the gradient was taken at, once the divergence rule passed them:
        the noise-scale and sharpness trackers measure if due."""
        self._evals_before = (self._last_train, self._last_val)
        rec = self._measure_noise(rec)
        self._measure_sharpness()
        return rec

    def _measure_curves(self) -> tuple[float, float]:
        """The train and validation loss at this step if due (``eval_every``), else NaN."""
        if self.step_count % self.config.eval_every and self.step_count != 1:
            return np.nan, np.nan
        self._last_train = self._eval_loss(*self._eval_train)
        d = self.data
        self._last_val = self._eval_loss(d.X_val, d.T_val) if len(d.X_val) else float("nan")
        return self._last_train, self._last_val

    def run(self, n_steps: int, detail_last: bool = True) -> Snapshot | None:
        """Train ``n_steps`` steps (stopping early on divergence); return the last snapshot."""
        snap = None
        for k in range(n_steps):
            snap = self.step(detail=detail_last and k == n_steps - 1)
            if snap.diverged:
                break
        return snap

    def snapshot(self, detail: bool = True) -> Snapshot:
        """A snapshot of the current weights on the most recent batch, without training."""
        with np.errstate(all="ignore"):
            return self._snapshot(self._evaluate(self._last_idx, detail))

    def _time_step(self, t0: float) -> None:
        now = time.perf_counter()
        self._sec_step = now - t0
        if self._t_last is not None:
            dt = max(now - self._t_last, 1e-9)
            self._sps = 1.0 / dt if self._sps == 0 else 0.95 * self._sps + 0.05 / dt
        self._t_last = now

    def _sharpness_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The fixed training batch lambda_max is tracked on: the first B training samples."""
        b = self.config.batch_size  # <= n_train: Config.validate
        return self.data.X_train[:b], self.data.T_train[:b]

    def _measure_sharpness(self) -> None:
        """Let the sharpness tracker measure lambda_max if due (weights before this step's
        update); its cost is kept near 10 % of training time (``core.sharpness``)."""
        cfg = self.config
        kw = self.trainer.objective(np.arange(len(self._sharpness.X)))
        self._sharpness.observe(
            self.step_count, self.net, kw, cfg.optimizer, cfg.lr, cfg.momentum, self._sec_step
        )

    @property
    def sharpness(self) -> Sharpness | None:
        """The newest lambda_max measurement (``core.sharpness.Sharpness``) or None."""
        return self._sharpness.current

    def curvature_rows(self) -> list[tuple[int, float, float | None]]:
        """(step, lambda_max, stability_limit) per measurement, for ``curvature.csv``."""
        return self._sharpness.rows()

    def _measure_noise(self, rec: StepRecord) -> StepRecord:
        """Let the noise-scale tracker measure if due (weights before this step's update);
        the record with its newest estimate in the statistics."""
        kw = self.trainer.objective(np.arange(self.data.n_train))
        stats = rec.stats
        est = self._noise_scale.observe(
            self.step_count,
            self.net,
            self.data.X_train,
            self.data.T_train,
            kw,
            stats.mean_norm**2,
            stats.batch_size,
            self._sec_step,
        )
        age = 0 if est is None else self.step_count - est.step
        return dataclasses.replace(rec, stats=stats.with_noise(est, age))

    def _diverge(self, why: str, detail: bool, undo_last: bool) -> Snapshot:
        """Mark the run diverged, keeping weights, step count and history in agreement.

        The trainer has already undone an update that made the weights non-finite (it was
        not counted). When the loss at the current weights is what blew up (``undo_last``),
        the update that led to them is undone too: the weights go back to before it, and the
        step count, the history and the trajectory's newest point drop that step, so
        lowering the learning rate resumes from weights whose loss was sane.
        """
        undo = (
            undo_last
            and self.step_count > 0
            and self.trainer.can_undo
            and self._history.drop_last()
        )
        if self.trainer.diverge(undo):
            self.step_count -= 1
            self._last_train, self._last_val = self._evals_before
            self.landscape.rewrite_newest()
            why += f"; update {self.step_count + 1}, which led there, is undone"
        self.diverged = True
        self.divergence = why + self._sharpness_note()
        self.message = (
            f"Diverged: {self.divergence}. The last finite weights are kept; lower the "
            "learning rate or reset to continue."
        )
        self._history.events.append((self.step_count, "diverged"))
        self._t_last = None
        return self._snapshot(self._evaluate(self._last_idx, detail))

    def _sharpness_note(self) -> str:
        """lambda_max against the optimiser's stability limit, when the step overshot it."""
        sh, cfg = self._sharpness.current, self.config
        if sh is None or not np.isfinite(sh.lambda_max):
            return ""
        f = overshoot(sh.lambda_max, cfg.optimizer, cfg.lr, cfg.momentum)
        if f is None or f <= 1:
            return ""
        vs = " against 2" if cfg.optimizer == "sgd" else ""
        return (
            f" (lambda_max {sh.lambda_max:.3g} at step {sh.step} against the limit "
            f"{sh.lambda_max / f:.3g}, lr x lambda_max = {cfg.lr * sh.lambda_max:.3g}"
            f"{vs}: the step was {f:.2g} times too long along the sharpest direction)"
        )

    def _eval_loss(self, X: np.ndarray, T: np.ndarray) -> float:
        """The chosen loss averaged over a whole set (the curves' train/validation loss)."""
        cfg = self.config
        M = self.net.loss_matrix(X, T, cfg.loss, cfg.huber_delta)
        return reduce(M, "mean", cfg.loss).value

    def output_weights(self) -> np.ndarray:
        """Per-output weights of the weighted reduction (default: output 1 counts twice)."""
        return np.asarray(self.config.output_weight_vector(self.data.n_out))

    # ------------------------------------------------------------- evaluation
    def _evaluate(self, idx: np.ndarray, detail: bool) -> StepRecord:
        """Forward, backward and statistics on batch ``idx`` (B,); no update. With
        ``detail`` (and a finite loss and gradient) also what the views draw."""
        X, T = self.data.X_train[idx], self.data.T_train[idx]
        bp = self.net.backprop(X, T, **self.trainer.objective(idx))
        grad = bp.gradient(out=self._grad)
        loss = bp.reduced.value
        gs = self._per_sample(bp)
        B = len(idx)
        gbar = grad.copy() if self.config.reduction == "mean" else gs.combine(np.full(B, 1.0 / B))
        noise = self._noise_scale.current
        age = 0 if noise is None else self.step_count - noise.step
        if not (detail and np.isfinite(loss) and np.all(np.isfinite(grad))):
            # (nothing to draw when the step will diverge)
            return StepRecord(idx, bp, loss, grad, gradient_stats(gs, gbar, noise=noise, age=age))
        disagree = disagreement_direction(gs, gbar)
        plane = self.landscape.plane
        if plane is None:
            plane = self.landscape.new_plane(self.config.plane, gbar, disagree)
        ghat = gbar / np.linalg.norm(gbar) if np.any(gbar) else gbar
        stats = gradient_stats(gs, gbar, [ghat, disagree, plane.d1, plane.d2], noise=noise, age=age)
        proj = np.asarray(stats.projections)
        DD = np.array(
            [[plane.d1 @ plane.d1, plane.d1 @ plane.d2], [plane.d1 @ plane.d2, plane.d2 @ plane.d2]]
        )
        detail_rec = StepDetail(
            plane=plane,
            spread=proj[:, :2],
            spread_mean=np.array([ghat @ gbar, disagree @ gbar]),
            fan=np.linalg.solve(DD, proj[:, 2:4].T).T,
            arrow=project_vectors(plane, grad)[0],
            **self._shown(idx, gs, bp),
        )
        return StepRecord(idx, bp, loss, grad, stats, detail_rec)

    def _per_sample(self, bp: Backprop):
        """The per-sample gradients: materialised into the session's (B, P) buffer when it
        fits ``MATERIALISE_LIMIT_BYTES``, else the factored pass itself."""
        B, P = bp.batch_size, self.net.n_params
        if B * P * 8 > MATERIALISE_LIMIT_BYTES:
            self._G = None
            return bp
        if self._G is None or self._G.shape != (B, P):
            self._G = np.empty((B, P))
        return DenseGradients(bp.per_sample(out=self._G))

    def _shown(self, idx: np.ndarray, gs, bp: Backprop) -> dict:
        """The mean-gradient view's part of the detail: the scalar's gradient against the
        mean of the per-sample gradients, on at most ``MAX_SHOWN_PARAMS`` parameters, with
        the per-sample gradients' 10-90 % band where they are materialised."""
        P = self.net.n_params
        shown = (
            np.arange(P)
            if P <= MAX_SHOWN_PARAMS
            else np.unique(np.linspace(0, P - 1, MAX_SHOWN_PARAMS).astype(np.int64))
        )
        X, T = self.data.X_train[idx], self.data.T_train[idx]
        scalar_grad = self.net.gradient(X, T, **self.trainer.objective(idx))
        mean_of_samples = gs.combine(bp.reduced.weights)
        lo = hi = None
        if self._G is not None:
            lo, hi = _percentiles(self._G[:, shown], (10.0, 90.0))
        return {
            "shown_index": shown,
            "grad_shown": scalar_grad[shown],
            "mean_shown": mean_of_samples[shown],
            "max_abs_diff": float(np.max(np.abs(scalar_grad - mean_of_samples))),
            "band_lo": lo,
            "band_hi": hi,
        }

    # --------------------------------------------------------- plane, surface
    def trajectory(self) -> np.ndarray:
        """The recent parameter vectors (N, P), oldest first (a copy)."""
        return self.landscape.trajectory.points()

    def _directions(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean gradient (P,) and the per-sample gradients' main disagreement (P,) (zero
        unless the plane is a gradient plane) on the newest batch, for a new plane; the
        gradient buffer takes the current gradient (the surface's span reads it)."""
        idx = self._last_idx
        with np.errstate(all="ignore"):
            X, T = self.data.X_train[idx], self.data.T_train[idx]
            bp = self.net.backprop(X, T, **self.trainer.objective(idx))
            bp.gradient(out=self._grad)
            gbar = bp.combine(np.full(bp.batch_size, 1.0 / bp.batch_size))
            if self.config.plane != "gradient":
                return gbar, np.zeros_like(gbar)
            return gbar, disagreement_direction(bp, gbar)

    def needs_surface(self) -> bool:
        """True when the surface should be (re)computed: none yet, settings changed, the point
        left the central 60 % of the grid, or it drifted off the plane by over half a span
        (never when the network is too large for a live surface)."""
        if self.surface_plan()[0] == 0:
            return False
        return self.landscape.needs_surface(self.step_count)

    def surface_age_seconds(self) -> float:
        """Wall seconds of training since the weights the surface was computed at (0 while
        the run has not stepped since; nan without a surface)."""
        return self.landscape.age_seconds(self.step_count)

    def surface_expired(self) -> bool:
        """True when the weights moved on and the surface is older than about half a second
        (``core.landscape.SURFACE_REFRESH_SECONDS``, or 4x its own cost)."""
        return self.landscape.expired(self.step_count)

    def batch_noise_due(self) -> bool:
        """True when the measured 1/sqrt(B) panel should be redone: none yet, or the weights
        moved on and ``BATCH_NOISE_SECONDS`` (or 30x its cost) have passed."""
        bn = self.batch_noise
        if bn is None:  # none yet (or it could not be measured: retried each second)
            return time.perf_counter() - self._batch_noise_time > 1.0
        if bn.step == self.step_count:
            return False
        every = max(BATCH_NOISE_SECONDS, 30.0 * bn.seconds)
        return time.perf_counter() - self._batch_noise_time > every

    def measure_batch_noise(self) -> BatchNoise | None:
        """Measure the standard error of the minibatch mean gradient for B = 1, 2, 4 ... 256
        at the current weights (``core.batch_noise``), drawing minibatches from the training set
        (or a fixed random ``MAX_POPULATION`` of it). Kept as ``self.batch_noise``."""
        job = self.start_batch_noise()
        with np.errstate(all="ignore"):
            while not job.advance():
                pass
        return self.keep_batch_noise(job)

    def start_batch_noise(self) -> BatchNoiseJob:
        """``measure_batch_noise`` as a job of pieces of a few ms (``BatchNoiseJob.advance``;
        advance it under ``np.errstate(all="ignore")``), for a loop that trains between them:
        the per-sample gradients are taken now, so it measures these weights (``step``)
        however far training goes meanwhile. ``keep_batch_noise(job)`` keeps its result."""
        n = self.data.n_train
        idx = np.arange(n)
        if n > MAX_POPULATION:
            rng = rng_for(self.config.seed, "batch_noise_population")
            idx = np.sort(rng.choice(n, MAX_POPULATION, replace=False))
        with np.errstate(all="ignore"):
            X, T = self.data.X_train[idx], self.data.T_train[idx]
            bp = self.net.backprop(X, T, **self.trainer.objective(idx))
        return BatchNoiseJob(bp, self._noise_rng, step=self.step_count)

    def keep_batch_noise(self, job: BatchNoiseJob) -> BatchNoise | None:
        """Keep a finished job's result as ``self.batch_noise`` (None: not measurable)."""
        self.batch_noise = job.result
        self._batch_noise_time = time.perf_counter()
        return job.result

    def surface_plan(self) -> tuple[int, int]:
        """(resolution, samples) for the next surface: the configured ones, reduced to fit
        the time budget (``core.landscape.surface_plan``); (0, 0) for none."""
        sizes = self.net.layer_sizes
        return surface_plan(sizes, self.config.surface_resolution, len(self._surf_idx))

    def compute_surface(self, cancel: Callable[[], bool] | None = None) -> Surface | None:
        """Start a new plane through the current weights and compute the loss on it.

        Computed in float32: the benchmark shows it halves the time of this live view, and the
        values agree with float64 to ~1e-7 relative. Returns None (and keeps the old surface)
        if ``cancel()`` became true.
        """
        cfg, land = self.config, self.landscape
        directions = self._directions()
        res, n_samples = self.surface_plan()
        if res == 0:
            land.new_plane(cfg.plane, *directions)
            land.no_surface()  # the window says why (gui.plots.loss_surface.no_surface_reason)
            return None
        idx = self._surf_idx[:n_samples]
        X, T, kw = self.data.X_train[idx], self.data.T_train[idx], self.trainer.objective(idx)

        def grid(plane: Plane, span: float):
            return loss_grid(
                self.net, X, T, plane, (0.0, 0.0), span, res,
                dtype=np.float32, cancel=cancel, **kw,
            )  # fmt: skip

        step_length = cfg.lr * float(np.linalg.norm(self._grad))
        return land.compute_surface(
            cfg.plane, directions, grid, len(idx), self.step_count, step_length
        )

    # -------------------------------------------------------------- snapshots
    @property
    def history(self) -> History:
        return self._history.view()

    def _snapshot(self, rec: StepRecord) -> Snapshot:
        cfg = self.config
        net = self.net
        bp = rec.bp
        red = bp.reduced
        bounds = [0]
        for sl in net.slices:
            bounds += [sl.w_stop, sl.b_stop]
        ow = None
        if cfg.reduction != "max":
            ow = red.coefficients[0] if red.coefficients.ndim == 2 else red.coefficients
        return Snapshot(
            run_id=self.run_id,
            step=self.step_count,
            epoch=self.sampler.epoch,
            samples_seen=self.sampler.samples_seen,
            config=cfg,
            layer_sizes=tuple(net.layer_sizes),
            param_names=tuple(net.param_names()),
            param_bounds=tuple(bounds),
            batch_size=bp.batch_size,
            loss=float(rec.loss),
            M=freeze(bp.M),
            per_sample_loss=freeze(red.per_sample),
            weights=freeze(red.weights),
            output_weights=freeze(ow),
            dLdY=freeze(bp.deltas[-1] * red.weights[:, None]),
            batch_noise=self.batch_noise,
            sharpness=self._sharpness.current,
            grad_norm=float(np.linalg.norm(rec.grad)),
            stats=rec.stats,
            history=self.history,
            train_loss=self._last_train,
            val_loss=self._last_val,
            seconds_per_step=self._sec_step,
            steps_per_second=self._sps,
            n_train=self.data.n_train,
            task=self.data.task,
            diverged=self.diverged,
            message=self.message,
            **self._drawn(rec.detail),
        )

    def _drawn(self, d: StepDetail | None) -> dict:
        """The snapshot's fields for drawing (none without detail): the detail, read-only,
        and where the weights stand on its plane and surface."""
        if d is None:
            return {}
        plane = d.plane
        path, _ = self.landscape.trajectory.path()
        point, off_now = self.landscape.position(plane)
        s = self.surface
        on_plane = s is not None and s.plane is plane
        return {
            "detail": True,
            "shown_index": freeze(d.shown_index),
            "grad_shown": freeze(d.grad_shown),
            "mean_shown": freeze(d.mean_shown),
            "band_lo": freeze(d.band_lo),
            "band_hi": freeze(d.band_hi),
            "max_abs_diff": d.max_abs_diff,
            "spread": freeze(d.spread),
            "spread_mean": freeze(d.spread_mean),
            "plane_kind": plane.kind,
            "point": freeze(point),
            "off_plane": off_now,
            "path": freeze(path),
            "fan": freeze(d.fan),
            "arrow": freeze(d.arrow),
            "surface": s if on_plane else None,
            "surface_id": s.surface_id if on_plane else 0,
            "surface_age_steps": self.step_count - s.step if s is not None else 0,
            "surface_age_seconds": self.surface_age_seconds(),
        }


def validate_changes(
    config: Config, changes: dict, n_train: int | None = None, task: str | None = None
) -> Config:
    """The config after ``changes``, checked by ``Config.validate`` (the one check); raises
    ConfigError naming the field.

    n_train, task : the current data's training-set size and task, used when the changes keep
    the data (a CSV's size is only known once loaded).
    """
    new = config.changed(changes)
    if n_train is None or _DATA_FIELDS & changes.keys():
        return new.validate(changed=changes)
    return new.validate(train_size=n_train, task=task, changed=changes)


def _percentiles(A: np.ndarray, qs) -> list[np.ndarray]:
    """Percentiles along axis 0 with NumPy's default (linear) method, from one sort: for a
    (B, K) block this is about 4x faster than np.percentile, which partitions per q."""
    S = np.sort(A, axis=0)
    n = S.shape[0]
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        i = int(np.floor(pos))
        j = min(i + 1, n - 1)
        out.append(S[i] + (pos - i) * (S[j] - S[i]))
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return ", ".join(map(str, v)) if v else "(none)"
    return str(v)
