"""Helpers for the window tests: open/close windows, find controls, type, wait for snapshots.

Imported by conftest.py after it has chosen the Qt platform and the settings file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QPushButton, QWidget

from core import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIN = REPO_ROOT / "main.py"

#: A small run: fast steps and a quick loss surface.
SMALL = {"hidden": (16, 16), "surface_resolution": 15, "surface_samples": 64}

#: Upper bounds for waits; a passing test needs a fraction of them.
WAIT_MS = 15_000

VIEW_NAMES = ("loss_surface", "gradient_spread", "mean_gradient", "loss_matrix", "loss_curves")
VIEW_OBJECTS = {
    "loss_surface": "lossSurfacePlot",
    "gradient_spread": "gradientSpreadPlot",
    "mean_gradient": "meanGradientPlot",
    "loss_matrix": "lossMatrixPlot",
    "loss_curves": "lossCurvePlot",
}
CSV_HEADERS = {
    "loss_surface": "alpha,beta,loss",
    "gradient_spread": (
        "sample,along_mean,along_disagreement,cosine_to_mean,norm,per_sample_loss,weight"
    ),
    "mean_gradient": "param_index,layer,scalar_gradient,mean_of_per_sample,p10,p90",
    "loss_matrix": (
        "sample,M_output1,M_output2,M_output3,L_i,w_i,dLdY_output1,dLdY_output2,dLdY_output3"
    ),
    "loss_curves": "step,batch_loss,train_loss,val_loss,grad_norm,noise_scale,batch_size",
}


def small_config(**changes) -> Config:
    return Config(**{**SMALL, **changes})


# ------------------------------------------------------------------------- windows
def open_window(qtbot, config: Config | None = None, **kw):
    """A shown MainWindow (paused unless run=True), registered with qtbot; with ``qtbot``
    None (a window shared by several tests, see conftest's ``shared_window``) not registered:
    the caller closes it."""
    from PySide6.QtTest import QTest

    from gui.main_window import MainWindow

    kw.setdefault("run", False)
    kw.setdefault("remember", False)
    window = MainWindow(config=config, **kw)
    if qtbot is not None:
        qtbot.addWidget(window)
    window.show()
    if qtbot is not None:
        qtbot.waitExposed(window)
    else:
        assert QTest.qWaitForWindowExposed(window, WAIT_MS), "the window was never exposed"
    return window


def close_window(window, timeout_ms: int = 5000) -> None:
    """Close as the user does; the worker thread (and an engine process, if the worker uses
    one) must have finished."""
    window.close()
    thread = window.worker_thread.thread
    assert thread.wait(timeout_ms), "the worker thread did not stop after the window closed"
    assert thread.isFinished()
    engine = getattr(window.worker, "engine", None)
    process = getattr(engine, "process", None)
    if process is not None:
        process.join(timeout_ms / 1000)
        assert not process.is_alive(), "the engine process outlived the window"


def child(window, cls: type[QWidget], name: str):
    """The widget of class ``cls`` named ``name``; fails clearly if there is none."""
    w = window.findChild(cls, name)
    assert w is not None, f"no {cls.__name__} named {name!r} in the window"
    return w


# ---------------------------------------------------------------------- user input
def type_into(qtbot, widget: QWidget, text: str) -> None:
    """Select all, type ``text`` and press Enter, as a user does (line edit or spin box)."""
    widget.setFocus()
    edit = widget.lineEdit() if isinstance(widget, (QAbstractSpinBox, QComboBox)) else widget
    assert isinstance(edit, QLineEdit)
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert edit.selectedText() == edit.text(), "select-all did not select the text"
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def choose(combo: QComboBox, data) -> None:
    """Pick the item whose data is ``data`` and emit ``activated`` as a user's pick does."""
    i = combo.findData(data)
    assert i >= 0, f"{combo.objectName()} has no item {data!r}"
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def click(qtbot, window, name: str) -> None:
    qtbot.mouseClick(child(window, QPushButton, name), Qt.MouseButton.LeftButton)


# -------------------------------------------------------------------------- waiting
def wait_snapshot(qtbot, window, predicate, timeout: int = WAIT_MS):
    """Wait until ``window.last_snapshot`` exists and satisfies ``predicate``; return it."""

    def check():
        snap = window.last_snapshot
        assert snap is not None, "no snapshot yet"
        assert predicate(snap), f"not yet: step {snap.step}, run {snap.run_id}"

    qtbot.waitUntil(check, timeout=timeout)
    return window.last_snapshot


def wait_for(predicate, timeout: int = WAIT_MS) -> bool:
    """Run the event loop until ``predicate()`` is true (True) or ``timeout`` ms pass
    (False): ``qtbot.waitUntil`` for module-scoped fixtures, which have no qtbot."""
    from PySide6.QtCore import QDeadlineTimer
    from PySide6.QtTest import QTest

    deadline = QDeadlineTimer(timeout)
    while not predicate():
        if deadline.hasExpired():
            return False
        QTest.qWait(10)
    return True


def drawn_snapshot(window):
    """The snapshot the views show now (every view keeps the one it drew last)."""
    return window.findChild(QWidget, "lossCurvePlot").snapshot


def wait_drawn(qtbot, window, predicate, timeout: int = WAIT_MS):
    """Wait until the snapshot the views last drew satisfies ``predicate``; return it."""

    def check():
        snap = drawn_snapshot(window)
        assert snap is not None, "nothing drawn yet"
        assert predicate(snap), f"not yet: drawn step {snap.step}"

    qtbot.waitUntil(check, timeout=timeout)
    return drawn_snapshot(window)


def wait_settled(qtbot, window, predicate=lambda s: True, timeout: int = WAIT_MS):
    """Wait until the views show the newest snapshot received and it satisfies
    ``predicate`` (use when paused); return it."""
    return wait_drawn(qtbot, window, lambda s: s is window.last_snapshot and predicate(s), timeout)


def assert_no_training(qtbot, window, ms: int = 250) -> None:
    """Nothing to wait *for* when nothing should happen: give the worker ``ms`` to misbehave
    and check that no newer step arrived."""
    step = window.last_snapshot.step
    qtbot.wait(ms)
    assert window.last_snapshot.step == step, "training went on"


def wait_state(qtbot, window, state: str, timeout: int = WAIT_MS) -> None:
    label = window.state_label

    def check():
        assert label.text() == state, f"state is {label.text()!r}, want {state!r}"

    qtbot.waitUntil(check, timeout=timeout)


def start_training(qtbot, window, min_step: int = 3):
    """Click runButton (unchecked -> checked) and wait for ``min_step`` steps."""
    run = child(window, QPushButton, "runButton")
    assert not run.isChecked()
    qtbot.mouseClick(run, Qt.MouseButton.LeftButton)
    assert run.isChecked()
    return wait_snapshot(qtbot, window, lambda s: s.step >= min_step)


# ---------------------------------------------------------------------- subprocesses
def cli_env(settings_path: str | os.PathLike, offscreen: bool = True) -> dict[str, str]:
    """Environment for running main.py: no display, its own settings file."""
    env = dict(os.environ)
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(k, None)
    if offscreen:
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["BATCHSCOPE_SETTINGS"] = os.fspath(settings_path)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def selected_cases(request, test_name: str) -> list[tuple[str, dict]]:
    """(case id, parameters) of each case of the parametrised ``test_name`` in the requesting
    module that this session runs, in their order."""
    return [
        (item.callspec.id, item.callspec.params)
        for item in request.session.items
        if item.module is request.module and getattr(item, "originalname", "") == test_name
    ]


def training_engine(proc: subprocess.Popen, timeout: float = 60):
    """Wait until ``proc`` (main.py opening its window) has an engine process that is
    training (NumPy imported, its CPU time growing), as psutil.Process; fails if ``proc``
    ends or the engine does not train within ``timeout`` s (then ``proc`` is killed)."""
    import psutil
    import pytest

    app = psutil.Process(proc.pid)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, f"the app ended on its own: {proc.communicate()[1]!r}"
        engines = [c for c in app.children() if "spawn_main" in " ".join(c.cmdline())]
        if engines and engines[0].cpu_times().user > 0.35:  # imported NumPy, training
            return engines[0]
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the app did not start training within {timeout:g} s")


def main_cmd(*args: str) -> list[str]:
    return [sys.executable, str(MAIN), *args]


def run_main(tmp_path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """main.py with ``args`` in a subprocess without a display, its settings in ``tmp_path``."""
    return subprocess.run(
        main_cmd(*args),
        cwd=REPO_ROOT,
        env=cli_env(tmp_path / "cli-settings.ini"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
