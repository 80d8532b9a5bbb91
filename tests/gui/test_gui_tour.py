"""The guided tour: every step sets valid settings, shows the tab holding its view and
highlights it; a step about a new loss surface says so until that surface is drawn."""

from __future__ import annotations

from gui_testing import small_config, wait_drawn
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from gui.main_window import RESOURCES
from gui.tour import HIGHLIGHT, load_tour

STEPS = load_tour(RESOURCES / "tour.md")


def test_the_tour_has_seven_steps_with_views_the_window_has(window):
    assert len(STEPS) == 7
    for step in STEPS:
        assert step.title and step.text
        target = window.findChild(QWidget, step.view)
        assert target is not None, f"step {step.title!r}: no view {step.view!r}"
        page = window.tabs.widget(step.tab)
        assert page is target or page.isAncestorOf(target), step.title


def test_walking_the_tour_applies_each_step_and_highlights_its_view(window, qtbot):
    window.start_tour()
    assert window.tour_dock.isVisible()
    nxt = window.findChild(QPushButton, "tourNextButton")
    for k, step in enumerate(STEPS):
        if k:
            qtbot.mouseClick(nxt, Qt.MouseButton.LeftButton)
        assert window.tour.index == k
        target = window.findChild(QWidget, step.view)
        assert window.tabs.currentIndex() == step.tab
        assert target.styleSheet() == HIGHLIGHT
        for key, value in step.settings.items():
            assert getattr(window.controls.config, key) == value, (step.title, key)
    window.leave_tour()
    assert not window.tour_dock.isVisible()
    assert all(not w.styleSheet() for w in window.views.values())


def test_the_surface_step_waits_for_its_surface(window, qtbot):
    window.worker.request_step(2)
    first = wait_drawn(qtbot, window, lambda s: s.surface_id > 0)
    k = next(i for i, s in enumerate(STEPS) if s.wait == "surface")
    window.start_tour()
    window.tour.go(k)
    note = window.findChild(QLabel, "tourNote")
    assert note.isVisible() and "Computing the loss surface" in note.text()
    window.worker.request_step(3)
    wait_drawn(
        qtbot,
        window,
        lambda s: s.config.reduction == "weighted" and s.surface_id not in (0, first.surface_id),
    )
    qtbot.waitUntil(lambda: "is the one for these settings" in note.text())


def test_the_spread_step_shows_a_batch_with_a_spread(make_window, qtbot):
    window = make_window(small_config(batch_size=1))
    k = next(i for i, s in enumerate(STEPS) if s.view == "gradientSpreadPlot")
    window.start_tour()
    window.tour.go(k)
    window.worker.request_step(2)
    snap = wait_drawn(qtbot, window, lambda s: s.batch_size > 1)
    assert snap.batch_size == STEPS[k].settings["batch_size"] >= 8
    assert "against" in STEPS[k].text
