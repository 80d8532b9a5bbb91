"""The flat parameter layout, forward shapes and loss values of ``core.mlp.MLP``."""

from __future__ import annotations

import numpy as np
import pytest

from core.losses import Huber, as_one_hot, get_loss, reduce
from core.mlp import MLP

SIZES = [5, 7, 4, 3]


@pytest.fixture
def net() -> MLP:
    n = MLP(SIZES, activation="tanh", seed=1)
    n.params[...] = np.random.default_rng(1).normal(size=n.n_params)
    return n


def test_params_is_one_contiguous_float64_vector(net):
    P = sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:]))
    assert net.n_params == P
    assert net.params.shape == (P,)
    assert net.params.dtype == np.float64
    assert net.params.flags.c_contiguous
    assert net.params.flags.writeable


def test_layers_are_views_with_torch_shapes(net):
    assert len(net.layers) == len(SIZES) - 1
    for (W, b), n_in, n_out in zip(net.layers, SIZES[:-1], SIZES[1:]):
        assert W.shape == (n_out, n_in)
        assert b.shape == (n_out,)
        assert np.shares_memory(W, net.params)
        assert np.shares_memory(b, net.params)
        assert W.base is not None and b.base is not None


def test_flat_order_is_w_row_major_then_b_layer_by_layer(net):
    manual = np.concatenate([np.concatenate([W.ravel(order="C"), b]) for W, b in net.layers])
    np.testing.assert_array_equal(manual, net.params)
    # The slices agree with that order and tile the vector without gaps.
    stop = 0
    for sl, (W, b) in zip(net.slices, net.layers):
        assert sl.w_start == stop
        np.testing.assert_array_equal(net.params[sl.w_start : sl.w_stop], W.ravel())
        np.testing.assert_array_equal(net.params[sl.b_start : sl.b_stop], b)
        stop = sl.b_stop
    assert stop == net.n_params
    assert net.param_names() == ["W1", "b1", "W2", "b2", "W3", "b3"]


def test_writing_params_changes_layers_and_vice_versa(net):
    W2, b2 = net.layers[1]
    sl = net.slices[1]
    # params -> W: entry (r, c) of W2 is at w_start + r * n_in + c
    r, c = 2, 5
    net.params[sl.w_start + r * sl.n_in + c] = 123.0
    assert W2[r, c] == 123.0
    net.params[sl.b_start + 1] = -7.0
    assert b2[1] == -7.0
    # W -> params
    W2[3, 0] = 42.0
    assert net.params[sl.w_start + 3 * sl.n_in + 0] == 42.0
    b2[...] = 0.5
    np.testing.assert_array_equal(net.params[sl.b_start : sl.b_stop], 0.5)
    # A whole-vector write (what the optimiser does) reaches every layer.
    new = np.arange(net.n_params, dtype=np.float64)
    net.params[...] = new
    np.testing.assert_array_equal(
        np.concatenate([np.concatenate([W.ravel(), b]) for W, b in net.layers]), new
    )
    net.params -= 1.0
    assert net.layers[0][0][0, 0] == -1.0


def test_views_of_another_vector_use_the_same_layout(net):
    other = np.random.default_rng(5).normal(size=net.n_params)
    for (W, b), (W2, b2) in zip(net.views(other), net.layers):
        assert W.shape == W2.shape and b.shape == b2.shape
        assert np.shares_memory(W, other)
    manual = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in net.views(other)])
    np.testing.assert_array_equal(manual, other)


def test_init_is_reproducible_with_zero_biases():
    a = MLP(SIZES, "relu", seed=7)
    b = MLP(SIZES, "relu", seed=7)
    c = MLP(SIZES, "relu", seed=8)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    for _, bias in a.layers:
        np.testing.assert_array_equal(bias, 0.0)


@pytest.mark.parametrize("act, gain", [("relu", 2.0), ("tanh", 1.0), ("sigmoid", 1.0)])
def test_init_scale_is_gain_over_fan_in(act, gain):
    """He initialisation for relu, LeCun otherwise: W ~ N(0, gain / n_in)."""
    net = MLP([400, 300, 200], act, seed=0)
    for W, _ in net.layers:
        want = np.sqrt(gain / W.shape[1])
        assert W.std() == pytest.approx(want, rel=0.02)
        assert abs(W.mean()) < 0.02 * want


@pytest.mark.parametrize("sizes", [[0, 3], [5], [5, -1, 3]])
def test_bad_layer_sizes_are_refused(sizes):
    with pytest.raises(ValueError):
        MLP(sizes)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="softplus"):
        MLP([2, 2], activation="softplus")


@pytest.mark.parametrize("B", [1, 2, 32])
def test_forward_shapes_and_values(net, B):
    X = np.random.default_rng(B).normal(size=(B, SIZES[0]))
    Y = net.forward(X)
    assert Y.shape == (B, SIZES[-1])
    A = X
    for k, (W, b) in enumerate(net.layers):
        A = A @ W.T + b
        if k < len(net.layers) - 1:
            A = np.tanh(A)
    np.testing.assert_allclose(Y, A, rtol=1e-13, atol=1e-14)


def test_forward_refuses_wrong_input_shape(net):
    with pytest.raises(ValueError):
        net.forward(np.zeros((4, SIZES[0] + 1)))
    with pytest.raises(ValueError):
        net.forward(np.zeros(SIZES[0]))
    with pytest.raises(ValueError):
        net.loss(np.zeros((4, SIZES[0])), np.zeros((3, SIZES[-1])))


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "cross_entropy"])
def test_loss_matrix_shape(net, loss):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6, SIZES[0]))
    T = np.eye(3)[rng.integers(0, 3, 6)]
    M = net.loss_matrix(X, T, loss)
    assert M.shape == (6, SIZES[-1])
    assert np.all(M >= 0)


@pytest.mark.parametrize("B", [1, 7, 32, 100])
def test_mse_mean_is_mean_of_squared_differences(net, B):
    """The scalar Theano writes as ``mean((T - Y) ** 2)``. Equal as maths; the summation order
    differs (mean over outputs, then over samples), so allow a few ulps of round-off."""
    rng = np.random.default_rng(B)
    X = rng.normal(size=(B, SIZES[0]))
    T = rng.normal(size=(B, SIZES[-1]))
    Y = net.forward(X)
    assert net.loss(X, T, "mse", "mean") == pytest.approx(np.mean((T - Y) ** 2), rel=1e-14)
    np.testing.assert_array_equal(net.loss_matrix(X, T, "mse"), (Y - T) ** 2)
    assert net.loss(X, T, "mse", "sum") == pytest.approx(np.mean((T - Y) ** 2) * B, rel=1e-14)


def test_reductions_of_a_known_matrix():
    M = np.array([[1.0, 2.0, 3.0], [4.0, 0.0, 2.0]])
    assert reduce(M, "mean", "mse").value == pytest.approx(2.0)
    assert reduce(M, "sum", "mse").value == pytest.approx(2.0 + 2.0)  # sum of row means
    assert reduce(M, "max", "mse").value == 4.0
    r = reduce(M, "weighted", "mse", output_weights=[2.0, 1.0, 1.0], sample_weights=[3.0, 1.0])
    L = np.array([(2 + 2 + 3) / 4, (8 + 0 + 2) / 4])
    np.testing.assert_allclose(r.per_sample, L)
    assert r.value == pytest.approx((3 * L[0] + L[1]) / 4)
    # cross-entropy sums over outputs, so mean is the usual cross-entropy
    np.testing.assert_allclose(reduce(M, "mean", "cross_entropy").per_sample, [6.0, 6.0])
    with pytest.raises(ValueError):
        reduce(M, "weighted", "mse", output_weights=[1.0, 1.0])
    with pytest.raises(ValueError):
        reduce(M, "weighted", "mse", sample_weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        reduce(M, "median", "mse")


def test_cross_entropy_of_known_outputs_and_class_indices():
    Y = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    idx = np.array([1, 2])
    T = as_one_hot(idx, 3)
    np.testing.assert_array_equal(T, [[0, 1, 0], [0, 0, 1]])
    M = get_loss("cross_entropy").matrix(Y, T)
    expected = [np.log(3.0), -(3.0 - np.log(np.exp(1) + np.exp(2) + np.exp(3)))]
    np.testing.assert_allclose(M.sum(axis=1), expected, rtol=1e-14)
    with pytest.raises(ValueError):
        as_one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError):
        as_one_hot(np.array([0.5, 1.0]), 3)


def test_huber_is_quadratic_inside_and_linear_outside():
    R = np.array([[-3.0, -0.5, 0.0, 0.25, 2.0]])
    M = Huber(delta=1.0).matrix(R, np.zeros_like(R))
    np.testing.assert_allclose(M, [[2.5, 0.125, 0.0, 0.03125, 1.5]])
