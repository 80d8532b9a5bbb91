"""Cooperative cancellation for the experiments: small pieces of work, a check between them.

An experiment polls ``cancel()`` between pieces that each take well under 0.1 s at the widest
allowed network, so Cancel (or closing the window) stops it within a fraction of a second.
``check`` raises ``CancelledError``; each ``run_*`` function catches it and returns None (or its
last complete partial result, where it has one).

The largest single piece is one gradient of a large batch: ``loss_and_gradient_in_pieces``
splits it over samples (the reduced scalar is a weighted sum over samples, so it and its
gradient are the sums of the pieces'; ``max`` is the one sample holding the largest entry),
checking between pieces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..losses import reduce, sample_weights_for
from ..mlp import MLP

__all__ = [
    "CancelledError",
    "check",
    "grid_chunk_bytes",
    "loss_and_gradient_in_pieces",
    "mean_loss_in_pieces",
    "samples_per_piece",
]

#: samples x parameters of one piece of a gradient: 64 samples at 2048,2048 hidden units
#: (P = 4.2 million), about 0.04 s on one core of the test machine
PIECE_WORK = 64 * 4_300_000


#: work of one chunk of a loss grid, grid points x parameters x (samples + 8): the per-point
#: weights are built (P values each) and then run over the samples; 1 point at 2048,2048
#: hidden units and 32 samples, about 0.05 s
GRID_WORK = 2 * 10**8


class CancelledError(Exception):
    """Raised by ``check`` when the experiment was asked to stop."""


def check(cancel: Callable[[], bool] | None) -> None:
    """Raise ``CancelledError`` if ``cancel()`` is true (no-op for None)."""
    if cancel is not None and cancel():
        raise CancelledError


def samples_per_piece(n_params: int, work: int = PIECE_WORK) -> int:
    """How many samples one piece of a gradient over ``n_params`` parameters may hold."""
    return max(1, int(work // max(1, n_params)))


def loss_and_gradient_in_pieces(
    net: MLP,
    X: np.ndarray,
    T: np.ndarray,
    loss: str = "mse",
    reduction: str = "mean",
    cancel: Callable[[], bool] | None = None,
    huber_delta: float = 1.0,
    output_weights: np.ndarray | None = None,
    sample_weights: np.ndarray | None = None,
    work: int = PIECE_WORK,
) -> tuple[float, np.ndarray]:
    """The reduced scalar of batch (X (B, n_in), T (B, n_out)) and its gradient (P,), by
    factored passes over pieces of at most ``samples_per_piece(P, work)`` samples with
    ``check(cancel)`` between (one pass when the batch fits one piece). Equal to
    ``net.loss`` and ``net.gradient`` to round-off. Raises ``CancelledError``."""
    check(cancel)
    kw = {"huber_delta": huber_delta}
    if output_weights is not None:
        kw["output_weights"] = output_weights
    if sample_weights is not None:
        kw["sample_weights"] = sample_weights
    B = len(X)
    per = samples_per_piece(net.n_params, work)
    if B <= per:
        bp = net.backprop(X, T, loss=loss, reduction=reduction, **kw)
        return bp.reduced.value, bp.gradient()
    pieces = range(0, B, per)
    if reduction == "max":
        return _max_in_pieces(net, X, T, loss, cancel, per, kw)
    w = sample_weights_for(np.zeros(B), reduction, sample_weights)  # (B,) the scalar's w_i
    ow = output_weights if reduction == "weighted" else None
    value, g = 0.0, np.zeros(net.n_params)
    for s in pieces:
        check(cancel)
        ws = np.asarray(w[s : s + per], dtype=float)
        total = float(ws.sum())
        if total == 0.0:
            continue
        # "weighted" with these sample weights is sum_i (w_i / total) L_i over the piece
        bp = net.backprop(
            X[s : s + per],
            T[s : s + per],
            loss=loss,
            reduction="weighted",
            huber_delta=huber_delta,
            output_weights=ow,
            sample_weights=ws,
        )
        value += total * bp.reduced.value
        g += total * bp.gradient()
    return value, g


def _max_in_pieces(net: MLP, X, T, loss: str, cancel, per: int, kw: dict):
    """The max reduction in pieces: the scalar is the largest entry of M; find its sample,
    then backpropagate it alone. (value, gradient (P,))."""
    best, where = -np.inf, 0
    for s in range(0, len(X), per):
        check(cancel)
        M = net.loss_matrix(X[s : s + per], T[s : s + per], loss, kw["huber_delta"])
        i = int(np.argmax(M.max(axis=1)))
        if M[i].max() > best:
            best, where = float(M[i].max()), s + i
    check(cancel)
    one = slice(where, where + 1)
    bp = net.backprop(X[one], T[one], loss=loss, reduction="max", **kw)
    return bp.reduced.value, bp.gradient()


def grid_chunk_bytes(layer_sizes, n_samples: int, itemsize: int = 4, work: int = GRID_WORK) -> int:
    """``chunk_bytes`` for ``core.landscape.loss_grid`` so that one chunk (the stretch between
    two cancel checks) stays near ``work``: at most its default 4 MB, at least one point."""
    sizes = list(layer_sizes)
    P = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    points = max(1, int(work // (P * (n_samples + 8))))
    widest = max(sizes[1:]) + 1
    return int(min(4 * 1024 * 1024, points * n_samples * widest * itemsize))


def mean_loss_in_pieces(
    net: MLP,
    X: np.ndarray,
    T: np.ndarray,
    loss: str = "mse",
    huber_delta: float = 1.0,
    cancel: Callable[[], bool] | None = None,
    work: int = PIECE_WORK,
) -> float:
    """The "mean" reduction of the loss over (X (S, n_in), T (S, n_out)), forward passes in
    pieces of ``samples_per_piece`` samples with ``check(cancel)`` between (nan for S = 0).
    Equal to ``reduce(net.loss_matrix(X, T), "mean", loss).value`` to round-off."""
    S = len(X)
    if S == 0:
        return float("nan")
    per = samples_per_piece(net.n_params, work)
    total = 0.0
    for s in range(0, S, per):
        check(cancel)
        M = net.loss_matrix(X[s : s + per], T[s : s + per], loss, huber_delta)
        total += len(M) * reduce(M, "mean", loss).value
    return total / S
