"""Export: the window and every view as PNG (+ SVG) and CSV into a folder; all or nothing
per file, and a clear ExportError when the folder cannot be written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from gui_testing import (
    CSV_HEADERS,
    VIEW_NAMES,
    click,
    drawn_snapshot,
    small_config,
    start_training,
    wait_drawn,
    wait_settled,
    wait_state,
)
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from gui.export import ExportError


@pytest.fixture(scope="module")
def _made():
    return {}


@pytest.fixture
def trained(shared_window, _made, qtbot):
    """A paused window whose views show a snapshot with a surface: one for the module (the
    tests only export it), trained by the first test that asks."""
    if "window" in _made:
        return _made["window"]
    window = shared_window(small_config())
    start_training(qtbot, window, min_step=20)
    wait_drawn(qtbot, window, lambda s: s.surface is not None and s.step >= 20)
    click(qtbot, window, "runButton")
    wait_state(qtbot, window, "paused")
    wait_settled(qtbot, window, lambda s: s.surface is not None)
    _made["window"] = window
    return window


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted write would leave (exports write .name.partial.ext or
    .name.XXXX.tmp and rename)."""
    return sorted(p.name for p in folder.rglob(".*"))


def _check_png(path: Path, min_w: int = 100, min_h: int = 80) -> QImage:
    assert path.is_file() and path.stat().st_size > 1000, f"{path.name} missing or tiny"
    img = QImage(str(path))
    assert not img.isNull(), f"{path.name} is not a readable PNG"
    assert img.width() >= min_w and img.height() >= min_h, f"{path.name}: {img.size()}"
    return img


def test_export_all_writes_every_view(trained, tmp_path):
    window = trained
    out = tmp_path / "figures"  # created by the export
    files = window.export_all(out)
    names = {p.name for p in files}
    assert "window.png" in names
    for view in VIEW_NAMES:
        assert f"{view}.png" in names and f"{view}.csv" in names
    for p in files:
        assert p.parent == out and p.is_file() and p.stat().st_size > 0, p
    assert _leftovers(out) == []

    img = _check_png(out / "window.png", 800, 500)
    assert (img.width(), img.height()) == (window.width(), window.height())
    for view in VIEW_NAMES:
        _check_png(out / f"{view}.png")
        svg = out / f"{view}.svg"
        if svg.exists():  # a bonus where the exporter manages it
            assert b"<svg" in svg.read_bytes()[:2000]

    snap = drawn_snapshot(window)
    for view in VIEW_NAMES:
        rows = _rows(out / f"{view}.csv")
        assert ",".join(rows[0]) == CSV_HEADERS[view], view
        assert len(rows) > 1, f"{view}.csv has no data"
        assert all(len(r) == len(rows[0]) for r in rows), f"{view}.csv is ragged"
    res = snap.config.surface_resolution
    assert len(_rows(out / "loss_surface.csv")) == 1 + res * res
    assert len(_rows(out / "loss_matrix.csv")) == 1 + snap.batch_size
    assert len(_rows(out / "gradient_spread.csv")) == 1 + snap.batch_size
    assert len(_rows(out / "mean_gradient.csv")) == 1 + snap.n_params
    curves = _rows(out / "loss_curves.csv")
    assert len(curves) == 1 + len(snap.history)
    assert [int(r[0]) for r in curves[1:]] == list(range(1, snap.step + 1))
    # the two gradients in the CSV agree to round-off
    for r in _rows(out / "mean_gradient.csv")[1:]:
        assert abs(float(r[2]) - float(r[3])) < 1e-12
    # exporting again into the same folder replaces the files
    again = window.export_all(out)
    assert {p.name for p in again} == names
    assert _leftovers(out) == []


def test_export_into_a_path_under_a_file_fails_cleanly(trained, tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("not a folder")
    with pytest.raises(ExportError) as exc:
        trained.export_all(plain / "figures")
    assert "notes.txt" in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "settings"]
    assert plain.read_text() == "not a folder"

    with pytest.raises(ExportError, match="not a folder"):
        trained.export_all(plain)
    assert plain.read_text() == "not a folder"


@pytest.mark.parametrize("blocked", ["loss_curves.png", "loss_matrix.csv", "window.png"])
def test_export_failure_mid_way_leaves_no_partial_files(trained, tmp_path, blocked):
    out = tmp_path / "figures"
    out.mkdir()
    (out / blocked).mkdir()  # a folder where a file should go: this one cannot be written
    with pytest.raises(ExportError) as exc:
        trained.export_all(out)
    assert blocked in str(exc.value)
    assert (out / blocked).is_dir()
    assert _leftovers(out) == []
    for p in out.iterdir():  # whatever was written before the failure is whole
        if p.is_file():
            assert p.stat().st_size > 0
            if p.suffix == ".png":
                _check_png(p)


def test_export_button_and_ctrl_e(trained, qtbot, tmp_path, monkeypatch):
    import gui.main_window as mw

    asked = []

    def pick_folder(parent, caption, start):
        asked.append(caption)
        return str(tmp_path / f"export{len(asked)}")

    monkeypatch.setattr(mw.QFileDialog, "getExistingDirectory", staticmethod(pick_folder))
    click(qtbot, trained, "exportButton")
    assert len(asked) == 1
    for name in ("window.png", *(f"{v}.csv" for v in VIEW_NAMES)):
        assert (tmp_path / "export1" / name).is_file()
    assert "exported" in trained.statusBar().currentMessage()

    trained.activateWindow()
    qtbot.waitUntil(trained.isActiveWindow, timeout=5000)
    trained.views["loss_matrix"].setFocus()
    qtbot.keyClick(trained.views["loss_matrix"], Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert len(asked) == 2
    assert (tmp_path / "export2" / "window.png").is_file()


def test_export_button_reports_failure(trained, qtbot, tmp_path, monkeypatch):
    import gui.main_window as mw

    plain = tmp_path / "notes.txt"
    plain.write_text("x")
    warnings = []
    monkeypatch.setattr(
        mw.QFileDialog,
        "getExistingDirectory",
        staticmethod(lambda *a: str(plain / "figures")),
    )
    monkeypatch.setattr(
        mw.QMessageBox, "warning", staticmethod(lambda parent, title, text: warnings.append(text))
    )
    click(qtbot, trained, "exportButton")
    assert len(warnings) == 1 and "notes.txt" in warnings[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "settings"]
