"""The guided tour: seven steps through the question, each setting the controls it needs and
highlighting the view that answers it. It can be left at any time; the run carries on.

The text lives in resources/tour.md: one ``## `` section per step, with a comment line
``<!-- tour: {"set": {...settings...}, "view": "objectName", "tab": 0} -->``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

_META = re.compile(r"<!--\s*tour:\s*(\{.*?\})\s*-->", re.S)
HIGHLIGHT = "border: 3px solid #d55e00; border-radius: 4px;"


@dataclass(frozen=True)
class TourStep:
    title: str
    text: str
    settings: dict = field(default_factory=dict)
    view: str = ""
    tab: int = 0
    #: "surface": the step's claim is about a loss surface the engine computes after the
    #: step's settings; the tour says so until that surface is on screen
    wait: str = ""


def load_tour(path: Path) -> list[TourStep]:
    """Parse the tour's Markdown into steps (ValueError for a malformed step)."""
    text = path.read_text(encoding="utf-8")
    steps = []
    for chunk in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = chunk.partition("\n")
        meta = {}
        m = _META.search(body)
        if m:
            meta = json.loads(m.group(1))
            body = body[: m.start()] + body[m.end() :]
        steps.append(
            TourStep(
                title.strip(),
                body.strip(),
                dict(meta.get("set", {})),
                meta.get("view", ""),
                int(meta.get("tab", 0)),
                str(meta.get("wait", "")),
            )
        )
    return steps


class TourPanel(QWidget):
    """Next/Back through the steps. Emits ``stepEntered(step)``; the window applies the
    settings and highlights the view. ``left`` when the user leaves the tour."""

    stepEntered = Signal(object)
    left = Signal()

    def __init__(self, steps: list[TourStep], parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("tourPanel")
        self.steps = steps
        self.index = -1
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.heading = QLabel()
        self.heading.setObjectName("tourHeading")
        self.heading.setWordWrap(True)
        self.heading.setStyleSheet("font-weight: bold; font-size: 11pt;")
        self.body = QTextBrowser()
        self.body.setObjectName("tourText")
        self.body.setOpenExternalLinks(True)
        row = QHBoxLayout()
        self.back_button = QPushButton("◀ Back")
        self.back_button.setObjectName("tourBackButton")
        self.back_button.setToolTip("Previous step (Alt+Left)")
        self.back_button.setShortcut("Alt+Left")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setObjectName("tourNextButton")
        self.next_button.setToolTip("Next step: sets the controls it needs (Alt+Right)")
        self.next_button.setShortcut("Alt+Right")
        self.leave_button = QPushButton("Leave tour")
        self.leave_button.setObjectName("tourLeaveButton")
        self.leave_button.setToolTip("Close the tour; the run and the settings stay as they are")
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.leave_button.clicked.connect(self.left)
        for b in (self.back_button, self.next_button, self.leave_button):
            row.addWidget(b)
        self.position = QLabel()
        self.position.setObjectName("tourPosition")
        lay.addWidget(self.position)
        self.note = QLabel()
        self.note.setObjectName("tourNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #b35806; font-style: italic;")
        self.note.setVisible(False)
        lay.addWidget(self.heading)
        lay.addWidget(self.note)
        lay.addWidget(self.body, 1)
        lay.addLayout(row)
        self._show()

    def start(self) -> None:
        self.go(0)

    def next(self) -> None:
        self.go(min(self.index + 1, len(self.steps) - 1))

    def back(self) -> None:
        self.go(max(self.index - 1, 0))

    def go(self, index: int) -> None:
        if not self.steps:
            return
        self.index = index
        self._show()
        self.stepEntered.emit(self.steps[index])

    def set_note(self, text: str) -> None:
        """A line over the step's text, e.g. "computing the new loss surface…" (empty hides)."""
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _show(self) -> None:
        self.set_note("")
        n = len(self.steps)
        if self.index < 0 or not n:
            self.position.setText(f"{n} steps")
            self.heading.setText("A guided tour of the question")
            self.body.setMarkdown(
                "Press **Next** to start. Each step sets the controls it "
                "needs and highlights the view that answers it."
            )
        else:
            step = self.steps[self.index]
            self.position.setText(f"step {self.index + 1} of {n}")
            self.heading.setText(step.title)
            self.body.setMarkdown(step.text)
        self.back_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(self.index < n - 1)
