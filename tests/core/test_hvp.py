"""Exact Hessian-vector products (``MLP.hvp``, ``MLP.hessian_operator``).

* Every hidden activation x loss (cross-entropy with one-hot and with class-index targets) x
  reduction: H v against central differences of ``net.gradient`` along v. The data are drawn
  until every kink (relu's z = 0, |r| = 0 for mae/huber, |r| = delta for huber, ties for max)
  is far beyond the reach of the difference step, where the Hessian is the piecewise one.
* Symmetry u.Hv == v.Hu as a property over random networks, batches, losses and reductions.
* The full Hessian of a tiny network, one product per column, against the finite-difference
  Hessian, and symmetric; closed forms for a one-layer (linear) network.
* The activations' second derivatives against differences of their first derivatives.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.activations import ACTIVATIONS
from core.losses import BUILTIN_LOSSES, REDUCTIONS
from core.mlp import MLP

H_STEP = 1e-5  #: central-difference step along a unit direction
REL_TOL = 1e-6  #: norm-wise relative error allowed against the differences
MARGIN = 1e-3  #: smallest distance of any kink from the data (>> H_STEP's reach)
HUBER_DELTA = 0.5
SIZES = [4, 5, 3, 3]
TINY = [3, 3, 2, 2]  #: P = 26, for the dense Hessians
B = 5

LOSS_CASES = ["mse", "mae", "huber", "cross_entropy-onehot", "cross_entropy-index"]
ACTS = list(ACTIVATIONS)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300))


def kink_margin(net: MLP, X, T1, loss: str, reduction: str) -> float:
    """Distance of the data from the nearest kink of the loss as a function of the weights."""
    A = X
    margins = [np.inf]
    for k, (W, b) in enumerate(net.layers):
        Z = A @ W.T + b
        if k == len(net.layers) - 1:
            Y = Z
            break
        if net.activation == "relu":
            margins.append(float(np.abs(Z).min()))
        A = ACTIVATIONS[net.activation].forward(Z, np.empty_like(Z))
    R = np.abs(Y - T1)
    if loss in ("mae", "huber"):
        margins.append(float(R.min()))
    if loss == "huber":
        margins.append(float(np.abs(R - HUBER_DELTA).min()))
    if reduction == "max":
        M = net.loss_matrix(X, T1, loss, HUBER_DELTA)
        top2 = np.sort(M, axis=1)[:, -2:]
        margins.append(float((top2[:, 1] - top2[:, 0]).min()))
        L = np.sort(M.max(axis=1))
        margins.append(float(L[-1] - L[-2]))
    return min(margins)


def make_problem(loss_case: str, reduction: str, act: str, sizes=SIZES, batch=B):
    """A small net (weights and biases ~ N(0, 0.8)) and batch with every kink MARGIN away."""
    loss = loss_case.split("-")[0]
    n_out = sizes[-1]
    for seed in range(500):
        rng = np.random.default_rng(seed)
        net = MLP(sizes, activation=act, seed=seed)
        net.params[...] = rng.normal(0.0, 0.8, size=net.n_params)
        X = rng.normal(size=(batch, sizes[0]))
        labels = rng.integers(0, n_out, size=batch)
        T1 = np.eye(n_out)[labels] if loss == "cross_entropy" else rng.normal(size=(batch, n_out))
        T = labels if loss_case == "cross_entropy-index" else T1
        kw = {"huber_delta": HUBER_DELTA}
        if reduction == "weighted":
            kw.update(
                output_weights=rng.uniform(0.3, 2.0, size=n_out),
                sample_weights=rng.uniform(0.5, 2.0, size=batch),
            )
        if kink_margin(net, X, T1, loss, reduction) > MARGIN:
            return net, X, T, loss, kw, rng
    raise AssertionError("no kink-free data found")  # pragma: no cover


def fd_hvp(net: MLP, X, T, v, loss, reduction, kw) -> np.ndarray:
    """(g(p + h v) - g(p - h v)) / 2h for a unit v; leaves the weights as they were."""
    p0 = net.params.copy()
    try:
        net.params[...] = p0 + H_STEP * v
        gp = net.gradient(X, T, loss, reduction, **kw)
        net.params[...] = p0 - H_STEP * v
        gm = net.gradient(X, T, loss, reduction, **kw)
    finally:
        net.params[...] = p0
    return (gp - gm) / (2.0 * H_STEP)


# ------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss_case", LOSS_CASES)
def test_hvp_matches_finite_differences_of_the_gradient(loss_case, reduction, act):
    net, X, T, loss, kw, rng = make_problem(loss_case, reduction, act)
    params_before = net.params.copy()
    op = net.hessian_operator(X, T, loss, reduction, **kw)
    for _ in range(3):
        v = rng.normal(size=net.n_params)
        v /= np.linalg.norm(v)
        Hv = net.hvp(X, T, v, loss, reduction, **kw)
        np.testing.assert_array_equal(net.params, params_before)  # no side effects
        assert Hv.shape == (net.n_params,)
        fd = fd_hvp(net, X, T, v, loss, reduction, kw)
        assert np.linalg.norm(fd) > 1e-3, "degenerate test: H v is zero"
        err = rel_err(Hv, fd)
        assert err < REL_TOL, f"H v vs differences of the gradient: rel err {err:.2e}"
        # The reusable operator gives the same numbers as the one-shot product.
        np.testing.assert_allclose(op.matvec(v), Hv, rtol=0, atol=1e-14 * np.abs(Hv).max())
    assert op.n_matvec == 3
    # It also carries the gradient of the same pass.
    g = net.gradient(X, T, loss, reduction, **kw)
    np.testing.assert_allclose(op.gradient(), g, rtol=0, atol=1e-14 * np.abs(g).max())
    assert op.value == net.loss(X, T, loss, reduction, **kw)


@pytest.mark.parametrize("act", ACTS)
def test_activation_second_derivatives_match_differences_of_the_first(act):
    a = ACTIVATIONS[act]
    Z = np.linspace(-4.0, 4.0, 81) + 0.013  # away from relu's kink at 0
    h = 1e-6

    def d1(z):
        A = a.forward(z, np.empty_like(z))
        return a.derivative(z, A, np.empty_like(z))

    A = a.forward(Z, np.empty_like(Z))
    d2 = a.second_derivative(Z, A, np.empty_like(Z))
    np.testing.assert_allclose(d2, (d1(Z + h) - d1(Z - h)) / (2 * h), rtol=1e-6, atol=1e-8)
    if act in ("tanh", "sigmoid"):
        assert np.abs(d2).max() > 0.05  # not vacuously zero


# ----------------------------------------------------------------------------- symmetry
@st.composite
def problems(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    batch = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    loss = draw(st.sampled_from(BUILTIN_LOSSES))
    reduction = draw(st.sampled_from(REDUCTIONS))
    act = draw(st.sampled_from(ACTS))
    rng = np.random.default_rng(seed)
    net = MLP(sizes, activation=act, seed=seed)
    net.params[...] = rng.normal(0.0, 1.0, size=net.n_params)
    X = rng.normal(size=(batch, sizes[0]))
    if loss == "cross_entropy":
        T = rng.integers(0, sizes[-1], size=batch)
    else:
        T = rng.normal(size=(batch, sizes[-1]))
    kw = {"huber_delta": float(rng.uniform(0.2, 2.0))}
    if reduction == "weighted":
        kw["output_weights"] = rng.uniform(0.1, 3.0, size=sizes[-1])
        kw["sample_weights"] = rng.uniform(0.1, 3.0, size=batch)
    u = rng.normal(size=net.n_params)
    v = rng.normal(size=net.n_params)
    return net, X, T, loss, reduction, kw, u, v


@settings(max_examples=150, deadline=None)
@given(problems())
def test_hessian_is_symmetric_u_Hv_equals_v_Hu(problem):
    net, X, T, loss, reduction, kw, u, v = problem
    op = net.hessian_operator(X, T, loss, reduction, **kw)
    Hu, Hv = op(u), op(v)
    scale = np.linalg.norm(u) * np.linalg.norm(Hv) + np.linalg.norm(v) * np.linalg.norm(Hu)
    assert abs(u @ Hv - v @ Hu) <= 1e-12 * scale + 1e-300
    # Linear in v, to round-off.
    Hw = op(2.0 * u - 3.0 * v)
    np.testing.assert_allclose(Hw, 2.0 * Hu - 3.0 * Hv, rtol=0, atol=1e-12 * (scale + 1e-300))


# -------------------------------------------------------------------------- full Hessian
def fd_hessian(net: MLP, X, T, loss, reduction, kw) -> np.ndarray:
    P = net.n_params
    Hfd = np.empty((P, P))
    e = np.zeros(P)
    for j in range(P):
        e[j] = 1.0
        Hfd[:, j] = fd_hvp(net, X, T, e, loss, reduction, kw)
        e[j] = 0.0
    return Hfd


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize(
    "loss_case, reduction",
    [
        ("mse", "mean"),
        ("mae", "sum"),
        ("huber", "weighted"),
        ("cross_entropy-index", "mean"),
        ("mse", "max"),
    ],
)
def test_full_hessian_column_by_column_equals_finite_differences_and_is_symmetric(
    loss_case, reduction, act
):
    net, X, T, loss, kw, _ = make_problem(loss_case, reduction, act, sizes=TINY, batch=4)
    Hm = net.hessian_operator(X, T, loss, reduction, **kw).dense()
    assert Hm.shape == (26, 26)
    Hfd = fd_hessian(net, X, T, loss, reduction, kw)
    norm = np.linalg.norm(Hm)
    assert norm > 1e-2
    assert np.linalg.norm(Hm - Hfd) <= REL_TOL * norm, rel_err(Hm, Hfd)
    assert np.linalg.norm(Hm - Hm.T) <= 1e-12 * norm
    # Built from the one-shot product too (column 0).
    e0 = np.zeros(net.n_params)
    e0[0] = 1.0
    np.testing.assert_allclose(net.hvp(X, T, e0, loss, reduction, **kw), Hm[:, 0], atol=1e-14)


# --------------------------------------------------------------------------- closed forms
def test_linear_model_mse_hessian_is_the_closed_form(rng):
    """One layer, mse, mean: S = mean((X W^T + b - T)^2) over B x O entries, so the Hessian is
    ``2/(B O) [X 1]^T [X 1]`` for each output's row (W_o, b_o), and zero between outputs."""
    n_in, n_out, batch = 3, 2, 7
    net = MLP([n_in, n_out], seed=1)
    X = rng.normal(size=(batch, n_in))
    T = rng.normal(size=(batch, n_out))
    Hm = net.hessian_operator(X, T).dense()
    Xa = np.hstack([X, np.ones((batch, 1))])
    G = 2.0 / (batch * n_out) * Xa.T @ Xa
    # The flat order is W.ravel() (output-major) then b: index of (o, i) and of b_o.
    idx = [[o * n_in + i for i in range(n_in)] + [n_in * n_out + o] for o in range(n_out)]
    for o in range(n_out):
        for q in range(n_out):
            block = Hm[np.ix_(idx[o], idx[q])]
            np.testing.assert_allclose(block, G if o == q else 0.0, rtol=1e-13, atol=1e-14)


def test_linear_model_mae_has_zero_and_cross_entropy_psd_curvature(rng):
    net = MLP([4, 3], seed=2)
    net.params[...] = rng.normal(size=net.n_params)
    X = rng.normal(size=(6, 4))
    zero = net.hessian_operator(X, rng.normal(size=(6, 3)), "mae", "mean").dense()
    np.testing.assert_array_equal(zero, 0.0)  # |r| is piecewise linear; so is a linear model
    Hce = net.hessian_operator(X, rng.integers(0, 3, size=6), "cross_entropy", "sum").dense()
    ev = np.linalg.eigvalsh(Hce)
    assert ev.min() >= -1e-12 * ev.max() and ev.max() > 0.1  # convex in a linear model's weights


def test_operator_keeps_the_hessian_of_the_weights_it_was_made_at(rng):
    net = MLP([3, 5, 2], activation="tanh", seed=0)
    X, T = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    v = rng.normal(size=net.n_params)
    op = net.hessian_operator(X, T)
    Hv = op(v)
    net.params -= 0.3 * net.gradient(X, T)  # train on: the operator is not affected
    np.testing.assert_array_equal(op(v), Hv)
    assert not np.allclose(net.hvp(X, T, v), Hv)  # while the Hessian itself did move
    net.params[...] = op.params
    np.testing.assert_allclose(net.hvp(X, T, v), Hv, rtol=0, atol=1e-14 * np.abs(Hv).max())


def test_hvp_rejects_a_vector_of_the_wrong_shape(rng):
    net = MLP([3, 4, 2], seed=0)
    X, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    with pytest.raises(ValueError, match=r"v must have shape \(26,\)"):
        net.hvp(X, T, np.ones(25))
    with pytest.raises(ValueError, match="unknown loss"):
        net.hvp(X, T, np.ones(26), loss="l3")
