"""Every experiment tab exports its result as an animation (gui/experiments/base.py): the clip
decodes with the frames asked for at the canvas's size, grows from a first frame unlike the
whole result to a last frame that is the whole result, on axes held fixed; the button is
enabled only with a complete result and no run going; a bad path says one line."""

from __future__ import annotations

import av
import numpy as np
import pyqtgraph as pg
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton

from core import Config
from gui.record_control import export_animation
from gui.recorder import qimage_to_rgb

SMALL = Config(hidden=(8, 8), n_samples=320, surface_resolution=11, surface_samples=32)
BUTTONS = {
    "cost_lab": "costLabPlotAnimationButton",
    "batch_race": "batchRaceAnimationButton",
    "reductions": "reductionsPlotAnimationButton",
    "misconception": "misconceptionPlotAnimationButton",
    "critical_batch": "criticalBatchPlotAnimationButton",
}
FRAMES = 10


def _n(item) -> int:
    """How many points ``item`` (a curve or a scatter) draws."""
    x = item.getData()[0]
    return 0 if x is None else len(x)


def _counts(view) -> list[int]:
    """The points each curve and scatter of the canvas draws."""
    return [
        _n(d)
        for item in view.canvas.ci.items
        if isinstance(item, pg.PlotItem)
        for d in item.listDataItems()
    ]


def _first_frame_is_the_start(view, whole_tip: float) -> None:
    """What the first of ten frames shows of each experiment (a tenth of it, or its first
    part), against the whole result."""
    r = view.result
    if view.file_stem == "cost_lab":  # the first batch size only
        assert all(_n(c) == 1 for c in view.curves.values())
    elif view.file_stem == "batch_race":  # every path at a tenth of its stored points
        assert 0 < _n(view.paths[0]) < len(r.runs[0].path)
    elif view.file_stem == "reductions":  # the first reduction's surface; no cloud yet
        assert [img.isVisible() for img in view.images] == [True] + [False] * 4
        assert _n(view.cloud) == 0
    elif view.file_stem == "misconception":  # the arrows growing; the curves not started
        assert _n(view.cos_curve) == 0
        tip = view.true_arrow.getData()[0][-1]
        assert abs(tip) < 0.5 * abs(whole_tip)
    elif view.file_stem == "critical_batch":  # B = 1's point; no fit, no B_crit yet
        assert [_n(d) for d in view.points] == [1, 1, 1]
        assert all(_n(c) == 0 for c in view.curves)
        assert not any(line.isVisible() for line in view.crit_lines + view.asymptotes)


def _changed(frame: np.ndarray, image: np.ndarray) -> float:
    """The share of 4 x 4 blocks whose brightness differs by more than 20 of 255 (a clip's
    compression changes single pixels at thin lines, hardly whole blocks)."""
    h, w = frame.shape[0] // 4 * 4, frame.shape[1] // 4 * 4

    def blocks(a):
        luma = a[:h, :w] @ np.array([0.299, 0.587, 0.114])
        return luma.reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3))

    return float((np.abs(blocks(frame) - blocks(image)) > 20).mean())


def _ranges(view) -> list:
    return [
        np.round(item.getViewBox().viewRange(), 9).tolist()
        for item in view.canvas.ci.items
        if isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem)
    ]


@pytest.mark.parametrize("stem", list(BUTTONS))
def test_each_experiment_exports_its_result_growing(make_window, qtbot, tmp_path, stem):
    window = make_window(SMALL)
    view = window.experiments[stem]
    window.tabs.setCurrentWidget(view)
    button = window.findChild(QPushButton, BUTTONS[stem])
    assert button is view.animation_button and not button.isEnabled()
    assert view.animation_tip and view.animation_tip in button.toolTip()
    assert list(view.animation_frames(3)) == []  # nothing to animate before a result
    assert view.run_blocking(quick=True) == ""
    assert button.isEnabled()
    qtbot.wait(30)  # the summary's height settles the layout
    whole_tip = view.true_arrow.getData()[0][-1] if stem == "misconception" else 0.0
    counts = _counts(view)
    whole, axes = qimage_to_rgb(view.canvas.grab().toImage()), _ranges(view)
    frames = view.animation_frames(FRAMES)
    next(frames)
    _first_frame_is_the_start(view, whole_tip)
    assert _ranges(view) == axes  # the whole result's axes, held
    assert not view.run_button.isEnabled() and not button.isEnabled()  # meanwhile
    frames.close()  # stopped early: the whole result again
    assert view.run_button.isEnabled() and button.isEnabled()

    path = str(tmp_path / f"{stem}.mp4")
    assert export_animation(view, path, n_frames=FRAMES) == path
    assert f"({FRAMES} frames)" in view.status.text()
    with av.open(path) as c:
        decoded = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(decoded) == FRAMES
    w, h = view.canvas.width(), view.canvas.height()
    assert decoded[0].shape == (h - h % 2, w - w % 2, 3)
    qtbot.wait(30)
    whole = qimage_to_rgb(view.canvas.grab().toImage())[: h - h % 2, : w - w % 2].astype(int)
    first, last = (_changed(f, whole) for f in (decoded[0], decoded[-1]))
    assert last < 0.005 < first, (first, last)  # it grows into the whole result
    assert _counts(view) == counts  # and that is drawn again


def test_a_gif_and_the_button_saying_why_it_cannot(make_window, qtbot, tmp_path, monkeypatch):
    answers: list[str] = []
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *a: (answers.pop(0), "GIF animation (*.gif)")),
    )
    window = make_window(SMALL)
    view = window.experiments["misconception"]
    window.tabs.setCurrentWidget(view)
    button = view.animation_button
    with qtbot.waitSignal(view.finished, timeout=60_000):
        view.start(quick=True)
        assert not button.isEnabled()  # no complete result while it runs
    assert button.isEnabled()

    path = str(tmp_path / "dldy.gif")
    assert export_animation(view, path, n_frames=12) == path
    with Image.open(path) as im:  # (equal frames in a row are merged into a longer one)
        assert im.size[0] <= 640 and 3 < im.n_frames <= 12
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    assert sum(durations) == 12 * min(durations)

    # the button: the save dialog (its answer queued), then one message for a bad folder
    answers.append(str(tmp_path / "no-such-folder" / "dldy.mp4"))
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    box = view.findChild(QMessageBox, "recordErrorBox")
    assert isinstance(box, QMessageBox) and box.isVisible()
    text = box.text()
    assert "dldy.mp4" in text and "Traceback" not in text and len(text.splitlines()) == 1
    assert view.status.text().startswith("animation not written")
    assert button.isEnabled() and view.run_button.isEnabled()
