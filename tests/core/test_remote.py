"""The engine process (core.remote): protocol, light snapshots rebuilt whole, clean stop."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core import Config, Session, Update
from core.remote import EngineProcess, SnapshotMirror, _Outbox


class _ListQueue:
    def __init__(self):
        self.items = []

    def put(self, item):
        self.items.append(item)


def _collect(engine, seconds, until=None):
    """Messages from the engine for up to ``seconds`` (or until ``until(msg)``)."""
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg = engine.get(timeout=0.05)
        if msg is None:
            continue
        got.append(msg)
        if until is not None and until(msg):
            break
    return got


def test_mirror_rebuilds_history_and_surface_from_light_snapshots():
    s = Session(Config(hidden=(8,), surface_resolution=9, surface_samples=32))
    q = _ListQueue()
    out = _Outbox(q)
    mirror = SnapshotMirror()
    s.compute_surface()
    whole = []
    for k in range(60):
        snap = s.step(detail=(k % 7 == 0))
        if snap.detail:
            out.snapshot(snap)
            whole.append(snap)
    s.update(hidden=(6,))  # rebuild: a new run id, history kept
    for _ in range(5):
        snap = s.step()
        out.snapshot(snap)
        whole.append(snap)
    sent = [m[1] for m in q.items]
    assert len(sent[1].history) < len(whole[1].history)  # light: increments only
    assert sum(m.surface is not None for m in sent) < sum(w.surface is not None for w in whole)
    for light, ref in zip(sent, whole):
        full = mirror.full(light)
        for f in ("steps", "loss", "train_loss", "val_loss", "grad_norm", "batch_size"):
            np.testing.assert_array_equal(getattr(full.history, f), getattr(ref.history, f))
        assert full.history.events == ref.history.events
        assert (full.surface is None) == (ref.surface is None)
        if ref.surface is not None:
            assert full.surface.surface_id == ref.surface.surface_id
            np.testing.assert_array_equal(full.surface.Z, ref.surface.Z)


def test_engine_trains_applies_commands_answers_and_stops_quickly():
    engine = EngineProcess(Session(Config(hidden=(8, 8), surface_resolution=9)))
    try:
        first = _collect(engine, 20, until=lambda m: m[0] == "snapshot")
        assert first[-1][0] == "snapshot" and first[-1][1].step == 0
        engine.send("run", True)
        msgs = _collect(engine, 20, until=lambda m: m[0] == "snapshot" and m[1].step > 200)
        snap = msgs[-1][1]
        assert snap.step > 200 and len(snap.history) == snap.step
        np.testing.assert_array_equal(snap.history.steps, np.arange(1, snap.step + 1))
        engine.send("cmd", Update({"batch_size": 8}))
        msgs = _collect(engine, 20, until=lambda m: m[0] == "snapshot" and m[1].batch_size == 8)
        assert msgs[-1][1].M.shape == (8, 3)
        assert any(m[0] == "messages" and "batch_size: 32 -> 8" in m[1] for m in msgs)
        engine.send("cmd", Update({"batch_size": 10**6}))
        msgs = _collect(engine, 20, until=lambda m: m[0] == "failed")
        assert msgs[-1][1] == "batch_size"
        engine.send("params")
        msgs = _collect(engine, 20, until=lambda m: m[0] == "params")
        sizes, params = msgs[-1][1]
        assert sizes == (5, 8, 8, 3) and params.shape == (5 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3,)
    finally:
        t0 = time.monotonic()
        clean = engine.stop(timeout=1.0)
        assert time.monotonic() - t0 < 1.5
    assert clean
    assert not engine.process.is_alive()


@pytest.mark.parametrize("B", [300, 520])
def test_power_iteration_direction_matches_eigh(B):
    """Above EIGH_MAX the disagreement direction comes from power iteration."""
    from core.gradstats import DenseGradients, _top_eigenpair, disagreement_direction
    from core.mlp import MLP

    rng = np.random.default_rng(B)
    net = MLP([5, 6, 3], seed=1)
    X, T = rng.normal(size=(B, 5)), rng.normal(size=(B, 3))
    G = net.per_sample_gradients(X, T)
    gbar = G.mean(axis=0)
    d = disagreement_direction(DenseGradients(G), gbar)
    ghat = gbar / np.linalg.norm(gbar)
    R = G - gbar
    R -= np.outer(R @ ghat, ghat)
    top = np.linalg.svd(R, full_matrices=False)[2][0]
    assert abs(np.linalg.norm(d) - 1) < 1e-9
    assert abs(d @ ghat) < 1e-9
    assert abs(abs(d @ top) - 1) < 1e-6
    C = R @ R.T
    lam, u = _top_eigenpair(C)
    assert lam == pytest.approx(np.linalg.eigvalsh(C)[-1], rel=1e-8)


@pytest.mark.parametrize("B", [1, 2, 5, 32])
def test_fast_percentiles_match_numpy(B):
    from core.session import _percentiles

    A = np.random.default_rng(B).normal(size=(B, 40))
    lo, hi = _percentiles(A, (10.0, 90.0))
    np.testing.assert_allclose(lo, np.percentile(A, 10, axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(hi, np.percentile(A, 90, axis=0), rtol=0, atol=1e-15)


def test_memory_budget_refuses_before_allocating():
    from core import ConfigError

    with pytest.raises(ConfigError) as e:
        Config(hidden=(4096, 4096), surface_samples=100_000).validate()
    assert "GiB" in e.value.message and e.value.field in ("hidden", "batch_size")
    with pytest.raises(ConfigError) as e:
        Config(hidden=(4096,) * 3).validate()
    assert e.value.field == "hidden" and "parameters" in e.value.message


def test_large_batch_times_params_uses_the_factored_path(monkeypatch):
    import core.session as session_mod

    monkeypatch.setattr(session_mod, "MATERIALISE_LIMIT_BYTES", 1000)
    s = Session(Config(hidden=(8,), surface_resolution=9))
    snap = s.step(detail=True)
    assert snap.band_lo is None  # G was not formed
    assert snap.max_abs_diff < 1e-12  # and the law still holds, from the factors
    assert np.all(np.isfinite(snap.stats.cosines)) and snap.spread.shape == (32, 2)
