"""Every tab is whole at every window size a user will try, from the minimum (1024 x 640) to
1920 x 1080: no title, axis, legend or label drawn outside its view, no plot squeezed to a
strip, no control smaller than its text (tests/gui/layout_audit.py says what counts)."""

from __future__ import annotations

import pytest
from gui_testing import drawn_snapshot, small_config, wait_for
from layout_audit import audit
from PySide6.QtWidgets import QAbstractSpinBox, QPushButton

from gui.live_grid import LiveGrid
from gui.main_window import MIN_SIZE

SIZES = [MIN_SIZE, (1280, 720), (1366, 768), (1440, 900), (1600, 1000), (1920, 1080)]


def _settle(qtbot, window) -> None:
    qtbot.wait(60)  # layouts, then the views' own range and label updates
    for view in window.views.values():
        view.scene().prepareForPaint()
    qtbot.wait(20)


def _problems_in_every_tab(qtbot, window) -> list[str]:
    found = []
    for k in range(window.tabs.count()):
        window.tabs.setCurrentIndex(k)
        _settle(qtbot, window)
        found += [f"tab {window.tabs.tabText(k)!r}: {p}" for p in audit(window)]
    return found


@pytest.fixture(scope="module")
def full_window(shared_window):
    """One window for every size (made once: the quick experiments alone take seconds),
    trained a few steps and with every experiment's result drawn; each size resizes it."""
    window = shared_window(small_config())
    window.worker.request_step(3)

    def drawn() -> bool:
        snap = drawn_snapshot(window)
        return snap is not None and snap.step >= 3 and bool(snap.detail)

    assert wait_for(drawn), "the first steps were never drawn"
    assert window.run_experiments_blocking(quick=True) == {}
    return window


# Largest first, so that every other size is reached by shrinking the shared window; growing
# it is the next test.
@pytest.mark.parametrize("size", SIZES[::-1], ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_tab_is_whole(full_window, qtbot, size):
    window = full_window
    window.resize(*size)
    window.fit_docks_to_width(size[0])
    _settle(qtbot, window)
    assert (window.width(), window.height()) == size
    problems = _problems_in_every_tab(qtbot, window)
    assert not problems, f"{len(problems)} cut or squeezed at {size}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", [[(1600, 1000), (1920, 1080)], [MIN_SIZE, (1920, 1080)]])
def test_every_tab_is_whole_after_growing(full_window, qtbot, path):
    """A title wrapped in a narrow panel and then given room again is placed anew (one grown
    from 1600 x 1000 to 1920 x 1080 sat 13 px past its panel's right edge)."""
    window = full_window
    for size in path:
        window.resize(*size)
        window.fit_docks_to_width(size[0])
        _settle(qtbot, window)
        for k in range(window.tabs.count()):  # each tab laid out at each size on the way
            window.tabs.setCurrentIndex(k)
            _settle(qtbot, window)
    problems = _problems_in_every_tab(qtbot, window)
    assert not problems, f"{len(problems)} cut or squeezed after {path}:\n" + "\n".join(problems)


def test_minimum_size_is_at_most_1024_by_640(window):
    hint = window.minimumSize()
    assert hint.width() <= 1024 and hint.height() <= 640
    window.resize(800, 500)
    assert (window.width(), window.height()) == MIN_SIZE


def test_the_live_views_reflow_instead_of_squeezing(window, qtbot):
    grid = window.findChild(LiveGrid, "liveGrid")
    window.resize(1280, 720)
    window.fit_docks_to_width(1280)
    qtbot.waitUntil(lambda: grid.columns == 3)
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: grid.columns == 2)


def test_a_squeezed_dock_is_never_restored(make_window, qtbot):
    """Shrink to the minimum, close (the state is saved), open again and grow: every control
    in the panel is whole, Reset and the spin-box arrows included."""
    first = make_window(small_config(), remember=True)
    first.resize(*MIN_SIZE)
    qtbot.wait(50)
    first.close()
    second = make_window(small_config(), remember=True)
    second.resize(1600, 1000)
    qtbot.wait(50)
    panel = second.controls
    dock = second.controls_dock
    assert dock.width() >= panel.minimumSizeHint().width()
    for folded in (True, False):  # "More settings" folded, then open
        panel.more_button.setChecked(not folded)
        qtbot.wait(50)
        shown = [
            w
            for w in [*panel.findChildren(QAbstractSpinBox), *panel.findChildren(QPushButton)]
            if w.isVisibleTo(panel)
        ]
        assert len(shown) >= 5
        for w in shown:
            need = w.minimumSizeHint().width()
            assert w.width() >= need, f"{w.objectName()} is {w.width()} px wide, needs {need}"
            right = w.mapTo(dock, w.rect().topRight()).x()
            assert right <= dock.width(), f"{w.objectName()} runs past the dock's edge"
