"""The experiment tabs, driven as a user does: Run, wait, read, export; Cancel."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QTabWidget

from core import Config

SMALL = Config(hidden=(8, 8), n_samples=320, surface_resolution=11, surface_samples=32)
HEADERS = {
    "cost_lab": ["strategy", "batch_size", "seconds", "partials"],
    "batch_race": ["batch_size", "step", "samples_seen", "seconds", "train_loss", "val_loss"],
    "reductions": ["section", "name", "key", "value"],
    "misconception": [
        "step",
        "cosine",
        "relative_error",
        "norm_true",
        "norm_averaged_delta",
        "max_abs_diff_per_sample_mean",
    ],
}
NAMES = {
    "cost_lab": "costLabPlot",
    "batch_race": "batchRacePlot",
    "reductions": "reductionsPlot",
    "misconception": "misconceptionPlot",
}


@pytest.mark.parametrize("stem", list(NAMES))
def test_run_an_experiment_from_its_tab_and_export_it(make_window, qtbot, tmp_path, stem):
    window = make_window(SMALL)
    name = NAMES[stem]
    tabs = window.findChild(QTabWidget, "viewTabs")
    view = window.experiments[stem]
    tabs.setCurrentWidget(view)
    assert window.findChild(type(view.canvas), name) is view.canvas
    button = window.findChild(QPushButton, name + "RunButton")
    with qtbot.waitSignal(view.finished, timeout=60_000) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] is not None and view.result is not None
    qtbot.waitUntil(lambda: not view.is_running())
    files = window.export_all(tmp_path)
    png, csv_path = tmp_path / f"{stem}.png", tmp_path / f"{stem}.csv"
    assert png in files and png.stat().st_size > 5000
    with open(csv_path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == HEADERS[stem] and len(rows) > 1


def test_cancel_stops_the_cost_lab_and_keeps_the_window_usable(make_window, qtbot):
    window = make_window(SMALL)
    view = window.experiments["cost_lab"]
    window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.finished, timeout=60_000) as blocker:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] is None or view.result is not None
    qtbot.waitUntil(lambda: view.run_button.isEnabled(), timeout=10_000)
    if blocker.args[0] is None:
        assert "cancelled" in view.status.text()


def test_batch_race_refuses_a_bad_list_without_starting(make_window, qtbot):
    window = make_window(SMALL)
    view = window.experiments["batch_race"]
    window.tabs.setCurrentWidget(view)
    edit = window.findChild(QLineEdit, "batchRaceSizesEdit")
    err = window.findChild(QLabel, "batchRaceSizesError")
    edit.selectAll()
    qtbot.keyClicks(edit, "1, zero")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert err.isVisible() and "not a whole number" in err.text()
    assert not view.is_running() and view.result is None
    edit.selectAll()
    qtbot.keyClicks(edit, "1, 16")
    with qtbot.waitSignal(view.finished, timeout=60_000):
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert not err.isVisible()
    assert [r.batch_size for r in view.result.runs] == [1, 16]


@pytest.mark.parametrize("stem", ["cost_lab", "batch_race"])
def test_closing_during_an_experiment_takes_under_a_second(make_window, qtbot, stem):
    import time

    window = make_window(Config(hidden=(128, 128), n_samples=4000))
    view = window.experiments[stem]
    window.tabs.setCurrentWidget(view)
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(view.is_running, timeout=5000)
    qtbot.wait(200)
    assert view.is_running()  # still computing when the window closes
    t0 = time.monotonic()
    window.close()
    assert time.monotonic() - t0 < 1.0
