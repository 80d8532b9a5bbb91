"""Hidden-layer activations: value and derivative.

Each activation is written as ``forward(Z, out)`` and ``derivative(Z, A, out)``; the
derivative may use the pre-activation ``Z`` or the activation ``A`` (whichever is cheaper),
so the backward pass never recomputes a transcendental function.
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
    """

    name: str
    forward: Callable[[np.ndarray, np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _tanh(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.tanh(Z, out=out)


def _dtanh(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(A, A, out=out)
    np.subtract(1.0, out, out=out)
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


def _identity(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.copyto(out, Z)
    return out


def _didentity(Z: np.ndarray, A: np.ndarray, out: np.ndarray) -> np.ndarray:
    out.fill(1.0)
    return out


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", _tanh, _dtanh),
    "relu": Activation("relu", _relu, _drelu),
    "sigmoid": Activation("sigmoid", _sigmoid, _dsigmoid),
    "identity": Activation("identity", _identity, _didentity),
}


def get_activation(name: str) -> Activation:
    """Return the activation called ``name`` (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None
