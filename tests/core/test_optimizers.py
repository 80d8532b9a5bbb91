"""Optimisers against hand-computed updates on tiny vectors (plain Python floats, textbook
formulas, element by element)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.optimizers import OPTIMIZERS, SGD, Adam, Momentum, make_optimizer

P0 = [1.0, -2.0, 0.5]
GRADS = [[0.5, -1.0, 0.0], [0.25, 2.0, -3.0], [-1.0, 0.5, 4.0]]


def run(opt, n_steps: int) -> list[np.ndarray]:
    """Apply the first n gradients in place; return the parameters after each step."""
    p = np.array(P0)
    ident = p
    out = []
    for g in GRADS[:n_steps]:
        opt.step(p, np.array(g))
        assert p is ident  # updated in place: the net's views stay valid
        out.append(p.copy())
    return out


def test_sgd():
    lr = 0.1
    got = run(SGD(3, lr), 3)
    p = list(P0)
    for k, g in enumerate(GRADS):
        p = [pi - lr * gi for pi, gi in zip(p, g)]
        np.testing.assert_allclose(got[k], p, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(got[0], [0.95, -1.9, 0.5], rtol=1e-15)


def test_heavy_ball_momentum():
    lr, mu = 0.1, 0.9
    got = run(Momentum(3, lr, mu), 3)
    p, v = list(P0), [0.0] * 3
    for k, g in enumerate(GRADS):
        v = [mu * vi + gi for vi, gi in zip(v, g)]
        p = [pi - lr * vi for pi, vi in zip(p, v)]
        np.testing.assert_allclose(got[k], p, rtol=1e-14, atol=1e-15)
    # step 2 by hand: v = 0.9 * 0.5 + 0.25 = 0.7; p = 0.95 - 0.07
    assert got[1][0] == pytest.approx(0.88, rel=1e-14)


def test_nesterov_momentum_pytorch_form():
    lr, mu = 0.1, 0.9
    opt = Momentum(3, lr, mu, nesterov=True)
    assert opt.name == "nesterov"
    got = run(opt, 3)
    p, v = list(P0), [0.0] * 3
    for k, g in enumerate(GRADS):
        v = [mu * vi + gi for vi, gi in zip(v, g)]
        p = [pi - lr * (gi + mu * vi) for pi, gi, vi in zip(p, g, v)]
        np.testing.assert_allclose(got[k], p, rtol=1e-14, atol=1e-15)
    # step 1 by hand: v = g, p = 1 - 0.1 * (0.5 + 0.45)
    assert got[0][0] == pytest.approx(0.905, rel=1e-14)
    # and it differs from heavy ball
    assert not np.allclose(got[1], run(Momentum(3, lr, mu), 2)[1])


@pytest.mark.parametrize("eps", [1e-8, 0.1])
def test_adam_with_bias_correction(eps):
    lr, b1, b2 = 0.01, 0.9, 0.999
    got = run(Adam(3, lr, b1, b2, eps), 3)
    p, m, v = list(P0), [0.0] * 3, [0.0] * 3
    for k, g in enumerate(GRADS):
        t = k + 1
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        m_hat = [mi / (1 - b1**t) for mi in m]
        v_hat = [vi / (1 - b2**t) for vi in v]
        p = [pi - lr * mh / (math.sqrt(vh) + eps) for pi, mh, vh in zip(p, m_hat, v_hat)]
        np.testing.assert_allclose(got[k], p, rtol=1e-13, atol=1e-15)


def test_adam_first_step_is_lr_times_sign():
    got = run(Adam(3, 0.01), 1)[0]
    expected = np.array(P0) - 0.01 * np.sign(GRADS[0])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_reset_forgets_state():
    for opt in (Momentum(3, 0.1), Momentum(3, 0.1, nesterov=True), Adam(3, 0.01)):
        first = run(opt, 1)[0]
        run(opt, 2)
        opt.reset()
        np.testing.assert_array_equal(run(opt, 1)[0], first)


def test_changing_lr_keeps_momentum():
    opt = Momentum(1, 0.1, 0.5)
    p = np.array([0.0])
    opt.step(p, np.array([1.0]))  # v = 1, p = -0.1
    opt.lr = 1.0
    opt.step(p, np.array([0.0]))  # v = 0.5, p = -0.1 - 0.5
    assert p[0] == pytest.approx(-0.6, rel=1e-15)


def test_make_optimizer():
    assert isinstance(make_optimizer("sgd", 3, 0.1), SGD)
    m = make_optimizer("momentum", 3, 0.1, momentum=0.7)
    assert isinstance(m, Momentum) and not m.nesterov and m.mu == 0.7
    n = make_optimizer("nesterov", 3, 0.1, momentum=0.7)
    assert isinstance(n, Momentum) and n.nesterov and n.mu == 0.7
    a = make_optimizer("adam", 3, 0.1)
    assert isinstance(a, Adam) and a.lr == 0.1
    for name in OPTIMIZERS:
        assert make_optimizer(name, 3, 0.1).name == name
    with pytest.raises(ValueError, match="rmsprop"):
        make_optimizer("rmsprop", 3, 0.1)
