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
