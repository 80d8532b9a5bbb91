"""Statistics of per-sample gradients (``core.gradstats``) against direct formulas on a
materialised G, and the factored ``Backprop`` path against the dense one."""

from __future__ import annotations

import numpy as np
import pytest

from core.gradstats import DenseGradients, disagreement_direction, gradient_stats
from core.mlp import MLP
from core.noise_scale import NoiseEstimate

SIZES = [5, 6, 4, 3]


def batch(seed: int = 0, B: int = 9, loss: str = "mse", reduction: str = "mean"):
    rng = np.random.default_rng(seed)
    net = MLP(SIZES, activation="tanh", seed=seed)
    net.params[...] = rng.normal(0.0, 0.8, size=net.n_params)
    X = rng.normal(size=(B, SIZES[0]))
    T = np.eye(3)[rng.integers(0, 3, B)] if loss == "cross_entropy" else rng.normal(size=(B, 3))
    bp = net.backprop(X, T, loss, reduction)
    return net, bp, bp.per_sample(), rng


def direct_stats(G: np.ndarray, dirs: np.ndarray | None) -> dict:
    """Textbook formulas, one line each, from the (B, P) matrix."""
    B = G.shape[0]
    gbar = G.mean(axis=0)
    norms = np.linalg.norm(G, axis=1)
    cos = G @ gbar / (norms * np.linalg.norm(gbar))
    trace = float(np.var(G, axis=0, ddof=1).sum())
    return {
        "mean_norm": float(np.linalg.norm(gbar)),
        "per_sample_norms": norms,
        "cosines": cos,
        "frac_against": float(np.count_nonzero(cos < 0) / B),
        "trace_sigma_batch": trace,
        "noise_scale_batch": trace / float(gbar @ gbar),
        "projections": G @ dirs.T if dirs is not None else np.zeros((B, 0)),
    }


def assert_stats_equal(stats, expected: dict, rtol: float) -> None:
    for key, want in expected.items():
        got = getattr(stats, key)
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=rtol), key
        else:
            assert got.shape == want.shape, key
            np.testing.assert_allclose(
                got, want, rtol=rtol, atol=rtol * np.abs(want).max(), err_msg=key
            )


@pytest.mark.parametrize("seed, loss", [(0, "mse"), (1, "cross_entropy"), (2, "huber")])
def test_stats_match_direct_formulas(seed, loss):
    net, bp, G, rng = batch(seed, loss=loss)
    dirs = rng.normal(size=(3, net.n_params))
    expected = direct_stats(G, dirs)
    # Dense path, gbar computed inside and passed in.
    s1 = gradient_stats(DenseGradients(G), directions=dirs)
    s2 = gradient_stats(DenseGradients(G), G.mean(axis=0), dirs)
    assert_stats_equal(s1, expected, rtol=1e-10)
    assert_stats_equal(s2, expected, rtol=1e-10)
    assert s1.batch_size == G.shape[0]
    assert 0.0 <= s1.frac_against <= 1.0
    for a in (s1.per_sample_norms, s1.cosines, s1.projections):
        assert not a.flags.writeable
    # without a training-set estimate the training-set quantities are not made up
    for key in ("trace_sigma", "grad_sq", "noise_scale", "noise_scale_err", "snr", "std_error"):
        assert np.isnan(getattr(s1, key)), key
    assert s1.noise_scale_mode == ""


def test_training_set_estimate_gives_snr_and_standard_error():
    """SNR and the standard error come from the training set's tr(Sigma) and |G|^2, not from
    the batch: SNR = |G|^2 / (tr(Sigma)/B) = B / B_noise, std error = sqrt(tr(Sigma)/B)."""
    _, bp, G, _ = batch(7, B=9)
    est = NoiseEstimate(250.0, 0.0, 5.0, 0.02, "exact", 3, 1024, 1, 12)
    s = gradient_stats(DenseGradients(G), noise=est, age=4)
    assert s.noise_scale == 250.0 and s.trace_sigma == 5.0 and s.grad_sq == 0.02
    assert s.snr == pytest.approx(0.02 / (5.0 / 9), rel=1e-12)
    assert s.snr == pytest.approx(9 / 250.0, rel=1e-12)
    assert s.std_error == pytest.approx(np.sqrt(5.0 / 9), rel=1e-12)
    assert (s.noise_scale_mode, s.noise_scale_step, s.noise_scale_age) == ("exact", 3, 4)
    assert (s.noise_scale_interval, s.noise_scale_samples) == (12, 1024)
    # the batch's own ratio is still there, under its own name, and different
    assert s.noise_scale_batch == pytest.approx(direct_stats(G, None)["noise_scale_batch"])
    # with_noise replaces only the training-set fields
    t = gradient_stats(DenseGradients(G)).with_noise(est, 4)
    for f in s.__dataclass_fields__:
        a, b = getattr(t, f), getattr(s, f)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f)
        else:
            assert a == b or (a != a and b != b), f
    # an unresolved |G|^2 (two-batch average <= 0) gives NaN, never inf
    unresolved = NoiseEstimate(float("nan"), float("nan"), 5.0, -0.01, "two-batch", 3, 512, 5)
    u = gradient_stats(DenseGradients(G), noise=unresolved)
    assert np.isnan(u.noise_scale) and np.isnan(u.snr) and np.isfinite(u.std_error)


def test_stats_count_gradients_against_the_mean():
    """A hand-made set where one of four gradients points against the mean."""
    G = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, -0.5]])
    s = gradient_stats(DenseGradients(G))
    assert s.frac_against == 0.25
    gbar = np.array([0.5, 0.625])
    assert s.mean_norm == pytest.approx(np.hypot(0.5, 0.625))
    ss = sum(float((g - gbar) @ (g - gbar)) for g in G)
    assert s.trace_sigma_batch == pytest.approx(ss / 3)
    assert s.cosines[3] < 0 < s.cosines[2]
    assert s.projections.shape == (4, 0)


def test_backprop_path_equals_dense_path():
    net, bp, G, rng = batch(3, B=11)
    dirs = rng.normal(size=(4, net.n_params))
    gbar = G.mean(axis=0)
    dense = gradient_stats(DenseGradients(G), gbar, dirs)
    fact = gradient_stats(bp, gbar, dirs)
    fact2 = gradient_stats(bp, directions=dirs)  # gbar from bp.combine
    for s in (fact, fact2):
        for key in ("mean_norm", "frac_against", "trace_sigma_batch", "noise_scale_batch"):
            assert getattr(s, key) == pytest.approx(getattr(dense, key), rel=1e-10), key
        for key in ("per_sample_norms", "cosines", "projections"):
            np.testing.assert_allclose(
                getattr(s, key), getattr(dense, key), rtol=1e-10, atol=1e-12, err_msg=key
            )


def test_backprop_primitives_match_G():
    net, bp, G, rng = batch(4, B=7, loss="cross_entropy", reduction="sum")
    assert bp.batch_size == 7
    scale = np.abs(G).max()
    np.testing.assert_allclose(bp.norms_sq(), np.einsum("bp,bp->b", G, G), rtol=1e-12)
    V = rng.normal(size=(3, net.n_params))
    np.testing.assert_allclose(bp.dots(V), G @ V.T, rtol=1e-11, atol=1e-12 * scale)
    assert bp.dots(V).shape == (7, 3)
    np.testing.assert_allclose(bp.dots(V[0]), G @ V[0], rtol=1e-11, atol=1e-12 * scale)
    assert bp.dots(V[0]).shape == (7,)
    np.testing.assert_allclose(bp.gram(), G @ G.T, rtol=1e-11, atol=1e-12 * scale**2)
    u = rng.normal(size=7)
    np.testing.assert_allclose(bp.combine(u), u @ G, rtol=1e-11, atol=1e-12 * scale)
    out = np.empty(net.n_params)
    assert bp.combine(u, out=out) is out
    # the dense set's primitives are the plain matrix products
    d = DenseGradients(G)
    np.testing.assert_allclose(d.norms_sq(), bp.norms_sq(), rtol=1e-12)
    np.testing.assert_allclose(d.gram(), bp.gram(), rtol=1e-11, atol=1e-12 * scale**2)


def test_noise_scale_shrinks_the_standard_error_like_one_over_sqrt_B():
    """Same training-set estimate, 4x the batch: the standard error halves and the SNR grows
    4x; the batch's own tr(Sigma_B) of a population repeated 4 times follows the (B-1)."""
    _, _, G, _ = batch(5, B=8)
    est = NoiseEstimate(40.0, 0.0, 2.0, 0.05, "exact", 0, 100)
    s8 = gradient_stats(DenseGradients(G), noise=est)
    s32 = gradient_stats(DenseGradients(np.tile(G, (4, 1))), noise=est)
    assert s32.mean_norm == pytest.approx(s8.mean_norm, rel=1e-12)
    ss = s8.trace_sigma_batch * 7
    assert s32.trace_sigma_batch == pytest.approx(4 * ss / 31, rel=1e-10)
    assert s32.std_error == pytest.approx(s8.std_error / 2, rel=1e-12)
    assert s32.snr == pytest.approx(4 * s8.snr, rel=1e-12)
    assert s8.noise_scale == s32.noise_scale == 40.0  # a property of the set, not of B


def test_single_sample_has_no_spread():
    _, bp, G, _ = batch(6, B=1)
    est = NoiseEstimate(40.0, 0.0, 2.0, 0.05, "exact", 0, 100)
    for gs in (DenseGradients(G), bp):
        s = gradient_stats(gs)
        # one gradient has no spread to measure: undefined, not 0 and not inf
        assert np.isnan(s.trace_sigma_batch) and np.isnan(s.noise_scale_batch)
        # the training set's noise is defined at any B, B = 1 included
        s = gradient_stats(gs, noise=est)
        assert s.std_error == pytest.approx(np.sqrt(2.0)) and s.snr == pytest.approx(1 / 40)
        assert s.cosines[0] == pytest.approx(1.0)
        np.testing.assert_array_equal(disagreement_direction(gs, G[0]), 0.0)


def test_zero_gradients_give_zero_cosines_not_nan():
    G = np.zeros((3, 5))
    s = gradient_stats(DenseGradients(G))
    np.testing.assert_array_equal(s.cosines, 0.0)
    assert np.isnan(s.noise_scale_batch)  # 0/0: undefined, never inf
    assert s.trace_sigma_batch == 0.0
    assert s.frac_against == 0.0


# ------------------------------------------------------------- disagreement direction
def top_residual_direction(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gbar = G.mean(axis=0)
    ghat = gbar / np.linalg.norm(gbar)
    R = G - gbar
    R -= np.outer(R @ ghat, ghat)
    _, s, Vt = np.linalg.svd(R, full_matrices=False)
    return Vt[0], s


@pytest.mark.parametrize("seed, B", [(0, 9), (1, 4), (2, 16), (3, 2)])
def test_disagreement_direction_is_top_principal_residual_direction(seed, B):
    net, bp, G, _ = batch(seed, B=B)
    gbar = G.mean(axis=0)
    v, s = top_residual_direction(G)
    assert s[0] > 1.01 * (s[1] if len(s) > 1 else 0.0)  # a well-defined top direction
    for gs in (DenseGradients(G), bp):
        d = disagreement_direction(gs, gbar)
        assert d.shape == (net.n_params,)
        assert np.linalg.norm(d) == pytest.approx(1.0, abs=1e-12)
        assert abs(d @ gbar) < 1e-10 * np.linalg.norm(gbar)
        assert abs(d @ v) == pytest.approx(1.0, abs=1e-8)


def test_disagreement_direction_identical_gradients():
    g = np.random.default_rng(0).normal(size=12)
    G = np.tile(g, (5, 1))
    np.testing.assert_array_equal(disagreement_direction(DenseGradients(G), g), 0.0)
