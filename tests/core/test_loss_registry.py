"""Adding a loss is one class and one ``register`` call (issue 11, section 2).

LogCosh is defined exactly as the issue shows and registered; then, with no other edit:

* the engine's loss, gradient and every per-sample gradient, for every reduction, against
  central differences of an independent reference (``test_finite_differences``'s forward pass,
  output and sample reductions); the mean of the per-sample gradients is the batch gradient;
* the Hessian-vector product (LogCosh has no second derivative of its own: the finite-difference
  fallback) against differences of the gradient;
* ``Config(loss="logcosh")`` validates, and the command line takes ``--loss logcosh``;
* a spawned process (as the engine is) gets the loss from ``pickled_user_losses``.

The window's list is checked in ``tests/gui/test_loss_registry_gui.py``. Every test unregisters
the loss again (fixture), so the other tests see the built-in losses only.
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
from test_finite_differences import (
    central_differences,
    ref_forward,
    ref_per_sample,
    ref_scalar,
    rel_err,
)

from core import losses
from core.config import Config, ConfigError
from core.losses import Loss, register
from core.mlp import MLP

SIZES = [5, 4, 3, 3]
B = 4
MARGIN = 1e-3  #: smallest gap of a tie for ``max`` (the loss itself has no kinks)
REDUCTIONS = ["mean", "sum", "max", "weighted"]


class LogCosh(Loss):
    name = "logcosh"  # the key in Config, config files and --loss
    label = "log-cosh"  # what the window shows
    task = "regression"  # or "classification"

    def matrix(self, Y, T):  # (B, O) -> M, the elementwise loss matrix
        return np.log(np.cosh(Y - T))

    def grad(self, Y, T, U):  # dL/dY for L = sum(U * M), U (B, O) the reduction's weights
        return U * np.tanh(Y - T)


@pytest.fixture
def logcosh():
    loss = register(LogCosh())
    yield loss
    losses.unregister("logcosh")


def ref_M(Y, T):
    return np.log(np.cosh(Y - T))


def make_problem(reduction: str):
    """A small net and batch; for ``max`` no two candidates closer than MARGIN."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        net = MLP(SIZES, activation="tanh", seed=seed)
        net.params[...] = rng.normal(0.0, 0.8, size=net.n_params)
        X = rng.normal(size=(B, SIZES[0]))
        T = rng.normal(size=(B, SIZES[-1]))
        kw, ow, sw = {}, None, None
        if reduction == "weighted":
            ow = np.array([2.0, 1.0, 0.5])
            sw = rng.uniform(0.5, 2.0, size=B)
            kw = {"output_weights": ow, "sample_weights": sw}
        M = ref_M(ref_forward(net, X)[0], T)
        top2 = np.sort(M, axis=1)[:, -2:]
        L = np.sort(M.max(axis=1))
        if reduction != "max" or min((top2[:, 1] - top2[:, 0]).min(), L[-1] - L[-2]) > MARGIN:
            return net, X, T, kw, ow, sw
    raise AssertionError("no tie-free data found")  # pragma: no cover


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_logcosh_engine_against_finite_differences(logcosh, reduction):
    net, X, T, kw, ow, sw = make_problem(reduction)

    def f():
        Y, _ = ref_forward(net, X)
        L = ref_per_sample(ref_M(Y, T), "logcosh", reduction, ow)
        return ref_scalar(L, reduction, sw), L

    value, L = f()
    assert net.loss(X, T, loss="logcosh", reduction=reduction, **kw) == pytest.approx(
        value, rel=1e-13
    )
    g = net.gradient(X, T, loss="logcosh", reduction=reduction, **kw)
    G = net.per_sample_gradients(X, T, loss="logcosh", reduction=reduction, **kw)
    g_fd, J_fd = central_differences(net, f)
    assert np.linalg.norm(g_fd) > 1e-3, "degenerate test: the gradient is zero"
    assert rel_err(g, g_fd) < 1e-6, f"scalar gradient: rel err {rel_err(g, g_fd):.2e}"
    for i in range(B):
        assert np.linalg.norm(J_fd[i]) > 1e-3, f"degenerate test: row {i} is zero"
        assert rel_err(G[i], J_fd[i]) < 1e-6, f"row {i}: rel err {rel_err(G[i], J_fd[i]):.2e}"
    w = net.backprop(X, T, "logcosh", reduction, **kw).reduced.weights
    np.testing.assert_allclose(w @ G, g, rtol=0, atol=1e-13 * np.abs(g).max())


def test_mean_of_per_sample_gradients_is_the_batch_gradient(logcosh, rng):
    net = MLP([5, 16, 16, 3], seed=1)
    X, T = rng.normal(size=(32, 5)), rng.normal(size=(32, 3))
    G = net.per_sample_gradients(X, T, loss="logcosh", reduction="mean")
    g = net.gradient(X, T, loss="logcosh", reduction="mean")
    assert np.abs(G.mean(axis=0) - g).max() < 1e-12
    assert np.abs(g).max() > 1e-3


def test_hvp_of_a_loss_without_second_derivative_uses_differences_of_grad(logcosh, rng):
    assert not logcosh.exact_hessian
    assert all(losses.get_loss(n).exact_hessian for n in losses.BUILTIN_LOSSES)
    net = MLP(SIZES, seed=3)
    X, T = rng.normal(size=(6, 5)), rng.normal(size=(6, 3))
    v = rng.normal(size=net.n_params)
    Hv = net.hvp(X, T, v, loss="logcosh", reduction="mean")
    h = 1e-5
    p = net.params.copy()
    net.params[...] = p + h * v
    gp = net.gradient(X, T, "logcosh")
    net.params[...] = p - h * v
    gm = net.gradient(X, T, "logcosh")
    net.params[...] = p
    assert rel_err(Hv, (gp - gm) / (2 * h)) < 1e-6
    # and the fallback in Y alone matches the closed form sech^2(r)
    Y, U, dY = rng.normal(size=(4, 3)), np.full((4, 3), 0.25), rng.normal(size=(4, 3))
    exact = U * dY / np.cosh(Y - T[:4]) ** 2
    np.testing.assert_allclose(logcosh.hess_times(Y, T[:4], U, dY), exact, rtol=1e-7, atol=1e-10)


def test_config_and_command_line_take_the_new_loss(logcosh):
    assert "logcosh" in losses.loss_names()
    assert "logcosh" in losses.loss_names("regression")
    assert "logcosh" not in losses.loss_names("classification")
    assert losses.loss_label("logcosh") == "log-cosh"
    assert Config(loss="logcosh").validate().loss == "logcosh"
    with pytest.raises(ConfigError, match="logcosh"):  # the refusal lists it as a choice
        Config(loss="log_cosh").validate()

    import main

    args = main.build_parser().parse_args(["--loss", "logcosh"])
    assert main.config_from_args(args).loss == "logcosh"


def test_without_registration_the_name_is_refused_clearly():
    assert "logcosh" not in losses.loss_names()
    with pytest.raises(ConfigError, match="loss"):
        Config(loss="logcosh").validate()
    net = MLP(SIZES, seed=0)
    with pytest.raises(ValueError, match=r"unknown loss 'logcosh'; choose one of mse, mae"):
        net.gradient(np.zeros((2, 5)), np.zeros((2, 3)), loss="logcosh")


def test_registry_refuses_what_cannot_work(logcosh):
    with pytest.raises(ValueError, match="already registered"):
        register(LogCosh())
    assert register(LogCosh(), replace=True).name == "logcosh"

    class Clash(LogCosh):
        name = "mse"

    with pytest.raises(ValueError, match="built-in"):
        register(Clash(), replace=True)
    with pytest.raises(ValueError, match="built-in"):
        losses.unregister("mse")

    class NoGrad(Loss):
        name, label = "nograd", "no grad"

        def matrix(self, Y, T):
            return Y - T

    with pytest.raises(ValueError, match=r"must define grad\(\)"):
        register(NoGrad())

    class BadTask(LogCosh):
        name, task = "badtask", "ranking"

    with pytest.raises(ValueError, match="task must be one of regression, classification"):
        register(BadTask())
    with pytest.raises(TypeError, match="Loss instance"):
        register("logcosh")
    assert losses.loss_names()[:4] == losses.BUILTIN_LOSSES


def test_registered_context_manager_unregisters():
    class Quartic(LogCosh):
        name, label = "quartic", "quartic"

    with losses.registered(Quartic()) as q:
        assert losses.get_loss("quartic") is q
    assert "quartic" not in losses.loss_names()


def _engine_side(packed, X, T):
    """Runs in a spawned process, as the engine does: restore, then use the loss by name."""
    from core import losses as child_losses

    child_losses.restore_losses(packed)
    net = MLP(SIZES, seed=0)
    return child_losses.loss_label("logcosh"), net.loss(X, T, loss="logcosh", reduction="sum")


def test_a_spawned_engine_process_gets_the_registered_loss(logcosh, rng):
    X, T = rng.normal(size=(3, 5)), rng.normal(size=(3, 3))
    packed = losses.pickled_user_losses()
    assert [name for name, _ in packed] == ["logcosh"]
    with mp.get_context("spawn").Pool(1) as pool:
        label, value = pool.apply(_engine_side, (packed, X, T))
    assert label == "log-cosh"
    assert value == MLP(SIZES, seed=0).loss(X, T, loss="logcosh", reduction="sum")


def test_a_loss_the_engine_cannot_load_says_why(monkeypatch):
    class Local(LogCosh):  # a class local to a function cannot be pickled by reference
        name, label = "local_loss", "local"

    monkeypatch.setattr(losses._REGISTRY, "unavailable", {})
    with losses.registered(Local()):
        packed = losses.pickled_user_losses()
    assert packed[0][0] == "local_loss" and isinstance(packed[0][1], str)
    losses.restore_losses(packed)  # in the engine: remembered, not raised
    with pytest.raises(ValueError, match="registered in the window's process but the engine"):
        losses.get_loss("local_loss")
