"""The real window under Xvfb (Qt's xcb platform, not offscreen): `main.py --steps 200
--screenshot` must draw a full picture. Needs xvfb-run (see .ci/run); without it this test
fails, it does not skip."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from gui_testing import REPO_ROOT, cli_env, main_cmd
from PySide6.QtGui import QImage

SCREEN = "-screen 0 1600x1000x24"


def _pixels(path) -> np.ndarray:
    """The PNG's pixels as (H, W) uint32 0xffRRGGBB."""
    img = QImage(str(path))
    assert not img.isNull(), f"{path} is not a readable image"
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)
    return buf[:, : 4 * w].copy().view(np.uint32).reshape(h, w)


@pytest.mark.xvfb
@pytest.mark.parametrize("size", [None, "1280x800"])
def test_real_window_screenshot(tmp_path, size):
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        pytest.fail(
            "xvfb-run is not installed: the real-window test needs Xvfb and the xcb "
            "libraries (apt-get install xvfb xauth libxcb-cursor0 ...; see .ci/run)"
        )
    shot = tmp_path / "shot.png"
    extra = ["--size", size] if size else []
    env = cli_env(tmp_path / "xvfb-settings.ini", offscreen=False)  # xcb, a real X server
    r = subprocess.run(
        [
            xvfb_run,
            "-a",
            "-s",
            SCREEN,
            *main_cmd("--steps", "200", *extra, "--screenshot", str(shot)),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr
    assert "saved" in r.stderr
    assert shot.is_file()

    px = _pixels(shot)
    want = tuple(int(x) for x in (size or "1600x1000").split("x"))
    assert (px.shape[1], px.shape[0]) == want
    colours, counts = np.unique(px, return_counts=True)
    assert len(colours) > 500, f"only {len(colours)} distinct colours: little was drawn"
    top = counts.max() / px.size
    assert top < 0.6, f"{top:.0%} of the picture is one colour (#{colours[counts.argmax()]:08x})"
    # every quarter of the window has content (nothing left blank)
    h, w = px.shape
    for q in (
        px[: h // 2, : w // 2],
        px[: h // 2, w // 2 :],
        px[h // 2 :, : w // 2],
        px[h // 2 :, w // 2 :],
    ):
        assert len(np.unique(q)) > 100
