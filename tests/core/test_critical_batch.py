"""The critical batch size experiment: the trade-off fit, the measurement, cancellation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core import MLP, Config
from core.experiments.critical_batch import (
    BatchPoint,
    CriticalBatchResult,
    batch_sizes_for,
    fit_tradeoff,
    run_critical_batch,
    train_to_target,
)
from core.optimizers import make_optimizer

TINY = Config(hidden=(16,), n_samples=320)  # 256 training samples
SIZES = 2.0 ** np.arange(11)  # 1 .. 1024


def _curve(S_min: float, E_min: float, B: np.ndarray) -> np.ndarray:
    return S_min * (1.0 + (E_min / S_min) / B)


def test_fit_recovers_known_s_min_and_e_min():
    fit = fit_tradeoff(SIZES, _curve(300.0, 6000.0, SIZES))
    assert fit is not None and fit.n_points == len(SIZES)
    assert fit.S_min == pytest.approx(300.0, rel=1e-9)
    assert fit.E_min == pytest.approx(6000.0, rel=1e-9)
    assert fit.B_crit == pytest.approx(20.0, rel=1e-9)
    assert fit.rms_log < 1e-9
    # on the fitted curve the paper's form holds: (S/S_min - 1)(E/E_min - 1) = 1
    S = fit.steps(SIZES)
    np.testing.assert_allclose((S / fit.S_min - 1) * (SIZES * S / fit.E_min - 1), 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_recovers_them_through_noise(seed):
    rng = np.random.default_rng(seed)
    B = np.repeat(SIZES, 3)
    S = _curve(150.0, 12_000.0, B) * np.exp(rng.normal(0.0, 0.05, B.shape))  # 5 % noise
    fit = fit_tradeoff(B, S)
    assert fit.S_min == pytest.approx(150.0, rel=0.1)
    assert fit.E_min == pytest.approx(12_000.0, rel=0.1)
    assert fit.B_crit == pytest.approx(80.0, rel=0.15)
    assert 0.02 < fit.rms_log < 0.08  # the noise is seen, not fitted away


def test_fit_from_a_bad_start_and_its_refusals():
    # points that make the linear start negative still give a positive fit
    B = np.array([1.0, 2.0, 4.0, 8.0])
    S = np.array([100.0, 50.0, 25.0, 13.5])  # almost S = E_min / B: S_min near 0
    fit = fit_tradeoff(B, S)
    assert fit.S_min > 0 and fit.E_min == pytest.approx(100.0, rel=0.05)
    assert fit_tradeoff([1, 2], [10, 6]) is None  # two batch sizes: nothing to fit
    assert fit_tradeoff([1, 1, 1, 2], [10, 11, 9, 6]) is None
    assert fit_tradeoff([1, 2, 4, 8], [np.nan, 0, 5, 4]) is None  # only two usable


def test_batch_sizes_double_up_to_the_training_set():
    assert batch_sizes_for(128) == (1, 2, 4, 8, 16, 32, 64, 128)
    assert batch_sizes_for(100) == (1, 2, 4, 8, 16, 32, 64, 100)
    assert batch_sizes_for(1024, quick=True) == (1, 4, 16, 64, 256, 1024)


def test_train_to_target_stops_at_the_target_and_on_divergence(rng):
    X = rng.normal(size=(64, 3))
    T = X @ rng.normal(size=(3, 2))
    net = MLP([3, 2], "identity", seed=0)
    start = net.params.copy()
    first = net.loss(X, T)
    tr = train_to_target(net, make_optimizer("sgd", net.n_params, 0.1), X, T, 64, rng,
                         first / 10, 10_000, 1)  # fmt: skip
    assert tr.reached > 0 and tr.steps[-1] == tr.reached and not tr.diverged
    assert tr.losses[-1] <= first / 10 < tr.losses[-2]
    net.params[...] = start
    tr = train_to_target(net, make_optimizer("sgd", net.n_params, 50.0), X, T, 8, rng,
                         first / 10, 10_000, 5)  # fmt: skip
    assert tr.diverged and tr.reached == 0 and tr.steps[-1] < 10_000


def test_experiment_on_a_tiny_net_gives_sensible_steps_and_samples():
    seen = []
    r = run_critical_batch(TINY, quick=True, progress=lambda d, t, s: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1]
    n = r.n_train
    sizes = sorted(p.batch_size for p in r.points)
    assert sizes == list(batch_sizes_for(n, quick=True))
    pts = sorted((p for p in r.points if p.reached), key=lambda p: p.batch_size)
    assert len(pts) >= 3
    full = next(p for p in r.points if p.batch_size == n)
    assert full.reached and full.steps <= r.ref_steps  # the target is what it reached
    for small, big in zip(pts, pts[1:]):
        # a bigger batch never needs more steps, and never fewer samples (a few % of noise)
        assert big.steps <= 1.1 * small.steps
        assert big.samples >= 0.9 * small.samples
    assert pts[0].steps > 2 * full.steps  # B = 1 pays in steps ...
    assert pts[0].samples < full.samples / 4  # ... and saves samples
    assert r.target_loss < r.initial_loss
    f = r.fit
    assert f is not None and 0 < f.S_min <= full.steps * 1.1 and f.E_min <= pts[0].samples * 1.1
    assert 1 <= f.B_crit <= n
    assert np.isfinite(r.B_noise) and r.B_noise > 0 and r.ratio == f.B_crit / r.B_noise
    for p in pts:  # every rate is on the stated grid
        assert any(np.isclose(p.lr, g) for g in r.lr_grid)

    header, rows = r.table()
    assert header == ["batch_size", "lr", "steps_to_target", "samples_to_target"]
    assert [row[0] for row in rows] == sizes
    for row in rows:
        if row[2] != "":
            assert row[3] == row[0] * row[2]
    header, rows = r.fit_table()
    assert header == ["key", "value"]
    assert [row[0] for row in rows] == ["S_min", "E_min", "B_crit", "B_noise"]
    assert float(rows[2][1]) == pytest.approx(f.B_crit, rel=1e-6)


def test_a_batch_size_that_never_reached_the_target_has_empty_cells():
    pts = (BatchPoint(64, 0.4, 10), BatchPoint(4, 0.2, 40), BatchPoint(1, float("nan"), 0))
    r = CriticalBatchResult(
        pts, None, target_loss=0.1, initial_loss=1.0, ref_steps=10, B_noise=float("nan"),
        B_noise_start=1.0, n_train=64, layer_sizes=(5, 3), optimizer="sgd", loss="mse",
        lr_grid=(0.2, 0.4),
    )  # fmt: skip
    assert r.table()[1] == [[1, "", "", ""], [4, "0.2", 40, 160], [64, "0.4", 10, 640]]
    assert [v for _, v in r.fit_table()[1]] == ["", "", "", ""]
    assert np.isnan(r.ratio)


def test_partial_results_and_cancellation():
    parts = []
    r = run_critical_batch(TINY, quick=True, partial=parts.append)
    assert parts and not any(p.complete for p in parts) and r.complete
    assert [len(p.points) for p in parts] == list(range(2, len(r.points)))
    assert run_critical_batch(TINY, quick=True, cancel=lambda: True) is None
    calls = {"n": 0}

    def cancel_later() -> bool:
        calls["n"] += 1
        return calls["n"] > 500

    t0 = time.perf_counter()
    assert run_critical_batch(TINY, cancel=cancel_later) is None
    assert time.perf_counter() - t0 < 10.0  # stops mid-run, not after the whole sweep


def test_a_set_rate_far_too_large_walks_down_the_grid_to_a_finite_one():
    r = run_critical_batch(TINY.replace(lr=1000.0), quick=True)
    full = next(p for p in r.points if p.batch_size == r.n_train)
    tried = dict(full.tried)
    assert tried[1000.0] == 0 and full.reached and full.lr <= 1000.0 / 2**5
    assert r.fit is not None and np.isfinite(r.target_loss)
