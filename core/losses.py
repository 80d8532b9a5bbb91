"""Elementwise losses (the loss matrix M) and the reductions that turn M into one scalar.

Shapes, with B samples (rows) and O outputs:

* ``Y`` : (B, O) network outputs, ``T`` : (B, O) targets (one-hot for cross-entropy; a class
  index vector (B,) is accepted and converted).
* ``M`` : (B, O) elementwise losses. For ``mse`` ``M = (Y - T)**2``.

A reduction is split in two honest halves so that one law holds for every choice:

1. an *output* reduction turns sample i's row of M into its own loss
   ``L_i = sum_o U[i, o] * M[i, o]`` (mean over outputs for mse/mae/huber, sum for
   cross-entropy so that ``mean`` is the usual cross-entropy; per-output weights for
   ``weighted``; the largest entry for ``max``);
2. a *sample* reduction combines them, ``scalar = sum_i w_i L_i``.

Because the scalar is linear in the ``L_i`` (with ``w`` held at its value for ``max``, which is
the subgradient), its gradient is ``sum_i w_i g_i`` where ``g_i`` is the gradient of ``L_i``:
the gradient of the mean *is* the mean of the per-sample gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LOSSES",
    "REDUCTIONS",
    "Reduced",
    "as_one_hot",
    "d2L_dY2_times",
    "dL_dY",
    "loss_matrix",
    "reduce",
]

LOSSES: tuple[str, ...] = ("mse", "mae", "huber", "cross_entropy")
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "max", "weighted")

#: Short human descriptions, used by the window and the CLI help.
LOSS_LABELS = {
    "mse": "squared error (Y - T)^2",
    "mae": "absolute error |Y - T|",
    "huber": "Huber (quadratic near 0, linear far out)",
    "cross_entropy": "softmax cross-entropy",
}
REDUCTION_LABELS = {
    "mean": "mean over samples (and outputs)",
    "sum": "sum over samples (= B x mean)",
    "max": "largest entry of M",
    "weighted": "per-output and per-sample weights",
}


def check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")


def as_one_hot(T: np.ndarray, n_out: int) -> np.ndarray:
    """Return targets as a (B, n_out) float64 array; a (B,) class-index vector becomes one-hot."""
    T = np.asarray(T)
    if T.ndim == 1:
        idx = T.astype(np.int64)
        if np.any(idx != T) or np.any(idx < 0) or np.any(idx >= n_out):
            raise ValueError(f"class indices must be integers in 0..{n_out - 1}")
        out = np.zeros((T.shape[0], n_out))
        out[np.arange(T.shape[0]), idx] = 1.0
        return out
    return np.asarray(T, dtype=np.float64)


def _log_softmax(Y: np.ndarray) -> np.ndarray:
    Z = Y - Y.max(axis=-1, keepdims=True)
    return Z - np.log(np.exp(Z).sum(axis=-1, keepdims=True))


def loss_matrix(Y: np.ndarray, T: np.ndarray, loss: str = "mse", huber_delta: float = 1.0):
    """Elementwise losses M (B, O) of outputs Y (B, O) against targets T (B, O).

    Works on any leading shape (..., B, O), which the landscape uses to evaluate many weight
    settings at once. For cross-entropy ``M[i, o] = -T[i, o] * log softmax(Y_i)[o]``.
    """
    check_loss(loss)
    if loss == "cross_entropy":
        return -T * _log_softmax(Y)
    R = Y - T
    if loss == "mse":
        return R * R
    if loss == "mae":
        return np.abs(R)
    A = np.abs(R)
    return np.where(A <= huber_delta, 0.5 * R * R, huber_delta * (A - 0.5 * huber_delta))


def output_coefficients(
    M: np.ndarray, reduction: str, loss: str, output_weights: np.ndarray | None = None
) -> np.ndarray:
    """U (B, O): how sample i's own loss weighs its row of M, ``L_i = sum_o U[i,o] M[i,o]``."""
    check_reduction(reduction)
    B, O = M.shape[-2:]
    if reduction == "max":
        U = np.zeros_like(M)
        idx = np.argmax(M, axis=-1)
        np.put_along_axis(U, idx[..., None], 1.0, axis=-1)
        return U
    scale = float(O) if loss == "cross_entropy" else 1.0
    if reduction == "weighted" and output_weights is not None:
        v = np.asarray(output_weights, dtype=np.float64)
        if v.shape != (O,):
            raise ValueError(f"output_weights must have {O} entries, got {v.shape}")
        u = scale * v / v.sum()
    else:
        u = np.full(O, scale / O)
    return np.broadcast_to(u, M.shape)


def sample_weights_for(
    L: np.ndarray, reduction: str, sample_weights: np.ndarray | None = None
) -> np.ndarray:
    """w (..., B): the weights with which per-sample losses (and gradients) combine."""
    check_reduction(reduction)
    B = L.shape[-1]
    if reduction == "mean":
        return np.full(L.shape, 1.0 / B)
    if reduction == "sum":
        return np.ones(L.shape)
    if reduction == "max":
        w = np.zeros(L.shape)
        np.put_along_axis(w, np.argmax(L, axis=-1)[..., None], 1.0, axis=-1)
        return w
    if sample_weights is None:
        return np.full(L.shape, 1.0 / B)
    s = np.asarray(sample_weights, dtype=np.float64)
    if s.shape != (B,):
        raise ValueError(f"sample_weights must have {B} entries, got {s.shape}")
    return np.broadcast_to(s / s.sum(), L.shape)


@dataclass(frozen=True)
class Reduced:
    """The scalar made from M, and how it was made.

    value : float, the one number that is backpropagated
    per_sample : (B,) L_i, each sample's own loss
    weights : (B,) w_i with ``value == weights @ per_sample``
    coefficients : (B, O) U with ``per_sample == (U * M).sum(1)`` (dL_i / dM)
    """

    value: float
    per_sample: np.ndarray
    weights: np.ndarray
    coefficients: np.ndarray


def reduce(
    M: np.ndarray,
    reduction: str = "mean",
    loss: str = "mse",
    output_weights: np.ndarray | None = None,
    sample_weights: np.ndarray | None = None,
) -> Reduced:
    """Turn the loss matrix M (B, O) into the scalar that is minimised."""
    U = output_coefficients(M, reduction, loss, output_weights)
    L = (U * M).sum(axis=-1)
    w = sample_weights_for(L, reduction, sample_weights)
    return Reduced(float(w @ L), L, np.asarray(w), np.asarray(U))


def reduce_many(
    M: np.ndarray,
    reduction: str,
    loss: str,
    output_weights: np.ndarray | None = None,
    sample_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Scalars for a stack of loss matrices M (..., B, O) -> (...,).

    For mean, sum and weighted the scalar is linear in M with fixed coefficients
    ``w_i u_o``: one matrix-vector product over the flattened (B, O), in M's dtype, with no
    (..., B, O) temporaries. Max picks per-sample maxima and is done the general way.
    """
    if reduction == "max":
        U = output_coefficients(M, reduction, loss, output_weights)
        return (U * M).sum(axis=-1).max(axis=-1)
    B, O = M.shape[-2:]
    u = output_coefficients(M[(0,) * (M.ndim - 2)], reduction, loss, output_weights)[0]
    w = sample_weights_for(np.zeros(B), reduction, sample_weights)
    c = np.outer(w, u).ravel().astype(M.dtype, copy=False)
    return np.ascontiguousarray(M).reshape(*M.shape[:-2], B * O) @ c


def dL_dY(
    Y: np.ndarray, T: np.ndarray, U: np.ndarray, loss: str = "mse", huber_delta: float = 1.0
) -> np.ndarray:
    """Per-sample output deltas (B, O): row i is dL_i / dY_i, with L_i = sum_o U[i,o] M[i,o].

    Not weighted by the sample weights w: scale row i by w_i to get the rows of
    d(scalar)/dY.
    """
    check_loss(loss)
    if loss == "cross_entropy":
        P = np.exp(_log_softmax(Y))
        UT = U * T
        return P * UT.sum(axis=-1, keepdims=True) - UT
    R = Y - T
    if loss == "mse":
        return U * (2.0 * R)
    if loss == "mae":
        return U * np.sign(R)
    return U * np.clip(R, -huber_delta, huber_delta)


def d2L_dY2_times(
    Y: np.ndarray,
    T: np.ndarray,
    U: np.ndarray,
    dY: np.ndarray,
    loss: str = "mse",
    huber_delta: float = 1.0,
) -> np.ndarray:
    """The change of ``dL_dY`` along dY (B, O): row i is ``H_i @ dY_i``, H_i = d2 L_i / dY_i^2.

    With ``L_i = sum_o U[i,o] M[i,o]`` and U held at its value (as for the gradient; for ``max``
    this is the Hessian of the selected entry). Piecewise where the loss is: |r| has zero
    curvature away from 0 (mae), Huber has curvature 1 inside ``|r| <= delta`` and 0 outside.
    For cross-entropy ``H_i = s_i (diag(p_i) - p_i p_i^T)`` with ``s_i = sum_o U[i,o] T[i,o]``.
    Not weighted by the sample weights w, like ``dL_dY``.
    """
    check_loss(loss)
    if loss == "cross_entropy":
        P = np.exp(_log_softmax(Y))
        PdY = P * dY
        s = (U * T).sum(axis=-1, keepdims=True)
        return s * (PdY - P * PdY.sum(axis=-1, keepdims=True))
    if loss == "mse":
        return U * (2.0 * dY)
    if loss == "mae":
        return np.zeros(np.broadcast_shapes(np.shape(U), np.shape(dY)))
    inside = np.abs(Y - T) <= huber_delta
    return U * np.where(inside, dY, 0.0)
