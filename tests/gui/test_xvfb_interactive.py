"""The interactive app in a real X window: it trains until closed, and Ctrl+C (SIGINT) closes
it as the user would: settings saved, engine stopped, exit status 0."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from gui_testing import REPO_ROOT, cli_env, main_cmd, training_engine
from PySide6.QtCore import QSettings


@pytest.mark.xvfb
def test_interactive_window_closes_cleanly_on_sigint(tmp_path):
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed (apt-get install xvfb; see .ci/run)")
    n = next(
        k
        for k in range(97, 200)
        if not Path(f"/tmp/.X11-unix/X{k}").exists() and not Path(f"/tmp/.X{k}-lock").exists()
    )
    display = f":{n}"
    server = subprocess.Popen(
        [xvfb, display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        socket = Path(f"/tmp/.X11-unix/X{n}")  # made once the server listens
        end = time.monotonic() + 10
        while not socket.exists() and server.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        assert socket.exists(), f"Xvfb did not start on {display}"
        ini = tmp_path / "settings.ini"
        env = cli_env(ini, offscreen=False)
        env["DISPLAY"] = display
        app = subprocess.Popen(
            main_cmd("--batch-size", "16"),
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        training_engine(app)  # the window is up and its engine trains
        time.sleep(1.0)  # and keeps training
        assert app.poll() is None, f"the app ended on its own: {app.communicate()[1][-800:]}"
        app.send_signal(signal.SIGINT)
        out, err = app.communicate(timeout=15)
        # closed as on Ctrl+Q, then ended by the signal itself, so a shell sees 130
        assert app.returncode == -signal.SIGINT, err[-800:]
        assert "Traceback" not in err
        saved = QSettings(str(ini), QSettings.Format.IniFormat).value("config/last")
        assert json.loads(saved)["batch_size"] == 16
    finally:
        server.terminate()
        server.wait(5)
