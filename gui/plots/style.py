"""Pens, brushes, colours and colour maps shared by the views: made once, used everywhere."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

# Okabe-Ito palette: distinguishable with colour blindness, prints well.
BLUE = (0, 114, 178)
ORANGE = (230, 159, 0)
GREEN = (0, 158, 115)
RED = (213, 94, 0)
PURPLE = (204, 121, 167)
SKY = (86, 180, 233)
GREY = (120, 120, 120)
BLACK = (20, 20, 20)

MEAN_PEN = pg.mkPen(RED, width=2.5)
SCALAR_PEN = pg.mkPen(BLACK, width=1)  # solid width-1: runs inside the red mean line
#: width 1: Qt dashes a cosmetic 1 px line in the rasteriser; a 1.5 px dash is stroked into
#: polygons every paint (1.3 ms a frame for ~1,300 points)
MEAN_DASHED_PEN = pg.mkPen(RED, width=1, style=Qt.PenStyle.DashLine)
SAMPLE_PEN = pg.mkPen((*SKY, 230), width=1)
PATH_PEN = pg.mkPen((255, 255, 255, 230), width=2)
PATH_SHADOW_PEN = pg.mkPen((0, 0, 0, 160), width=4)
CONTOUR_PEN = pg.mkPen((255, 255, 255, 110), width=1)
GRID_PEN = pg.mkPen(GREY, width=1, style=Qt.PenStyle.DotLine)
BAND_BRUSH = pg.mkBrush((*SKY, 90))
BAR_BRUSH = pg.mkBrush((*BLUE, 200))
BAR_AGAINST_BRUSH = pg.mkBrush((*ORANGE, 220))
POINT_BRUSH = pg.mkBrush(RED)
SAMPLE_BRUSH = pg.mkBrush((*BLUE, 160))
NO_PEN = pg.mkPen(None)

SURFACE_CMAP = pg.colormap.get("viridis")
MATRIX_CMAP = pg.colormap.get("magma")
#: signed values (dL/dY): blue below zero, white at zero, red above
SIGNED_CMAP = pg.colormap.get("CET-D1")

#: the words the text uses for the palette's colours (help, tour, titles)
COLOUR_NAMES = {
    BLUE: "blue",
    ORANGE: "orange",
    GREEN: "green",
    RED: "red-orange",
    PURPLE: "pink",
    SKY: "light blue",
    GREY: "grey",
    BLACK: "black",
}


def configure() -> None:
    """Global pyqtgraph options: light background for slides and papers.

    Live drawing is not antialiased (antialiased raster stroking costs several times more per
    frame); PNG exports are, through the exporter's own antialias option.
    """
    pg.setConfigOptions(background="w", foreground="k", antialias=False, imageAxisOrder="col-major")
