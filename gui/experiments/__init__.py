"""Experiment tabs: each tests one of the question's claims on the current network."""

from .cost_lab import CostLabView

#: in tab order; each has object_name, file_stem, title
EXPERIMENTS = (CostLabView,)

__all__ = ["EXPERIMENTS", "CostLabView"]
