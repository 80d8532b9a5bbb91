"""gui.plots.surface_image.contour_segments: vectorised marching squares lies on the level."""

from __future__ import annotations

import numpy as np

from gui.plots.surface_image import contour_segments


def test_circles_of_a_paraboloid_lie_on_their_levels():
    g = np.linspace(-1.0, 1.0, 41)
    L = g[:, None] ** 2 + g[None, :] ** 2  # L[i, j] at (g[i], g[j])
    levels = [0.1, 0.25, 0.5]
    seg = contour_segments(L, levels, g, g)
    assert seg.ndim == 2 and seg.shape[1] == 2 and len(seg) % 2 == 0
    r2 = (seg**2).sum(axis=1)
    # every end point is on one of the circles (bilinear interpolation: within a cell's error)
    err = np.min(np.abs(r2[:, None] - np.array(levels)[None, :]), axis=1)
    assert err.max() < 2e-3
    for lv in levels:  # each circle is closed: its segments' lengths add up to 2 pi r
        on = np.abs(r2 - lv) < 2e-3
        pts = seg[on].reshape(-1, 2, 2)
        length = np.linalg.norm(pts[:, 1] - pts[:, 0], axis=1).sum()
        assert abs(length - 2 * np.pi * np.sqrt(lv)) < 0.01 * 2 * np.pi * np.sqrt(lv)


def test_anisotropic_axes_and_flat_grid():
    x, y = np.linspace(0, 4, 5), np.linspace(10, 12, 3)
    L = np.repeat(np.arange(5.0)[:, None], 3, axis=1)  # rises along x only
    seg = contour_segments(L, [1.5], x, y)
    np.testing.assert_allclose(seg[:, 0], 1.5)  # a vertical line at x = 1.5
    assert seg[:, 1].min() == 10 and seg[:, 1].max() == 12
    assert contour_segments(np.ones((4, 4)), [0.5, 2.0], x[:4], x[:4]).shape == (0, 2)
