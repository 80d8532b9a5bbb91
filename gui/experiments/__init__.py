"""Experiment tabs: each tests one of the question's claims on the current network."""

from .cost_lab import CostLabView
from .critical_batch import CriticalBatchView
from .dldy import MisconceptionView
from .race import BatchRaceView
from .reductions_lab import ReductionsView

#: in tab order; each has object_name, file_stem, title
EXPERIMENTS = (CostLabView, BatchRaceView, ReductionsView, MisconceptionView, CriticalBatchView)

__all__ = [
    "EXPERIMENTS",
    "BatchRaceView",
    "CostLabView",
    "CriticalBatchView",
    "MisconceptionView",
    "ReductionsView",
]
