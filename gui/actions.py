"""The window's menus and actions, declared as a table.

``MENUS`` lists each menu with its entries, in order. An entry is an ``Action`` (a QAction the
window owns, with its shortcut working anywhere in the window), ``SEPARATOR``, or a ``Part``:
a place where a helper fills in entries that are not fixed (the presets and recent
configurations, the dataset menu, the docks' toggles). ``build_menus`` turns the table into
menus; the actions are then found by their objectName (``window.actions[name]``), as tests
and the guided tour find them.

Adding an action is one row: ``Action("&Text", "method_name", "Ctrl+X", "tip", "objectName")``
in its menu's tuple, and the method on ``MainWindow`` (the slot is named, not referenced, so
the table needs no window to be read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

__all__ = ["Action", "Part", "SEPARATOR", "MENUS", "build_menus", "make_action"]


@dataclass(frozen=True)
class Action:
    """One menu entry with its shortcut.

    text : the menu text, with its ``&`` mnemonic
    slot : the name of the window's method called when triggered
    shortcut : a QKeySequence string ("Ctrl+O", "Space"), or "" for none
    tip : status tip and tooltip; ``{window.…}`` fields are filled from the window
    name : the objectName (tests and the tour find the action by it)
    checkable : a toggle
    """

    text: str
    slot: str
    shortcut: str = ""
    tip: str = ""
    name: str = ""
    checkable: bool = False


@dataclass(frozen=True)
class Part:
    """Entries filled in by ``parts[name](menu)`` when the menus are built."""

    name: str


SEPARATOR = None

#: (menu title, entries) in the menu bar's order
MENUS: tuple[tuple[str, tuple], ...] = (
    (
        "&File",
        (
            Action(
                "&Open configuration…",
                "open_config_dialog",
                "Ctrl+O",
                "Load settings from a JSON file",
                "openConfigAction",
            ),
            Action(
                "&Save configuration…",
                "save_config_dialog",
                "Ctrl+S",
                "Save the current settings as JSON",
                "saveConfigAction",
            ),
            Part("presets"),
            Part("recent"),
            SEPARATOR,
            Action(
                "&Export pictures and data…",
                "export_dialog",
                "Ctrl+E",
                "PNG, SVG and CSV of every view",
                "exportAction",
            ),
            Action(
                "Save &screenshot…",
                "screenshot_dialog",
                "Ctrl+Shift+S",
                "The whole window as PNG",
                "screenshotAction",
            ),
            Action(
                "&Record a clip…",
                "toggle_recording",
                "Ctrl+Shift+R",
                "Record the window (or the view chosen in the Rec button's menu) to .mp4 or "
                ".gif until pressed again",
                "recordAction",
            ),
            SEPARATOR,
            Action("&Quit", "close", "Ctrl+Q", "Quit Batchscope", "quitAction"),
        ),
    ),
    ("&Dataset", (Part("dataset"),)),
    (
        "&Run",
        (
            Action(
                "&Run / pause", "toggle_run", "Space", "Train continuously or pause", "runAction"
            ),
            Action("&Step", "step_once", "S", "Train on one minibatch", "stepAction"),
            Action("R&eset", "reset", "R", "Fresh weights, history cleared", "resetAction"),
            Action(
                "Recompute &surface",
                "recompute_surface",
                "Ctrl+R",
                "Recentre the plane and recompute the loss surface",
                "recomputeAction",
            ),
        ),
    ),
    ("&View", (Part("docks"),)),
    (
        "&Help",
        (
            Action(
                "&Guided tour", "start_tour", "F1", "Seven steps through the question", "tourAction"
            ),
            Action(
                "Open &log folder",
                "open_log_folder",
                "",
                "Unexpected errors are written with their details to {window.error_log.path}",
                "openLogFolderAction",
            ),
            Action("&About Batchscope", "show_about", "", "", "aboutAction"),
        ),
    ),
)


def make_action(window: QMainWindow, spec: Action) -> QAction:
    """A QAction for ``spec``, owned by ``window`` (its shortcut works anywhere in it)."""
    a = QAction(spec.text, window)
    if spec.shortcut:
        a.setShortcut(QKeySequence(spec.shortcut))
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    tip = spec.tip.format(window=window)
    a.setStatusTip(tip)
    a.setToolTip(tip)
    a.setCheckable(spec.checkable)
    a.setObjectName(spec.name)
    slot = getattr(window, spec.slot)
    a.triggered.connect(lambda _=False: slot())
    window.addAction(a)
    return a


def build_menus(
    window: QMainWindow,
    parts: dict[str, Callable[[QMenu], None]],
    menus: tuple[tuple[str, tuple], ...] = MENUS,
) -> dict[str, QAction]:
    """Fill ``window``'s menu bar from ``menus``; returns the actions by objectName."""
    actions: dict[str, QAction] = {}
    bar = window.menuBar()
    for title, entries in menus:
        menu = bar.addMenu(title)
        for entry in entries:
            if entry is SEPARATOR:
                menu.addSeparator()
            elif isinstance(entry, Part):
                parts[entry.name](menu)
            else:
                actions[entry.name] = action = make_action(window, entry)
                menu.addAction(action)
    return actions
