"""Statistics of per-sample gradients (``core.gradstats``) against direct formulas on a
materialised G, and the factored ``Backprop`` path against the dense one."""

from __future__ import annotations

import numpy as np
import pytest

from core.gradstats import DenseGradients, disagreement_direction, gradient_stats
from core.mlp import MLP

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
        "trace_sigma": trace,
        "noise_scale": trace / float(gbar @ gbar),
        "snr": float(gbar @ gbar) / (trace / B),
        "std_error": float(np.sqrt(trace / B)),
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
    np.testing.assert_allclose(s1.snr, G.shape[0] / s1.noise_scale, rtol=1e-12)


def test_stats_count_gradients_against_the_mean():
    """A hand-made set where one of four gradients points against the mean."""
    G = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, -0.5]])
    s = gradient_stats(DenseGradients(G))
    assert s.frac_against == 0.25
    gbar = np.array([0.5, 0.625])
    assert s.mean_norm == pytest.approx(np.hypot(0.5, 0.625))
    ss = sum(float((g - gbar) @ (g - gbar)) for g in G)
    assert s.trace_sigma == pytest.approx(ss / 3)
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
        for key in ("mean_norm", "frac_against", "trace_sigma", "noise_scale", "snr", "std_error"):
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
    """Same gradient population, 4x the batch: the standard error halves (exactly, for a
    population repeated 4 times, up to the (B-1) correction)."""
    _, _, G, _ = batch(5, B=8)
    s8 = gradient_stats(DenseGradients(G))
    s32 = gradient_stats(DenseGradients(np.tile(G, (4, 1))))
    assert s32.mean_norm == pytest.approx(s8.mean_norm, rel=1e-12)
    ss = s8.trace_sigma * 7
    assert s32.trace_sigma == pytest.approx(4 * ss / 31, rel=1e-10)
    assert s32.std_error == pytest.approx(np.sqrt(4 * ss / 31 / 32), rel=1e-10)
    assert s32.std_error < 0.55 * s8.std_error


def test_single_sample_has_no_spread():
    _, bp, G, _ = batch(6, B=1)
    for gs in (DenseGradients(G), bp):
        s = gradient_stats(gs)
        assert s.trace_sigma == 0.0 and s.std_error == 0.0
        assert s.snr == float("inf")
        assert s.cosines[0] == pytest.approx(1.0)
        np.testing.assert_array_equal(disagreement_direction(gs, G[0]), 0.0)


def test_zero_gradients_give_zero_cosines_not_nan():
    G = np.zeros((3, 5))
    s = gradient_stats(DenseGradients(G))
    np.testing.assert_array_equal(s.cosines, 0.0)
    assert s.noise_scale == float("inf")
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
