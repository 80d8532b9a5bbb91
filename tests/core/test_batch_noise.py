"""1/sqrt(B), measured: minibatches drawn from the training set, their mean gradient's spread
against B, and the prediction sqrt(tr(Sigma) / B)."""

from __future__ import annotations

import numpy as np
import pytest

from core import Config, Session
from core.batch_noise import BATCH_SIZES, BatchNoiseJob, loglog_slope, measure_batch_noise
from core.gradstats import DenseGradients


def _trained(steps: int = 150, **cfg) -> Session:
    s = Session(Config(hidden=(16, 16), **cfg))
    for _ in range(steps):
        s.step(detail=False)
    return s


def test_slope_near_minus_half_on_the_live_session():
    s = _trained()
    bn = s.measure_batch_noise()
    assert tuple(bn.batch_sizes) == BATCH_SIZES == (1, 2, 4, 8, 16, 32, 64, 128, 256)
    assert bn.n_population == s.data.n_train
    assert bn.slope == pytest.approx(-0.5, abs=0.05)
    # measured, not the formula: close to the prediction at every B, but not equal to it
    ratio = np.asarray(bn.std_error_measured) / np.asarray(bn.std_error_predicted)
    assert np.all(np.abs(ratio - 1) < 0.2), ratio
    assert np.any(np.abs(ratio - 1) > 1e-6)
    assert np.all(np.diff(bn.std_error_measured) < 0)  # shrinks with B


def test_prediction_is_the_training_set_trace():
    """tr(Sigma) from the per-sample gradients of the whole set, formed explicitly."""
    s = _trained(50)
    d = s.data
    G = s.net.per_sample_gradients(d.X_train, d.T_train)
    gbar = G.mean(axis=0)
    trace = float(((G - gbar) ** 2).sum() / (len(G) - 1))
    bn = measure_batch_noise(DenseGradients(G), np.random.default_rng(1))
    assert bn.trace_sigma == pytest.approx(trace, rel=1e-9)
    assert bn.mean_norm == pytest.approx(float(np.linalg.norm(gbar)), rel=1e-9)
    np.testing.assert_allclose(bn.std_error_predicted, np.sqrt(trace / np.array(BATCH_SIZES)))


def test_draws_measure_the_spread_of_explicit_minibatch_means():
    """The Gram shortcut equals averaging drawn rows of G directly (same draws)."""
    rng = np.random.default_rng(3)
    G = rng.normal(size=(40, 7)) * rng.uniform(0.1, 3, size=7) + 0.5
    bn = measure_batch_noise(DenseGradients(G), np.random.default_rng(7), batch_sizes=(1, 3, 9))
    draws = np.random.default_rng(7)
    gbar = G.mean(axis=0)
    for k, B in enumerate((1, 3, 9)):
        idx = draws.integers(0, 40, size=(int(bn.draws[k]), B))
        err = G[idx].mean(axis=1) - gbar
        rms = np.sqrt(np.mean(np.sum(err**2, axis=1)))
        assert bn.std_error_measured[k] == pytest.approx(rms, rel=1e-9)


def test_not_finite_gradients_give_none():
    G = np.ones((5, 3))
    G[2, 1] = np.inf
    assert measure_batch_noise(DenseGradients(G), np.random.default_rng(0)) is None


def test_loglog_slope():
    b = np.array([1, 2, 4, 8.0])
    assert loglog_slope(b, 3 / np.sqrt(b)) == pytest.approx(-0.5)
    assert np.isnan(loglog_slope(b, [np.nan, 0, -1, np.inf]))


def test_snapshot_carries_the_measurement_and_drops_it_when_the_loss_changes():
    s = _trained(20)
    assert s.snapshot().batch_noise is None
    s.measure_batch_noise()
    assert s.snapshot().batch_noise is s.batch_noise
    assert not s.batch_noise_due()  # measured at this very step
    s.update(loss="mae")
    assert s.batch_noise is None and s.batch_noise_due()


def test_dldy_is_the_matrix_the_scalars_backward_pass_starts_from():
    s = _trained(20)
    snap = s.snapshot()
    idx = s._last_idx
    Y = s.net.forward(s.data.X_train[idx])
    T = s.data.T_train[idx]
    B, O = Y.shape
    np.testing.assert_allclose(snap.dLdY, 2 * (Y - T) / (O * B), rtol=1e-12, atol=1e-15)
    assert not snap.dLdY.flags.writeable


def test_surface_age_in_seconds():
    s = _trained(5)
    s.compute_surface()
    assert s.snapshot().surface_age_seconds == 0.0  # computed at these very weights
    snap = s.step()
    assert 0 < snap.surface_age_seconds < 60
    assert Session(Config(hidden=(4,))).snapshot().surface_age_seconds != 0  # nan: none yet


def test_gram_rows_put_together_are_the_gram():
    s = Session(Config(hidden=(8, 8)))
    bp = s.net.backprop(s.data.X_train[:300], s.data.T_train[:300])
    K = bp.gram()
    parts = np.concatenate([bp.gram_rows(a, min(a + 128, 300)) for a in range(0, 300, 128)])
    np.testing.assert_allclose(parts, K, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(K, K.T, rtol=1e-12, atol=1e-15)


def test_the_job_in_pieces_measures_exactly_what_one_go_does():
    s = Session(Config())
    for _ in range(20):
        s.step()
    bp = s.net.backprop(s.data.X_train, s.data.T_train)
    one = measure_batch_noise(bp, np.random.default_rng(5), step=20)
    job = BatchNoiseJob(bp, np.random.default_rng(5), step=20)
    pieces = 1
    while not job.advance():
        pieces += 1
    # 1,024 samples: four pieces of 256 Gram rows, then one per batch size
    assert pieces == 4 + len(BATCH_SIZES)
    got = job.result
    np.testing.assert_array_equal(got.std_error_measured, one.std_error_measured)
    np.testing.assert_array_equal(got.draws, one.draws)
    assert got.trace_sigma == one.trace_sigma and got.mean_norm == one.mean_norm
    assert got.step == 20 and got.seconds > 0
    assert job.advance() is True  # done stays done
