"""A learning rate that blows the run up: the window says 'diverged', keeps the last good
state and the pictures; a lower rate clears it and Run carries on from there."""

from __future__ import annotations

import math

import numpy as np
import pytest
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
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QPushButton,
    QWidget,
)

from gui.controls import FOLD, UNFOLD
from gui.divergence import RESUME_RULE, suggested_lr
from gui.main_window import MIN_SIZE

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
    # what happened and what to do, under the control to change; the whole reason a click away
    note = child(window, QLabel, "learningRateError")
    assert note.isVisible() and note.wordWrap()
    assert f"Diverged (the run stands at step {drawn.step})" in note.text()
    assert "Lower the learning rate" in note.text() and "Reset" in note.text()
    assert "Details" in note.text() and RESUME_RULE in note.toolTip()
    assert "see the note under the learning rate" in window.statusBar().currentMessage()
    assert len(window.statusBar().currentMessage()) <= 100  # whole in a 1280 px window
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


def _out_of_sight(w: QWidget) -> str:
    """'' if ``w`` is whole in every scroll area holding it, as scrolled now, else where not."""
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QAbstractScrollArea):
            port = p.viewport()
            r = QRect(w.mapTo(port, QPoint(0, 0)), w.size())
            if not port.rect().contains(r):
                area = p.objectName() or type(p).__name__
                return f"{w.objectName()} at {r.getRect()} in {area} {port.size().toTuple()}"
        p = p.parentWidget()
    return ""


@pytest.mark.parametrize("size", [(1280, 720), MIN_SIZE], ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_step_reset_stay_in_sight_after_a_divergence(make_window, qtbot, size):
    """A run that diverges in a small window: the note under the learning rate says what
    happened and what to do, whole, and Run, Step and Reset stay in sight in the control dock
    with no scrolling, also with the note's details and "More settings" unfolded."""
    window = make_window(small_config(**LINEAR))
    window.resize(*size)
    window.fit_docks_to_width(size[0])
    dock_scroll = window.controls_dock.widget()
    start_training(qtbot, window, min_step=5)
    type_into(qtbot, child(window, QDoubleSpinBox, "learningRateSpin"), "1000")
    drawn = wait_drawn(qtbot, window, lambda s: s.diverged)
    note = child(window, QLabel, "learningRateError")
    buttons = [child(window, QPushButton, n) for n in ("runButton", "stepButton", "resetButton")]

    def in_sight():
        assert (window.width(), window.height()) == size
        assert dock_scroll.verticalScrollBar().value() == 0
        for w in (*buttons, note):
            assert w.isVisible() and not _out_of_sight(w), _out_of_sight(w)
        assert note.height() >= note.heightForWidth(note.width())  # no line cut

    qtbot.waitUntil(in_sight)
    short = note.text()
    assert f"Diverged (the run stands at step {drawn.step}): the loss" in short
    assert f"Lower the learning rate (e.g. to {suggested_lr(1000):g}), or Reset." in short
    assert RESUME_RULE not in short and RESUME_RULE in note.toolTip()

    note.linkActivated.emit(UNFOLD)  # what a click on "Details…" does
    qtbot.waitUntil(lambda: RESUME_RULE in note.text())
    assert note.text().startswith(short.split("<a")[0].strip())
    qtbot.waitUntil(in_sight)
    window.controls.more_button.setChecked(True)
    qtbot.wait(50)
    for b in buttons:
        assert b.isVisible() and not _out_of_sight(b), _out_of_sight(b)
    note.linkActivated.emit(FOLD)
    qtbot.waitUntil(lambda: note.text() == short)
