"""A loss surface as an image: log10 of the loss on a grid of a plane, placed in plane
coordinates, with a colour bar. Shared by the live loss-surface view and the experiments."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from . import style


def add_surface_image(
    layout: pg.GraphicsLayout, plot: pg.PlotItem, row: int, col: int, rowspan: int = 1
) -> tuple[pg.ImageItem, pg.ColorBarItem]:
    """An ImageItem in ``plot`` and its colour bar in ``layout`` at (row, col), made once."""
    image = pg.ImageItem(axisOrder="col-major")
    image.setColorMap(style.SURFACE_CMAP)
    plot.addItem(image)
    bar = pg.ColorBarItem(
        values=(0, 1), colorMap=style.SURFACE_CMAP, label="log10 loss", interactive=False, width=12
    )
    bar.setImageItem(image)
    layout.addItem(bar, row=row, col=col, rowspan=rowspan)
    return image, bar


def log_levels(Z: np.ndarray, q=(0.5, 99.5)) -> tuple[np.ndarray, float, float] | None:
    """(log10 Z with non-finite or non-positive cells at the top level, low, high) with the
    levels at percentiles ``q`` (one outlier must not flatten the rest); None if nothing is
    finite."""
    Z = np.asarray(Z)
    ok = np.isfinite(Z) & (Z > 0)
    if not ok.any():
        return None
    L = np.log10(np.where(ok, Z, np.nan))
    lo, hi = (float(v) for v in np.nanpercentile(L, q))
    if hi <= lo:
        hi = lo + 1e-6
    return np.ascontiguousarray(np.where(np.isnan(L), hi, L)), lo, hi


def upsample(L: np.ndarray, k: int) -> np.ndarray:
    """Bilinear interpolation of a (n, m) grid to ((n - 1) k + 1, (m - 1) k + 1) points over
    the same span: the surface drawn smoothly instead of as blocks. Elementwise along each
    axis in turn (no BLAS call: a small matrix product could wait on busy BLAS threads)."""
    n, m = L.shape
    if k <= 1 or n < 2 or m < 2:
        return L

    def along0(A: np.ndarray) -> np.ndarray:
        rows = A.shape[0]
        t = np.linspace(0.0, rows - 1, (rows - 1) * k + 1)
        i = np.minimum(t.astype(np.int64), rows - 2)
        f = (t - i)[:, None]
        return A[i] * (1.0 - f) + A[i + 1] * f

    return np.ascontiguousarray(along0(along0(L).T).T)


def show_surface(
    image: pg.ImageItem,
    bar: pg.ColorBarItem | None,
    Z: np.ndarray,
    alphas: np.ndarray,
    betas: np.ndarray,
    smooth: int = 1,
):
    """Draw Z[i, j] at (alphas[i], betas[j]); returns (L, lo, hi) or None if all non-finite.

    smooth : draw the log-loss interpolated bilinearly at ``smooth`` times the grid's
    resolution (L is then the fine grid, in the image's pixels)."""
    out = log_levels(Z)
    if out is None:
        return None
    L, lo, hi = out
    L = upsample(L, smooth)
    out = (L, lo, hi)
    image.setImage(L, autoLevels=False, levels=(lo, hi))
    if bar is not None:
        bar.setLevels((lo, hi))
    a, b = np.asarray(alphas), np.asarray(betas)
    if smooth > 1:
        a = np.linspace(a[0], a[-1], L.shape[0])
        b = np.linspace(b[0], b[-1], L.shape[1])
    da = (a[-1] - a[0]) / max(len(a) - 1, 1)
    db = (b[-1] - b[0]) / max(len(b) - 1, 1)
    # setRect after setImage: it maps the current image's pixels onto the plane
    image.setRect(QRectF(a[0] - da / 2, b[0] - db / 2, da * len(a), db * len(b)))
    return out


#: marching squares: for each case (bit 1: corner (0,0) above, 2: (1,0), 4: (1,1), 8: (0,1))
#: the pairs of cell edges the contour joins (edges 0: bottom (0,0)-(1,0), 1: right
#: (1,0)-(1,1), 2: top (0,1)-(1,1), 3: left (0,0)-(0,1)); saddles (5, 10) give two segments
_CASES = {
    1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 5: ((3, 0), (1, 2)),
    6: ((0, 2),), 7: ((3, 2),), 8: ((2, 3),), 9: ((2, 0),), 10: ((0, 1), (2, 3)),
    11: ((2, 1),), 12: ((1, 3),), 13: ((1, 0),), 14: ((0, 3),),
}  # fmt: skip


def _case_tables() -> tuple[np.ndarray, np.ndarray]:
    """(16, 2) first and second edge of each case's up to two segments (-1: none)."""
    a = np.full((16, 2), -1)
    b = np.full((16, 2), -1)
    for k, pairs in _CASES.items():
        for n, (e0, e1) in enumerate(pairs):
            a[k, n], b[k, n] = e0, e1
    return a, b


_SEG_A, _SEG_B = _case_tables()


def contour_segments(L: np.ndarray, levels, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Contour lines of the grid ``L[i, j]`` at (x[i], y[j]) for every level in ``levels``,
    as line segments: a (2 S, 2) array of (x, y) end points, two rows a segment (draw with
    ``connect="pairs"``). Vectorised marching squares over all levels at once: about a
    millisecond for nine levels of a 41 x 41 grid, where pyqtgraph's isocurve took ~4 ms a
    level in Python loops."""
    L = np.asarray(L, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)[:, None, None]  # (K, 1, 1)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    c00, c10, c01, c11 = L[:-1, :-1], L[1:, :-1], L[:-1, 1:], L[1:, 1:]
    case = (c00 > lv) * 1 + (c10 > lv) * 2 + (c11 > lv) * 4 + (c01 > lv) * 8  # (K, n, m)
    k, i, j = np.nonzero((case != 0) & (case != 15))
    cs = case[k, i, j]
    level = lv[k, 0, 0]
    with np.errstate(divide="ignore", invalid="ignore"):

        def frac(a, b):
            t = (level - a[i, j]) / (b[i, j] - a[i, j])
            return np.clip(np.nan_to_num(t, nan=0.5), 0.0, 1.0)

        x0, x1, y0, y1 = x[i], x[i + 1], y[j], y[j + 1]
        ex = np.stack([x0 + frac(c00, c10) * (x1 - x0), x1, x0 + frac(c01, c11) * (x1 - x0), x0])
        ey = np.stack([y0, y0 + frac(c10, c11) * (y1 - y0), y1, y0 + frac(c00, c01) * (y1 - y0)])
    out = []
    for n in (0, 1):
        ea, eb = _SEG_A[cs, n], _SEG_B[cs, n]
        ok = ea >= 0
        cells = np.nonzero(ok)[0]
        seg = np.empty((len(cells), 2, 2))
        seg[:, 0, 0], seg[:, 0, 1] = ex[ea[ok], cells], ey[ea[ok], cells]
        seg[:, 1, 0], seg[:, 1, 1] = ex[eb[ok], cells], ey[eb[ok], cells]
        out.append(seg.reshape(-1, 2))
    return np.concatenate(out)
