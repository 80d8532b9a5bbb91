"""Configuration files in the window: open and save (JSON), the presets, the recent files, and
where the app keeps its preferences and resources.

A file that cannot be used changes nothing and says why in a warning that does not block the
run; a loaded configuration is applied as if typed into the controls
(``MainWindow.apply_config``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox

from core import Config, ConfigError

__all__ = ["ConfigFiles", "RecentFiles", "RESOURCES", "find_resources", "settings", "MAX_RECENT"]

MAX_RECENT = 8
PRESET_LABELS = {
    "the_question": "The question: 5-32-32-3, B = 32, MSE, mean",
    "plain_sgd": "Plain SGD: B = 1",
    "full_batch": "Full batch: B = the whole training set",
    "max_reduction": "Max reduction: the largest entry of M, lr 0.02",
    "classification": "Classification: blobs, cross-entropy",
}


def find_resources(root: Path | None = None) -> Path:
    """The help text, tour, presets and icon: ``resources/`` beside ``gui/`` in a checkout
    (and an editable install), else the installed package ``batchscope_resources`` beside
    it in site-packages. ``root``: the folder holding ``gui/`` (default: this one's)."""
    root = Path(__file__).resolve().parent.parent if root is None else root
    for candidate in (root / "resources", root / "batchscope_resources"):
        if (candidate / "help.md").is_file():
            return candidate
    return root / "resources"  # missing: the window says so where the text would be


RESOURCES = find_resources()


def settings() -> QSettings:
    """The app's preferences; BATCHSCOPE_SETTINGS names an ini file instead (tests)."""
    path = os.environ.get("BATCHSCOPE_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("Batchscope", "Batchscope")


class RecentFiles:
    """Files opened lately, newest first: kept in the preferences under ``key`` (unless
    ``remember`` is False) and listed in ``menu``, where choosing one calls ``open_path``.

    most : how many are kept; tip : each entry's tooltip, ``{path}`` filled in
    """

    def __init__(
        self,
        menu: QMenu,
        key: str,
        open_path: Callable[[str], object],
        remember: bool = True,
        most: int = MAX_RECENT,
        tip: str = "",
    ) -> None:
        self.menu, self.key, self.open_path = menu, key, open_path
        self.remember, self.most, self.tip = remember, most, tip
        self.paths: list[str] = self._stored() if remember else []
        self._fill()

    def _stored(self) -> list[str]:
        value = settings().value(self.key, [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][: self.most]

    def add(self, path: str) -> None:
        """Put ``path`` (made absolute) first."""
        path = os.path.abspath(path)
        self.paths = [path, *[p for p in self.paths if p != path]][: self.most]
        if self.remember:
            settings().setValue(self.key, self.paths)
        self._fill()

    def _fill(self) -> None:
        self.menu.clear()
        for p in self.paths:
            a = self.menu.addAction(p)
            if self.tip:
                a.setToolTip(self.tip.format(path=p))
            a.triggered.connect(lambda _=False, path=p: self.open_path(path))
        self.menu.setEnabled(bool(self.paths))


class ConfigFiles:
    """The window's configuration files: File menu entries, dialogs, loading and saving.

    window : the MainWindow (``apply_config``, ``controls.config``, ``statusBar``)
    remember : keep the recent files in the preferences (headless rendering passes False)
    """

    def __init__(self, window: QMainWindow, remember: bool = True) -> None:
        self.window = window
        self.remember = remember
        self.presets_menu: QMenu | None = None
        self.recent: RecentFiles | None = None
        self.warning_box: QMessageBox | None = None

    # ------------------------------------------------------------------ menus
    def add_presets_menu(self, menu: QMenu) -> None:
        """The Presets submenu: one entry per ``resources/presets/*.json``."""
        self.presets_menu = sub = menu.addMenu("&Presets")
        sub.setObjectName("presetsMenu")
        for path in sorted((RESOURCES / "presets").glob("*.json")):
            label = PRESET_LABELS.get(path.stem, path.stem.replace("_", " "))
            a = QAction(label, self.window)
            a.setObjectName(f"preset_{path.stem}")
            a.setStatusTip(f"Load the preset {path.name}")
            a.triggered.connect(lambda _=False, p=path: self.load(str(p), remember=False))
            sub.addAction(a)

    def add_recent_menu(self, menu: QMenu) -> None:
        """The Recent configurations submenu, newest first."""
        sub = menu.addMenu("&Recent configurations")
        sub.setObjectName("recentMenu")
        self.recent = RecentFiles(sub, "config/recent", self.load, self.remember)

    def add_recent(self, path: str) -> None:
        if self.recent is not None:
            self.recent.add(path)

    # ---------------------------------------------------------- load and save
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open configuration", "", "JSON configuration (*.json);;All files (*)"
        )
        if path:
            self.load(path)

    def load(self, path: str, remember: bool = True) -> bool:
        """Load a JSON configuration and apply it; a bad file changes nothing and says why."""
        try:
            cfg = Config.load(path)  # Config.validate included
        except ConfigError as e:
            self.warn(
                "Configuration not loaded",
                f"{e.field}: {e.message}\n\nThe current run is unchanged.",
            )
            return False
        self.window.apply_config(cfg)
        if remember:
            self.add_recent(path)
        self.window.statusBar().showMessage(f"loaded {path}", 6000)
        return True

    def save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save configuration", "batchscope.json", "JSON configuration (*.json)"
        )
        if path:
            self.save(path)

    def save(self, path: str) -> bool:
        """Save the current settings as JSON (temporary file + rename: never partial)."""
        try:
            self.window.controls.config.save(path)
        except OSError as e:
            self.warn(
                "Configuration not saved", f"{path}: {e.strerror or e}\n\nNothing was written."
            )
            return False
        self.add_recent(path)
        self.window.statusBar().showMessage(f"saved {path}", 6000)
        return True

    def warn(self, title: str, text: str) -> None:
        """A non-modal warning (the run goes on behind it)."""
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self.window
        )
        box.setObjectName("warningBox")
        box.setModal(False)
        box.show()
        self.warning_box = box
