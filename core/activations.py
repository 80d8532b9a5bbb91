"""Hidden-layer activations: value, derivative and second derivative.

Each activation is written as ``forward(Z, out)``, ``derivative(Z, A, out)`` and
``second_derivative(Z, A, out)``; the derivatives may use the pre-activation ``Z`` or the
activation ``A`` (whichever is cheaper), so the backward pass (and the Hessian-vector product,
``MLP.hessian_operator``) never recomputes a transcendental function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ACTIVATIONS", "Activation", "get_activation"]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation.

    forward : (Z, out) -> out, with ``out`` the same shape as ``Z``
    derivative : (Z, A, out) -> out, dA/dZ elementwise
    second_derivative : (Z, A, out) -> out, d2A/dZ2 elementwise (0 for relu away from its kink,
        where the Hessian of a relu network is taken piecewise, as its gradient is)
    """

    name: str
    forward: Callable[[np.ndarray, np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    second_derivative: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _tanh(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.tanh(Z, out=out)


def _dtanh(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(A, A, out=out)
    np.subtract(1.0, out, out=out)
    return out


def _d2tanh(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    # d/dZ (1 - A^2) = -2 A (1 - A^2)
    np.multiply(A, A, out=out)
    np.subtract(1.0, out, out=out)
    out *= A
    out *= -2.0
    return out


def _zero(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    out.fill(0.0)
    return out


def _relu(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.maximum(Z, 0.0, out=out)


def _drelu(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    # Subgradient 0 at Z == 0, as every deep-learning library uses.
    np.greater(Z, 0.0, out=out)  # writes 0.0 / 1.0 into a float array
    return out


def _sigmoid(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-Z)), written to avoid overflow warnings for large |Z|.
    np.negative(Z, out=out)
    np.clip(out, -500.0, 500.0, out=out)
    np.exp(out, out=out)
    np.add(out, 1.0, out=out)
    np.reciprocal(out, out=out)
    return out


def _dsigmoid(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.subtract(1.0, A, out=out)
    np.multiply(out, A, out=out)
    return out


def _d2sigmoid(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    # d/dZ A (1 - A) = A (1 - A) (1 - 2 A)
    np.subtract(1.0, A, out=out)
    out *= A
    out *= 1.0 - 2.0 * A
    return out


def _identity(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.copyto(out, Z)
    return out


def _didentity(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    out.fill(1.0)
    return out


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", _tanh, _dtanh, _d2tanh),
    "relu": Activation("relu", _relu, _drelu, _zero),
    "sigmoid": Activation("sigmoid", _sigmoid, _dsigmoid, _d2sigmoid),
    "identity": Activation("identity", _identity, _didentity, _zero),
}


def get_activation(name: str) -> Activation:
    """Return the activation called ``name`` (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None
