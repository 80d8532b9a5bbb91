"""Closing the window (the worker stops at once, even inside a long surface computation),
remembered preferences, and configuration files."""

from __future__ import annotations

import json
import time

import pytest
from gui_testing import (
    child,
    click,
    close_window,
    open_window,
    small_config,
    start_training,
    type_into,
    wait_snapshot,
)
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel, QLineEdit, QSpinBox

from core import Config

#: The slowest loss surface the engine will compute live (its cost budget shrinks the grid to
#: fit, ~0.4-1 s here); wide layers make every chunk of the grid expensive.
SLOW_SURFACE = Config(hidden=(1200, 1200), surface_resolution=201, surface_samples=1024)


def test_close_while_training_stops_the_worker(qtbot):
    window = open_window(qtbot, small_config(), run=True)
    wait_snapshot(qtbot, window, lambda s: s.step >= 20)
    t0 = time.perf_counter()
    close_window(window, timeout_ms=1000)
    assert time.perf_counter() - t0 < 1.0
    assert not window.timer.isActive()


def test_close_during_a_surface_computation_is_prompt(qtbot):
    window = open_window(qtbot, SLOW_SURFACE)
    busy: list[bool] = []
    # a direct connection: appended in the worker thread the moment it is emitted
    window.worker.surfaceBusy.connect(busy.append)
    qtbot.waitUntil(lambda: True in busy, timeout=30_000)
    for _ in range(5):
        if busy[-1]:
            break  # a surface is being computed right now
        started = busy.count(True)
        click(qtbot, window, "recomputeButton")  # ask for another one and catch it
        qtbot.waitUntil(lambda n=started: busy.count(True) > n, timeout=30_000)
    else:
        pytest.fail("never caught a loss surface in progress")
    t0 = time.perf_counter()
    close_window(window, timeout_ms=1000)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"closing took {elapsed:.2f} s"


def test_preferences_are_remembered(qtbot, _isolated_settings):
    window = open_window(qtbot, small_config(), remember=True)
    start_training(qtbot, window, min_step=3)
    type_into(qtbot, child(window, QSpinBox, "batchSizeSpin"), "8")
    type_into(qtbot, child(window, QLineEdit, "hiddenLayersEdit"), "12")
    wait_snapshot(qtbot, window, lambda s: s.batch_size == 8 and s.layer_sizes == (5, 12, 3))
    close_window(window)

    assert _isolated_settings.is_file()
    s = QSettings(str(_isolated_settings), QSettings.Format.IniFormat)
    assert not s.value("window/geometry").isEmpty()
    import main

    last = main.last_config()  # what `python main.py` starts from next time
    assert last is not None
    assert last.batch_size == 8 and last.hidden == (12,)

    # a new window restores geometry and dock layout from the file (offscreen screens are
    # 800 x 800, smaller than the window's minimum, so the size itself is not compared)
    assert not s.value("window/state").isEmpty()
    again = open_window(qtbot, small_config(), remember=True)
    assert again.isVisible()
    close_window(again)


def test_without_remember_nothing_is_written(qtbot, _isolated_settings):
    window = open_window(qtbot, small_config(), remember=False)
    start_training(qtbot, window, min_step=3)
    close_window(window)
    assert not _isolated_settings.exists()


def test_configuration_files(window, qtbot, tmp_path):
    start = start_training(qtbot, window, min_step=5)

    bad = tmp_path / "bad.json"
    bad.write_text('{"lr": "fast"}')
    assert window.load_config_file(str(bad)) is False
    box = window.warning_box
    assert box.isVisible() and "lr" in box.text()
    box.close()
    snap = wait_snapshot(qtbot, window, lambda s: s.step > start.step + 5)
    assert snap.config.lr == start.config.lr and snap.run_id == start.run_id

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"batch_size": 16, "reduction": "sum", "hidden": [16, 16]}))
    assert window.load_config_file(str(good)) is True
    snap = wait_snapshot(
        qtbot, window, lambda s: s.batch_size == 16 and s.config.reduction == "sum"
    )
    assert snap.run_id == start.run_id  # same shape: no rebuild
    assert child(window, QSpinBox, "batchSizeSpin").value() == 16
    assert not child(window, QLabel, "batchSizeError").isVisible()

    saved = tmp_path / "saved.json"
    assert window.save_config_file(str(saved)) is True
    cfg = Config.load(saved)
    assert cfg.batch_size == 16 and cfg.reduction == "sum" and cfg.hidden == (16, 16)


def test_garbage_is_collected_in_the_gui_thread_between_events(qtbot, _app_style):
    """Automatic cyclic collection is off (it once ran inside QObject::disconnect and freed an
    old window's widgets there: a self-deadlock); the app's timer collects instead."""
    import gc
    import weakref

    from PySide6.QtCore import QObject

    assert not gc.isenabled()
    collector = _app_style.garbage_collector
    assert collector.timer.isActive()

    class Cycle(QObject):
        pass

    obj = Cycle()
    obj.me = obj  # a reference cycle only the cyclic collector can free
    alive = weakref.ref(obj)
    del obj
    # enough live containers for a gen-0 collection, were automatic collection on
    keep = [[] for _ in range(2 * collector.threshold[0])]
    assert gc.get_count()[0] > collector.threshold[0]
    assert alive() is not None, "something other than the app's timer collected the cycle"

    def collected() -> bool:
        # freeing an earlier test's window lowers the gen-0 count too (deallocations count):
        # keep it over the threshold, as a busy app would, so that the timer has a reason
        if gc.get_count()[0] <= collector.threshold[0]:
            keep.extend([] for _ in range(collector.threshold[0]))
        return alive() is None

    qtbot.waitUntil(collected, timeout=3000)
    keep.clear()


def test_resources_are_found_in_a_checkout_and_in_an_install(tmp_path):
    """A checkout (or an editable install) reads resources/ beside gui/; a non-editable
    install has them as the package batchscope_resources beside gui/ in site-packages."""
    from gui.main_window import RESOURCES, find_resources

    assert RESOURCES.name == "resources" and (RESOURCES / "help.md").is_file()
    installed = tmp_path / "site-packages"
    (installed / "batchscope_resources").mkdir(parents=True)
    (installed / "batchscope_resources" / "help.md").write_text("# help\n", encoding="utf-8")
    assert find_resources(installed) == installed / "batchscope_resources"
    assert find_resources(tmp_path / "empty").name == "resources"  # missing: said in the window


# ------------------------------------------------------------ the engine dying
def _kill_engine(window) -> int:
    import os
    import signal

    pid = window.worker.engine.process.pid
    os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer does
    return pid


def test_a_killed_engine_is_replaced_and_training_carries_on_with_its_history(qtbot):
    import numpy as np
    from PySide6.QtWidgets import QApplication

    window = open_window(qtbot, small_config(optimizer="adam"), run=True)
    try:
        before = wait_snapshot(qtbot, window, lambda s: s.step >= 300)
        with qtbot.waitSignal(window.worker.engineRestarted, timeout=20_000) as restarted:
            _kill_engine(window)
        how, step, _seconds = restarted.args
        assert "SIGKILL" in how
        # carries on from the newest state the window held: at most the steps in flight lost
        assert step >= before.step
        t0 = time.perf_counter()
        after = wait_snapshot(qtbot, window, lambda s: s.step >= step + 100, timeout=20_000)
        resumed_s = time.perf_counter() - t0
        assert resumed_s < 10, f"training resumed {resumed_s:.1f} s after the restart"
        assert after.run_id == before.run_id  # the same run, not a reset
        # the history is whole: every step once, in order, and the old rows unchanged
        np.testing.assert_array_equal(after.history.steps, np.arange(1, after.step + 1))
        n = len(before.history)
        np.testing.assert_array_equal(after.history.loss[:n], before.history.loss)
        np.testing.assert_array_equal(after.history.steps[:n], before.history.steps)
        # no modal box; the banner says what happened
        assert QApplication.activeModalWidget() is None
        assert window.banner.isVisible() and "SIGKILL" in window.banner.text()
        assert f"step {step:,}" in window.banner.text()
        assert window.worker.is_running()
        logged = window.error_log.path.read_text(encoding="utf-8")
        assert "killed by SIGKILL" in logged
    finally:
        close_window(window)


def test_commands_the_dead_engine_had_not_applied_reach_the_new_one(qtbot):
    from core import Update

    window = open_window(qtbot, small_config(), run=False)
    try:
        window.step_once()
        wait_snapshot(qtbot, window, lambda s: s.step == 1)
        with qtbot.waitSignal(window.worker.engineRestarted, timeout=20_000):
            window.worker.engine.process.kill()
            window.worker.post(Update({"batch_size": 8}))  # sent to the dead engine
        window.step_once()
        snap = wait_snapshot(qtbot, window, lambda s: s.step == 2, timeout=20_000)
        assert snap.batch_size == 8 and snap.config.batch_size == 8
        assert len(snap.history) == 2 and list(snap.history.batch_size) == [32, 8]
    finally:
        close_window(window)


def test_three_deaths_within_30_s_stop_the_restarts_and_say_so(qtbot):
    from PySide6.QtWidgets import QPushButton

    window = open_window(qtbot, small_config(), run=True)
    try:
        wait_snapshot(qtbot, window, lambda s: s.step >= 20)
        for _ in range(2):
            with qtbot.waitSignal(window.worker.engineRestarted, timeout=20_000):
                _kill_engine(window)
            step = window.last_snapshot.step
            wait_snapshot(qtbot, window, lambda s, n=step: s.step > n, timeout=20_000)
        with qtbot.waitSignal(window.worker.engineLost, timeout=20_000) as lost:
            _kill_engine(window)
        how, why = lost.args
        assert "SIGKILL" in how and "3 times within 30 s" in why
        banner = window.banner
        qtbot.waitUntil(lambda: banner.isVisible() and banner.level == "error", timeout=5000)
        assert "not restarted" in banner.text()
        assert not window.worker.is_running()
        assert not child(window, QPushButton, "runButton").isChecked()
        assert window.state_label.text() == "paused"
        # the banner's button starts a new engine; Space then trains again
        button = child(window, QPushButton, "bannerAction")
        assert button.text() == "Restart engine"
        with qtbot.waitSignal(window.worker.engineRestarted, timeout=20_000):
            click(qtbot, window, "bannerAction")
        step = window.last_snapshot.step
        window.set_running(True)
        wait_snapshot(qtbot, window, lambda s: s.step > step + 10, timeout=20_000)
    finally:
        close_window(window)


# ------------------------------------------------------------------- the log
def test_help_opens_the_log_folder(window, monkeypatch):
    from PySide6.QtGui import QAction, QDesktopServices

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    action = window.findChild(QAction, "openLogFolderAction")
    assert action is not None and str(window.error_log.path) in action.toolTip()
    action.trigger()
    assert [u.toLocalFile() for u in opened] == [str(window.error_log.folder)]
    assert window.error_log.folder.is_dir()


def test_uncaught_errors_are_logged_with_their_traceback_and_rotated(qtbot, tmp_path, monkeypatch):
    import sys

    from gui import error_log

    monkeypatch.setattr(error_log, "MAX_BYTES", 2000)
    printed = []  # stands for Python's own hook (pytest-qt's would fail this test)
    monkeypatch.setattr(sys, "excepthook", lambda *exc: printed.append(exc[1]))
    log = error_log.ErrorLog(tmp_path / "logs")
    before = sys.excepthook
    log.install_hooks()
    try:
        assert log.path.parent == tmp_path / "logs" and not log.folder.exists()  # made lazily
        try:
            raise ValueError("a bug in a slot")
        except ValueError:
            with qtbot.waitSignal(log.errorLogged) as got:
                sys.excepthook(*sys.exc_info())
        assert got.args == ["ValueError: a bug in a slot"]
        text = log.path.read_text(encoding="utf-8")
        assert "uncaught exception: ValueError: a bug in a slot" in text
        assert "Traceback (most recent call last)" in text and "raise ValueError" in text
        assert [str(e) for e in printed] == ["a bug in a slot"]  # still printed as before
        for k in range(40):
            log.error(f"error {k}", "x" * 200)
        assert (tmp_path / "logs" / "batchscope.log.1").is_file()  # rotated, bounded
        assert len(list((tmp_path / "logs").iterdir())) <= 1 + error_log.BACKUPS
    finally:
        log.close()
    assert sys.excepthook is before


# ------------------------------------------------------------ read-only snapshots
def _writeable_arrays(obj, path: str = "snapshot") -> tuple[int, list[str]]:
    """(number of NumPy arrays reachable from ``obj``, paths of the writeable ones), walking
    dataclass fields, tuples, lists and dict values at any depth."""
    import dataclasses

    import numpy as np

    if isinstance(obj, np.ndarray):
        return 1, [path] if obj.flags.writeable else []
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = [(f"{path}.{f.name}", getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    elif isinstance(obj, (tuple, list)):
        items = [(f"{path}[{k}]", v) for k, v in enumerate(obj)]
    elif isinstance(obj, dict):
        items = [(f"{path}[{k!r}]", v) for k, v in obj.items()]
    else:
        return 0, []
    n, bad = 0, []
    for p, v in items:
        dn, dbad = _writeable_arrays(v, p)
        n, bad = n + dn, bad + dbad
    return n, bad


def test_every_array_in_a_snapshot_the_window_holds_is_read_only(qtbot):
    """Snapshots cross a pipe from the engine (unpickled arrays are writeable); the window
    must get them frozen, nested parts (statistics, surface, history) included."""
    window = open_window(qtbot, small_config(), run=True)
    received = []
    window.worker.snapshotReady.connect(received.append)  # every one, in the worker thread
    wait_snapshot(qtbot, window, lambda s: s.step >= 30 and s.surface is not None and s.detail)
    click(qtbot, window, "recomputeButton")  # a new surface arrives too
    first_surface = window.last_snapshot.surface_id
    wait_snapshot(qtbot, window, lambda s: s.surface is not None and s.surface_id != first_surface)
    held = [window.last_snapshot, window.newest_snapshot, window._drawn, *received]
    assert len(received) >= 5
    for snap in held:
        n, writeable = _writeable_arrays(snap)
        assert n >= 20, f"only {n} arrays found: the walk misses the snapshot's parts"
        assert writeable == [], f"writeable arrays at step {snap.step}: {writeable}"
    with pytest.raises(ValueError, match="read-only"):
        window.last_snapshot.surface.Z[0, 0] = 0.0
    close_window(window)


def test_menus_from_the_action_table_keep_their_names_shortcuts_and_entries(qtbot, tmp_path):
    """The menus built from gui.actions.MENUS: every action found by its objectName with its
    shortcut; a preset applies; a saved configuration appears first in the recent menu and
    loads from there."""
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QMenu

    from gui.actions import MENUS, Action

    window = open_window(qtbot, small_config())
    start_training(qtbot, window)
    titles = [m.title() for m in window.menuBar().findChildren(QMenu) if m.parent() is not None]
    for title, entries in MENUS:
        assert title in titles
        for spec in (e for e in entries if isinstance(e, Action)):
            action = window.findChild(QAction, spec.name)
            assert action is window.actions[spec.name], spec.name
            assert action.text() == spec.text and action.shortcut().toString() == spec.shortcut
    for name, key in (("runAction", "Space"), ("stepAction", "S"), ("exportAction", "Ctrl+E")):
        assert window.findChild(QAction, name).shortcut().toString() == key
    assert str(window.error_log.path) in window.actions["openLogFolderAction"].toolTip()

    presets = window.findChild(QMenu, "presetsMenu")
    assert len(presets.actions()) >= 5
    window.findChild(QAction, "preset_plain_sgd").trigger()
    wait_snapshot(qtbot, window, lambda s: s.batch_size == 1)
    assert child(window, QSpinBox, "batchSizeSpin").value() == 1

    recent = window.findChild(QMenu, "recentMenu")
    assert not recent.isEnabled()  # nothing yet: presets are not remembered
    saved = tmp_path / "mine.json"
    type_into(qtbot, child(window, QSpinBox, "batchSizeSpin"), "8")
    wait_snapshot(qtbot, window, lambda s: s.batch_size == 8)
    assert window.save_config_file(str(saved))
    assert recent.isEnabled() and recent.actions()[0].text() == str(saved)
    window.findChild(QAction, "preset_plain_sgd").trigger()
    wait_snapshot(qtbot, window, lambda s: s.batch_size == 1)
    recent.actions()[0].trigger()
    wait_snapshot(qtbot, window, lambda s: s.batch_size == 8)
    close_window(window)
