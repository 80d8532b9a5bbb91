"""One module per view; each view is a widget with ``show_snapshot(snapshot)``."""

from .gradient_spread import GradientSpreadPlot
from .loss_curves import LossCurvePlot
from .loss_matrix import LossMatrixPlot
from .loss_surface import LossSurfacePlot
from .mean_gradient import MeanGradientPlot

#: (file stem used by exports, class) in display order
VIEWS = (
    ("loss_surface", LossSurfacePlot),
    ("gradient_spread", GradientSpreadPlot),
    ("mean_gradient", MeanGradientPlot),
    ("loss_matrix", LossMatrixPlot),
    ("loss_curves", LossCurvePlot),
)

__all__ = [
    "VIEWS",
    "GradientSpreadPlot",
    "LossCurvePlot",
    "LossMatrixPlot",
    "LossSurfacePlot",
    "MeanGradientPlot",
]
