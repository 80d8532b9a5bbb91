"""Dataset → "Open CSV…": the dialog's preview, column choice, task and scale; a refusal shown
in the dialog with the file's line number (the run untouched); the choice applied, kept in
the config file the window saves, and offered again under Recent CSV files."""

from __future__ import annotations

import json

import numpy as np
from gui_testing import child, small_config, wait_drawn, wait_snapshot
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
)


def house_csv(tmp_path, n=120, name="house.csv"):
    rng = np.random.default_rng(2)
    area = rng.uniform(40, 250, n)
    rooms = rng.integers(1, 7, n)
    price = 1.8 * area + 12 * rooms + 60 + rng.normal(0, 15, n)
    lines = ["area_m2,rooms,colour,price_k"] + [
        f'{a:.1f},{r},{"red" if r % 2 else "blue"},"{p:.1f}"' for a, r, p in zip(area, rooms, price)
    ]
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    return str(path)


def open_dialog(qtbot, window, path=""):
    action = window.findChild(type(window.csv_menu.open_action), "openCsvAction")
    assert action is window.csv_menu.open_action and action.shortcut().toString()
    assert window.csv_menu.menu.title() == "&Dataset"
    action.trigger()
    dlg = window.csv_menu.dialog
    assert dlg is not None and dlg.isVisible()
    if path:
        edit = child(dlg, QLineEdit, "csvPathEdit")
        edit.setFocus()
        edit.setText(path)
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    return dlg


def tick(lst: QListWidget, name: str, on: bool) -> None:
    (item,) = lst.findItems(name, Qt.MatchFlag.MatchExactly)
    item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)


def test_open_csv_preview_choose_and_train(make_window, qtbot, tmp_path):
    window = make_window(small_config())
    path = house_csv(tmp_path)
    dlg = open_dialog(qtbot, window, path)
    preview = child(dlg, QTableWidget, "csvPreview")
    assert preview.columnCount() == 4 and preview.rowCount() == 20
    assert preview.horizontalHeaderItem(0).text() == "area_m2"  # no BOM in the name
    assert preview.verticalHeaderItem(0).text() == "line 2"
    inputs = child(dlg, QListWidget, "csvInputsList")
    targets = child(dlg, QListWidget, "csvTargetsList")
    ok = child(dlg, QPushButton, "csvOkButton")
    error = child(dlg, QLabel, "csvError")
    # the default (all but the last column as inputs) includes the text column: refused
    assert not ok.isEnabled() and error.isVisible()
    assert (
        "line 2:" in error.text() and "'colour'" in error.text() and "not a number" in error.text()
    )
    tick(inputs, "colour", False)
    assert ok.isEnabled() and not error.isVisible()
    summary = child(dlg, QLabel, "csvSummary").text()
    assert "120 rows" in summary and "2 inputs → 1 output" in summary
    assert "regression (guessed" in summary and "standardised on the training split" in summary
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert not dlg.isVisible()
    wait_drawn(qtbot, window, lambda s: s.config.dataset == "csv")
    window.step_once()
    snap = wait_snapshot(qtbot, window, lambda s: s.config.dataset == "csv" and s.step >= 1)
    assert np.isfinite(snap.loss) and not snap.diverged
    cfg = window.controls.config
    assert cfg.csv_inputs == ("area_m2", "rooms") and cfg.csv_targets == ("price_k",)
    assert cfg.csv_scale == "standard" and cfg.csv_task == "auto"
    assert snap.layer_sizes[0] == 2 and snap.layer_sizes[-1] == 1
    combo = child(window, QComboBox, "datasetCombo")
    assert combo.currentText() == "CSV: house.csv"
    assert window.csv_menu.recent() == [path]
    # the choice is in the config file the window saves
    saved = tmp_path / "saved.json"
    assert window.save_config_file(str(saved))
    data = json.loads(saved.read_text())
    assert data["csv_path"] == path and data["csv_inputs"] == ["area_m2", "rooms"]
    assert data["csv_scale"] == "standard"
    # a text column as the target: classification, guessed, one output per class
    dlg = open_dialog(qtbot, window)
    assert dlg.path_edit.text() == path  # the current file again, with the current columns
    inputs = child(dlg, QListWidget, "csvInputsList")
    targets = child(dlg, QListWidget, "csvTargetsList")
    tick(targets, "price_k", False)
    tick(targets, "colour", True)
    tick(inputs, "price_k", True)
    assert "classification, 2 classes (guessed" in child(dlg, QLabel, "csvSummary").text()
    dlg.reject()


def test_refusals_stay_in_the_dialog_and_the_run_is_untouched(make_window, qtbot, tmp_path):
    window = make_window(small_config())
    broken = tmp_path / "broken.csv"
    broken.write_text('a,b,y\n1,2,3\n4,5,6\n7,"8,9\n' + "1,2,3\n" * 200)
    dlg = open_dialog(qtbot, window, str(broken))
    error = child(dlg, QLabel, "csvError")
    assert error.isVisible() and "line 4:" in error.text() and "never closes" in error.text()
    assert len(error.text()) < 200
    assert not child(dlg, QPushButton, "csvOkButton").isEnabled()
    short = tmp_path / "short.csv"
    short.write_text("a,y\n" + "1,2\n" * 5)
    dlg.show_file(str(short))
    assert "5 data rows" in error.text()
    # a file whose training set is smaller than the batch: refused before it is applied
    small = tmp_path / "small.csv"
    small.write_text("a,y\n" + "".join(f"{i},{i * 2}\n" for i in range(20)))
    dlg.show_file(str(small))
    assert "batch_size" in error.text() and "16" in error.text()
    dlg.reject()
    assert window.controls.config.dataset == "teacher"
    assert window.csv_menu.recent() == []


def test_recent_csv_files_are_remembered(make_window, qtbot, tmp_path):
    first = house_csv(tmp_path, name="first.csv")
    window = make_window(small_config(), remember=True)
    dlg = open_dialog(qtbot, window, first)
    tick(child(dlg, QListWidget, "csvInputsList"), "colour", False)
    scale = child(dlg, QComboBox, "csvScaleCombo")
    scale.setCurrentIndex(scale.findData("none"))
    dlg.accept()
    wait_drawn(qtbot, window, lambda s: s.config.dataset == "csv")
    assert window.controls.config.csv_scale == "none"
    window.close()
    again = make_window(small_config(), remember=True)
    menu = again.csv_menu.recent_menu
    assert menu.isEnabled() and [a.text() for a in menu.actions()] == [first]
    menu.actions()[0].trigger()
    dlg = again.csv_menu.dialog
    assert dlg.path_edit.text() == first
    assert child(dlg, QTableWidget, "csvPreview").rowCount() == 20
    dlg.reject()


def test_a_config_file_naming_a_bad_csv_is_refused_under_dataset(make_window, qtbot, tmp_path):
    window = make_window(small_config())
    bad = tmp_path / "bad.csv"
    bad.write_text("a,y\n" + "1,2\n" * 10 + "oops,3\n")
    cfg = tmp_path / "uses_bad.json"
    cfg.write_text(json.dumps({"dataset": "csv", "csv_path": str(bad)}))
    window.load_config_file(str(cfg))
    label = child(window, QLabel, "datasetError")
    qtbot.waitUntil(lambda: label.isVisible() and "line 12:" in label.text(), timeout=15000)
    assert "'oops' is not a number" in label.text()
    assert window.controls.config.dataset == "teacher"  # the run goes on with its data


def test_ticking_columns_reads_the_file_once(make_window, qtbot, tmp_path, monkeypatch):
    import gui.csv_dialog as mod

    window = make_window(small_config())
    path = house_csv(tmp_path)
    reads = []
    real = mod.read_table
    monkeypatch.setattr(mod, "read_table", lambda p, **kw: reads.append(kw) or real(p, **kw))
    dlg = open_dialog(qtbot, window, path)
    inputs = child(dlg, QListWidget, "csvInputsList")
    for on in (False, True, False):
        tick(inputs, "colour", on)
    tick(inputs, "rooms", False)
    assert "1 input → 1 output" in child(dlg, QLabel, "csvSummary").text()
    assert reads == [{"max_rows": 20}, {}]  # the preview, then the whole file once
    with open(path, "a") as fh:  # the file changed: read again
        fh.write("100.0,3,red,250.0\r\n")
    tick(inputs, "rooms", True)
    assert "121 rows" in child(dlg, QLabel, "csvSummary").text()
    dlg.reject()
