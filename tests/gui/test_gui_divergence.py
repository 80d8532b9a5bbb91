"""A learning rate that blows the run up: the window says 'diverged', keeps the last good
state and the pictures; a lower rate clears it and Run carries on from there."""

from __future__ import annotations

import math

import numpy as np
from gui_testing import (
    assert_no_training,
    child,
    click,
    small_config,
    start_training,
    type_into,
    wait_drawn,
    wait_snapshot,
    wait_state,
)
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QPushButton, QWidget

#: A linear network (identity activation): a huge rate diverges for sure. With tanh the
#: hidden units can saturate first and the loss then stays bounded.
LINEAR = {"activation": "identity"}


def test_diverge_and_recover(make_window, qtbot):
    window = make_window(small_config(**LINEAR))
    spin = child(window, QDoubleSpinBox, "learningRateSpin")
    run = child(window, QPushButton, "runButton")
    before = start_training(qtbot, window, min_step=20)

    type_into(qtbot, spin, "1000")
    assert spin.value() == 1000
    assert not child(window, QLabel, "learningRateError").isVisible()
    snap = wait_snapshot(qtbot, window, lambda s: s.diverged)
    wait_state(qtbot, window, "diverged")
    assert "Diverged" in snap.message and "learning rate" in snap.message
    assert snap.config.lr == 1000
    assert snap.run_id == before.run_id  # the run is kept, not reset
    assert math.isfinite(snap.loss)  # the last good weights were restored
    assert not run.isChecked()
    assert run.text() == "Run"
    drawn = wait_drawn(qtbot, window, lambda s: s.diverged)
    assert "Diverged" in window.statusBar().currentMessage()
    assert "diverged" in window.findChild(QLabel, "stateLabel").text()
    assert np.all(np.isfinite(window.findChild(QWidget, "lossMatrixPlot").image.image))
    assert any(text == "diverged" for _, text in drawn.history.events)
    k = snap.step
    assert_no_training(qtbot, window)  # paused on divergence

    # a sane rate clears the divergence; Run carries on from the kept step
    type_into(qtbot, spin, "0.01")
    snap = wait_snapshot(qtbot, window, lambda s: not s.diverged and s.config.lr == 0.01)
    wait_state(qtbot, window, "paused")
    assert snap.step == k and snap.run_id == before.run_id
    assert_no_training(qtbot, window)
    click(qtbot, window, "runButton")
    assert run.isChecked()
    wait_state(qtbot, window, "running")
    later = wait_snapshot(qtbot, window, lambda s: s.step >= k + 20)
    assert not later.diverged and math.isfinite(later.loss)
    assert later.run_id == before.run_id
    assert len(later.history) == later.step


def test_run_while_diverged_waits_for_a_new_setting(make_window, qtbot):
    window = make_window(small_config(**LINEAR))
    spin = child(window, QDoubleSpinBox, "learningRateSpin")
    before = start_training(qtbot, window, min_step=5)
    type_into(qtbot, spin, "1000")
    wait_state(qtbot, window, "diverged")
    snap = wait_snapshot(qtbot, window, lambda s: s.diverged)

    click(qtbot, window, "runButton")  # the user insists: nothing trains
    assert_no_training(qtbot, window)
    assert window.last_snapshot.step == snap.step
    assert window.state_label.text() == "diverged"

    type_into(qtbot, spin, "0.02")  # the Run request stands: training resumes
    wait_state(qtbot, window, "running")
    later = wait_snapshot(qtbot, window, lambda s: s.step >= snap.step + 20)
    assert not later.diverged and later.run_id == before.run_id == snap.run_id
