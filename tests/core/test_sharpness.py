"""Live sharpness tracking (core.sharpness): values, cadence from a fake clock, rows.

* each measurement equals ``top_eigenvalue`` at the same weights (to the tracker's tolerance);
* the interval is chosen so measuring costs about the budget of training time (fake clock);
* the stability limit is the optimiser's (2/lr for SGD, None for Adam); rows for curvature.csv.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.curvature import top_eigenvalue
from core.mlp import MLP
from core.sharpness import Sharpness, SharpnessTracker

LOSS = {"loss": "mse", "reduction": "mean"}


def problem(seed=0):
    rng = np.random.default_rng(seed)
    net = MLP([3, 8, 2], activation="tanh", seed=seed)
    X = rng.normal(size=(16, 3))
    T = rng.normal(size=(16, 2))
    return net, X, T


class FakeClock:
    """Each reading advances by ``tick`` seconds: one measurement (two readings) costs one tick."""

    def __init__(self, tick: float) -> None:
        self.t = 0.0
        self.tick = tick

    def __call__(self) -> float:
        self.t += self.tick
        return self.t


def test_values_equal_top_eigenvalue_at_same_weights():
    net, X, T = problem()
    tr = SharpnessTracker(X, T, interval=1)
    rng = np.random.default_rng(1)
    for step in range(5):
        s = tr.observe(step, net, LOSS, "sgd", 0.1)
        lam, _ = top_eigenvalue(net, X, T, **LOSS)
        assert s.step == step
        assert s.lambda_max == pytest.approx(lam, rel=1e-3)
        net.params[...] += 0.05 * rng.normal(size=net.n_params)
    assert len(tr.history) == 5


def test_warm_start_spends_fewer_products():
    net, X, T = problem()
    tr = SharpnessTracker(X, T, interval=1)
    first = tr.observe(0, net, LOSS, "sgd", 0.1)
    net.params[...] += 1e-4
    second = tr.observe(1, net, LOSS, "sgd", 0.1)
    assert second.n_hvp < first.n_hvp


def test_interval_keeps_cost_near_budget():
    net, X, T = problem()
    # a measurement costs 10 ms, a training step 5 ms: 10 % budget -> every 20 steps
    tr = SharpnessTracker(X, T, budget=0.10, clock=FakeClock(0.010))
    for step in range(400):
        tr.observe(step, net, LOSS, "sgd", 0.1, last_step_seconds=0.005 + tr.cadence._spent)
    assert 20 <= tr.interval <= 21  # ceil of 20 up to round-off
    train_time = 400 * 0.005
    assert tr.seconds_measuring / train_time == pytest.approx(0.10, rel=0.3)
    assert tr.seconds_measuring / train_time < 0.15


def test_stability_limit_of_optimizer_and_rows():
    net, X, T = problem()
    tr = SharpnessTracker(X, T, interval=2)
    a = tr.observe(0, net, LOSS, "sgd", 0.5)
    assert isinstance(a, Sharpness) and a.stability_limit == pytest.approx(4.0)
    assert tr.observe(1, net, LOSS, "sgd", 0.5) is a  # not due
    b = tr.observe(2, net, LOSS, "adam", 0.01)
    assert b.stability_limit is None
    assert tr.rows() == [(0, a.lambda_max, 4.0), (2, b.lambda_max, None)]
    tr.restart(X, T)
    assert tr.current is None and tr.rows() == []


def test_bad_budget_is_refused_in_words():
    _, X, T = problem()
    with pytest.raises(ValueError, match="budget"):
        SharpnessTracker(X, T, budget=1.5)


# ------------------------------------------------------------------------------ in the session
def test_session_tracks_lambda_max_at_the_measured_weights():
    from core import Config, Session

    s = Session(Config(seed=3))
    s.run(1, detail_last=False)  # the first step measures, at the initial weights
    sh = s.sharpness
    assert sh is not None and sh.step == 0
    assert sh.stability_limit == pytest.approx(2.0 / s.config.lr)
    fresh = Session(Config(seed=3))
    X, T = s._sharpness_batch()
    lam, _ = top_eigenvalue(fresh.net, X, T, loss=s.config.loss, reduction=s.config.reduction)
    assert sh.lambda_max == pytest.approx(lam, rel=1e-3)
    assert s.curvature_rows()[0] == (0, sh.lambda_max, pytest.approx(2.0 / s.config.lr))


def test_divergence_message_gives_the_overshoot_factor():
    from core import Config, Session

    s = Session(Config(lr=5.0))
    snap = s.run(300, detail_last=False)
    assert snap.diverged
    sh = s.sharpness
    factor = 5.0 * sh.lambda_max / 2.0
    assert "times too long along the sharpest direction" in s.message
    assert f"{factor:.2g} times too long" in s.message
    assert "against 2" in s.message


def test_max_and_sum_reductions_are_sharper_than_mean():
    from core import Config, Session

    lams = {}
    for red in ("mean", "max", "sum"):
        s = Session(Config(reduction=red, seed=1))
        s.run(1, detail_last=False)
        lams[red] = s.sharpness.lambda_max
    assert lams["sum"] > 10 * lams["mean"]  # sum over B = 32 samples: about 32x
    assert lams["max"] > lams["mean"]
