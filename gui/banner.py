"""A message across the top of the window: seen without stopping the user (no modal box).

Used for what the user should know but need not answer: the engine ended and was restarted,
restarts were given up, an unexpected error was logged. One line of text (wrapped if long),
an optional action button ("Open log folder", "Restart engine") and a close button.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton

__all__ = ["Banner", "LEVELS"]

#: level -> (background, border) colours; text stays black for contrast
LEVELS = {
    "info": ("#e8f4fb", "#56b4e9"),
    "warning": ("#fdf3dc", "#e69f00"),
    "error": ("#fbe3d6", "#d55e00"),
}


class Banner(QFrame):
    """Hidden until ``show_message``; the user closes it with its × (or Escape on it)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.level = ""
        self.label = QLabel()
        self.label.setObjectName("bannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QPushButton()
        self.action_button.setObjectName("bannerAction")
        self.action_button.hide()
        self.action_button.clicked.connect(self._run_action)
        self.close_button = QToolButton()
        self.close_button.setObjectName("bannerClose")
        self.close_button.setText("×")
        self.close_button.setToolTip("Hide this message")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.action_button)
        lay.addWidget(self.close_button)
        self._action: Callable[[], None] | None = None
        self.hide()

    def show_message(
        self,
        text: str,
        level: str = "warning",
        action: tuple[str, str, Callable[[], None]] | None = None,
    ) -> None:
        """Show ``text``; ``action`` = (button text, tooltip, callable) adds a button."""
        background, border = LEVELS[level]
        self.level = level
        self.setStyleSheet(
            f"#messageBanner {{ background: {background}; border: 1px solid {border}; "
            "border-radius: 3px; } #bannerText { color: black; }"
        )
        self.label.setText(text)
        self.setToolTip(text)
        self._action = action[2] if action else None
        if action:
            self.action_button.setText(action[0])
            self.action_button.setToolTip(action[1])
        self.action_button.setVisible(action is not None)
        self.show()

    def text(self) -> str:
        return self.label.text()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.hide()
            return
        super().keyPressEvent(event)

    def _run_action(self) -> None:
        if self._action is not None:
            self._action()
