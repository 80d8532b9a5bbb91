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

``Landscape`` is the live session's part of this: the current plane, its newest surface
(recomputed when the weights near the grid's edge, drift off the plane, or it is over about
half a second old; ``surface_plan`` shrinks the grid to a time budget) and the ``Trajectory``,
a ring of the recent weights and their place on the plane (the path drawn on the surface).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
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
    "project_vectors",
    "surface_plan",
    "Landscape",
    "Trajectory",
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
    views = (net.views(plane.origin), net.views(plane.d1), net.views(plane.d2))
    base = _first_layer(np.asarray(X, dtype=dtype), views, dtype)
    Ws = _later_layers(views, dtype)
    c = _points_per_chunk(net, X.shape[0], n_pts, dtype, chunk_bytes)
    Z = np.empty(n_pts)
    Tc = T.astype(dtype)

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

    if not _run_chunks(run, list(range(0, n_pts, c)), threads):
        return None
    return alphas, betas, Z.reshape(res, res)


def _points_per_chunk(net: MLP, n_samples: int, n_pts: int, dtype, chunk_bytes: int) -> int:
    """Grid points per chunk so that one chunk's widest activations stay near ``chunk_bytes``
    (at least one point, at most all ``n_pts``)."""
    per_point = n_samples * (max(net.layer_sizes[1:]) + 1) * np.dtype(dtype).itemsize
    return int(max(1, min(n_pts, chunk_bytes // max(1, per_point))))


def _first_layer(Xd: np.ndarray, views, dtype) -> np.ndarray:
    """(3, S, h1 + 1) first-layer pre-activations of the origin and of the two directions.

    Z1(a, b) = (X W0^T + b0) + a (X D1^T + e1) + b (X D2^T + f1) is linear in (a, b). Every
    hidden activation carries one more column held at 1 (the origin's 1; the directions add
    0), so the next layer's bias is a row of its (augmented) weight and comes out of the
    GEMM instead of a pass of its own.
    """
    h1 = views[0][0][0].shape[0]
    extra = 1 if len(views[0]) > 1 else 0
    base = np.zeros((3, Xd.shape[0], h1 + extra), dtype=dtype)
    for g, L in enumerate(views):
        base[g, :, :h1] = Xd @ L[0][0].T.astype(dtype) + L[0][1].astype(dtype)
    base[0, :, h1:] = 1.0
    return base


def _later_layers(views, dtype) -> list[tuple[np.ndarray, int, int]]:
    """Per later layer: the (3, (n_in + 1) * m) stack of the origin's and the directions'
    [W^T; b] (m = n_out, plus the column that keeps the 1 for a hidden layer), n_in + 1, m."""
    n_layers = len(views[0])
    Ws = []
    for k in range(1, n_layers):
        n_out, n_in = views[0][k][0].shape
        e = 1 if k < n_layers - 1 else 0  # a hidden layer passes its 1-column on
        stack = np.zeros((3, n_in + 1, n_out + e), dtype=dtype)
        for g, L in enumerate(views):
            # W^T, row-major, then b: each point's (n_in + 1, n_out) weight is contiguous,
            # which the batched GEMM runs markedly faster than a transposed view
            stack[g, :n_in, :n_out] = L[k][0].T
            stack[g, n_in, :n_out] = L[k][1]
        stack[0, n_in, n_out:] = 1.0
        Ws.append((stack.reshape(3, -1), n_in + 1, n_out + e))
    return Ws


def _run_chunks(run, starts: list[int], threads: int) -> bool:
    """``run(starts)`` on one thread, or the chunks shared out over ``threads``; False if
    any was cancelled."""
    if threads <= 1 or len(starts) <= 1:
        return run(starts)
    # Each thread runs its chunks' GEMMs on one BLAS thread: BLAS helper threads on top
    # of ours would oversubscribe the cores (measured: 149 ms with, 98 ms without, for
    # the benchmark's grid on 2 cores). The limit is process-wide while it lasts.
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(threads) as pool,
    ):
        return all(pool.map(run, [starts[i::threads] for i in range(threads)]))


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


# ------------------------------------------------------------------ the live landscape
TRAJECTORY_BYTES = 96 * 1024 * 1024  #: memory for the recent trajectory (PCA plane, path)
TRAJECTORY_MAX = 2000  #: at most this many recent weight vectors
SURFACE_FLOP_BUDGET = 2e9  #: ~0.2 s of float32 grid on these machines
#: a surface older than this (wall seconds of training) is recomputed (or 4x its cost if more)
SURFACE_REFRESH_SECONDS = 0.5


class Trajectory:
    """The recent weight vectors (a ring of at most ``capacity`` rows of P) and their
    coordinates (2,) and distances from the current plane.

    The ring is filled at once, not page by page as training proceeds: resident memory
    reaches its steady size at once (the soak benchmark measures growth after warm-up).
    """

    def __init__(
        self, n_params: int, max_bytes: int = TRAJECTORY_BYTES, max_points: int = TRAJECTORY_MAX
    ) -> None:
        cap = int(max(2, min(max_points, max_bytes // (8 * n_params))))
        self._W = np.full((cap, n_params), np.nan)
        self._path = np.empty((cap, 2))
        self._off = np.empty(cap)
        self.n = 0  #: points recorded in all; the ring position is n % capacity

    @property
    def capacity(self) -> int:
        return self._W.shape[0]

    def __len__(self) -> int:
        return min(self.n, self.capacity)

    def _order(self) -> np.ndarray:
        """Ring rows oldest first."""
        cap = self.capacity
        start = self.n % cap if self.n > cap else 0
        return (np.arange(len(self)) + start) % cap

    def _write(self, k: int, params: np.ndarray, plane: Plane | None) -> None:
        self._W[k] = params
        if plane is not None:
            c, off = project(plane, params)
            self._path[k], self._off[k] = c[0], off[0]

    def record(self, params: np.ndarray, plane: Plane | None) -> None:
        """Append weights (P,), with their place on ``plane`` (if any)."""
        self._write(self.n % self.capacity, params, plane)
        self.n += 1

    def rewrite_newest(self, params: np.ndarray, plane: Plane | None) -> None:
        """The newest point becomes ``params`` (P,) (an update that was undone)."""
        self._write((self.n - 1) % self.capacity, params, plane)

    def restart(self) -> None:
        """Forget the points (the path starts again from the next ``record``)."""
        self.n = 0

    def points(self) -> np.ndarray:
        """The recent weight vectors (N, P), oldest first (a copy)."""
        return self._W[self._order()]

    def path(self) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates (N, 2) on the plane and distances (N,) from it, oldest first."""
        order = self._order()
        return self._path[order], self._off[order]

    def project_onto(self, plane: Plane) -> None:
        """Recompute every point's coordinates and distance for ``plane``."""
        order = self._order()
        self._path[order], self._off[order] = project(plane, self._W[order])


def surface_plan(
    layer_sizes, resolution: int, n_samples: int, budget: float = SURFACE_FLOP_BUDGET
) -> tuple[int, int]:
    """(resolution, samples) for a live surface: the given ones, reduced (samples first, down
    to 16; then the resolution, down to 11) until the estimated cost fits ``budget`` flops,
    so a wide network does not stall training for seconds; (0, 0) when even the smallest plan
    costs over 5x the budget."""
    res, n = resolution, n_samples
    sizes = list(layer_sizes)
    per_sample = 3 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) + 12 * sum(sizes[1:])
    while res * res * n * per_sample > budget and n > 16:
        n = max(16, n // 2)
    while res * res * n * per_sample > budget and res > 11:
        res = max(11, res - 2)
    if res * res * n * per_sample > 5 * budget:
        return 0, 0
    return res, n


class Landscape:
    """The live session's plane through the weights, the loss surface on it and the path of
    the weights drawn on it (one network at a time; ``start`` takes a new one).

    Plane and surface ids count on over networks, so the window never mistakes a new surface
    for an old one. ``stale`` asks for a new surface (settings changed); ``note`` says why
    there is none when the network is too large for a live surface.
    """

    def __init__(self) -> None:
        self._plane_ids = itertools.count(1)
        self._surface_ids = itertools.count(1)
        self.compute_seconds = 0.0  #: what the newest surface took
        self.plane: Plane | None = None
        self.surface: Surface | None = None
        self.stale = True
        self._surface_time = 0.0  #: perf_counter when the surface's weights were current

    def start(self, net: MLP, rng: np.random.Generator) -> None:
        """A new network: a new trajectory, no plane or surface yet; ``rng`` draws the random
        directions of its planes."""
        self.net = net
        self.rng = rng
        self.trajectory = Trajectory(net.n_params)
        self.plane = None
        self.surface = None
        self.stale = True
        self._surface_time = 0.0

    def count_surfaces_from(self, last_id: int) -> None:
        """Number the next surface ``last_id + 1`` (a restored session carries on)."""
        self._surface_ids = itertools.count(last_id + 1)

    # ------------------------------------------------------------------ the path
    def record(self) -> None:
        """Append the net's current weights to the trajectory."""
        self.trajectory.record(self.net.params, self.plane)

    def rewrite_newest(self) -> None:
        """The trajectory's newest point becomes the current weights (an undone update)."""
        self.trajectory.rewrite_newest(self.net.params, self.plane)

    def position(self, plane: Plane) -> tuple[np.ndarray, float]:
        """The current weights' coordinates (2,) on ``plane`` and distance from it."""
        c, off = project(plane, self.net.params)
        return c[0], float(off[0])

    # ------------------------------------------------------------------ the plane
    def new_plane(self, kind: str, gbar: np.ndarray, disagree: np.ndarray) -> Plane:
        """A plane of ``kind`` ("gradient", "random", "pca") through the current weights,
        made (``make_plane``) and installed (``install_plane``)."""
        plane = self.make_plane(kind, gbar, disagree)
        self.install_plane(plane)
        return plane

    def install_plane(self, plane: Plane) -> None:
        """Draw the path on ``plane`` from now on (the trajectory projected onto it)."""
        self.plane = plane
        self.stale = True
        self.trajectory.project_onto(plane)

    def make_plane(self, kind: str, gbar: np.ndarray, disagree: np.ndarray) -> Plane:
        """A plane of ``kind`` ("gradient", "random", "pca") through the current weights, not
        yet installed; gbar, disagree (P,) are the mean gradient and the direction in which
        the per-sample gradients disagree (the gradient plane's, and the fall-back of the
        others). A random plane keeps its directions when it is recentred, so the picture
        stays comparable."""
        origin = self.net.params
        pid = next(self._plane_ids)
        plane = None
        if kind == "pca":
            plane = pca_plane(self.trajectory.points()[-200:], origin, self.rng, pid)
        elif kind == "random":
            old = self.plane
            if old is not None and old.kind == "random" and old.d1.shape == origin.shape:
                plane = Plane(origin.copy(), old.d1, old.d2, "random", pid)
            else:
                plane = random_plane(self.net, origin, self.rng, pid)
        if plane is None:  # gradient plane, or too little trajectory for PCA yet
            plane = gradient_plane(origin, gbar, disagree, self.rng, pid)
        return plane

    def forget_plane(self) -> None:
        """Start a new plane (and surface) at the next chance (a recentre was asked for)."""
        self.plane = None
        self.stale = True

    # ------------------------------------------------------------------ the surface
    def age_seconds(self, step: int) -> float:
        """Wall seconds of training since the weights the surface was computed at (0 while
        the run has not stepped since step ``step``; nan without a surface)."""
        s = self.surface
        if s is None:
            return float("nan")
        if s.step == step:
            return 0.0
        return max(0.0, time.perf_counter() - self._surface_time)

    def expired(self, step: int) -> bool:
        """True when the weights moved on and the surface is older than
        ``SURFACE_REFRESH_SECONDS`` (or 4x its own cost): keeps what is drawn under the path
        at most about half a second behind the training at default settings."""
        refresh = max(SURFACE_REFRESH_SECONDS, 4.0 * self.compute_seconds)
        return self.age_seconds(step) > refresh

    def needs_surface(self, step: int) -> bool:
        """True when the surface should be (re)computed: none yet, settings changed, it
        expired, the point left the central 60 % of the grid, or it drifted off the plane by
        over half a span."""
        s, plane = self.surface, self.plane
        if s is None or self.stale or plane is None or self.expired(step):
            return True
        c, off = self.position(plane)
        centre = np.array([s.alphas.mean(), s.betas.mean()])
        if np.any(np.abs(c - centre) > 0.6 * s.span):
            return True
        return bool(off > 0.5 * s.span * _scale(plane))

    def span(self, step_length: float, plane: Plane | None = None) -> float:
        """Half-width of the surface grid on ``plane`` (default: the installed one), in plane
        coordinates: the distance the weights travelled over the last 200 steps, at least 20
        steps of ``step_length`` (lr x the gradient's norm)."""
        traj = self.trajectory.points()
        travelled = float(np.linalg.norm(traj[-1] - traj[max(0, len(traj) - 200)]))
        dist = max(travelled, 20 * step_length, 1e-3 * float(np.linalg.norm(self.net.params)), 1e-6)
        return dist / max(_scale(plane or self.plane), 1e-300)

    def compute_surface(
        self,
        kind: str,
        directions: tuple[np.ndarray, np.ndarray],
        grid: Callable[[Plane, float], tuple | None],
        n_samples: int,
        step: int,
        step_length: float,
    ) -> Surface | None:
        """A new plane of ``kind`` through the current weights (``new_plane(kind,
        *directions)``) and the loss on it: ``grid(plane, span)`` returns (alphas (res,),
        betas (res,), Z (res, res)) over ``n_samples`` samples, or None when cancelled (the
        old plane and surface are then kept, and None returned). ``step`` is the training
        step, ``step_length`` lr x the gradient's norm (for the span). The new plane is
        installed only with its surface: while ``grid`` runs (the engine trains between its
        chunks) the path is still drawn on the old plane over the old surface."""
        plane = self.make_plane(kind, *directions)
        t0 = time.perf_counter()
        with np.errstate(all="ignore"):
            out = grid(plane, self.span(step_length, plane))
        if out is None:
            return None
        self.install_plane(plane)
        alphas, betas, Z = out
        self.compute_seconds = time.perf_counter() - t0
        self._surface_time = t0
        Z = np.where(np.isfinite(Z), Z, np.nan)
        sid = next(self._surface_ids)
        self.surface = Surface(
            plane, _frozen(alphas), _frozen(betas), _frozen(Z), step, self.compute_seconds,
            n_samples, sid,
        )  # fmt: skip
        self.stale = False
        return self.surface

    def no_surface(self) -> None:
        """Stop asking for a surface: the network is too large for one within the time budget
        (``surface_plan`` is (0, 0)); the window says so from the same plan."""
        self.stale = False


def _scale(plane: Plane) -> float:
    """The mean length of the plane's two directions."""
    return 0.5 * float(np.linalg.norm(plane.d1) + np.linalg.norm(plane.d2))


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a
