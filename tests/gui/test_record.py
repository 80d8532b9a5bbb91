"""gui.recorder: clips written from real window grabs decode with the frame count, size and
codec asked for; a bad extension is refused with one line."""

from __future__ import annotations

import av
import numpy as np
import pytest
from gui_testing import run_main
from PIL import Image
from PySide6.QtWidgets import QLabel

from gui.recorder import ClipWriter, RecordError, clip_format, qimage_to_rgb


def _frames(n: int, w: int, h: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return [np.roll(base, 3 * i, axis=1) for i in range(n)]


def test_mp4_decodes_h264_yuv420p_even_size(tmp_path):
    path = str(tmp_path / "a.mp4")
    with ClipWriter(path, fps=30) as w:
        for f in _frames(12, 161, 101):  # odd size: cropped to even
            w.add(f)
    with av.open(path) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        assert s.codec_context.pix_fmt == "yuv420p"
        decoded = list(c.decode(s))
    assert len(decoded) == 12
    assert (decoded[0].width, decoded[0].height) == (160, 100)


def test_gif_frame_count_and_default_size(tmp_path):
    path = str(tmp_path / "a.gif")
    with ClipWriter(path, fps=20) as w:
        for f in _frames(5, 1280, 720):
            w.add(f)
    with Image.open(path) as im:
        assert im.n_frames == 5
        assert im.size == (640, 360)
        assert im.info["duration"] == 50


def test_window_grab_to_rgb(qtbot):
    label = QLabel("x")
    qtbot.addWidget(label)
    label.resize(64, 48)
    label.setStyleSheet("background: rgb(255, 0, 0)")
    label.show()
    rgb = qimage_to_rgb(label.grab().toImage())
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3 and rgb.flags.c_contiguous
    assert tuple(rgb[1, 1]) == (255, 0, 0)


def test_bad_extension_refused():
    with pytest.raises(RecordError, match=r"clip\.avi: name a \.mp4 or \.gif"):
        clip_format("clip.avi")


def test_cli_record_mp4_with_screenshot(tmp_path):
    clip, shot = tmp_path / "run.mp4", tmp_path / "shot.png"
    r = run_main(
        tmp_path, "--steps", "100", "--size", "1101x701", "--fps", "25",
        "--record", str(clip), "--screenshot", str(shot),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert shot.is_file()
    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        assert s.average_rate == 25
        decoded = list(c.decode(s))
    assert len(decoded) == 20  # one frame every 5 steps
    pix = [f.to_ndarray(format="rgb24") for f in decoded]
    assert all((a != b).any() for a, b in zip(pix, pix[1:]))  # the run moves in every frame
    assert (decoded[0].width, decoded[0].height) == (1100, 700)  # cropped to even


def test_cli_diverging_run_finishes_its_clip(tmp_path):
    clip = tmp_path / "boom.gif"
    r = run_main(
        tmp_path, "--steps", "50", "--lr", "50", "--size", "800x500", "--record", str(clip)
    )
    assert r.returncode == 3, r.stderr
    assert "diverged" in r.stderr and "the clip ends at step" in r.stderr
    with Image.open(clip) as im:
        assert 1 <= im.n_frames < 10
        im.seek(im.n_frames - 1)  # the last frame decodes: the file was finished


def test_cli_bad_extension_exit_2_one_line(tmp_path):
    r = run_main(tmp_path, "--record", str(tmp_path / "clip.avi"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == [
        "batchscope: error: --record: clip.avi: name a .mp4 or .gif file "
        "(the extension sets the format)"
    ]
    assert not (tmp_path / "clip.avi").exists()
