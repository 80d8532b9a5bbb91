"""The training session (``core.session``): steps, snapshots, live changes, divergence,
reset, the loss surface and commands."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from core import (
    Config,
    ConfigError,
    DivergedError,
    RecomputeSurface,
    Reset,
    Session,
    Snapshot,
    Update,
)
from core.landscape import Surface
from core.mlp import MLP
from core.session import StepDetail, StepRecord

SMALL = Config(hidden=(8, 8), n_samples=320, surface_resolution=9, surface_samples=64)


@pytest.fixture
def session() -> Session:
    return Session(SMALL)


def arrays_in(obj, seen=None):
    """Every ndarray reachable from a snapshot (dataclass fields, one level of nesting)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from arrays_in(getattr(obj, f.name), seen)
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            yield from arrays_in(x, seen)


def test_default_session_steps_and_snapshots_are_read_only():
    s = Session()
    snap = s.step()
    assert isinstance(snap, Snapshot)
    assert snap.step == 1 and snap.batch_size == 32
    assert snap.layer_sizes == (5, 32, 32, 3)
    assert snap.M.shape == (32, 3)
    arrays = list(arrays_in(snap))
    assert len(arrays) >= 15
    for a in arrays:
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[...] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.loss = 0.0  # type: ignore[misc]


def test_snapshot_contents_are_consistent(session):
    snaps = [session.step() for _ in range(3)]
    snap = snaps[-1]
    assert [x.step for x in snaps] == [1, 2, 3]
    assert len({x.run_id for x in snaps}) == 1
    assert snap.loss == pytest.approx(float(snap.weights @ snap.per_sample_loss), rel=1e-12)
    np.testing.assert_allclose(snap.per_sample_loss, snap.M.mean(axis=1), rtol=1e-12)
    assert snap.max_abs_diff < 1e-12
    np.testing.assert_allclose(snap.grad_shown, snap.mean_shown, rtol=0, atol=1e-12)
    assert snap.n_params == session.net.n_params
    assert snap.param_bounds[0] == 0 and len(snap.param_bounds) == 2 * 3 + 1
    assert snap.stats.batch_size == 32
    np.testing.assert_array_equal(snap.history.steps, [1, 2, 3])
    np.testing.assert_allclose(snap.history.loss, [x.loss for x in snaps])
    assert snap.samples_seen == 3 * 32
    assert snap.spread.shape == (32, 2) and snap.fan.shape == (32, 2)
    assert all(math.isfinite(x.loss) for x in snaps)


def test_training_lowers_the_loss():
    s = Session(SMALL.replace(lr=0.1))
    first = s.step().history.train_loss[0]
    last = s.run(300).train_loss
    assert last < 0.8 * first


def test_session_is_reproducible():
    a = Session(SMALL)
    b = Session(SMALL)
    for _ in range(5):
        sa, sb = a.step(detail=False), b.step(detail=False)
    assert sa.loss == sb.loss
    np.testing.assert_array_equal(a.net.params, b.net.params)


def test_batch_size_change_keeps_history(session):
    for _ in range(3):
        session.step()
    run_id = session.run_id
    params = session.net.params.copy()
    msgs = session.update(batch_size=8)
    assert msgs and any("batch_size" in m for m in msgs)
    np.testing.assert_array_equal(session.net.params, params)  # weights kept
    snaps = [session.step() for _ in range(2)]
    snap = snaps[-1]
    assert snap.batch_size == 8
    assert snap.M.shape == (8, 3)
    assert snap.run_id == run_id
    assert snap.step == 5
    assert len(snap.history) == 5
    np.testing.assert_array_equal(snap.history.steps, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(snap.history.batch_size, [32, 32, 32, 8, 8])
    assert snap.stats.batch_size == 8 and snap.per_sample_loss.shape == (8,)


def test_hidden_change_rebuilds_and_keeps_history(session):
    for _ in range(3):
        session.step()
    run_id = session.run_id
    msgs = session.update(hidden=(7,))
    assert any("rebuilt" in m for m in msgs)
    assert session.run_id != run_id
    assert session.net.layer_sizes == [5, 7, 3]
    assert session.net.n_params == 5 * 7 + 7 + 7 * 3 + 3
    snap = session.step()
    assert snap.run_id == session.run_id
    assert snap.layer_sizes == (5, 7, 3)
    assert len(snap.history) == 4
    np.testing.assert_array_equal(snap.history.steps, [1, 2, 3, 4])
    assert snap.max_abs_diff < 1e-12
    # a list is accepted as well as a tuple
    session.update(hidden=[4, 4])
    assert session.step().layer_sizes == (5, 4, 4, 3)


def test_lr_change_keeps_weights_and_run(session):
    session.step()
    params = session.net.params.copy()
    run_id = session.run_id
    session.update(lr=0.01)
    assert session.config.lr == 0.01 and session.optimizer.lr == 0.01
    assert session.run_id == run_id
    np.testing.assert_array_equal(session.net.params, params)
    assert session.update(lr=0.01) == []  # no change, nothing to say


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"lr": math.nan}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10**6}, "batch_size"),
        ({"hidden": (0,)}, "hidden"),
        ({"hidden": (10**9,)}, "hidden"),
        ({"loss": "hinge"}, "loss"),
        ({"loss": "cross_entropy"}, "loss"),  # teacher data are not classes
        ({"colour": "red"}, "colour"),
        ({"lr": 0.5, "batch_size": -3}, "batch_size"),  # one bad value spoils the lot
        ({"n_samples": 2}, "n_samples"),
    ],
)
def test_invalid_update_changes_nothing(session, changes, field):
    for _ in range(2):
        session.step()
    config = session.config
    params = session.net.params.copy()
    net = session.net
    run_id = session.run_id
    n_hist = len(session.history)
    with pytest.raises(ConfigError) as info:
        session.update(**changes)
    assert info.value.field == field
    assert session.config is config
    assert session.net is net
    np.testing.assert_array_equal(session.net.params, params)
    assert session.run_id == run_id
    assert len(session.history) == n_hist
    assert session.step().step == 3  # still runs


def test_divergence_is_caught_and_recoverable():
    s = Session(SMALL.replace(lr=1e4))
    snap = None
    for _ in range(60):
        snap = s.step(detail=False)
        if snap.diverged:
            break
    assert snap is not None and snap.diverged, "lr=1e4 should diverge within 60 steps"
    assert s.diverged
    assert snap.message
    assert np.all(np.isfinite(s.net.params))
    n_hist = len(s.history)
    with pytest.raises(DivergedError):
        s.step()
    assert len(s.history) == n_hist
    msgs = s.update(lr=0.01)
    assert not s.diverged
    assert any("resumed" in m for m in msgs)
    for _ in range(5):
        snap = s.step()
        assert not snap.diverged
        assert math.isfinite(snap.loss)
    assert np.all(np.isfinite(s.net.params))
    assert len(snap.history) == n_hist + 5


def test_reset_clears_history_and_restores_initial_weights(session):
    for _ in range(4):
        session.step()
    run_id = session.run_id
    session.reset()
    assert len(session.history) == 0
    assert session.run_id != run_id
    fresh = MLP(session.net.layer_sizes, SMALL.activation, seed=SMALL.seed)
    np.testing.assert_array_equal(session.net.params, fresh.params)
    snap = session.step()
    assert snap.step == 1 and len(snap.history) == 1
    assert snap.run_id == session.run_id


def test_compute_surface(session):
    for _ in range(3):
        session.step()
    params = session.net.params.copy()
    assert session.needs_surface()
    surf = session.compute_surface()
    assert isinstance(surf, Surface)
    res = SMALL.surface_resolution
    assert surf.Z.shape == (res, res)
    assert np.all(np.isfinite(surf.Z))
    assert np.ptp(surf.Z) > 0
    assert surf.alphas.shape == (res,) and surf.betas.shape == (res,)
    assert surf.step == 3
    assert not surf.Z.flags.writeable
    np.testing.assert_array_equal(session.net.params, params)  # weights untouched
    assert not session.needs_surface()
    # the current weights are at the centre of the plane, on it
    snap = session.step()
    assert snap.surface is surf and snap.surface_age_steps == 1
    assert snap.plane_kind == surf.plane.kind == "gradient"


@pytest.mark.parametrize("plane", ["random", "pca"])
def test_compute_surface_other_planes(plane):
    s = Session(SMALL.replace(plane=plane))
    for _ in range(5):
        s.step()
    surf = s.compute_surface()
    assert surf.Z.shape == (9, 9) and np.all(np.isfinite(surf.Z))
    assert surf.plane.kind == plane
    assert s.compute_surface(cancel=lambda: True) is None
    assert s.surface is surf  # a cancelled computation keeps the old surface


def test_apply_commands(session):
    session.step()
    msgs = session.apply(Update({"batch_size": 4}))
    assert msgs and session.config.batch_size == 4
    assert session.step().M.shape == (4, 3)
    session.compute_surface()
    assert not session.needs_surface()
    assert session.apply(RecomputeSurface())
    assert session.needs_surface()
    assert session.compute_surface() is not None
    run_id = session.run_id
    assert session.apply(Reset())
    assert len(session.history) == 0 and session.run_id != run_id
    with pytest.raises(ConfigError):
        session.apply(Update({"lr": -1.0}))
    with pytest.raises(TypeError):
        session.apply("faster please")


def test_snapshot_without_training_does_not_step(session):
    session.step()
    params = session.net.params.copy()
    snap = session.snapshot()
    assert snap.step == 1
    np.testing.assert_array_equal(session.net.params, params)


@pytest.mark.parametrize("reduction", ["sum", "max", "weighted"])
def test_other_reductions_keep_the_law(reduction):
    s = Session(SMALL.replace(reduction=reduction, sample_weighting="x1_positive_double"))
    for _ in range(3):
        snap = s.step()
    assert snap.max_abs_diff < 1e-12 * max(1.0, float(np.abs(snap.grad_shown).max()))
    assert snap.loss == pytest.approx(float(snap.weights @ snap.per_sample_loss), rel=1e-12)


def test_classification_session():
    s = Session(SMALL.replace(dataset="blobs", loss="cross_entropy", activation="relu"))
    snap = s.step()
    assert snap.layer_sizes == (2, 8, 8, 3)
    assert snap.M.shape == (32, 3)
    s.update(dataset="teacher", loss="mse")
    assert s.step().layer_sizes == (5, 8, 8, 3)


def test_the_per_step_record_is_typed_and_frozen():
    """The session's evaluation of a batch is a frozen StepRecord (the drawing's part a
    StepDetail), not a dict of loose keys."""
    s = Session(SMALL)
    rec = s._evaluate(s._last_idx, detail=True)
    assert isinstance(rec, StepRecord) and isinstance(rec.detail, StepDetail)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.loss = 0.0
    B = len(rec.idx)
    assert rec.detail.fan.shape == (B, 2) and rec.detail.spread.shape == (B, 2)
    assert rec.detail.plane is s.plane
    assert s._evaluate(s._last_idx, detail=False).detail is None
