"""Finite-difference checks of the scalar gradient and of every per-sample gradient.

For every loss (cross-entropy with one-hot and with class-index targets) x reduction x hidden
activation, ``net.gradient`` and each row of ``net.per_sample_gradients`` are compared with
central differences of an independent reference implementation of the loss (written here from
the definitions in ``core/losses.py``'s docstring, not by calling it).

Kinks (|r| = 0 or delta for mae/huber, z = 0 for relu, ties for max) have measure zero for
random data; the data are drawn until every kink is at least ``MARGIN`` away, far beyond the
reach of a step of ``H``.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.activations import ACTIVATIONS
from core.mlp import MLP

H = 1e-6  #: central-difference step
REL_TOL = 1e-6  #: norm-wise relative error allowed
MARGIN = 1e-3  #: smallest distance of any kink from the data
HUBER_DELTA = 0.5
SIZES = [5, 4, 3, 3]
B = 4

LOSS_CASES = ["mse", "mae", "huber", "cross_entropy-onehot", "cross_entropy-index"]
REDUCTIONS = ["mean", "sum", "max", "weighted"]
ACTS = ["tanh", "relu", "sigmoid", "identity"]


# ----------------------------------------------------------------------- reference loss
def ref_act(name: str, Z: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-Z))
    assert name == "identity"
    return Z.copy()


def ref_forward(net: MLP, X: np.ndarray):
    """(Y, hidden pre-activations) computed from ``net.layers`` by the textbook recursion."""
    A = X
    Zs = []
    for k, (W, b) in enumerate(net.layers):
        Z = A @ W.T + b
        if k == len(net.layers) - 1:
            return Z, Zs
        Zs.append(Z)
        A = ref_act(net.activation, Z)
    raise AssertionError("unreachable")


def ref_M(Y: np.ndarray, T1: np.ndarray, loss: str) -> np.ndarray:
    R = Y - T1
    if loss == "mse":
        return R**2
    if loss == "mae":
        return np.abs(R)
    if loss == "huber":
        a = np.abs(R)
        return np.where(a <= HUBER_DELTA, 0.5 * R**2, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))
    assert loss == "cross_entropy"
    Zs = Y - Y.max(axis=1, keepdims=True)
    logp = Zs - np.log(np.exp(Zs).sum(axis=1, keepdims=True))
    return -T1 * logp


def ref_per_sample(M: np.ndarray, loss: str, reduction: str, ow) -> np.ndarray:
    """L_i: mean over outputs (sum for cross-entropy), weighted, or the row's largest entry."""
    O = M.shape[1]
    if reduction == "max":
        return M.max(axis=1)
    scale = O if loss == "cross_entropy" else 1.0
    if reduction == "weighted":
        u = scale * ow / ow.sum()
    else:
        u = np.full(O, scale / O)
    return M @ u


def ref_scalar(L: np.ndarray, reduction: str, sw) -> float:
    if reduction == "mean":
        return float(L.mean())
    if reduction == "sum":
        return float(L.sum())
    if reduction == "max":
        return float(L.max())
    return float(sw @ L / sw.sum())


def kink_margin(net, X, T1, loss, reduction) -> float:
    """Distance of the data from the nearest kink of the loss as a function of the weights."""
    Y, Zs = ref_forward(net, X)
    margins = [np.inf]
    if net.activation == "relu":
        margins += [float(np.abs(Z).min()) for Z in Zs]
    R = np.abs(Y - T1)
    if loss in ("mae", "huber"):
        margins.append(float(R.min()))
    if loss == "huber":
        margins.append(float(np.abs(R - HUBER_DELTA).min()))
    if reduction == "max":
        M = ref_M(Y, T1, loss)
        top2 = np.sort(M, axis=1)[:, -2:]
        margins.append(float((top2[:, 1] - top2[:, 0]).min()))
        L = np.sort(M.max(axis=1))
        if L.size > 1:
            margins.append(float(L[-1] - L[-2]))
    return min(margins)


# ---------------------------------------------------------------------------- problem
def make_problem(loss_case: str, reduction: str, act: str):
    """A small net and batch with every kink at least MARGIN away."""
    loss = loss_case.split("-")[0]
    for seed in range(500):
        rng = np.random.default_rng(seed)
        net = MLP(SIZES, activation=act, seed=seed)
        net.params[...] = rng.normal(0.0, 0.8, size=net.n_params)  # biases non-zero too
        X = rng.normal(size=(B, SIZES[0]))
        labels = rng.integers(0, SIZES[-1], size=B)
        T1 = np.eye(SIZES[-1])[labels] if loss == "cross_entropy" else rng.normal(size=(B, 3))
        T = labels if loss_case == "cross_entropy-index" else T1
        kw = {"huber_delta": HUBER_DELTA}
        ow = sw = None
        if reduction == "weighted":
            ow = np.array([2.0, 1.0, 0.5])
            sw = rng.uniform(0.5, 2.0, size=B)
            kw.update(output_weights=ow, sample_weights=sw)
        if kink_margin(net, X, T1, loss, reduction) > MARGIN:
            return net, X, T, T1, loss, kw, ow, sw
    raise AssertionError("no kink-free data found")  # pragma: no cover


def central_differences(net: MLP, f):
    """Central differences of f (returning (scalar, (B,) vector)) w.r.t. every parameter."""
    p = net.params
    P = net.n_params
    g = np.empty(P)
    J = None
    for k in range(P):
        saved = p[k]
        p[k] = saved + H
        fp, vp = f()
        p[k] = saved - H
        fm, vm = f()
        p[k] = saved
        if J is None:
            J = np.empty((vp.size, P))
        g[k] = (fp - fm) / (2 * H)
        J[:, k] = (vp - vm) / (2 * H)
    return g, J


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300))


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss_case", LOSS_CASES)
def test_gradient_and_per_sample_rows_match_finite_differences(loss_case, reduction, act):
    net, X, T, T1, loss, kw, ow, sw = make_problem(loss_case, reduction, act)

    def f():
        Y, _ = ref_forward(net, X)
        L = ref_per_sample(ref_M(Y, T1, loss), loss, reduction, ow)
        return ref_scalar(L, reduction, sw), L

    # The reference loss is the one the engine minimises.
    value, L = f()
    assert net.loss(X, T, loss, reduction, **kw) == pytest.approx(value, rel=1e-13, abs=1e-15)
    bp = net.backprop(X, T, loss, reduction, **kw)
    np.testing.assert_allclose(bp.reduced.per_sample, L, rtol=1e-13, atol=1e-15)

    params_before = net.params.copy()
    g = net.gradient(X, T, loss, reduction, **kw)
    G = net.per_sample_gradients(X, T, loss, reduction, **kw)
    np.testing.assert_array_equal(net.params, params_before)  # no side effects
    assert g.shape == (net.n_params,)
    assert G.shape == (B, net.n_params)

    g_fd, J_fd = central_differences(net, f)
    np.testing.assert_array_equal(net.params, params_before)

    assert np.linalg.norm(g_fd) > 1e-3, "degenerate test: the gradient is zero"
    assert rel_err(g, g_fd) < REL_TOL, f"scalar gradient: rel err {rel_err(g, g_fd):.2e}"
    for i in range(B):
        assert np.linalg.norm(J_fd[i]) > 1e-3, f"degenerate test: row {i} is zero"
        err = rel_err(G[i], J_fd[i])
        assert err < REL_TOL, f"per-sample row {i}: rel err {err:.2e}"


@pytest.mark.parametrize("act", ACTS)
def test_activation_derivatives_match_finite_differences(act):
    a = ACTIVATIONS[act]
    Z = np.linspace(-3.0, 3.0, 61) + 0.013  # avoid z == 0 (relu's kink)
    A = a.forward(Z, np.empty_like(Z))
    np.testing.assert_allclose(A, ref_act(act, Z), rtol=1e-15, atol=1e-15)
    d = a.derivative(Z, A, np.empty_like(Z))
    fp = a.forward(Z + H, np.empty_like(Z))
    fm = a.forward(Z - H, np.empty_like(Z))
    np.testing.assert_allclose(d, (fp - fm) / (2 * H), rtol=1e-7, atol=1e-9)


def test_sigmoid_is_finite_for_huge_inputs():
    a = ACTIVATIONS["sigmoid"]
    Z = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    with np.errstate(all="raise"):
        A = a.forward(Z, np.empty_like(Z))
    assert np.all(np.isfinite(A))
    np.testing.assert_allclose(A[[0, 2, 4]], [0.0, 0.5, 1.0], atol=1e-200)
