"""A loss registered with one call appears in the window's loss list and trains in the engine.

LogCosh is the class issue 11 shows, defined once in the core half of this test
(tests/core/test_loss_registry.py, Qt-free, which also checks finite differences, Config and
the command line). The engine runs in a spawned process: it gets the loss from the window's
process (``core.losses.pickled_user_losses``; the class's module is importable by name there,
as sys.path goes with a spawned process). The snapshot's M and dL/dY are checked against each
other: with the mean reduction ``dL/dY = tanh(r) / (O B)`` and ``M = log cosh(r)``, so
recovering r from dL/dY must give M, which holds for log-cosh and for no built-in loss.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from gui_testing import child, choose, small_config, start_training, wait_snapshot
from PySide6.QtWidgets import QComboBox, QLabel

from core.losses import register, registered, unregister

CORE_TESTS = str(Path(__file__).resolve().parents[1] / "core")
if CORE_TESTS not in sys.path:
    sys.path.append(CORE_TESTS)  # the core half of this test, where LogCosh is defined
from test_loss_registry import LogCosh  # noqa: E402


@pytest.fixture
def logcosh():
    register(LogCosh())
    yield
    unregister("logcosh")


def assert_is_logcosh(snap) -> None:
    M, D = np.asarray(snap.M), np.asarray(snap.dLdY)
    B, O = M.shape
    assert D.shape == (B, O)
    r = np.arctanh(D * O * B)
    np.testing.assert_allclose(M, np.log(np.cosh(r)), rtol=1e-9, atol=1e-12)
    assert snap.loss == pytest.approx(float(M.mean()), rel=1e-12)
    assert np.abs(r).max() > 1e-3  # not a trivial batch


def test_the_window_lists_the_registered_loss_and_the_engine_trains_with_it(
    logcosh, make_window, qtbot
):
    window = make_window(small_config(lr=0.02))
    combo = child(window, QComboBox, "lossCombo")
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert "log-cosh" in labels
    assert combo.itemText(combo.findData("logcosh")) == "log-cosh"

    start_training(qtbot, window, min_step=3)
    choose(combo, "logcosh")
    snap = wait_snapshot(qtbot, window, lambda s: s.config.loss == "logcosh" and s.dLdY is not None)
    assert_is_logcosh(snap)
    later = wait_snapshot(qtbot, window, lambda s: s.step >= snap.step + 5 and s.dLdY is not None)
    assert later.config.loss == "logcosh"
    assert_is_logcosh(later)
    assert not child(window, QLabel, "lossError").isVisible()
    assert combo.currentData() == "logcosh"


def test_a_window_started_with_the_registered_loss_trains_with_it(logcosh, make_window, qtbot):
    window = make_window(small_config(loss="logcosh", lr=0.02))
    assert child(window, QComboBox, "lossCombo").currentText() == "log-cosh"
    snap = start_training(qtbot, window, min_step=3)
    snap = wait_snapshot(qtbot, window, lambda s: s.dLdY is not None)
    assert snap.config.loss == "logcosh"
    assert_is_logcosh(snap)


def test_a_loss_the_engine_cannot_load_is_refused_under_the_field(make_window, qtbot):
    class Local(LogCosh):  # local to this function: it cannot be pickled for the engine
        name, label = "local_loss", "local loss"

    with registered(Local()):
        window = make_window(small_config())
        combo = child(window, QComboBox, "lossCombo")
        assert combo.findData("local_loss") >= 0  # the window's process has it
        before = start_training(qtbot, window, min_step=3)
        choose(combo, "local_loss")
        err = child(window, QLabel, "lossError")
        qtbot.waitUntil(lambda: err.isVisible() and "local_loss" in err.text(), timeout=15_000)
        qtbot.waitUntil(lambda: combo.currentData() == "mse", timeout=15_000)
        snap = wait_snapshot(qtbot, window, lambda s: s.step >= before.step + 5)
        assert snap.config.loss == "mse" and snap.run_id == before.run_id
