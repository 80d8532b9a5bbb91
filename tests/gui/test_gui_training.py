"""Training from the window: run, change the batch size live, pause, single-step, reset,
keyboard shortcuts; and one window with the default settings."""

from __future__ import annotations

import numpy as np
from gui_testing import (
    assert_no_training,
    child,
    click,
    drawn_snapshot,
    start_training,
    type_into,
    wait_drawn,
    wait_snapshot,
    wait_state,
)
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QSpinBox, QWidget

from core.replies import StateChanged
from gui.plots.loss_surface import SMOOTH


def _pause(qtbot, window) -> None:
    """Click runButton to pause and wait until the worker says so."""
    run = child(window, QPushButton, "runButton")
    assert run.isChecked()
    qtbot.mouseClick(run, Qt.MouseButton.LeftButton)
    assert not run.isChecked()
    assert run.text() == "Run"
    wait_state(qtbot, window, "paused")


def _step(qtbot, window, trigger) -> object:
    """Trigger one step and wait for its snapshot (the first newer than the newest)."""
    k = window.last_snapshot.step
    trigger()
    return wait_snapshot(qtbot, window, lambda s: s.step > k)


def test_window_opens_paused_with_no_snapshot(window, qtbot):
    assert window.last_snapshot is None
    assert window.state_label.text() == "paused"
    assert not child(window, QPushButton, "runButton").isChecked()
    # the worker draws the untrained network (step 0) without training
    drawn = wait_drawn(qtbot, window, lambda s: s.step == 0)
    assert drawn.layer_sizes == (5, 16, 16, 3)
    qtbot.wait(200)
    assert window.last_snapshot is None  # no training step was taken
    assert drawn_snapshot(window).step == 0


def test_run_button_starts_training(window, qtbot):
    snap = start_training(qtbot, window, min_step=5)
    assert snap.layer_sizes == (5, 16, 16, 3)
    assert snap.batch_size == 32 and snap.M.shape == (32, 3)
    assert np.isfinite(snap.loss)
    wait_state(qtbot, window, "running")
    assert child(window, QPushButton, "runButton").text() == "Pause"
    later = wait_snapshot(qtbot, window, lambda s: s.step > snap.step + 20)
    assert later.run_id == snap.run_id
    # the status bar follows
    drawn = wait_drawn(qtbot, window, lambda s: s.step >= later.step)
    assert window.step_label.text().startswith(f"step {drawn.step} ")


def test_training_reduces_the_loss(window, qtbot):
    """The window really trains: the train loss (measured every eval_every steps on the same
    samples) falls well below where it started."""
    start_training(qtbot, window, min_step=5)
    snap = wait_snapshot(qtbot, window, lambda s: s.step >= 300)
    train = np.asarray(snap.history.train_loss)
    measured = train[np.isfinite(train)]
    assert len(measured) >= 10
    assert measured[-1] < 0.5 * measured[0], (
        f"train loss {measured[0]:.3g} -> {measured[-1]:.3g} after {snap.step} steps"
    )
    assert snap.train_loss == measured[-1]


def test_batch_size_changes_while_training(window, qtbot):
    before = start_training(qtbot, window, min_step=10)
    spin = child(window, QSpinBox, "batchSizeSpin")
    assert spin.value() == 32
    type_into(qtbot, spin, "8")
    assert spin.value() == 8
    after = wait_snapshot(qtbot, window, lambda s: s.batch_size == 8)
    assert after.M.shape == (8, 3)
    assert after.per_sample_loss.shape == (8,)
    assert after.config.batch_size == 8
    # the same run carries on: no reset, the history keeps growing
    assert after.run_id == before.run_id
    later = wait_snapshot(qtbot, window, lambda s: s.step > after.step + 10)
    assert later.run_id == before.run_id
    h = later.history
    assert len(h) == later.step > before.step
    assert h.steps[0] == 1
    assert h.batch_size[0] == 32 and h.batch_size[-1] == 8
    assert not child(window, QLabel, "batchSizeError").isVisible()
    # the gradient-spread view shows the 8 samples
    drawn = wait_drawn(qtbot, window, lambda s: s.batch_size == 8)
    spread = window.findChild(QWidget, "gradientSpreadPlot")
    assert len(spread.samples.data) == drawn.batch_size


def test_pause_step_and_reset(window, qtbot):
    start_training(qtbot, window, min_step=30)
    _pause(qtbot, window)
    assert window.state_label.text() == "paused"
    assert_no_training(qtbot, window)
    run_id = window.last_snapshot.run_id

    # Step: one step at a time, and the window stays paused
    first = _step(qtbot, window, lambda: click(qtbot, window, "stepButton"))
    assert first.run_id == run_id
    assert not child(window, QPushButton, "runButton").isChecked()
    assert_no_training(qtbot, window)
    for k in (1, 2):
        snap = _step(qtbot, window, lambda: click(qtbot, window, "stepButton"))
        assert snap.step == first.step + k, "Step trained more than one minibatch"
        assert len(snap.history) == snap.step
        assert_no_training(qtbot, window)
    assert window.state_label.text() == "paused"

    # Reset while paused: step 0, a new run, the history cleared, still paused
    click(qtbot, window, "resetButton")
    snap = wait_snapshot(qtbot, window, lambda s: s.run_id != run_id)
    assert snap.step == 0
    assert len(snap.history) == 0
    assert window.state_label.text() == "paused"
    assert_no_training(qtbot, window)


def test_reset_while_running_clears_history(window, qtbot):
    before = start_training(qtbot, window, min_step=300)
    received = []
    window.worker.snapshotReady.connect(received.append)  # every one, in the worker thread
    click(qtbot, window, "resetButton")
    wait_snapshot(qtbot, window, lambda s: s.run_id != before.run_id)
    # the first snapshot of the new run is earlier than where the old run was (taken from all
    # that came: a window kept waiting by a busy machine may first see a later one)
    snap = next(s for s in list(received) if s.run_id != before.run_id)
    assert snap.step < before.step
    h = snap.history
    assert len(h) == snap.step
    if len(h):
        assert h.steps[0] == 1
    assert child(window, QPushButton, "runButton").isChecked()  # still training
    wait_snapshot(qtbot, window, lambda s: s.run_id == snap.run_id and s.step > snap.step)


def _activate(qtbot, window):
    window.activateWindow()
    window.raise_()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    target = window.findChild(QWidget, "lossMatrixPlot")  # focus on a view, not a text field
    target.setFocus()
    return target


def test_keyboard_shortcuts(window, qtbot):
    target = _activate(qtbot, window)
    run = child(window, QPushButton, "runButton")

    qtbot.keyClick(target, Qt.Key.Key_Space)  # run
    assert run.isChecked()
    first = wait_snapshot(qtbot, window, lambda s: s.step >= 20)
    wait_state(qtbot, window, "running")

    qtbot.keyClick(target, Qt.Key.Key_Space)  # pause
    assert not run.isChecked()
    wait_state(qtbot, window, "paused")
    assert_no_training(qtbot, window)

    one = _step(qtbot, window, lambda: qtbot.keyClick(target, Qt.Key.Key_S))  # one step
    two = _step(qtbot, window, lambda: qtbot.keyClick(target, Qt.Key.Key_S))
    assert two.step == one.step + 1
    assert_no_training(qtbot, window)
    assert not run.isChecked()

    qtbot.keyClick(target, Qt.Key.Key_R)  # reset
    snap = wait_snapshot(qtbot, window, lambda s: s.run_id != first.run_id)
    assert snap.step == 0


def test_shortcuts_do_not_fire_while_typing(window, qtbot):
    _activate(qtbot, window)
    edit = child(window, QLineEdit, "hiddenLayersEdit")
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_End)
    qtbot.keyClicks(edit, " s r")
    assert edit.text() == "16, 16 s r"  # the keys went into the text
    assert not child(window, QPushButton, "runButton").isChecked()
    qtbot.wait(200)
    assert window.last_snapshot is None  # no step, no reset
    assert window.state_label.text() == "paused"


def test_default_settings_window(make_window, qtbot):
    """The window as `python main.py` opens it: 5-32-32-3, B = 32, MSE, mean, 41x41 surface."""
    window = make_window(None)
    cfg = window.controls.config
    assert (cfg.hidden, cfg.batch_size, cfg.loss, cfg.reduction) == ((32, 32), 32, "mse", "mean")
    assert child(window, QLineEdit, "hiddenLayersEdit").text() == "32, 32"
    start_training(qtbot, window, min_step=10)
    snap = wait_drawn(qtbot, window, lambda s: s.step >= 10 and s.surface is not None)
    assert snap.layer_sizes == (5, 32, 32, 3)
    assert snap.M.shape == (32, 3)
    assert snap.surface.Z.shape == (41, 41)
    # drawn interpolated at SMOOTH times the grid's resolution
    smooth = window.findChild(QWidget, "lossSurfacePlot").image.image.shape
    assert smooth == ((41 - 1) * SMOOTH + 1,) * 2
    assert window.findChild(QWidget, "lossMatrixPlot").image.image.shape == (32, 3)
    assert snap.max_abs_diff < 1e-12
    # the run keeps going
    wait_snapshot(qtbot, window, lambda s: s.step > snap.step + 50)


def test_a_late_paused_report_does_not_undo_run(window, qtbot):
    """The engine reports its state when it changes, and may report "paused" (its state
    before it read the window's "run") after the window asked it to run. That report is old
    news: the window must still know it is running, so the next Space pauses (it once was a
    dead key until pressed twice)."""
    w = window.worker
    window.set_running(True)
    w._dispatch(StateChanged("paused"))  # sent by the engine before it read Run
    w._dispatch(StateChanged("running"))
    assert w.is_running()
    wait_snapshot(qtbot, window, lambda s: s.step >= 5)
    target = _activate(qtbot, window)
    qtbot.keyClick(target, Qt.Key.Key_Space)
    assert not child(window, QPushButton, "runButton").isChecked()
    assert not w.is_running()
    wait_state(qtbot, window, "paused")
    assert_no_training(qtbot, window)
