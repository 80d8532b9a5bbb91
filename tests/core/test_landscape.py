"""Loss over a plane (``core.landscape``): the vectorised grid against one forward pass per
grid point, the three kinds of plane, and projection onto a plane."""

from __future__ import annotations

import numpy as np
import pytest

from core.landscape import (
    Landscape,
    Plane,
    Trajectory,
    gradient_plane,
    loss_grid,
    loss_grid_loop,
    pca_plane,
    project,
    project_vectors,
    random_plane,
    surface_plan,
)
from core.mlp import MLP

SIZES = [5, 6, 4, 3]
S = 24  #: samples


def problem(act: str, loss: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    net = MLP(SIZES, activation=act, seed=seed)
    net.params[...] = rng.normal(0.0, 0.7, size=net.n_params)
    X = rng.normal(size=(S, SIZES[0]))
    if loss == "cross_entropy":
        T = np.eye(3)[rng.integers(0, 3, S)]
    else:
        T = rng.normal(size=(S, 3))
    plane = random_plane(net, net.params, rng)
    return net, X, T, plane, rng


def reduction_kw(reduction: str, rng) -> dict:
    if reduction != "weighted":
        return {}
    return {
        "output_weights": np.array([2.0, 1.0, 0.5]),
        "sample_weights": rng.uniform(0.5, 2.0, size=S),
    }


GRID_CASES = [
    ("tanh", "mse", "mean"),
    ("tanh", "mae", "sum"),
    ("relu", "huber", "max"),
    ("sigmoid", "cross_entropy", "weighted"),
    ("identity", "mse", "weighted"),
    ("relu", "cross_entropy", "mean"),
    ("sigmoid", "mse", "max"),
    ("identity", "huber", "sum"),
]


@pytest.mark.parametrize("act, loss, reduction", GRID_CASES)
def test_loss_grid_matches_loop_float64(act, loss, reduction):
    net, X, T, plane, rng = problem(act, loss)
    kw = reduction_kw(reduction, rng)
    kw["huber_delta"] = 0.7
    before = net.params.copy()
    args = dict(centre=(0.3, -0.2), span=0.8, res=7, loss=loss, reduction=reduction, **kw)
    a, b, Z = loss_grid(net, X, T, plane, **args)
    a2, b2, Z2 = loss_grid_loop(net, X, T, plane, **args)
    np.testing.assert_array_equal(net.params, before)  # neither moves the weights
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    np.testing.assert_allclose(a, 0.3 + np.linspace(-0.8, 0.8, 7))
    np.testing.assert_allclose(b, -0.2 + np.linspace(-0.8, 0.8, 7))
    assert Z.shape == (7, 7) and Z.dtype == np.float64
    np.testing.assert_allclose(Z, Z2, rtol=1e-12, atol=1e-12 * np.abs(Z2).max())
    assert np.ptp(Z) > 1e-3  # the surface is not flat: the check means something
    # Z[i, j] is at (alphas[i], betas[j]), not transposed
    net2 = MLP(SIZES, act)
    net2.params[...] = plane.point(a[1], b[5])
    assert Z[1, 5] == pytest.approx(net2.loss(X, T, loss, reduction, **kw), rel=1e-12)


@pytest.mark.parametrize("sizes", [[5, 3], [5, 7, 3], [2, 4, 4, 4, 3], [3, 9, 1]])
@pytest.mark.parametrize("act", ["tanh", "relu", "sigmoid", "identity"])
def test_loss_grid_matches_loop_at_any_depth(sizes, act):
    """No hidden layer (no bias column to carry), one, three; one output."""
    rng = np.random.default_rng(len(sizes))
    net = MLP(sizes, activation=act, seed=3)
    X = rng.normal(size=(40, sizes[0]))
    T = rng.normal(size=(40, sizes[-1]))
    plane = random_plane(net, net.params, np.random.default_rng(1))
    _, _, Z = loss_grid(net, X, T, plane, res=5, span=1.5)
    _, _, Z2 = loss_grid_loop(net, X, T, plane, res=5, span=1.5)
    np.testing.assert_allclose(Z, Z2, rtol=1e-12, atol=1e-12 * np.abs(Z2).max())
    assert np.ptp(Z) > 1e-3


@pytest.mark.parametrize("act, loss, reduction", GRID_CASES[:5])
def test_loss_grid_float32_is_close(act, loss, reduction):
    net, X, T, plane, rng = problem(act, loss, seed=1)
    kw = reduction_kw(reduction, rng)
    args = dict(span=1.0, res=9, loss=loss, reduction=reduction, **kw)
    _, _, Z32 = loss_grid(net, X, T, plane, dtype=np.float32, **args)
    _, _, Z64 = loss_grid_loop(net, X, T, plane, **args)
    assert Z32.dtype == np.float64  # returned as float64 either way
    np.testing.assert_allclose(Z32, Z64, rtol=1e-5, atol=1e-5 * np.abs(Z64).max())


def test_loss_grid_chunks_and_threads_agree():
    net, X, T, plane, _ = problem("tanh", "mse", seed=2)
    _, _, Z = loss_grid(net, X, T, plane, res=11)
    _, _, Zc = loss_grid(net, X, T, plane, res=11, chunk_bytes=1)  # one grid point per chunk
    _, _, Zt = loss_grid(net, X, T, plane, res=11, chunk_bytes=2000, threads=2)
    np.testing.assert_allclose(Zc, Z, rtol=1e-13)
    np.testing.assert_allclose(Zt, Z, rtol=1e-13)


def test_loss_grid_class_index_targets():
    net, X, T, plane, _ = problem("tanh", "cross_entropy", seed=3)
    _, _, Z1 = loss_grid(net, X, T, plane, res=5, loss="cross_entropy")
    _, _, Z2 = loss_grid(net, X, T.argmax(axis=1), plane, res=5, loss="cross_entropy")
    np.testing.assert_allclose(Z1, Z2, rtol=1e-14)


def test_loss_grid_cancel():
    net, X, T, plane, _ = problem("tanh", "mse")
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    assert loss_grid(net, X, T, plane, res=9, chunk_bytes=1, cancel=cancel) is None
    assert len(calls) == 3
    assert loss_grid(net, X, T, plane, res=5, cancel=lambda: False) is not None


def test_centre_of_grid_is_the_origin_loss():
    net, X, T, plane, _ = problem("relu", "mse")
    _, _, Z = loss_grid(net, X, T, plane, res=5, span=2.0)
    assert Z[2, 2] == pytest.approx(net.loss(X, T), rel=1e-12)


# ----------------------------------------------------------------------------- planes
def test_random_plane_is_filter_normalised():
    net, _, _, plane, _ = problem("tanh", "mse", seed=4)
    assert plane.kind == "random"
    np.testing.assert_array_equal(plane.origin, net.params)
    assert not np.shares_memory(plane.origin, net.params)
    for d in (plane.d1, plane.d2):
        assert d.shape == (net.n_params,)
        for (W, _b), (Dw, Db) in zip(net.layers, net.views(d)):
            np.testing.assert_allclose(
                np.linalg.norm(Dw, axis=1), np.linalg.norm(W, axis=1), rtol=1e-12
            )
            np.testing.assert_array_equal(Db, 0.0)
    cos = plane.d1 @ plane.d2 / np.linalg.norm(plane.d1) / np.linalg.norm(plane.d2)
    assert abs(cos) < 0.9  # two different directions


def test_random_plane_is_reproducible():
    net = MLP(SIZES, seed=0)
    p1 = random_plane(net, net.params, np.random.default_rng(7))
    p2 = random_plane(net, net.params, np.random.default_rng(7))
    np.testing.assert_array_equal(p1.d1, p2.d1)
    np.testing.assert_array_equal(p1.d2, p2.d2)


def test_gradient_plane_is_orthonormal_along_gbar():
    rng = np.random.default_rng(5)
    P = 40
    origin, gbar, disagree = rng.normal(size=(3, P))
    plane = gradient_plane(origin, gbar, disagree, rng, plane_id=9)
    assert plane.kind == "gradient" and plane.plane_id == 9
    np.testing.assert_array_equal(plane.origin, origin)
    assert np.linalg.norm(plane.d1) == pytest.approx(1.0, abs=1e-14)
    assert np.linalg.norm(plane.d2) == pytest.approx(1.0, abs=1e-14)
    assert abs(plane.d1 @ plane.d2) < 1e-14
    np.testing.assert_allclose(plane.d1, gbar / np.linalg.norm(gbar), rtol=1e-14)
    # d2 is the disagreement direction with its gbar component removed
    d2 = disagree - (disagree @ plane.d1) * plane.d1
    np.testing.assert_allclose(plane.d2, d2 / np.linalg.norm(d2), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", ["parallel", "zero_disagree", "zero_gbar"])
def test_gradient_plane_fallbacks_stay_orthonormal(case):
    rng = np.random.default_rng(6)
    P = 30
    origin, gbar = rng.normal(size=(2, P))
    disagree = {
        "parallel": 3.0 * gbar,
        "zero_disagree": np.zeros(P),
        "zero_gbar": rng.normal(size=P),
    }[case]
    if case == "zero_gbar":
        gbar = np.zeros(P)
    plane = gradient_plane(origin, gbar, disagree, rng)
    D = np.stack([plane.d1, plane.d2])
    np.testing.assert_allclose(D @ D.T, np.eye(2), atol=1e-12)
    assert np.all(np.isfinite(D))


def test_pca_plane_spans_the_trajectory():
    rng = np.random.default_rng(8)
    P, N = 50, 30
    Q, _ = np.linalg.qr(rng.normal(size=(P, 2)))
    u, v = Q.T
    c = rng.normal(size=P)
    s = rng.normal(size=N) * 3.0
    t = rng.normal(size=N)
    traj = c + np.outer(s, u) + np.outer(t, v)
    plane = pca_plane(traj, traj[-1], rng, plane_id=3)
    assert plane is not None and plane.kind == "pca"
    np.testing.assert_array_equal(plane.origin, traj[-1])
    D = np.stack([plane.d1, plane.d2])
    np.testing.assert_allclose(D @ D.T, np.eye(2), atol=1e-12)
    # both directions lie in span(u, v)
    np.testing.assert_allclose(np.linalg.norm(D @ Q, axis=1), 1.0, rtol=1e-10)
    # d1 is the top principal direction of the centred trajectory (up to sign)
    _, _, Vt = np.linalg.svd(traj - traj.mean(axis=0), full_matrices=False)
    assert abs(plane.d1 @ Vt[0]) == pytest.approx(1.0, abs=1e-10)
    assert abs(plane.d2 @ Vt[1]) == pytest.approx(1.0, abs=1e-10)
    # every trajectory point lies in the plane through the last point (the distance comes
    # from |r|^2 - |proj r|^2, so it is exact to ~sqrt(eps) |r|)
    _, off = project(plane, traj)
    np.testing.assert_allclose(off, 0.0, atol=1e-7 * np.linalg.norm(traj - traj[-1], axis=1).max())


def test_pca_plane_needs_two_dimensions_of_movement():
    rng = np.random.default_rng(9)
    P = 20
    assert pca_plane(rng.normal(size=(2, P)), np.zeros(P), rng) is None
    line = np.outer(np.arange(10.0), rng.normal(size=P))  # moves along one direction only
    assert pca_plane(line, np.zeros(P), rng) is None


# --------------------------------------------------------------------------- project
def test_project_coordinates_and_off_plane_distance():
    rng = np.random.default_rng(10)
    P, N = 25, 6
    origin = rng.normal(size=P)
    d1 = rng.normal(size=P)
    d2 = rng.normal(size=P) + 0.5 * d1  # not orthogonal, not unit
    plane = Plane(origin, d1, d2, "test")
    ab = rng.normal(size=(N, 2)) * 2.0
    Q, _ = np.linalg.qr(np.stack([d1, d2], axis=1))
    E = rng.normal(size=(N, P))
    E -= (E @ Q) @ Q.T  # orthogonal to the plane
    dist = rng.uniform(0.0, 3.0, size=N)
    dist[0] = 0.0
    E *= (dist / np.maximum(np.linalg.norm(E, axis=1), 1e-300))[:, None]
    points = origin + ab @ np.stack([d1, d2]) + E
    coords, off = project(plane, points)
    assert coords.shape == (N, 2) and off.shape == (N,)
    np.testing.assert_allclose(coords, ab, rtol=1e-10, atol=1e-10)
    scale = np.linalg.norm(points - origin, axis=1).max()
    np.testing.assert_allclose(off, dist, rtol=1e-7, atol=1e-7 * scale)
    # a single point (P,) works too, and plane.point inverts project
    c1, o1 = project(plane, plane.point(0.7, -1.3))
    np.testing.assert_allclose(c1, [[0.7, -1.3]], rtol=1e-10)
    assert o1[0] == pytest.approx(0.0, abs=1e-7 * scale)
    # displacement vectors: no origin shift
    V = ab @ np.stack([d1, d2])
    np.testing.assert_allclose(project_vectors(plane, V), ab, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------ the live landscape
def test_trajectory_ring_keeps_the_newest_points_oldest_first():
    traj = Trajectory(n_params=3, max_points=4)
    plane = Plane(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), "test")
    for k in range(6):
        traj.record(np.array([k, 2.0 * k, 5.0]), plane)
    assert traj.capacity == 4 and len(traj) == 4
    np.testing.assert_array_equal(traj.points()[:, 0], [2, 3, 4, 5])
    coords, off = traj.path()
    np.testing.assert_allclose(coords, [[2, 4], [3, 6], [4, 8], [5, 10]])
    np.testing.assert_allclose(off, 5.0)
    traj.rewrite_newest(np.array([9.0, 9.0, 0.0]), plane)  # an undone update
    np.testing.assert_array_equal(traj.points()[-1], [9, 9, 0])
    np.testing.assert_allclose(traj.path()[0][-1], [9, 9])
    other = Plane(np.zeros(3), np.array([0, 0, 1.0]), np.array([0, 1.0, 0]), "test")
    traj.project_onto(other)
    np.testing.assert_allclose(traj.path()[0][:, 0], [5, 5, 5, 0])
    traj.restart()
    assert len(traj) == 0 and traj.points().shape == (0, 3)


def test_trajectory_memory_is_capped_by_bytes():
    assert Trajectory(n_params=1000, max_bytes=8 * 1000 * 10).capacity == 10
    assert Trajectory(n_params=10**6, max_bytes=1).capacity == 2  # at least two points


def test_surface_plan_shrinks_samples_first_then_resolution():
    assert surface_plan([5, 32, 32, 3], 41, 256) == (41, 256)  # the default fits
    assert surface_plan([5, 64, 64, 3], 41, 256) == (41, 64)  # fewer samples first
    res, n = surface_plan([5, 256, 256, 3], 41, 256)
    assert n == 16 and 11 < res < 41  # then a coarser grid
    assert surface_plan([5, 2048, 2048, 3], 41, 256) == (0, 0)  # too large for a live one


def _small_landscape():
    """A 3-4-2 net, 20 samples, a Landscape started on it with one point recorded, and two
    directions (g, d) for its planes."""
    net = MLP([3, 4, 2], seed=0)
    X = np.random.default_rng(0).normal(size=(20, 3))
    T = np.zeros((20, 2))
    land = Landscape()
    land.start(net, np.random.default_rng(1))
    land.record()
    return net, X, T, land, (np.ones(net.n_params), np.arange(net.n_params, dtype=float))


def test_landscape_keeps_its_old_plane_and_surface_when_a_new_one_is_cancelled():
    net, X, T, land, (g, d) = _small_landscape()

    def grid(plane, span):
        return loss_grid(net, X, T, plane, (0.0, 0.0), span, 5)

    first = land.compute_surface("gradient", (g, d), grid, 20, step=0, step_length=0.1)
    assert first is not None and first.surface_id == 1 and not land.stale
    assert first.Z.shape == (5, 5) and not first.Z.flags.writeable
    net.params[...] += 0.01
    land.record()
    assert land.compute_surface("random", (g, d), lambda p, s: None, 20, 1, 0.1) is None
    assert land.surface is first and land.plane is first.plane  # kept
    coords, _ = land.trajectory.path()
    # (never left it: the path keeps the coordinates it was recorded with, equal to round-off)
    np.testing.assert_allclose(
        coords, project(first.plane, land.trajectory.points())[0], rtol=1e-12, atol=1e-15
    )
    second = land.compute_surface("random", (g, d), grid, 20, step=1, step_length=0.1)
    assert second.surface_id == 2 and second.plane.kind == "random"
    assert land.age_seconds(1) == 0.0 and not land.needs_surface(1)
    land.forget_plane()
    assert land.needs_surface(1)


def test_a_new_plane_is_installed_only_with_its_surface():
    """While the grid is computed (the engine trains between its chunks) the path is still
    on the old plane; the new plane comes with its surface, centred on the weights the
    computation started from, however far training went meanwhile."""
    net, X, T, land, (g, d) = _small_landscape()
    first = land.compute_surface(
        "gradient", (g, d), lambda p, s: loss_grid(net, X, T, p, (0.0, 0.0), s, 5), 20, 0, 0.1
    )
    start = net.params.copy()
    seen = []

    def grid_while_training(plane, span):
        seen.append(land.plane)
        out = loss_grid(net, X, T, plane, (0.0, 0.0), span, 5)
        net.params[...] += 0.05  # training goes on between the chunks
        land.record()
        seen.append(land.plane)
        return out

    second = land.compute_surface("gradient", (g, d), grid_while_training, 20, 1, 0.1)
    assert seen == [first.plane, first.plane]  # the old plane throughout
    assert land.plane is second.plane and land.surface is second
    np.testing.assert_array_equal(second.plane.origin, start)
    coords, _ = land.trajectory.path()  # the whole path now on the new plane
    np.testing.assert_allclose(
        coords, project(second.plane, land.trajectory.points())[0], rtol=1e-12, atol=1e-15
    )
