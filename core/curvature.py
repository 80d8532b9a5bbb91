"""The sharpness of the loss (its Hessian's largest eigenvalue) and optimisers' stability limits.

* ``top_eigenpair(op, ...)``: the largest *algebraic* eigenvalue of a symmetric operator and its
  unit eigenvector by Lanczos with full reorthogonalisation, restarted from the best Ritz vector;
  every product is counted. Lanczos finds both ends of the spectrum at once, so a most negative
  eigenvalue larger in size than the most positive one slows nothing (power iteration would
  need a shift there).
* ``top_eigenvalue(net, X, T, ...) -> (lam, v)``: the same for the Hessian of the reduced loss on
  a batch (``MLP.hessian_operator``: exact Hessian-vector products). Warm-started from the
  previous ``v`` while training, it needs a few products per update instead of tens.
* ``stability_limit(optimizer, lr, momentum)``: the curvature above which the optimiser diverges
  on a quadratic along that direction -- 2/lr for gradient descent, 2(1 + mu)/lr for heavy-ball
  momentum, 2(1 + mu)/(lr (1 + 2 mu)) for Nesterov, and none for Adam (``stability_rule`` says
  why in one sentence).

Derivation of the limits for ``core.optimizers`` exactly as written, on f(x) = h x^2 / 2 with
a = lr h and the state (x, u = lr v):

* SGD: ``x' = (1 - a) x``; stable iff |1 - a| < 1, i.e. 0 < a < 2.
* Momentum (``v' = mu v + g; x' = x - lr v'``): ``[x'; u'] = [[1 - a, -mu], [a, mu]] [x; u]``,
  characteristic polynomial ``z^2 - (1 + mu - a) z + mu``. Jury's conditions (|mu| < 1,
  p(1) = a > 0, p(-1) = 2 + 2 mu - a > 0) give 0 < a < 2 (1 + mu).
* Nesterov (``v' = mu v + g; x' = x - lr (g + mu v')``): ``x' = (1 - a (1 + mu)) x - mu^2 u``,
  ``u' = a x + mu u``; characteristic polynomial ``z^2 - (1 + mu)(1 - a) z + mu (1 - a)``, the
  one of NAG as usually written. p(1) = a > 0, p(-1) = 1 + (1 + 2 mu)(1 - a) > 0 and
  |mu (1 - a)| < 1 give 0 < a < 2 (1 + mu) / (1 + 2 mu) (the last condition is weaker).

``tests/core/test_curvature.py`` runs the optimisers on quadratics just under and just over
each limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .optimizers import OPTIMIZERS

__all__ = [
    "TopEigen",
    "overshoot",
    "stability_limit",
    "stability_rule",
    "top_eigenpair",
    "top_eigenvalue",
]

#: Weight of a random unit vector mixed into a warm start: a start that is exactly an
#: eigenvector (of a lower eigenvalue) spans an invariant subspace in which Lanczos would
#: stop; this keeps every direction in reach at the cost of about one product.
WARM_START_MIX = 1e-3
#: Below this many Lanczos vectors no Ritz value is accepted (guards the same corner).
MIN_KRYLOV = 3


@dataclass(frozen=True)
class TopEigen:
    """The largest algebraic eigenvalue of a symmetric operator, as found.

    value : float, lambda_max (the Ritz value)
    vector : (P,) float64 unit eigenvector (sign: along the warm start, else first entry >= 0)
    n_hvp : int, operator products spent
    residual : float, ||H v - value v|| (the Lanczos estimate; an eigenvalue lies within it)
    converged : bool, whether the error bound reached ``tol`` (see ``top_eigenpair``)
    """

    value: float
    vector: np.ndarray
    n_hvp: int
    residual: float
    converged: bool


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


def _start_vector(
    n: int, v0: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """The first Lanczos vector (n,) and the unit warm start it leans on (None without one)."""
    guide = None
    if v0 is not None:
        v0 = np.asarray(v0, dtype=np.float64)
        if v0.shape != (n,):
            raise ValueError(f"v0 must have shape ({n},); got {v0.shape}")
        if np.all(np.isfinite(v0)) and np.linalg.norm(v0) > 0:
            guide = _unit(v0)
    q = rng.standard_normal(n)
    if guide is not None:
        q = guide + WARM_START_MIX * _unit(q)
    return q, guide


def _orthogonalise(w: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, float]:
    """w (n,) minus its part in the span of ``basis`` (k, n) rows, and its remaining norm.

    Full reorthogonalisation (which also removes alpha Q[j] and beta Q[j-1]); a second pass only
    when the first cancelled much ("twice is enough", Kahan-Parlett).
    """
    before = np.linalg.norm(w)
    w -= (basis @ w) @ basis
    b = float(np.linalg.norm(w))
    if b < 0.7 * before:
        w -= (basis @ w) @ basis
        b = float(np.linalg.norm(w))
    return w, b


def _fresh_direction(basis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random unit vector (n,) orthogonal to the rows of ``basis`` (k, n)."""
    r = rng.standard_normal(basis.shape[1])
    r -= (basis @ r) @ basis
    r -= (basis @ r) @ basis
    return _unit(r)


def _oriented(y: np.ndarray, guide: np.ndarray | None) -> np.ndarray:
    """y with the sign that points along the warm start (else with its first entry >= 0)."""
    along = y @ guide if guide is not None else y[np.flatnonzero(y)[0]]
    return -y if along < 0 else y


@dataclass
class _Lanczos:
    """The state of one ``top_eigenpair`` call across restarts."""

    op: Callable[[np.ndarray], np.ndarray]
    n: int
    tol: float
    max_hvp: int
    rng: np.random.Generator
    guide: np.ndarray | None
    Q: np.ndarray  # (m_max + 1, n) the basis
    Tm: np.ndarray  # (m_max, m_max) the Lanczos tridiagonal
    n_hvp: int = 0
    scale: float = 0.0  # an estimate of ||H||: the largest |alpha|, beta seen

    def _ritz(self, dim: int, b: float) -> tuple[float, np.ndarray, float] | None:
        """The top Ritz pair of the first ``dim`` vectors and its residual, or None when it is
        too early to accept anything."""
        m_max = self.Tm.shape[0]
        if dim < min(MIN_KRYLOV, self.n) and self.n_hvp < self.max_hvp and dim < m_max:
            return None
        theta, S = np.linalg.eigh(self.Tm[:dim, :dim])
        return float(theta[-1]), S[:, -1], b * abs(float(S[-1, -1]))

    def cycle(self, q: np.ndarray) -> TopEigen | np.ndarray:
        """One Lanczos run from q (n,): the answer, or the vector to restart from."""
        Q, Tm = self.Q, self.Tm
        m_max = Tm.shape[0]
        Q[0] = _unit(q)
        Tm.fill(0.0)
        for j in range(m_max):
            w = np.array(self.op(Q[j]), dtype=np.float64)
            self.n_hvp += 1
            a = float(Q[j] @ w)
            Tm[j, j] = a
            basis = Q[: j + 1]
            w, b = _orthogonalise(w, basis)
            self.scale = max(self.scale, abs(a), b)
            dim = j + 1
            ritz = self._ritz(dim, b)
            if ritz is not None:
                # Some eigenvalue lies within res of lam (for a symmetric H, any unit y has one
                # within ||H y - lam y||). The sharper res^2 / gap needs the true gap below the
                # top eigenvalue, which the gap to the next Ritz value overstates while a
                # cluster is unresolved: not used.
                lam, s, res = ritz
                converged = res <= self.tol * max(abs(lam), 1e-6 * self.scale)
                if converged or dim == self.n or self.n_hvp >= self.max_hvp:
                    y = _oriented(_unit(basis.T @ s), self.guide)
                    return TopEigen(lam, y, self.n_hvp, res, converged or dim == self.n)
            if b <= 1e-13 * self.scale or b == 0.0:
                # An invariant subspace: carry on from a random direction orthogonal to it
                # (a zero coupling in T keeps the blocks apart).
                Q[j + 1] = _fresh_direction(basis, self.rng)
            else:
                Q[j + 1] = w / b
                if j + 1 < m_max:
                    Tm[j, j + 1] = Tm[j + 1, j] = b
        return Q[:m_max].T @ s


def top_eigenpair(
    op: Callable[[np.ndarray], np.ndarray],
    n: int,
    v0: np.ndarray | None = None,
    tol: float = 1e-8,
    max_hvp: int = 500,
    krylov_dim: int = 30,
    rng: np.random.Generator | None = None,
) -> TopEigen:
    """Largest algebraic eigenvalue and unit eigenvector of a symmetric operator.

    Lanczos with full reorthogonalisation (twice, so the basis stays orthonormal to round-off),
    restarted from the top Ritz vector when the basis reaches ``krylov_dim`` vectors.

    Parameters
    ----------
    op : callable v (n,) -> H v (n,), H symmetric
    n : int, the dimension
    v0 : optional (n,) start (a previous eigenvector); a random start otherwise
    tol : stop when the residual ``r = ||H v - lam v|| <= tol * max(|lam|, 1e-6 * ||H||)``
        (||H|| estimated from the Lanczos coefficients). Some eigenvalue then lies within
        ``tol * |lam|`` of lam -- a guarantee, whatever the spectrum. The actual error of lam
        is about ``r^2 / gap`` (gap: to the next eigenvalue) and of v about ``r / gap`` in
        angle, so ``tol = 1e-4`` usually gives lam to ~1e-8: enough for tracking in training.
    max_hvp : int, give up (``converged=False``) after this many products
    krylov_dim : int, the largest basis before a restart
    rng : ``np.random.Generator`` for the random start (``default_rng(0)`` if None)
    """
    if n < 1:
        raise ValueError("the operator needs at least one dimension")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if krylov_dim < 2:
        raise ValueError(f"krylov_dim must be at least 2, got {krylov_dim}")
    rng = np.random.default_rng(0) if rng is None else rng
    m_max = max(1, min(int(krylov_dim), n))
    q, guide = _start_vector(n, v0, rng)
    state = _Lanczos(
        op, n, tol, max_hvp, rng, guide, np.empty((m_max + 1, n)), np.zeros((m_max, m_max))
    )
    while True:
        got = state.cycle(q)
        if isinstance(got, TopEigen):
            return got
        q = got


def top_eigenvalue(
    net,
    X,
    T,
    loss: str = "mse",
    reduction: str = "mean",
    v0: np.ndarray | None = None,
    tol: float = 1e-8,
    max_hvp: int = 500,
    krylov_dim: int = 30,
    rng: np.random.Generator | None = None,
    **kw,
) -> tuple[float, np.ndarray]:
    """lambda_max (the sharpness) of the Hessian of the reduced loss on (X, T), and its unit
    eigenvector v (P,).

    ``loss``, ``reduction`` and ``kw`` (output_weights, sample_weights, huber_delta) as for
    ``net.gradient``; ``v0`` the previous eigenvector to warm-start from; the rest as for
    ``top_eigenpair``. Use ``top_eigenpair(net.hessian_operator(...), net.n_params, ...)`` to
    see the number of products and the residual.
    """
    op = net.hessian_operator(X, T, loss, reduction, **kw)
    r = top_eigenpair(op, net.n_params, v0, tol, max_hvp, krylov_dim, rng)
    return r.value, r.vector


# ------------------------------------------------------------------------- stability limits
def _check(optimizer: str, lr: float, momentum: float) -> None:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"the learning rate must be positive, got {lr}")
    if optimizer in ("momentum", "nesterov") and not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")


def stability_limit(optimizer: str, lr: float, momentum: float = 0.9) -> float | None:
    """The largest curvature the optimiser is stable on: it diverges along any direction whose
    Hessian eigenvalue exceeds this (on a quadratic; locally, while the Hessian stays put).

    sgd: 2/lr; momentum: 2(1 + mu)/lr; nesterov: 2(1 + mu)/(lr (1 + 2 mu)) (derived for the
    update rules of ``core.optimizers`` in this module's docstring); adam: None, see
    ``stability_rule``.
    """
    _check(optimizer, lr, momentum)
    mu = float(momentum)
    if optimizer == "sgd":
        return 2.0 / lr
    if optimizer == "momentum":
        return 2.0 * (1.0 + mu) / lr
    if optimizer == "nesterov":
        return 2.0 * (1.0 + mu) / (lr * (1.0 + 2.0 * mu))
    return None


def stability_rule(optimizer: str, lr: float, momentum: float = 0.9) -> str:
    """One sentence: the limit and where it comes from, or why there is none (Adam)."""
    limit = stability_limit(optimizer, lr, momentum)
    mu = float(momentum)
    if optimizer == "sgd":
        return f"gradient descent is stable while lambda_max < 2/lr = {limit:.4g}"
    if optimizer == "momentum":
        return (
            f"heavy-ball momentum is stable while lambda_max < 2(1 + mu)/lr = {limit:.4g} "
            f"(mu = {mu:g})"
        )
    if optimizer == "nesterov":
        return (
            f"Nesterov momentum is stable while lambda_max < 2(1 + mu)/(lr (1 + 2 mu)) = "
            f"{limit:.4g} (mu = {mu:g})"
        )
    return (
        "Adam has no limit on lambda_max of the loss's Hessian: it divides each coordinate's "
        "step by its own running gradient size, so a limit ((2 + 2 beta1)/((1 - beta1) lr), "
        "38/lr for beta1 = 0.9; Cohen et al. 2022) applies to the preconditioned Hessian "
        "diag(1/(sqrt(v_hat) + eps)) H instead"
    )


def overshoot(lam: float, optimizer: str, lr: float, momentum: float = 0.9) -> float | None:
    """lambda_max / stability limit: above 1 the step is that many times too long along the
    sharpest direction (for gradient descent ``lr * lambda_max / 2``); None for Adam."""
    limit = stability_limit(optimizer, lr, momentum)
    return None if limit is None else float(lam) / limit
