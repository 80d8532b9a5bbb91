"""Shared set-up for the window tests (pytest-qt, offscreen).

Order matters: the Qt platform and the settings file are chosen here, at import time, before
any test module imports ``gui`` (and so before a QApplication exists). Tests never touch the
user's QSettings: ``BATCHSCOPE_SETTINGS`` names an ini file in a temporary folder (one per
test, see ``_isolated_settings``). Helpers shared by the test modules live in
``gui_testing.py`` (a unique name: tests/core has its own conftest).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_SETTINGS_DIR = tempfile.mkdtemp(prefix="batchscope-gui-tests-")
os.environ["BATCHSCOPE_SETTINGS"] = os.path.join(_SETTINGS_DIR, "settings.ini")
os.environ["BATCHSCOPE_LOG_DIR"] = os.path.join(_SETTINGS_DIR, "logs")  # gui.error_log

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
for p in (REPO_ROOT, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import pytest  # noqa: E402
from gui_testing import close_window, open_window, small_config  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _app_style(qapp):
    """The QApplication as the app makes it (names, icon, pyqtgraph's global style)."""
    from gui.app import make_app

    app = make_app()
    assert app is qapp
    yield app
    shutil.rmtree(_SETTINGS_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """A fresh preferences file for every test (read by gui.main_window.settings())."""
    path = tmp_path / "settings" / "batchscope.ini"
    path.parent.mkdir()
    monkeypatch.setenv("BATCHSCOPE_SETTINGS", str(path))
    return path


class _Windows(list):
    """The windows one factory made (``open_window``; registered with ``qtbot`` unless None)."""

    def __init__(self, qtbot) -> None:
        super().__init__()
        self.qtbot = qtbot

    def make(self, config=None, **kw):
        self.append(open_window(self.qtbot, config, **kw))
        return self[-1]


@pytest.fixture
def make_window(qtbot):
    """Factory for windows; every window made is closed at teardown, and its worker thread
    must have finished."""
    made = _Windows(qtbot)
    yield made.make
    for w in made:
        close_window(w)


@pytest.fixture(scope="module")
def shared_window(_app_style):
    """Factory for windows shared by the tests of one module (a window costs ~1 s to build
    and its engine process ~0.5 s to start): made by the first test that asks, closed (and
    checked as ``make_window`` does) after the module's last test. Only for tests that read
    a window, or leave it as any test of the module may find it; each test still passes
    alone. Made before a test's own settings file is chosen: build it with
    ``remember=False`` (the default), so that it never writes one. Closed and deleted after
    the module."""
    made = _Windows(None)

    def make(config=None, **kw):
        assert not kw.get("remember"), "a shared window must not write settings"
        return made.make(config, **kw)

    yield make
    from PySide6.QtCore import QCoreApplication, QEvent

    for w in made:
        close_window(w)
        w.deleteLater()  # as pytest-qt does with a test's own widgets
    # ... and deleted now: the module's last test has run, and a window left to the end of
    # the process can crash in Qt's teardown of its pyqtgraph scenes (see the README)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def window(make_window):
    """A small-network window (5-16-16-3, 15x15 surface), shown and paused."""
    return make_window(small_config())
