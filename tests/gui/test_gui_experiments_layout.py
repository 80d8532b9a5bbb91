"""Every experiment tab is whole at the window sizes people use: no panel squeezed away, no
title, legend or summary cut off, nothing laid out past the canvas's edge."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from core import Config

SIZES = ((1280, 720), (1600, 1000), (1920, 1080))
STEMS = ("cost_lab", "batch_race", "reductions", "misconception")
CONFIG = Config(hidden=(16, 16), n_samples=640, surface_resolution=11, surface_samples=32)


def _inside(inner, outer, slack=1.0) -> bool:
    return (
        inner.left() >= outer.left() - slack
        and inner.top() >= outer.top() - slack
        and inner.right() <= outer.right() + slack
        and inner.bottom() <= outer.bottom() + slack
    )


def _problems(view) -> list[str]:
    """What is cut or squeezed in the tab's canvas (empty when whole)."""
    from gui.experiments.base import WrappedLabel

    canvas = view.canvas
    area = canvas.viewport().rect()
    ci = canvas.ci
    out = []
    need = ci.minimumSize()
    if need.width() > area.width() + 1 or need.height() > area.height() + 1:
        out.append(
            f"layout needs {need.width():.0f}x{need.height():.0f}, "
            f"has {area.width()}x{area.height()}"
        )
    box = ci.mapRectToScene(ci.rect())
    for item in ci.items:
        rect = item.sceneBoundingRect()
        name = type(item).__name__
        if not _inside(rect, box):
            out.append(f"{name} at {rect} runs past the canvas {box}")
        if isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem):
            if rect.width() < 140 or rect.height() < 110:
                out.append(f"{name} squeezed to {rect.width():.0f}x{rect.height():.0f}")
            title = item.titleLabel
            if title.isVisible() and title.text:
                text_w = title.item.boundingRect().width()
                if text_w > title.geometry().width() + 1:
                    out.append(
                        f"title {title.text!r} cut: {text_w:.0f} > {title.geometry().width():.0f}"
                    )
            legend = item.legend
            if legend is not None and legend.isVisible() and legend.items:
                if not _inside(legend.sceneBoundingRect(), item.vb.sceneBoundingRect(), 2):
                    out.append(
                        f"legend of {title.text!r} outside its plot: "
                        f"{legend.sceneBoundingRect()} vs {item.vb.sceneBoundingRect()}"
                    )
        if isinstance(item, WrappedLabel):
            text = item.item.boundingRect()
            if text.height() > rect.height() + 1 or text.width() > rect.width() + 1:
                out.append(f"summary cut: text {text.width():.0f}x{text.height():.0f} in {rect}")
    return out


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_experiment_tab_is_whole_at_common_window_sizes(make_window, qtbot, size):
    window = make_window(CONFIG)
    window.resize(*size)
    window.fit_docks_to_width(size[0])
    qtbot.wait(50)
    problems = {}
    for stem in STEMS:
        view = window.experiments[stem]
        view.run_blocking(quick=True)
        window.tabs.setCurrentWidget(view)
        qtbot.wait(80)
        found = _problems(view)
        if found:
            problems[stem] = found
        assert view.info.text() and "Press Run" not in view.info.text()
    assert not problems, problems
