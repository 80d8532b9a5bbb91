"""The sharpness lambda_max by Lanczos, its warm start, and the optimisers' stability limits.

* ``top_eigenvalue`` against ``numpy.linalg.eigvalsh`` of the dense Hessian (built one product
  per column), for several activations, losses and reductions, including a Hessian whose most
  negative eigenvalue is larger in size than its most positive one;
* a warm start from the previous eigenvector needs fewer products than a cold start (counted);
  an exact eigenvector of a *lower* eigenvalue as the start still ends at the top one;
* ``stability_limit``: each optimiser of ``core.optimizers``, run on f(x) = h x^2 / 2, converges
  with h just under its limit and diverges just over it (and Nesterov's limit is not
  heavy-ball's); on a linear model with mse (a quadratic loss), full-batch training with
  ``top_eigenvalue`` and the limit predicts convergence or divergence.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.curvature import (
    MIN_KRYLOV,
    overshoot,
    stability_limit,
    stability_rule,
    top_eigenpair,
    top_eigenvalue,
)
from core.mlp import MLP
from core.optimizers import OPTIMIZERS, make_optimizer


def dense_spectrum(net, X, T, loss, reduction, **kw):
    Hm = net.hessian_operator(X, T, loss, reduction, **kw).dense()
    Hm = 0.5 * (Hm + Hm.T)  # symmetric to ~1e-15 already (tests/core/test_hvp.py)
    return np.linalg.eigh(Hm)


def problem(act, loss, sizes=(3, 6, 4, 2), batch=6, seed=0, scale=0.8):
    rng = np.random.default_rng(seed)
    net = MLP(list(sizes), activation=act, seed=seed)
    net.params[...] = rng.normal(0.0, scale, size=net.n_params)
    X = rng.normal(size=(batch, sizes[0]))
    if loss == "cross_entropy":
        T = rng.integers(0, sizes[-1], size=batch)
    else:
        T = rng.normal(size=(batch, sizes[-1]))
    return net, X, T


# ------------------------------------------------------------------------------ Lanczos
@pytest.mark.parametrize(
    "act, loss, reduction",
    [
        ("tanh", "mse", "mean"),
        ("relu", "cross_entropy", "sum"),
        ("sigmoid", "huber", "weighted"),
        ("identity", "mse", "max"),
        ("tanh", "mae", "mean"),
        ("relu", "mae", "sum"),
    ],
)
def test_top_eigenvalue_equals_largest_eigvalsh(act, loss, reduction):
    net, X, T = problem(act, loss)
    kw = {"huber_delta": 0.5}
    if reduction == "weighted":
        kw.update(output_weights=np.array([1.0, 2.0]), sample_weights=np.arange(1.0, 7.0))
    ev, U = dense_spectrum(net, X, T, loss, reduction, **kw)
    lam, v = top_eigenvalue(net, X, T, loss, reduction, **kw)
    assert abs(lam - ev[-1]) <= 1e-8 * abs(ev[-1]), (lam, ev[-1])
    assert v.shape == (net.n_params,)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-14)
    # The eigenvector: accurate to about sqrt(tol) / gap in angle (the gap is O(1) here).
    assert ev[-1] - ev[-2] > 1e-2 * abs(ev[-1])
    assert 1.0 - abs(v @ U[:, -1]) < 1e-6


def test_negative_end_larger_in_size_does_not_fool_it():
    """MAE gives no curvature of its own: the Hessian is the network's indefinite part."""
    net, X, T = problem("tanh", "mae", seed=8)
    ev, _ = dense_spectrum(net, X, T, "mae", "mean")
    assert -ev[0] > 5.0 * ev[-1] > 0  # the case this test is about
    lam, _ = top_eigenvalue(net, X, T, "mae", "mean")
    assert abs(lam - ev[-1]) <= 1e-8 * ev[-1]


def test_known_spectra():
    """Diagonal operators: negative-dominated, a zero operator, dimension 1, a clustered top."""
    d = np.concatenate([np.linspace(-10.0, 0.5, 49), [1.0]])
    r = top_eigenpair(lambda x: d * x, d.size, rng=np.random.default_rng(1))
    assert r.converged and abs(r.value - 1.0) <= 1e-8
    assert abs(abs(r.vector[-1]) - 1.0) < 1e-6

    r0 = top_eigenpair(lambda x: 0.0 * x, 7)
    assert r0.value == 0.0 and r0.converged

    r1 = top_eigenpair(lambda x: -3.0 * x, 1)
    assert r1.value == pytest.approx(-3.0, rel=1e-15) and r1.n_hvp == 1

    d = np.concatenate([np.linspace(0.0, 1.0, 200), [2.0, 2.0 - 1e-6]])
    r = top_eigenpair(lambda x: d * x, d.size, rng=np.random.default_rng(2))
    assert abs(r.value - 2.0) <= 1e-8 * 2.0

    # Restarts: a basis of at most 5 vectors, restarted from the top Ritz vector.
    d = np.linspace(-1.0, 3.0, 50)
    r = top_eigenpair(lambda x: d * x, d.size, krylov_dim=5)
    assert r.converged and r.n_hvp > 5 and abs(r.value - 3.0) <= 1e-8 * 3.0
    r = top_eigenpair(lambda x: d * x, d.size, krylov_dim=5, max_hvp=7)
    assert not r.converged and r.n_hvp == 7 and r.value < 3.0  # a lower bound, said so


@pytest.mark.parametrize("tol, most", [(1e-4, 0.75), (1e-8, 0.9)])
def test_warm_start_needs_fewer_products_than_a_cold_start(tol, most):
    """Track lambda_max on a fixed batch while training: from the previous eigenvector each
    estimate needs fewer Hessian-vector products (counted by the operator) than from a
    random start, and both give the same lambda_max (to the guaranteed tol and, in fact, far
    closer)."""
    rng = np.random.default_rng(0)
    net = MLP([5, 16, 16, 3], seed=0)
    X = rng.normal(size=(32, 5))
    T = np.tanh(X @ rng.normal(size=(5, 3)))
    opt = make_optimizer("sgd", net.n_params, 0.05)
    v = None
    cold_counts, warm_counts = [], []
    for step in range(40):
        op = net.hessian_operator(X, T)
        if step % 4 == 0:
            cold = top_eigenpair(op, net.n_params, tol=tol)
            n_before = op.n_matvec
            warm = top_eigenpair(op, net.n_params, v0=v, tol=tol)
            assert op.n_matvec - n_before == warm.n_hvp  # the count is the operator's
            assert cold.converged and warm.converged
            assert abs(warm.value - cold.value) <= min(tol, 1e-7) * abs(cold.value)
            if v is not None:
                cold_counts.append(cold.n_hvp)
                warm_counts.append(warm.n_hvp)
            v = warm.vector
        opt.step(net.params, op.gradient())
    assert sum(warm_counts) < most * sum(cold_counts), (warm_counts, cold_counts)


def test_exact_eigenvectors_as_warm_starts():
    net, X, T = problem("tanh", "mse", seed=1)
    ev, U = dense_spectrum(net, X, T, "mse", "mean")
    op = net.hessian_operator(X, T)
    # The top eigenvector itself: done in the fewest products allowed at a tracking tol, and
    # faster than from a random start at the default tol (the 1e-3 random mix costs a few).
    r = top_eigenpair(op, net.n_params, v0=U[:, -1], tol=1e-4)
    assert r.n_hvp == MIN_KRYLOV and abs(r.value - ev[-1]) <= 1e-8 * ev[-1]
    assert r.vector @ U[:, -1] > 0  # sign along the start
    r = top_eigenpair(op, net.n_params, v0=-U[:, -1])
    assert r.n_hvp < top_eigenpair(op, net.n_params).n_hvp
    assert abs(r.value - ev[-1]) <= 1e-8 * ev[-1]
    assert r.vector @ U[:, -1] < 0
    # An eigenvector of a lower eigenvalue: an invariant subspace, which the random mix leaves.
    for k in (0, net.n_params // 2, net.n_params - 2):
        r = top_eigenpair(op, net.n_params, v0=U[:, k])
        assert abs(r.value - ev[-1]) <= 1e-8 * ev[-1], k


def test_bad_starts_and_tolerances_are_refused_or_replaced():
    op = lambda x: x  # noqa: E731
    with pytest.raises(ValueError, match=r"v0 must have shape \(4,\)"):
        top_eigenpair(op, 4, v0=np.ones(3))
    with pytest.raises(ValueError, match="tol must be positive"):
        top_eigenpair(op, 4, tol=0.0)
    with pytest.raises(ValueError, match="krylov_dim must be at least 2"):
        top_eigenpair(op, 4, krylov_dim=1)
    r = top_eigenpair(op, 4, v0=np.zeros(4))  # a zero start is replaced by a random one
    assert r.value == pytest.approx(1.0, rel=1e-14)


# --------------------------------------------------------------------- stability limits
def run_quadratic(optimizer: str, lr: float, mu: float, h: float, steps: int = 1500) -> float:
    """|x| after ``steps`` updates of the real optimiser on f(x) = h x^2 / 2 from x = 1
    (stops early once it has clearly run away)."""
    opt = make_optimizer(optimizer, 1, lr, momentum=mu)
    x = np.ones(1)
    for _ in range(steps):
        opt.step(x, h * x)
        if abs(x[0]) > 1e8:
            break
    return abs(float(x[0]))


@settings(max_examples=40, deadline=None)
@given(
    optimizer=st.sampled_from(["sgd", "momentum", "nesterov"]),
    lr=st.floats(1e-3, 1.0),
    mu=st.floats(0.0, 0.95),
)
def test_optimisers_converge_just_under_their_limit_and_diverge_just_over(optimizer, lr, mu):
    limit = stability_limit(optimizer, lr, mu)
    assert run_quadratic(optimizer, lr, mu, 0.98 * limit) < 1e-6
    assert run_quadratic(optimizer, lr, mu, 1.02 * limit) > 1e6


def test_limits_are_the_stated_formulas_and_nesterov_is_not_heavy_ball():
    lr, mu = 0.1, 0.9
    assert stability_limit("sgd", lr) == pytest.approx(20.0)
    assert stability_limit("momentum", lr, mu) == pytest.approx(38.0)
    assert stability_limit("nesterov", lr, mu) == pytest.approx(38.0 / 2.8)
    # Nesterov as written in core.optimizers diverges well below heavy-ball's limit.
    assert run_quadratic("nesterov", lr, mu, 0.9 * stability_limit("momentum", lr, mu)) > 1e6
    assert overshoot(60.0, "sgd", lr) == pytest.approx(3.0)
    assert set(OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adam"}


def test_adam_has_no_limit_on_the_loss_hessian_and_says_why():
    assert stability_limit("adam", 0.01) is None
    assert overshoot(1e6, "adam", 0.01) is None
    rule = stability_rule("adam", 0.01)
    assert "preconditioned Hessian" in rule
    assert "20" in stability_rule("sgd", 0.1)  # 2 / 0.1
    with pytest.raises(ValueError, match="unknown optimizer"):
        stability_limit("lbfgs", 0.1)
    with pytest.raises(ValueError, match="learning rate must be positive"):
        stability_limit("sgd", 0.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        stability_limit("momentum", 0.1, 1.0)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_sharpness_against_the_limit_predicts_divergence_of_a_quadratic_loss(optimizer):
    """A linear model with mse has a quadratic loss, so its Hessian is constant: full-batch
    training converges with lambda_max just under the optimiser's limit and diverges just
    over it, with lambda_max from ``top_eigenvalue``."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(20, 4)) * np.array([3.0, 1.0, 0.5, 0.2])
    T = rng.normal(size=(20, 2))
    net = MLP([4, 2], activation="identity", seed=0)
    lam, _ = top_eigenvalue(net, X, T)
    mu = 0.8
    lr_edge = stability_limit(optimizer, 1.0, mu) / lam  # the lr whose limit is lam
    final = {}
    for factor in (0.97, 1.03):
        net.init_params(0)
        lr = lr_edge * factor
        opt = make_optimizer(optimizer, net.n_params, lr, momentum=mu)
        assert (overshoot(lam, optimizer, lr, mu) > 1) == (factor > 1)
        start = net.loss(X, T)
        for _ in range(3000):
            opt.step(net.params, net.gradient(X, T))
            if not net.loss(X, T) < 1e6 * start:
                break
        final[factor] = net.loss(X, T) / start
    assert final[0.97] < 1.0 and final[1.03] > 1e6
