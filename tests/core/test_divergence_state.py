"""After a divergence the session keeps the last weights whose loss was sane (the update that
led to the blow-up is undone), and its step count, history and trajectory agree with them; no
NumPy warning escapes the engine."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from core import Config, Session
from core.landscape import loss_grid

#: a linear network at a huge rate: the loss explodes within a few steps, for sure
DIVERGING = Config(hidden=(8,), activation="identity", n_samples=320, lr=50.0, surface_resolution=9)


def diverge(cfg: Config) -> Session:
    s = Session(cfg)
    for _ in range(200):
        if s.step(detail=False).diverged:
            break
    assert s.diverged
    return s


@pytest.mark.parametrize(
    "changes",
    [
        {"lr": 50.0},  # within a few steps
        {"hidden": (16, 16), "optimizer": "momentum", "lr": 0.2},  # after ~90 steps
    ],
)
def test_weights_step_count_and_history_agree_after_divergence(changes):
    cfg = DIVERGING.replace(**changes)
    s = diverge(cfg)
    k = s.step_count
    assert np.all(np.isfinite(s.net.params))
    assert len(s.history) == k
    if k:
        assert s.history.steps[-1] == k
    np.testing.assert_array_equal(s.trajectory()[-1], s.net.params)
    # A fresh run of the same settings, stopped after k updates, has the very same weights.
    ref = Session(cfg)
    for _ in range(k):
        ref.step(detail=False)
    assert not ref.diverged
    np.testing.assert_array_equal(s.net.params, ref.net.params)
    assert np.isfinite(s.snapshot(detail=False).loss)


def test_an_update_to_infinite_weights_is_undone_and_not_counted():
    s = Session(DIVERGING.replace(lr=0.01))
    for _ in range(3):
        s.step(detail=False)
    k, before, n_hist = s.step_count, s.net.params.copy(), len(s.history)

    def overflowing_update(params, grad):  # an update whose result is not finite
        params[0] = np.inf

    s.optimizer.step = overflowing_update
    snap = s.step(detail=False)
    assert snap.diverged and "weights became infinite" in s.divergence
    np.testing.assert_array_equal(s.net.params, before)
    assert s.step_count == k == snap.step and len(s.history) == n_hist


def test_a_diverging_run_and_its_surface_raise_no_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        s = diverge(DIVERGING.replace(hidden=(32, 32), activation="relu", lr=1e3))
        s.compute_surface()
        s.snapshot()
        # the grid itself, as the experiments call it (without an errstate of their own)
        plane = s.plane
        Z = loss_grid(
            s.net,
            s.data.X_train[:64],
            s.data.T_train[:64],
            plane,
            span=1e30,
            res=7,
            dtype=np.float32,
        )[2]
        assert not np.all(np.isfinite(Z))  # it did overflow, silently
