"""Being stopped: SIGINT, SIGTERM and SIGHUP, to the app or to its whole process group, end
the real ``main.py`` (offscreen, in a session of its own) within 2 s, as Ctrl+Q does:
settings saved, no engine or helper left, nothing on stderr (no traceback, no Qt abort).
The failures these guard against were intermittent, so each case runs more than once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from gui_testing import MAIN, REPO_ROOT, training_engine

#: seconds from the signal to the end of every process of the app
LIMIT_S = 2.0
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


def _group(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of process group ``pgid``."""
    found = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


def launch(tmp_path: Path, training: bool = True) -> tuple[subprocess.Popen, psutil.Process]:
    """main.py training in a window (offscreen), in a new session; returns it once its
    engine process is training (or, ``training=False``, once it has loaded Qt: the window
    and its engine are being made)."""
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        BATCHSCOPE_SETTINGS=str(tmp_path / "settings.ini"),
        BATCHSCOPE_LOG_DIR=str(tmp_path / "logs"),
        PYTHONFAULTHANDLER="1",
    )
    proc = subprocess.Popen(
        [sys.executable, str(MAIN), "--hidden", "16,16", "--size", "1280x720"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    if training:
        return proc, training_engine(proc)
    app = psutil.Process(proc.pid)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()[1].decode()
        if any("libQt6Widgets" in m.path for m in app.memory_maps()):
            return proc, None
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the app did not load Qt within 60 s")


def stop_and_measure(proc: subprocess.Popen, sig: int, whole_group: bool) -> float:
    """Send ``sig`` to the app (or its group); seconds until no process of it is left."""
    t0 = time.monotonic()
    if whole_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("the app was still running 10 s after the signal")
    while _group(proc.pid) and time.monotonic() - t0 < 10:
        time.sleep(0.01)
    return time.monotonic() - t0


@pytest.mark.parametrize("whole_group", [False, True], ids=["process", "group"])
@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_stop_signal_ends_the_app_cleanly_and_promptly(name, whole_group, tmp_path):
    sig = SIGNALS[name]
    for attempt in range(2):
        proc, engine = launch(tmp_path)
        elapsed = stop_and_measure(proc, sig, whole_group)
        out, err = proc.communicate()
        err = err.decode(errors="replace")
        left = _group(proc.pid)
        assert not left, f"left running: {[p.cmdline() for p in left]}"
        assert not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE
        assert elapsed < LIMIT_S, f"{name} took {elapsed:.2f} s (try {attempt + 1})"
        # ended by the signal's default action after closing: the shell sees what ended it
        assert proc.returncode == -sig, (proc.returncode, err)
        assert err.strip() == "", f"stderr after {name}:\n{err}"
        # the window closed as on Ctrl+Q: its settings were saved
        saved = (tmp_path / "settings.ini").read_text()
        assert "[config]" in saved and '\\"hidden\\": [16, 16]' in saved, saved[:300]
        (tmp_path / "settings.ini").unlink()


def test_a_stop_signal_while_the_window_is_being_made_ends_it_at_once(tmp_path):
    """Before the event loop runs there is no window to close: the app ends at once,
    silently, and its engine (if it was started) with it."""
    for name in ("SIGINT", "SIGTERM"):
        proc, _ = launch(tmp_path, training=False)
        elapsed = stop_and_measure(proc, SIGNALS[name], whole_group=True)
        _out, err = proc.communicate()
        assert elapsed < LIMIT_S and proc.returncode == -SIGNALS[name]
        assert err.decode(errors="replace").strip() == ""
        assert not _group(proc.pid)
