"""The live tab's grid of views, which reflows with the room it has instead of squeezing.

Tall room (a 1600 x 1000 or 1920 x 1080 window): two columns, three rows, the loss surface
on the left over two rows. Short room (1280 x 720, 1366 x 768): three columns, two rows (the
gradient spread, three panels side by side, two columns wide), so no view is squeezed to a
strip. Below the smallest comfortable size the grid scrolls instead of
cutting anything (the window's minimum size, 1024 x 640, is one such case).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QScrollArea, QWidget

#: smallest comfortable size of one view (px): below it titles, ticks and legends crowd
VIEW_MIN_WIDTH = 300
VIEW_MIN_HEIGHT = 245

#: column and row stretch factors by the number of columns (2 or 3); each view declares its
#: place in each (``grid_place`` on its class: {columns: (row, column, row span, col span)})
STRETCH = {2: ((5, 6), (4, 4, 3)), 3: ((1, 1, 1), (1, 1))}


class LiveGrid(QScrollArea):
    """A scroll area holding the five live views in a grid that picks 2 or 3 columns.

    views : {name: widget}, each widget's class declaring its ``grid_place``
    """

    def __init__(self, views: dict[str, QWidget], parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("liveGrid")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._views = views
        self.inner = QWidget()
        self.inner.setObjectName("liveGridContents")
        self.grid = QGridLayout(self.inner)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(4)
        self.setWidget(self.inner)
        self.columns = 0
        self.arrange(2)

    def arrange(self, columns: int) -> None:
        """Lay the views out in ``columns`` columns (2 or 3)."""
        if columns == self.columns:
            return
        self.columns = columns
        for w in self._views.values():
            self.grid.removeWidget(w)
        for view in self._views.values():
            self.grid.addWidget(view, *type(view).grid_place[columns])
        cols, rows = STRETCH[columns]
        for c in range(3):
            self.grid.setColumnStretch(c, cols[c] if c < len(cols) else 0)
            self.grid.setColumnMinimumWidth(c, VIEW_MIN_WIDTH if c < len(cols) else 0)
        for r in range(3):
            self.grid.setRowStretch(r, rows[r] if r < len(rows) else 0)
            self.grid.setRowMinimumHeight(r, VIEW_MIN_HEIGHT if r < len(rows) else 0)

    @staticmethod
    def columns_for(width: int, height: int) -> int:
        """Three columns when three rows would not fit the height but three columns fit the
        width; otherwise two (scrolling down when even that does not fit)."""
        if height < 3 * VIEW_MIN_HEIGHT + 16 and width >= 3 * VIEW_MIN_WIDTH + 16:
            return 3
        return 2

    def resizeEvent(self, event) -> None:
        size = event.size()
        self.arrange(self.columns_for(size.width(), size.height()))
        super().resizeEvent(event)
        # never a horizontal scroll bar when the width only needs a reflow
        self.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAsNeeded
            if size.width() < 2 * VIEW_MIN_WIDTH + 16
            else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
