"""Experiments stop when asked, at the widest network a user is likely to try (2048, 2048):
Cancel within half a second, closing the window within a second and without Qt's abort, and
Run never freezes the window (the weights come from the engine as a message)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from core import Config

WIDE = Config(hidden=(2048, 2048), lr=0.005, surface_resolution=11, surface_samples=32)
SMALL = Config(hidden=(8, 8), n_samples=320, surface_resolution=11, surface_samples=32)
STEMS = ("cost_lab", "batch_race", "reductions", "misconception")


@pytest.fixture(scope="module")
def wide_window(shared_window):
    """One paused window on the wide network for the module's tests that cancel (it takes
    seconds to build and start): each leaves it paused with no experiment running."""
    return shared_window(WIDE)


def _start_and_wait_computing(qtbot, view, at_least_s: float = 0.6) -> None:
    """Click Run; wait until the weights (if asked for) have come and the computation has
    been running for ``at_least_s``."""
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.is_running()
    qtbot.waitUntil(lambda: not view.is_waiting_for_engine(), timeout=60_000)
    assert view.is_running(), view.status.text()
    qtbot.wait(int(at_least_s * 1000))
    assert view.is_running(), f"finished before it could be cancelled: {view.status.text()}"


def _cancel_latency(qtbot, view) -> float:
    """Seconds from the Cancel click until the tab reports the run over (polled)."""
    t0 = time.perf_counter()
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10_000)
    return time.perf_counter() - t0


@pytest.mark.parametrize("stem", STEMS)
def test_cancel_takes_effect_within_half_a_second_on_a_wide_network(wide_window, qtbot, stem):
    window = wide_window
    view = window.experiments[stem]
    window.tabs.setCurrentWidget(view)
    latencies = []
    # a loaded machine can stretch one measurement: the best of up to three must be < 0.5 s
    for _ in range(3):
        _start_and_wait_computing(qtbot, view)
        latencies.append(_cancel_latency(qtbot, view))
        assert "cancelled" in view.status.text()
        assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()
        if latencies[-1] < 0.5:
            break
    assert min(latencies) < 0.5, f"cancel latencies {latencies}"


@pytest.mark.parametrize("stem", STEMS)
def test_closing_during_a_wide_experiment_takes_under_a_second(make_window, qtbot, stem):
    window = make_window(WIDE)
    view = window.experiments[stem]
    window.tabs.setCurrentWidget(view)
    _start_and_wait_computing(qtbot, view, at_least_s=0.3)
    runner = view._runner
    t0 = time.monotonic()
    window.close()
    took = time.monotonic() - t0
    assert took < 1.5, f"closing took {took:.2f} s"  # experiments: 1 s at most, the rest engine
    assert runner.join(0.5), "the experiment's thread still runs after the window closed"


class GapMeter:
    """The longest gap between ticks of a 10 ms timer in the GUI thread: how long the event
    loop was kept from running (10 = never kept waiting)."""

    def __init__(self) -> None:
        self.gaps: list[int] = []
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(lambda: self.gaps.append(self.clock.restart()))

    def start(self) -> None:
        self.gaps.clear()
        self.clock.start()
        self.timer.start()

    def stop(self) -> int:
        self.timer.stop()
        self.gaps.append(self.clock.elapsed())  # the stretch since the last tick counts too
        assert len(self.gaps) > 5, "the timer hardly ticked: the loop was not running"
        return max(self.gaps)


def _start_and_cancel(qtbot, view, meter: GapMeter) -> int:
    """Click Run, let the computation get under way, click Cancel, wait until the tab says
    it is over; the longest event-loop gap meanwhile (ms)."""
    meter.start()
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    if view.uses_live_weights():
        assert "waiting for the engine" in view.status.text()
    qtbot.waitUntil(lambda: not view.is_waiting_for_engine(), timeout=60_000)
    qtbot.wait(300)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10_000)
    qtbot.wait(100)  # what the end of the run draws
    return meter.stop()


def test_starting_or_cancelling_any_experiment_never_stalls_the_event_loop(wide_window, qtbot):
    """Every experiment tab (all of them: a new one is held to this too), started and
    cancelled on the wide network while live training runs: no gap over 100 ms in the event
    loop from the click on Run until Cancel has taken effect (the old blocking copy of the
    weights froze it for 250-400 ms). The machine is shared by several processes, so one
    stall may be a scheduling accident: each tab gets up to five tries and the best counts;
    a wait in the GUI thread's code stalls every try."""
    window = wide_window
    window.set_running(True)
    qtbot.waitUntil(lambda: window.last_snapshot is not None, timeout=60_000)
    meter = GapMeter()
    worst = {}
    assert set(STEMS) <= set(window.experiments)
    try:
        for stem, view in window.experiments.items():
            window.tabs.setCurrentWidget(view)
            for _ in range(5):
                qtbot.wait(200)
                worst[stem] = min(worst.get(stem, 10**9), _start_and_cancel(qtbot, view, meter))
                assert "cancel" in view.status.text() or "done" in view.status.text()
                if worst[stem] <= 100:
                    break
    finally:
        window.set_running(False)
    assert max(worst.values()) <= 100, f"longest event-loop gaps, best of 5 tries (ms): {worst}"


def test_cost_lab_pauses_live_training_and_resumes_it(make_window, qtbot):
    window = make_window(SMALL, run=True)
    qtbot.waitUntil(window.worker.is_running, timeout=10_000)
    view = window.experiments["cost_lab"]
    window.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.finished, timeout=60_000):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        assert not window.worker.is_running()  # paused at once, before measuring
    assert window.worker.is_running()
    assert "paused" in view.info.text()


def test_a_cancelled_race_keeps_the_runs_it_finished(make_window, qtbot):
    # wide enough that the runs after the first take seconds, not milliseconds
    window = make_window(Config(hidden=(256, 256), n_samples=320, surface_resolution=11))
    view = window.experiments["batch_race"]
    window.tabs.setCurrentWidget(view)
    view.sizes_edit.setText("1, 2, 4, 8")
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.result is not None, timeout=60_000)
    with qtbot.waitSignal(view.finished, timeout=10_000) as blocker:
        view.cancel()
    assert blocker.args[0] is None  # cancelled, not finished
    assert not view.result.complete and len(view.result.runs) >= 1
    assert "stay drawn" in view.status.text()
    assert "runs finished so far" in view.info.text()
    assert view.waiting_text.isVisible()


def test_the_race_starts_from_fresh_weights_unless_asked(make_window, qtbot):
    window = make_window(SMALL)
    view = window.experiments["batch_race"]
    window.tabs.setCurrentWidget(view)
    view.sizes_edit.setText("8, 16")
    with qtbot.waitSignal(view.finished, timeout=60_000):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        assert not view.is_waiting_for_engine()  # fresh weights: nothing to wait for
    assert view.result.start == "fresh" and "fresh initial weights" in view.info.text()
    assert f"learning rate {SMALL.lr:g}" in view.info.text()
    view.from_current.setChecked(True)
    with qtbot.waitSignal(view.finished, timeout=60_000):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        assert view.is_waiting_for_engine()
    assert view.result.start == "current" and "current weights" in view.info.text()


# ------------------------------------------------------------------ the real program
DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from gui.app import make_app
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    import main

    app = make_app()

    def go():
        win = next(w for w in QApplication.topLevelWidgets() if w.objectName() == "mainWindow")
        for view in win.experiments.values():
            view.start()
        print("started", flush=True)
        QTimer.singleShot({delay}, lambda: os.kill(os.getpid(), signal.{sig}))

    QTimer.singleShot(1500, go)
    sys.exit(main.main(["--hidden", "2048,2048", "--lr", "0.005"]))
    """
)


@pytest.mark.parametrize("sig,delay", [("SIGTERM", 1500), ("SIGINT", 400)])
def test_the_program_ends_cleanly_when_closed_during_every_experiment(tmp_path, sig, delay):
    """The real main.py: all four experiments running on the wide network, then a signal (as
    Ctrl+C or a polite kill does; the window closes as with Ctrl+Q). No Qt abort, no
    traceback, and the process is gone within a few seconds."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(repo=repo, delay=delay, sig=sig))
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "BATCHSCOPE_SETTINGS": str(tmp_path / "settings.ini"),
    }
    env.pop("DISPLAY", None)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure being tested
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the program did not end: {err[-2000:]}")
    assert "started" in out, err[-2000:]
    assert proc.returncode not in (-signal.SIGABRT, 134), err[-2000:]
    assert "QThread: Destroyed" not in err, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode in (0, -getattr(signal, sig), 128 + getattr(signal, sig)), (
        proc.returncode,
        err[-2000:],
    )


def test_cancel_while_waiting_for_the_engine_starts_nothing(make_window, qtbot):
    window = make_window(SMALL)
    view = window.experiments["reductions"]
    window.tabs.setCurrentWidget(view)
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert view.is_waiting_for_engine() and "waiting for the engine" in view.status.text()
    with qtbot.waitSignal(view.finished, timeout=5000) as blocker:
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] is None and "cancelled before it started" in view.status.text()
    qtbot.wait(500)  # the engine's answer arrives and is ignored
    assert not view.is_running() and view.result is None and view._runner is None
    assert view.run_button.isEnabled()
