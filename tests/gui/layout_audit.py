"""Find what a person would call cut off in a window: a pyqtgraph title, axis, legend or label
drawn outside the view that shows it, a plot squeezed to nothing, a Qt label or control smaller
than its text, a widget outside its window.

``audit(widget)`` returns a list of readable problems (empty when everything is whole). It
looks only at what is visible (hidden tabs, closed docks and widgets scrolled inside a
QScrollArea are skipped), so call it once per tab, after the tab was shown and laid out.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QGraphicsTextItem,
    QLabel,
    QLineEdit,
    QScrollArea,
    QTabBar,
    QWidget,
)

#: a plot's data area smaller than this (px) has, for a reader, disappeared
MIN_PLOT = (60, 40)
TOLERANCE = 1.5  #: px of anti-aliasing slack


def audit(root: QWidget) -> list[str]:
    """Problems in the visible part of ``root`` (see the module docstring)."""
    problems: list[str] = []
    for view in _visible(root, pg.GraphicsView):
        problems += audit_view(view)
    problems += _audit_widgets(root)
    return problems


def audit_view(view: pg.GraphicsView) -> list[str]:
    """Text items outside the visible scene rect of ``view``, and squeezed plots."""
    name = view.objectName() or type(view).__name__
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    visible.adjust(-TOLERANCE, -TOLERANCE, TOLERANCE, TOLERANCE)
    out = []
    for item in view.scene().items():
        if not item.isVisible() or not _shown_chain(item):
            continue
        if isinstance(item, QGraphicsTextItem):
            if not item.toPlainText().strip():
                continue
            r = item.sceneBoundingRect()
            # a QGraphicsTextItem's box has a few px of document margin around the text
            m = item.document().documentMargin()
            r = r.adjusted(m, m, -m, -m)
            if not _inside(r, visible):
                out.append(f"{name}: text {item.toPlainText()[:40]!r} cut at {_side(r, visible)}")
        elif isinstance(item, pg.AxisItem):
            out += _audit_axis(name, item, visible)
        elif (
            isinstance(item, pg.ViewBox)
            and isinstance(item.parentItem(), pg.PlotItem)
            and not isinstance(item.parentItem(), pg.ColorBarItem)  # a bar is narrow
        ):
            r = item.sceneBoundingRect()
            if r.width() < MIN_PLOT[0] or r.height() < MIN_PLOT[1]:
                title = getattr(item.parentItem().titleLabel, "text", "") or ""
                out.append(
                    f"{name}: plot {title[:30]!r} squeezed to {r.width():.0f}x{r.height():.0f} px"
                )
    return out


def _audit_axis(name: str, axis: pg.AxisItem, visible: QRectF) -> list[str]:
    """An axis is cut when its box (ticks and tick labels) leaves the view."""
    if not axis.style.get("showValues", True) and not axis.label.isVisible():
        return []
    r = axis.sceneBoundingRect()
    if axis.orientation in ("left", "right"):
        r.setTop(r.top() + 1)
    if _inside(r, visible):
        return []
    return [f"{name}: {axis.orientation} axis cut at {_side(r, visible)}"]


def _audit_widgets(root: QWidget) -> list[str]:
    out = []
    window = root.window()
    win_rect = window.rect()
    for w in _visible(root, QWidget):
        if _in_scroll_area(w) or (isinstance(w, QTabBar) and w.parentWidget() is window):
            continue  # scrolled content; QMainWindow's own bar for tabified docks
        name = w.objectName() or type(w).__name__
        top_left = w.mapTo(window, w.rect().topLeft())
        rect = w.rect().translated(top_left)
        if w is not window and not win_rect.adjusted(-1, -1, 1, 1).contains(rect):
            out.append(
                f"{name}: outside the window ({rect.x()},{rect.y()} {rect.width()}x"
                f"{rect.height()} in {win_rect.width()}x{win_rect.height()})"
            )
            continue
        if isinstance(w, QLabel) and not w.wordWrap() and w.text().strip():
            need = w.sizeHint().width()
            if w.width() + 1 < need:
                out.append(f"{name}: label {w.text()[:40]!r} cut ({w.width()} of {need} px)")
        elif isinstance(w, QAbstractButton | QAbstractSpinBox | QLineEdit | QComboBox):
            if isinstance(w, QAbstractButton) and isinstance(w.parent(), QTabBar):
                continue
            need = w.minimumSizeHint()
            if w.width() + 1 < need.width() or w.height() + 1 < need.height():
                out.append(
                    f"{name}: {type(w).__name__} squeezed to {w.width()}x{w.height()} "
                    f"(needs {need.width()}x{need.height()})"
                )
    return out


# ------------------------------------------------------------------ helpers
def _visible(root: QWidget, cls) -> list:
    found = [root] if isinstance(root, cls) else []
    found += root.findChildren(cls)
    # isVisible() is False on hidden tabs and closed docks (visibleRegion() is empty offscreen)
    return [w for w in found if w.isVisible() and w.width() > 0 and w.height() > 0]


def _in_scroll_area(w: QWidget) -> bool:
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QScrollArea):
            return True
        p = p.parentWidget()
    return False


def _shown_chain(item) -> bool:
    p = item.parentItem()
    while p is not None:
        if not p.isVisible():
            return False
        p = p.parentItem()
    return True


def _inside(r: QRectF, outer: QRectF) -> bool:
    return (
        r.left() >= outer.left()
        and r.top() >= outer.top()
        and r.right() <= outer.right()
        and r.bottom() <= outer.bottom()
    )


def _side(r: QRectF, outer: QRectF) -> str:
    sides = []
    if r.left() < outer.left():
        sides.append(f"left by {outer.left() - r.left():.0f} px")
    if r.right() > outer.right():
        sides.append(f"right by {r.right() - outer.right():.0f} px")
    if r.top() < outer.top():
        sides.append(f"top by {outer.top() - r.top():.0f} px")
    if r.bottom() > outer.bottom():
        sides.append(f"bottom by {r.bottom() - outer.bottom():.0f} px")
    return ", ".join(sides)
