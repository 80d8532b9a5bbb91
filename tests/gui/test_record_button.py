"""The Record button (gui/record_control.py): clips of the window and of one view written
while the window trains, decoded (frame count, size, codec); a bad path says one line; the
batch-size race exports its animation."""

from __future__ import annotations

import av
import pytest
from gui_testing import child, small_config
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QToolButton

from gui.recorder import GIF_MAX_SIDE


@pytest.fixture
def save_dialog(monkeypatch):
    """The save dialog answers with the next path queued; records what it was offered."""
    answers: list[str] = []
    offered: list[str] = []

    def fake(parent, caption, start, filters):
        offered.append(start)
        return (answers.pop(0) if answers else "", filters.split(";;")[0])

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake))
    return answers, offered


def _record_for(qtbot, window, start, stop, frames: int = 6):
    """Start with ``start()``, let the window train until ``frames`` frames are encoded,
    stop with ``stop()``; wait for the file. Returns (path written, frames encoded)."""
    rec = window.recorder
    start()
    qtbot.waitUntil(lambda: rec.recording, timeout=5000)
    qtbot.waitUntil(lambda: "REC" in rec.label.text(), timeout=5000)
    writer = rec.clip.writer  # counts what was encoded
    qtbot.waitUntil(lambda: writer.frames >= frames, timeout=30000)
    with qtbot.waitSignal(rec.finished, timeout=20000) as done:
        stop()
    assert not rec.recording
    return done.args[0], writer.frames


def test_button_records_the_window_to_mp4(qtbot, make_window, save_dialog, tmp_path):
    window = make_window(small_config(), run=True)
    answers, offered = save_dialog
    path = str(tmp_path / "window.mp4")
    answers.append(path)
    button = child(window, QToolButton, "recordButton")
    click = lambda: qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # noqa: E731
    written, n = _record_for(qtbot, window, click, click)
    assert written == path and n >= 6
    first = offered[0].rsplit("/", 1)[-1]
    assert first.startswith("batchscope-window-") and first.endswith(".mp4")  # default name
    with av.open(path) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        decoded = list(c.decode(s))
    assert len(decoded) == n
    w, h = window.width(), window.height()
    assert (decoded[0].width, decoded[0].height) == (w - w % 2, h - h % 2)
    assert "recorded" in window.statusBar().currentMessage()
    # the next recording is offered in the folder just used
    answers.append("")
    button.click()
    assert offered[-1].startswith(str(tmp_path))
    assert not window.recorder.recording


def test_shortcut_records_one_view_to_gif(qtbot, make_window, save_dialog, tmp_path):
    window = make_window(small_config(), run=True)
    answers, _ = save_dialog
    path = str(tmp_path / "surface.gif")
    answers.append(path)
    window.recorder.target_actions["loss_surface"].trigger()  # the button's menu
    window.recorder.from_backing_store = False  # frames by QWidget.grab, as on a desktop
    view = window.views["loss_surface"]
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    view.setFocus()

    def keys():
        qtbot.keyClick(
            view, Qt.Key.Key_R,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )  # fmt: skip

    written, n = _record_for(qtbot, window, keys, keys)
    assert written == path
    with Image.open(path) as im:
        frames = im.n_frames  # Pillow merges identical neighbours: at most what was written
        size = im.size
    assert 2 <= frames <= n
    w, h = view.width(), view.height()
    s = min(1.0, GIF_MAX_SIDE / max(w, h))
    assert abs(size[0] - round(w * s)) <= 1 and abs(size[1] - round(h * s)) <= 1


def test_diverging_run_clip_still_finishes(qtbot, make_window, tmp_path):
    window = make_window(small_config(lr=50.0), run=True)
    path = str(tmp_path / "boom.mp4")
    rec = window.recorder
    _record_for(qtbot, window, lambda: rec.start(path), rec.stop, frames=4)
    assert window.newest_snapshot.diverged
    with av.open(path) as c:
        assert len(list(c.decode(video=0))) >= 2


def test_unwritable_path_one_message(qtbot, make_window, save_dialog, tmp_path):
    window = make_window(small_config())
    answers, _ = save_dialog
    answers.append(str(tmp_path / "no-such-folder" / "clip.mp4"))
    window.toggle_recording()  # the menu's Record action (Ctrl+Shift+R)
    rec = window.recorder
    assert not rec.recording and rec.clip is None
    box = rec.error_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    text = box.text()
    assert "clip.mp4" in text and "No such file or directory" in text
    assert "Traceback" not in text and len(text.splitlines()) == 1
    assert not child(window, QToolButton, "recordButton").isChecked()


def test_record_action_in_menu(make_window):
    window = make_window(small_config())
    action = window.actions["recordAction"]
    assert action.shortcut().toString() == "Ctrl+Shift+R"
    assert [k for k, _ in window.recorder.targets()][:2] == ["window", "tab"]


def test_race_exports_its_animation(qtbot, make_window, tmp_path):
    from gui.record_control import export_animation

    window = make_window(small_config())
    race = window.experiments["batch_race"]
    window.tabs.setCurrentWidget(race)
    assert not race.animation_button.isEnabled()
    race.run_blocking(quick=True)
    assert race.animation_button.isEnabled()
    path = str(tmp_path / "race.mp4")
    assert export_animation(race, path, n_frames=12) == path
    with av.open(path) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 12
    w, h = race.canvas.width(), race.canvas.height()
    assert decoded[0].shape[:2] == (h - h % 2, w - w % 2)
    assert (decoded[0] != decoded[-1]).any()  # the paths grew
    # the whole result is drawn again afterwards
    full = race.result.runs[0].path
    assert len(race.paths[0].getData()[0]) == len(full)
    # a quarter of the way: every run's path and loss curves at a quarter of its samples
    n_curve = len(race.curves[0][1].getData()[0])
    frames = race.animation_frames(4)
    next(frames)
    assert len(race.paths[0].getData()[0]) < len(full)
    assert 0 < len(race.curves[0][1].getData()[0]) < n_curve
    frames.close()  # ends early: the whole result again
    assert len(race.curves[0][1].getData()[0]) == n_curve


def test_backing_store_frame_is_what_grab_paints(qtbot, window):
    from gui.record_control import grab_image
    from gui.recorder import qimage_to_bgra

    window.step_once()
    qtbot.waitUntil(lambda: window.redraw_count > 0, timeout=15000)
    for widget in (window, window.views["loss_matrix"]):

        def agree(widget=widget):
            # once the window has settled (the surface and its redraw arrive meanwhile)
            fast = qimage_to_bgra(grab_image(widget, True))
            slow = qimage_to_bgra(grab_image(widget, False))
            assert fast.shape == slow.shape == (widget.height(), widget.width(), 4)
            same = (fast[..., :3] == slow[..., :3]).all(axis=2).mean()
            assert same > 0.99, f"{widget.objectName()}: only {same:.1%} of the pixels agree"

        qtbot.waitUntil(agree, timeout=15000)


def test_gif_recording_stops_at_its_limit(qtbot, make_window, tmp_path, monkeypatch):
    import gui.record_control as rc

    monkeypatch.setattr(rc, "GIF_MAX_SECONDS", 0.6)  # a GIF is held in memory until written
    window = make_window(small_config(), run=True)
    rec = window.recorder
    path = str(tmp_path / "long.gif")
    with qtbot.waitSignal(rec.finished, timeout=20000):
        assert rec.start(path, "loss_curves")
    assert not rec.recording
    assert "a GIF stops after 0.6 s" in window.statusBar().currentMessage()
    with Image.open(path) as im:
        assert im.n_frames >= 1
