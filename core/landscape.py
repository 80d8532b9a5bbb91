"""The loss over a 2-D plane through weight space.

A plane is (origin, d1, d2) in the flat parameter layout; the point with coordinates (a, b) is
``origin + a * d1 + b * d2``. Three ways to choose d1, d2:

* ``gradient_plane``: d1 = the mean gradient's direction, d2 = the main direction in which the
  per-sample gradients disagree (orthogonal to d1). The mean-gradient arrow and the fan of
  per-sample arrows then lie in the plane.
* ``random_plane``: filter-normalised random directions (Li et al. 2018): each row of each W
  (one unit's incoming weights) gets the norm of that row in the current weights; biases 0.
* ``pca_plane``: the top two principal directions of the recent trajectory (Li et al. use it
  because a trajectory runs mostly off any random plane).

``loss_grid`` evaluates the reduced scalar loss on a res x res grid, vectorised over grid points
and samples. The first layer's pre-activation is linear in (a, b), so it costs three matrix
products for the whole grid; deeper layers use one batched product per chunk of grid points,
written into preallocated buffers.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .losses import Objective, as_one_hot
from .mlp import MLP

__all__ = [
    "Plane",
    "Surface",
    "gradient_plane",
    "random_plane",
    "pca_plane",
    "loss_grid",
    "loss_grid_loop",
    "project",
]


@dataclass(frozen=True)
class Plane:
    """origin, d1, d2 : (P,) float64; kind names how d1, d2 were chosen."""

    origin: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    kind: str
    plane_id: int = 0

    def point(self, a: float, b: float) -> np.ndarray:
        return self.origin + a * self.d1 + b * self.d2


@dataclass(frozen=True)
class Surface:
    """The loss on a grid of a plane.

    alphas : (res,) d1 coordinates, betas : (res,) d2 coordinates
    Z : (res, res) loss, Z[i, j] at (alphas[i], betas[j])
    """

    plane: Plane
    alphas: np.ndarray
    betas: np.ndarray
    Z: np.ndarray
    step: int
    seconds: float
    n_samples: int
    surface_id: int = 0

    @property
    def resolution(self) -> int:
        return len(self.alphas)

    @property
    def span(self) -> float:
        return float(self.alphas[-1] - self.alphas[0]) / 2


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def gradient_plane(
    origin: np.ndarray,
    gbar: np.ndarray,
    disagree: np.ndarray,
    rng: np.random.Generator,
    plane_id: int = 0,
) -> Plane:
    """d1 = gbar / |gbar|; d2 = the disagreement direction (orthogonalised). Falls back to a
    random orthogonal direction where either is zero."""
    d1 = _unit(gbar)
    if not np.any(d1):
        d1 = _unit(rng.normal(size=origin.shape))
    d2 = disagree - (disagree @ d1) * d1
    if np.linalg.norm(d2) < 1e-12:
        r = rng.normal(size=origin.shape)
        d2 = r - (r @ d1) * d1
    return Plane(origin.copy(), d1, _unit(d2), "gradient", plane_id)


def random_plane(
    net: MLP, origin: np.ndarray, rng: np.random.Generator, plane_id: int = 0
) -> Plane:
    """Filter-normalised random directions (Li et al. 2018) around ``origin``."""
    dirs = []
    for _ in range(2):
        d = rng.normal(size=origin.shape)
        for (W, _b), (Dw, Db) in zip(net.views(origin), net.views(d)):
            Dw *= np.linalg.norm(W, axis=1, keepdims=True) / np.maximum(
                np.linalg.norm(Dw, axis=1, keepdims=True), 1e-30
            )
            Db[...] = 0.0
        dirs.append(d)
    return Plane(origin.copy(), dirs[0], dirs[1], "random", plane_id)


def pca_plane(
    trajectory: np.ndarray, origin: np.ndarray, rng: np.random.Generator, plane_id: int = 0
) -> Plane | None:
    """Top two principal directions (unit) of trajectory (N, P); None if it has < 3 distinct
    points."""
    if trajectory.shape[0] < 3:
        return None
    C = trajectory - trajectory.mean(axis=0)
    # SVD of the small N x N Gram matrix instead of the N x P matrix.
    K = C @ C.T
    vals, vecs = np.linalg.eigh(K)
    if vals[-2] <= 1e-12 * max(vals[-1], 1e-300):
        return None
    d1 = _unit(vecs[:, -1] @ C)
    d2 = vecs[:, -2] @ C
    d2 = _unit(d2 - (d2 @ d1) * d1)
    return Plane(origin.copy(), d1, d2, "pca", plane_id)


def project(plane: Plane, points: np.ndarray):
    """Coordinates (N, 2) of parameter vectors (N, P) in the plane, by least squares, and their
    distances (N,) from it.

    The residual is formed explicitly (exact for points in the plane) unless N x P is large,
    where the distance comes from |r|^2 - c^T G c without (N, P) temporaries (accurate to
    ~1e-8 |r|).
    """
    pts = np.atleast_2d(points)
    d1, d2, o = plane.d1, plane.d2, plane.origin
    G = np.array([[d1 @ d1, d1 @ d2], [d1 @ d2, d2 @ d2]])
    if pts.size <= 4_000_000:
        R = pts - o
        coords = np.linalg.solve(G, np.stack([R @ d1, R @ d2])).T
        resid = R - coords @ np.stack([d1, d2])
        return coords, np.sqrt(np.einsum("np,np->n", resid, resid))
    rhs = np.stack([pts @ d1 - o @ d1, pts @ d2 - o @ d2])  # D (p - o) without p - o
    coords = np.linalg.solve(G, rhs).T
    r2 = np.einsum("np,np->n", pts, pts) - 2 * (pts @ o) + o @ o
    fit = np.einsum("nk,kl,nl->n", coords, G, coords)
    return coords, np.sqrt(np.maximum(r2 - fit, 0.0))


def project_vectors(plane: Plane, V: np.ndarray) -> np.ndarray:
    """Plane components (K, 2) of displacement vectors V (K, P) (no origin shift)."""
    D = np.stack([plane.d1, plane.d2])
    return np.linalg.solve(D @ D.T, D @ np.atleast_2d(V).T).T


# Far from the weights (or after a divergence) the float32 grid overflows: those points become
# inf/nan, which the callers mask; NumPy's RuntimeWarnings about it are noise, not news. The
# state is per thread, so the pool's worker function carries it too.
@np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")
def loss_grid(
    net: MLP,
    X: np.ndarray,
    T: np.ndarray,
    plane: Plane,
    centre=(0.0, 0.0),
    span: float = 1.0,
    res: int = 41,
    loss: str = "mse",
    reduction: str = "mean",
    output_weights=None,
    sample_weights=None,
    huber_delta: float = 1.0,
    dtype=np.float64,
    chunk_bytes: int = 4 * 1024 * 1024,
    cancel=None,
    threads: int = 1,
):
    """Loss (res, res) on the grid ``centre + [-span, span]^2`` of the plane.

    X : (S, n_in), T : (S, n_out). Returns (alphas (res,), betas (res,), Z (res, res)) with
    Z[i, j] the scalar loss at (alphas[i], betas[j]). ``cancel``: optional callable polled
    between chunks; if it returns True the function returns None. ``threads``: chunks of grid
    points are shared out over this many threads (NumPy releases the GIL in its kernels),
    each with a single-threaded BLAS.
    ``dtype``: float32 halves the time of the transcendental functions; the result is
    returned as float64 either way.
    """
    objective = Objective(loss, reduction, output_weights, sample_weights, huber_delta)
    T = as_one_hot(T, net.n_out)
    alphas = centre[0] + np.linspace(-span, span, res)
    betas = centre[1] + np.linspace(-span, span, res)
    A_, B_ = np.meshgrid(alphas, betas, indexing="ij")
    a_all, b_all = A_.ravel(), B_.ravel()
    n_pts = a_all.size
    S = X.shape[0]
    L0 = net.views(plane.origin)
    L1 = net.views(plane.d1)
    L2 = net.views(plane.d2)
    Xd = np.asarray(X, dtype=dtype)
    # First layer: Z1(a, b) = (X W0^T + b0) + a (X D1^T + e1) + b (X D2^T + f1): linear in (a, b).
    # Every hidden activation carries one more column held at 1, so the next layer's bias is
    # a row of its (augmented) weight and comes out of the GEMM instead of a pass of its own.
    n_layers = len(L0)
    h1 = net.layer_sizes[1]
    extra = 1 if n_layers > 1 else 0
    base = np.zeros((3, S, h1 + extra), dtype=dtype)
    for g, L in enumerate((L0, L1, L2)):
        base[g, :, :h1] = Xd @ L[0][0].T.astype(dtype) + L[0][1].astype(dtype)
    base[0, :, h1:] = 1.0  # the origin's 1; the directions add 0 to it
    widest = max(net.layer_sizes[1:]) + 1
    c = int(max(1, min(n_pts, chunk_bytes // max(1, S * widest * np.dtype(dtype).itemsize))))
    Z = np.empty(n_pts)
    Ws = []
    for k in range(1, n_layers):
        n_out, n_in = L0[k][0].shape
        e = 1 if k < n_layers - 1 else 0  # a hidden layer passes its 1-column on
        stack = np.zeros((3, n_in + 1, n_out + e), dtype=dtype)
        for g, L in enumerate((L0, L1, L2)):
            # W^T, row-major, then b: each point's (n_in + 1, n_out) weight is contiguous,
            # which the batched GEMM runs markedly faster than a transposed view
            stack[g, :n_in, :n_out] = L[k][0].T
            stack[g, n_in, :n_out] = L[k][1]
        stack[0, n_in, n_out:] = 1.0
        Ws.append((stack.reshape(3, -1), n_in + 1, n_out + e))
    Tc = T.astype(dtype)
    starts = list(range(0, n_pts, c))

    @np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")
    def run(my_starts):
        bufs: dict[str, np.ndarray] = {}  # preallocated per worker, reused for every chunk
        for start in my_starts:
            if cancel is not None and cancel():
                return False
            stop = min(start + c, n_pts)
            coef = np.stack(
                [np.ones(stop - start), a_all[start:stop], b_all[start:stop]], axis=1
            ).astype(dtype)
            Y = _chunk_outputs(net, coef, base, Ws, bufs)
            M = objective.fn.matrix_into(Y, Tc)  # mse: (Y - T)^2 in Y's buffer
            Z[start:stop] = objective.reduce_many(M)
        return True

    if threads > 1 and len(starts) > 1:
        # Each thread runs its chunks' GEMMs on one BLAS thread: BLAS helper threads on top
        # of ours would oversubscribe the cores (measured: 149 ms with, 98 ms without, for
        # the benchmark's grid on 2 cores). The limit is process-wide while it lasts.
        with (
            threadpool_limits(limits=1, user_api="blas"),
            ThreadPoolExecutor(threads) as pool,
        ):
            ok = all(pool.map(run, [starts[i::threads] for i in range(threads)]))
    else:
        ok = run(starts)
    if not ok:
        return None
    return alphas, betas, Z.reshape(res, res)


def _buf(bufs: dict, name: str, shape: tuple, dtype) -> np.ndarray:
    size = math.prod(shape)
    full = bufs.get(name)
    if full is None or full.size < size:
        full = bufs[name] = np.empty(size, dtype=dtype)
    return full[:size].reshape(shape)


def _chunk_outputs(net: MLP, coef, base, Ws, bufs) -> np.ndarray:
    """Outputs (n, S, n_out) at n grid points over S samples.

    coef : (n, 3) rows (1, a, b); base : (3, S, h1 + 1) first-layer pre-activations of the
    origin and of the two directions, with a last column (1, 0, 0); Ws : per later layer the
    (3, (n_in + 1) * m) stack of the origin's and the directions' [W^T; b] (m = n_out, plus
    one column that keeps the 1 for a hidden layer), n_in + 1 and m. Every
    "origin + a d1 + b d2" is one small GEMM; the biases ride in the GEMMs.
    """
    dtype = base.dtype
    n = coef.shape[0]
    _, S, h1 = base.shape
    H = _buf(bufs, "z1", (n, S, h1), dtype)
    np.matmul(coef, base.reshape(3, -1), out=H.reshape(n, -1))
    for k, (Wst, n_in, m) in enumerate(Ws):
        A = net._act.forward(H, H)  # in place: the grid needs no pre-activations
        A[:, :, -1] = 1.0  # the bias column (act(1) is not 1)
        H = _buf(bufs, f"z{k + 2}", (n, S, m), dtype)
        WkT = _buf(bufs, f"w{k + 1}", (n, n_in, m), dtype)
        np.matmul(coef, Wst, out=WkT.reshape(n, -1))
        np.matmul(A, WkT, out=H)
    return H


def loss_grid_loop(
    net: MLP,
    X,
    T,
    plane: Plane,
    centre=(0.0, 0.0),
    span: float = 1.0,
    res: int = 41,
    loss: str = "mse",
    reduction: str = "mean",
    **kw,
):
    """Reference: the same grid as ``loss_grid`` by one forward pass per grid point (slow)."""
    alphas = centre[0] + np.linspace(-span, span, res)
    betas = centre[1] + np.linspace(-span, span, res)
    Z = np.empty((res, res))
    saved = net.params.copy()
    try:
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                net.params[...] = plane.origin + a * plane.d1 + b * plane.d2
                Z[i, j] = net.loss(X, T, loss, reduction, **kw)
    finally:
        net.params[...] = saved
    return alphas, betas, Z
