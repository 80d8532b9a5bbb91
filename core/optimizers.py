"""Optimisers that update one flat parameter vector in place.

Each optimiser keeps its state (velocity, moments) as flat vectors with the same layout as
``MLP.params``. Changing the learning rate keeps that state; changing the optimiser or the
network shape starts a fresh one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OPTIMIZERS", "SGD", "Momentum", "Adam", "make_optimizer"]

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adam")


class SGD:
    """Plain gradient descent: ``theta -= lr * g``."""

    name = "sgd"

    def __init__(self, n_params: int, lr: float) -> None:
        self.lr = float(lr)
        self.n_params = n_params
        self._scratch = np.empty(n_params)

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        np.multiply(grad, self.lr, out=self._scratch)
        params -= self._scratch

    def reset(self) -> None:
        """Forget any state (velocity, moments)."""


class Momentum(SGD):
    """Heavy-ball momentum ``v = mu v + g; theta -= lr v``; with ``nesterov`` the update is
    ``theta -= lr (g + mu v)`` (the form used by PyTorch)."""

    name = "momentum"

    def __init__(self, n_params: int, lr: float, mu: float = 0.9, nesterov: bool = False):
        super().__init__(n_params, lr)
        self.mu = float(mu)
        self.nesterov = bool(nesterov)
        self.velocity = np.zeros(n_params)
        if nesterov:
            self.name = "nesterov"

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        v = self.velocity
        v *= self.mu
        v += grad
        if self.nesterov:
            np.multiply(v, self.mu, out=self._scratch)
            self._scratch += grad
        else:
            np.copyto(self._scratch, v)
        self._scratch *= self.lr
        params -= self._scratch

    def reset(self) -> None:
        self.velocity.fill(0.0)


class Adam(SGD):
    """Adam (Kingma & Ba 2015) with bias correction."""

    name = "adam"

    def __init__(
        self, n_params: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ):
        super().__init__(n_params, lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m = np.zeros(n_params)
        self.v = np.zeros(n_params)
        self.t = 0

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        self.m *= b1
        self.m += (1.0 - b1) * grad
        self.v *= b2
        np.multiply(grad, grad, out=self._scratch)
        self._scratch *= 1.0 - b2
        self.v += self._scratch
        lr_t = self.lr * np.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        # eps added to sqrt(v_hat), written in terms of the uncorrected v.
        np.sqrt(self.v, out=self._scratch)
        self._scratch += self.eps * np.sqrt(1.0 - b2**self.t)
        np.divide(self.m, self._scratch, out=self._scratch)
        self._scratch *= lr_t
        params -= self._scratch

    def reset(self) -> None:
        self.m.fill(0.0)
        self.v.fill(0.0)
        self.t = 0


def make_optimizer(name: str, n_params: int, lr: float, momentum: float = 0.9) -> SGD:
    """Build the optimiser called ``name`` (one of ``OPTIMIZERS``) for P = ``n_params``."""
    if name == "sgd":
        return SGD(n_params, lr)
    if name == "momentum":
        return Momentum(n_params, lr, momentum)
    if name == "nesterov":
        return Momentum(n_params, lr, momentum, nesterov=True)
    if name == "adam":
        return Adam(n_params, lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
