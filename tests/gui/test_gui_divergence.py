"""A learning rate that blows the run up: the window says 'diverged', keeps the last good
state and the pictures; a lower rate clears it and Run carries on from there."""

from __future__ import annotations

import math

import numpy as np
from gui_testing import (
    assert_no_training,
    child,
    choose,
    click,
    small_config,
    start_training,
    type_into,
    wait_drawn,
    wait_snapshot,
    wait_state,
)
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QPushButton, QWidget

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
    # the reason in full, under the control to change, with what to do
    note = child(window, QLabel, "learningRateError")
    assert note.isVisible() and note.wordWrap()
    assert f"Diverged (the run stands at step {drawn.step})" in note.text()
    assert "lower the learning rate" in note.text() and "Reset" in note.text()
    assert "see the note under the learning rate" in window.statusBar().currentMessage()
    assert "diverged" in window.findChild(QLabel, "stateLabel").text()
    assert np.all(np.isfinite(window.findChild(QWidget, "lossMatrixPlot").image.image))
    assert any(text == "diverged" for _, text in drawn.history.events)
    k = snap.step
    assert_no_training(qtbot, window)  # paused on divergence

    # a sane rate clears the divergence; Run carries on from the kept step
    type_into(qtbot, spin, "0.01")
    assert not note.isVisible()
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


def test_a_reduction_that_diverges_is_named_under_the_reduction(make_window, qtbot):
    """Switching a linear net to the sum reduction makes its steps B times longer: the note
    goes under the reduction (the setting changed last), says why and what to do; Run while
    diverged says it waits; Reset clears the note and the run goes on."""
    window = make_window(small_config(**LINEAR))
    start_training(qtbot, window, min_step=20)
    choose(child(window, QComboBox, "reductionCombo"), "sum")
    drawn = wait_drawn(qtbot, window, lambda s: s.diverged)
    note = child(window, QLabel, "reductionError")
    assert note.isVisible()
    assert f"Diverged (the run stands at step {drawn.step})" in note.text()
    assert "sum reduction takes longer steps" in note.text() and "go back to mean" in note.text()
    assert not child(window, QLabel, "learningRateError").isVisible()
    for text in (note.text(), window.statusBar().currentMessage()):
        assert "nan" not in text and "inf " not in text

    click(qtbot, window, "runButton")
    assert "Run waits for a change of setting" in window.statusBar().currentMessage()

    choose(child(window, QComboBox, "reductionCombo"), "mean")
    click(qtbot, window, "resetButton")  # fresh weights: the Run request stands
    later = wait_drawn(
        qtbot, window, lambda s: s.run_id != drawn.run_id and not s.diverged and s.step > 5
    )
    assert later.config.reduction == "mean"
    assert not note.isVisible()
