"""Shared set-up for the Qt-free engine tests.

``core`` is imported from the repository root; put that on ``sys.path`` so the tests also run
with a bare ``pytest`` (``python -m pytest`` adds the working directory by itself).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator per test (never the global RNG)."""
    return np.random.default_rng(12345)
