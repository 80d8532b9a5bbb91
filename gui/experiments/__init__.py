"""Experiment tabs: each tests one of the question's claims on the current network."""

from .cost_lab import CostLabView
from .dldy import MisconceptionView
from .race import BatchRaceView
from .reductions_lab import ReductionsView

#: in tab order; each has object_name, file_stem, title
EXPERIMENTS = (CostLabView, BatchRaceView, ReductionsView, MisconceptionView)

__all__ = ["EXPERIMENTS", "BatchRaceView", "CostLabView", "MisconceptionView", "ReductionsView"]
