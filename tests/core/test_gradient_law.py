"""The law the app is built on: the gradient of the reduced scalar is ``sum_i w_i g_i``.

With the mean reduction, ``w_i = 1/B``: the mean of the per-sample gradients *is* the gradient
of the mean loss, to round-off. Checked as a property over random networks, batches and losses.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.losses import BUILTIN_LOSSES, REDUCTIONS
from core.mlp import MLP

ACTS = ["tanh", "relu", "sigmoid", "identity"]


def roundoff_atol(G: np.ndarray, w: np.ndarray) -> float:
    """~1e-12 on the scale of the terms being summed (exact maths; only round-off differs)."""
    return 1e-12 * max(1.0, float(np.abs(G).max()) * max(1.0, float(np.abs(w).sum())))


@st.composite
def problems(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    B = draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    loss = draw(st.sampled_from(BUILTIN_LOSSES))
    reduction = draw(st.sampled_from(REDUCTIONS))
    act = draw(st.sampled_from(ACTS))
    class_index = draw(st.booleans())
    rng = np.random.default_rng(seed)
    net = MLP(sizes, activation=act, seed=seed)
    net.params[...] = rng.normal(0.0, 1.0, size=net.n_params)
    n_in, n_out = sizes[0], sizes[-1]
    X = rng.normal(size=(B, n_in))
    if loss == "cross_entropy":
        labels = rng.integers(0, n_out, size=B)
        T = labels if class_index else np.eye(n_out)[labels]
    else:
        T = rng.normal(size=(B, n_out))
    kw = {"huber_delta": float(rng.uniform(0.2, 2.0))}
    if reduction == "weighted":
        kw["output_weights"] = rng.uniform(0.1, 3.0, size=n_out)
        kw["sample_weights"] = rng.uniform(0.1, 3.0, size=B)
    return net, X, T, loss, reduction, kw


@settings(max_examples=250, deadline=None)
@given(problems())
def test_gradient_of_reduced_scalar_is_weighted_sum_of_per_sample_gradients(problem):
    net, X, T, loss, reduction, kw = problem
    B = X.shape[0]
    bp = net.backprop(X, T, loss, reduction, **kw)
    w = bp.reduced.weights
    G = bp.per_sample()
    g = net.gradient(X, T, loss, reduction, **kw)

    assert G.shape == (B, net.n_params)
    assert w.shape == (B,)
    np.testing.assert_allclose(w @ G, g, rtol=0, atol=roundoff_atol(G, w))
    np.testing.assert_allclose(bp.gradient(), g, rtol=0, atol=roundoff_atol(G, w))
    np.testing.assert_array_equal(net.per_sample_gradients(X, T, loss, reduction, **kw), G)

    # The scalar is the same weighting of the per-sample losses.
    red = bp.reduced
    assert red.value == net.loss(X, T, loss, reduction, **kw)
    np.testing.assert_allclose(red.value, w @ red.per_sample, rtol=1e-12, atol=1e-300)

    # The weights are the reduction's, not something the test could not tell apart.
    if reduction == "mean":
        np.testing.assert_allclose(w, np.full(B, 1.0 / B), rtol=1e-15)
    elif reduction == "sum":
        np.testing.assert_array_equal(w, np.ones(B))
    elif reduction == "max":
        assert np.count_nonzero(w) == 1 and w.sum() == 1.0
        assert red.per_sample[np.argmax(w)] == red.per_sample.max()
    else:
        s = kw["sample_weights"]
        np.testing.assert_allclose(w, s / s.sum(), rtol=1e-14)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_mean_of_per_sample_gradients_equals_gradient_of_mean(problem):
    net, X, T, loss, _, kw = problem
    kw.pop("output_weights", None)
    kw.pop("sample_weights", None)
    G = net.per_sample_gradients(X, T, loss, "mean", **kw)
    g = net.gradient(X, T, loss, "mean", **kw)
    np.testing.assert_allclose(G.mean(axis=0), g, rtol=0, atol=1e-12 * max(1.0, np.abs(G).max()))
    # ... and the sum reduction is B times the mean, the same per-sample gradients.
    g_sum = net.gradient(X, T, loss, "sum", **kw)
    np.testing.assert_allclose(g_sum, G.sum(axis=0), rtol=0, atol=1e-12 * max(1.0, np.abs(G).sum()))


def test_averaging_output_deltas_before_backprop_is_not_the_mean_gradient():
    """The follow-up confusion (point 7): averaging dL/dY over the batch first is different,
    because each sample's backward pass uses its own activations."""
    rng = np.random.default_rng(3)
    net = MLP([5, 6, 3], activation="tanh", seed=3)
    X = rng.normal(size=(8, 5))
    T = rng.normal(size=(8, 3))
    bp = net.backprop(X, T, "mse", "mean")
    g = net.gradient(X, T, "mse", "mean")
    # Output layer W gradient built from the averaged delta and the averaged input activation.
    sl = net.slices[-1]
    d_mean = bp.deltas[-1].mean(axis=0)
    a_mean = bp.inputs[-1].mean(axis=0)
    naive = np.outer(d_mean, a_mean)
    right = g[sl.w_start : sl.w_stop].reshape(sl.n_out, sl.n_in)
    np.testing.assert_allclose(right, (bp.deltas[-1].T @ bp.inputs[-1]) / 8, rtol=1e-12)
    assert np.abs(naive - right).max() > 1e-3
