"""The control panel, built from the settings' declarations (``core.config.SETTINGS``).

A value passes two checks: here, as it is typed (``Setting.check``: its kind, range or
choices), and in the engine (``Config.validate``, which knows the data). An entry refused here
shows why in the QLabel named after the control (``hiddenLayersEdit`` -> ``hiddenLayersError``)
and changes nothing; an accepted one is emitted as ``changesRequested({field: value})``.

The engine owns the applied settings: the panel shows the newest snapshot's config
(``show_applied``) and marks an edit the engine has not taken yet as *pending* (italic, a
tooltip, the widget's ``pending`` property) until a snapshot carries it. If the engine
refuses it (``refused``), its message appears under the field and the field shows the
applied value again. A long message (a divergence's) shows its first paragraph, the rest
behind a "Details…" link (``NoteLabel``).

The settings scroll on their own (``SettingsScroll``); Run, Step, Reset and Export sit under
them, outside the scrolling, so no note and no unfolded "More settings" pushes them out of
sight.
"""

from __future__ import annotations

import html
import math
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette, QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.config import (
    CSV,
    DATA,
    MORE,
    NETWORK,
    OPTIMISATION,
    SETTING,
    SETTINGS,
    VIEW,
    Config,
    ConfigError,
    Setting,
)

#: the settings with a widget in this panel (the CSV settings are the CSV dialog's)
PANEL_SETTINGS: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.group != CSV)
#: Config field -> (control objectName, error label objectName)
FIELD_CONTROLS = {s.name: (s.control, s.error_label) for s in PANEL_SETTINGS}
PENDING_TIP = "Pending: the engine has not taken this value yet (it applies between two steps)."
INT_MAX = 2**31 - 1  #: QSpinBox's largest value
PENDING_COLOUR = "#2471a3"  #: a pending value's text (with italics)
UNFOLD, FOLD = "#details", "#less"  #: the links that show and hide a note's details


class _TypedRange:
    """For spin boxes: text outside the declared range stays editable (Intermediate) instead
    of losing the keystroke, and Enter on it reports why (``refusedText``) rather than the
    box silently going back to its old value."""

    setting: Setting

    def _validate_number(self, text: str, pos: int, parse) -> tuple:
        t = text.strip()
        if t in ("", ".", "-", "+") or t[-1:] in "eE-+":
            return QValidator.State.Intermediate, text, pos
        try:
            v = parse(t)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        if not math.isfinite(v):
            return QValidator.State.Invalid, text, pos
        if v < self.minimum() or v > self.maximum():
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos

    def _check_typed(self) -> None:
        """Enter or leaving the field on text the box cannot take: say why."""
        text = self.lineEdit().text()
        if self.validate(text, 0)[0] == QValidator.State.Acceptable or not text.strip():
            return
        try:
            self.setting.parse(text)
        except ConfigError as e:
            self.refusedText.emit(e.message)
            return
        self.refusedText.emit(f"{text.strip()} is outside {self.minimum():g} … {self.maximum():g}")

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._check_typed()
        super().keyPressEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._check_typed()
        super().focusOutEvent(event)


class SettingSpinBox(_TypedRange, QSpinBox):
    """A whole-number setting: the declared range, checked as typed."""

    refusedText = Signal(str)

    def __init__(self, setting: Setting, parent=None) -> None:
        super().__init__(parent)
        self.setting = setting
        self.setRange(int(setting.lo), int(min(setting.hi, INT_MAX)))
        self.setKeyboardTracking(False)

    def validate(self, text, pos):
        return self._validate_number(text, pos, int)


class SettingDoubleSpinBox(_TypedRange, QDoubleSpinBox):
    """A real-valued setting in its declared range, shown to 4 significant digits."""

    refusedText = Signal(str)

    def __init__(self, setting: Setting, parent=None) -> None:
        super().__init__(parent)
        self.setting = setting
        self.setDecimals(6)
        lo = float(setting.lo) + (1e-6 if setting.low_open else 0.0)
        self.setRange(lo, float(setting.hi))
        self.setSingleStep(0.05 if setting.hi <= 1 else 0.1)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt's name
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt's name
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text, pos):
        return self._validate_number(text, pos, float)


class LogSpinBox(SettingDoubleSpinBox):
    """A positive setting on a log scale: each step multiplies by 10^(1/4)
    (0.01 → 0.018 → 0.032 → 0.056 → 0.1), the arrow keys and the wheel included."""

    FACTOR = 10**0.25

    def __init__(self, setting: Setting | None = None, parent=None) -> None:
        super().__init__(setting or SETTING["lr"], parent)
        self.setDecimals(10)
        self.setMinimum(max(self.minimum(), 1e-10))
        self.setAccelerated(False)

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt's name
        # Move on the grid 10^(k/4) (so 0.01 -> 0.0178 -> 0.0316 -> 0.0562 -> 0.1), shown to
        # 3 significant digits; a typed value joins the grid at its nearest point.
        k = round(math.log10(max(self.value(), 1e-300)) * 4) + steps
        v = float(f"{10 ** (k / 4):.3g}")
        self.setValue(min(max(v, self.minimum()), self.maximum()))


def _combo(s: Setting) -> QComboBox:
    """A combo of the setting's choices (read now: a registered loss is offered); each
    choice's explanation is its item's tooltip."""
    c = QComboBox()
    for choice in s.options():
        if s.name == "dataset" and choice.key == "csv":
            continue  # Dataset → Open CSV… chooses a file; the combo then names it
        c.addItem(choice.label or choice.key, choice.key)
        if choice.about:
            c.setItemData(c.count() - 1, choice.about, Qt.ItemDataRole.ToolTipRole)
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(12)
    return c


def _line_edit(s: Setting) -> QLineEdit:
    e = QLineEdit()
    e.setPlaceholderText("e.g. 32, 32" if s.kind == "sizes" else "e.g. 2, 1, 1")
    return e


def make_widget(s: Setting) -> QWidget:
    """The widget a setting's declaration asks for, named and with its tooltip."""
    if s.kind == "choice":
        w: QWidget = _combo(s)
    elif s.kind == "int":
        w = SettingSpinBox(s)
    elif s.kind == "float":
        w = LogSpinBox(s) if s.log else SettingDoubleSpinBox(s)
    else:
        w = _line_edit(s)
    w.setObjectName(s.control)
    w.setToolTip(s.tooltip)
    return w


class NoteLabel(QLabel):
    """The message under a control (named after it: ``learningRateError``), wrapped to the
    panel's width. A message with details (after its first blank line) shows its first
    paragraph and a "Details…" link to the rest ("Less" folds it again); the whole message
    is the tooltip. It asks for the height its wrapped text needs at its width: QFormLayout
    gives a spanning row the height of the label's size hint, which is too short for a long
    note in a narrow panel (its last lines were cut)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self.setWordWrap(True)
        self.setStyleSheet("color: #c0392b; font-size: 9pt;")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.setVisible(False)
        self.summary = self.details = ""
        self.linkActivated.connect(lambda href: self.unfold(href == UNFOLD))

    def show_message(self, message: str) -> None:
        self.summary, _, self.details = message.partition("\n\n")
        self.unfold(False)
        self.setVisible(True)

    def clear_message(self) -> None:
        self.summary = self.details = ""
        self.clear()
        self.setToolTip("")
        self.setMinimumHeight(0)
        self.setVisible(False)

    def unfold(self, on: bool) -> None:
        """The details shown (``on``) or folded under the "Details…" link."""
        if not self.details:
            self.setTextFormat(Qt.TextFormat.PlainText)
            self.setText(self.summary)
            self.setToolTip("")
        else:
            short = html.escape(self.summary, quote=False)
            more = html.escape(self.details, quote=False)
            self.setTextFormat(Qt.TextFormat.RichText)
            if on:
                self.setText(f"{short}<br><br>{more} <a href='{FOLD}'>Less</a>")
            else:
                self.setText(f"{short} <a href='{UNFOLD}'>Details…</a>")
            self.setToolTip(f"<p>{short}</p><p>{more}</p>")
        self._fit()

    def _fit(self) -> None:
        self.setMinimumHeight(self.heightForWidth(self.width()) if self.text() else 0)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit()


def _show_value(w: QWidget, value: Any) -> None:
    """Put ``value`` in the widget without emitting a request."""
    w.blockSignals(True)
    if isinstance(w, QComboBox):
        i = w.findData(value)
        if i < 0:
            w.addItem(str(value), value)
            i = w.findData(value)
        w.setCurrentIndex(i)
    elif isinstance(w, QAbstractSpinBox):
        w.setValue(value)
    else:
        w.setText(", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value))
    w.blockSignals(False)


class SettingsScroll(QScrollArea):
    """The settings column, scrolled on its own: as tall as its content when the dock has
    room (the run buttons follow right under it), shorter and scrolling when not (they stay
    in sight at the dock's foot). Never narrower than the column with its scroll bar."""

    MIN_LINES = 4  #: the least height, in lines of text, before the dock itself scrolls

    def __init__(self, column: QWidget) -> None:
        super().__init__()
        self.setObjectName("settingsScroll")
        self.setWidget(column)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        column.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # a note shown or hidden, "More settings" (un)folded
        return super().eventFilter(obj, event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()  # wrapped notes: the height wanted depends on the width

    def _bar(self) -> int:
        return self.verticalScrollBar().sizeHint().width()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        column = self.widget()
        hint = column.sizeHint()
        width = self.viewport().width() if self.isVisible() else hint.width()
        height = column.heightForWidth(width) if column.hasHeightForWidth() else -1
        return QSize(hint.width() + self._bar(), height if height > 0 else hint.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        lines = self.MIN_LINES * self.fontMetrics().height()
        return QSize(self.widget().minimumSizeHint().width() + self._bar(), lines)


class ControlPanel(QWidget):
    """All settings and the run buttons (see the module docstring)."""

    changesRequested = Signal(dict)
    runToggled = Signal(bool)
    stepRequested = Signal()
    resetRequested = Signal()
    exportRequested = Signal()
    recomputeRequested = Signal()
    logYToggled = Signal(bool)

    def __init__(self, config: Config, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("controlPanel")
        self._applied = config
        self._pending: dict[str, Any] = {}
        self._together: list[frozenset[str]] = []  # fields requested together, newest last
        self.widgets: dict[str, QWidget] = {}
        self.errors: dict[str, NoteLabel] = {}
        self._text = self.palette().color(QPalette.ColorRole.Text)
        column = QWidget()
        column.setObjectName("settingsColumn")
        col = QVBoxLayout(column)
        col.setContentsMargins(6, 6, 6, 0)
        for group in (NETWORK, DATA, OPTIMISATION, VIEW):
            box = QGroupBox(group)
            self._add_settings(self._form(box), group)
            col.addWidget(box)
        self._add_view_extras(box.layout())
        col.addWidget(self._more_box())
        col.addStretch(1)
        self.settings_scroll = SettingsScroll(column)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.settings_scroll)
        lay.addWidget(self._edge())
        lay.addWidget(self._actions())
        lay.addStretch(1)
        self.set_config(config)

    # ------------------------------------------------------------------ layout
    def _form(self, box: QWidget) -> QFormLayout:
        f = QFormLayout(box)
        f.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        f.setContentsMargins(6, 4, 6, 4)
        f.setVerticalSpacing(3)
        return f

    def _add_settings(self, form: QFormLayout, group: str) -> None:
        """A labelled widget and its error label for each setting of ``group``."""
        for s in PANEL_SETTINGS:
            if s.group != group:
                continue
            w = make_widget(s)
            lab = QLabel(s.label)
            lab.setBuddy(w)
            form.addRow(lab, w)
            err = NoteLabel(s.error_label)
            err.linkActivated.connect(lambda _href, lab=err: self._keep_in_sight(lab))
            form.addRow(err)
            self.widgets[s.name], self.errors[s.name] = w, err
            self._connect(s, w)

    def _connect(self, s: Setting, w: QWidget) -> None:
        if isinstance(w, QComboBox):
            w.activated.connect(lambda _i, k=s.name: self._combo_chosen(k))
        elif isinstance(w, QLineEdit):
            w.returnPressed.connect(lambda k=s.name: self._text_entered(k))
        else:
            kind = int if s.kind == "int" else float
            w.valueChanged.connect(lambda v, k=s.name, t=kind: self.request({k: t(v)}))
            w.refusedText.connect(lambda m, k=s.name: self.show_error(k, m))

    def _add_view_extras(self, f: QFormLayout) -> None:
        self.log_check = QCheckBox("Log scale for loss curves")
        self.log_check.setObjectName("logYCheck")
        self.log_check.setToolTip("Show the loss curves on a logarithmic y axis.")
        self.log_check.toggled.connect(self.logYToggled)
        f.addRow(self.log_check)
        self.recompute_button = self._button(
            "Recompute surface",
            "recomputeButton",
            "Recentre the plane on the current weights and compute the loss surface again.",
            self.recomputeRequested,
        )
        f.addRow(self.recompute_button)

    def _button(self, text: str, name: str, tip: str, signal) -> QPushButton:
        b = QPushButton(text)
        b.setObjectName(name)
        b.setToolTip(tip)
        b.clicked.connect(signal)
        return b

    def _edge(self) -> QFrame:
        """A line under the settings while they scroll: the edge they scroll under."""
        rule = QFrame()
        rule.setObjectName("settingsEdge")
        rule.setFrameShape(QFrame.Shape.HLine)
        rule.setFrameShadow(QFrame.Shadow.Sunken)
        bar = self.settings_scroll.verticalScrollBar()
        bar.rangeChanged.connect(lambda _lo, hi: rule.setVisible(hi > 0))
        rule.setVisible(False)
        return rule

    def _actions(self) -> QWidget:
        """Run, Step, Reset and Export, under the settings and outside their scrolling: a
        long note or the unfolded "More settings" never pushes them out of sight."""
        actions = QWidget()
        actions.setObjectName("runActions")
        v = QVBoxLayout(actions)
        v.setContentsMargins(6, 6, 6, 6)
        v.addWidget(self._run_box())
        self.export_button = self._button(
            "Export pictures and data…",
            "exportButton",
            "Save the window and every view as PNG, SVG and CSV into a folder (Ctrl+E).",
            self.exportRequested,
        )
        v.addWidget(self.export_button)
        actions.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        return actions

    def _run_box(self) -> QGroupBox:
        run = QGroupBox("Run")
        h = QHBoxLayout(run)
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setCheckable(True)
        self.run_button.setToolTip("Train continuously (Space). Checked = training.")
        self.run_button.toggled.connect(self._run_toggled)
        self.step_button = self._button(
            "Step", "stepButton", "Train on one minibatch (S).", self.stepRequested
        )
        self.reset_button = self._button(
            "Reset",
            "resetButton",
            "Fresh weights from the seed; clears the history (R).",
            self.resetRequested,
        )
        for b in (self.run_button, self.step_button, self.reset_button):
            h.addWidget(b)
        return run

    def _more_box(self) -> QWidget:
        """The other settings, folded away under a button (they are also options and keys)."""
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        button = QToolButton()
        button.setObjectName("moreSettingsButton")
        button.setText(MORE)
        button.setToolTip("Show the settings that are usually left alone (data, weights, grid).")
        button.setCheckable(True)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setArrowType(Qt.ArrowType.RightArrow)
        inner = QGroupBox()
        inner.setObjectName("moreSettings")
        form = self._form(inner)
        # its labels are the longest ("Surface samples (k)"): a field that does not fit beside
        # its label goes under it, so unfolding never makes the panel wider than the dock
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self._add_settings(form, MORE)
        inner.setVisible(False)

        def fold(on: bool) -> None:
            inner.setVisible(on)
            button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
            if on:
                self._keep_in_sight(inner)

        button.toggled.connect(fold)
        self.more_button = button
        v.addWidget(button)
        v.addWidget(inner)
        return box

    # ------------------------------------------------------------------- state
    @property
    def config(self) -> Config:
        """The applied settings with the pending edits on top (what the panel shows)."""
        return self._applied.replace(**self._pending) if self._pending else self._applied

    @property
    def pending(self) -> dict[str, Any]:
        """Edits sent to the engine and not yet seen in a snapshot."""
        return dict(self._pending)

    def set_config(self, config: Config) -> None:
        """Show ``config`` as applied in every widget (no pending edits, no requests)."""
        self._applied = config
        for k in list(self._pending):
            self._mark(k, False)
        self._pending.clear()
        self._together.clear()
        self._show(config, self.widgets)

    def show_applied(self, config: Config) -> None:
        """The engine's settings (the newest snapshot's): pending edits it carries are done;
        fields the engine changed show its value, unless an edit of theirs is pending."""
        if config == self._applied and not self._pending:
            return
        old, self._applied = self._applied, config
        for k, v in list(self._pending.items()):
            if getattr(config, k) == v:
                self._drop(k)
        moved = [k for k in self.widgets if getattr(old, k) != getattr(config, k)]
        self._show(config, [k for k in moved if k not in self._pending])

    def refused(self, field: str, message: str) -> None:
        """The engine refused a change: its message under the field, and the fields asked for
        with it show the applied values again."""
        groups = [g for g in self._together if field in g] or self._together[-1:]
        group = groups[-1] if groups else frozenset({field})  # blamed on another: the newest
        for k in group:
            self._drop(k)
        self._show(self._applied, [k for k in group if k in self.widgets])
        self.show_error(field, message)

    def _drop(self, field: str) -> None:
        self._pending.pop(field, None)
        self._mark(field, False)
        self._together = [g for g in self._together if field not in g or g & self._pending.keys()]

    def _mark(self, field: str, on: bool) -> None:
        """The pending mark: italic, a tooltip saying so, and the ``pending`` property."""
        w = self.widgets.get(field)
        if w is None or bool(w.property("pending")) == on:
            return
        font = w.font()
        font.setItalic(on)
        w.setFont(font)
        pal = w.palette()
        pal.setColor(QPalette.ColorRole.Text, QColor(PENDING_COLOUR) if on else self._text)
        w.setPalette(pal)
        w.setProperty("pending", on)
        tip = SETTING[field].tooltip
        w.setToolTip(f"{tip}\n\n{PENDING_TIP}" if on else tip)

    def _show(self, config: Config, fields) -> None:
        for k in fields:
            _show_value(self.widgets[k], getattr(config, k))
        if "dataset" in fields and config.dataset == "csv":  # the combo names the file
            combo = self.widgets["dataset"]
            name = config.csv_path.replace("\\", "/").rsplit("/", 1)[-1]
            combo.setItemText(combo.findData("csv"), f"CSV: {name}")

    def show_error(self, field: str, message: str) -> None:
        """Show ``message`` under the control for ``field`` (or the closest one)."""
        name = _nearest_field(field)
        lab = self.errors.get(name)
        if lab is None and "hidden" in field:
            lab = self.errors["hidden"]
        if lab is None and SETTING.get(name, SETTING["dataset"]).group == CSV:
            lab = self.errors.get("dataset")  # a CSV file or its columns: under Dataset
        if lab is not None:
            if SETTING.get(name) is not None and SETTING[name].group == MORE:
                self.more_button.setChecked(True)  # unfold: the reason must be seen
            lab.show_message(message)
            self._keep_in_sight(lab)

    def _keep_in_sight(self, w: QWidget) -> None:
        """Scroll the settings to ``w`` once the column is laid out again."""
        QTimer.singleShot(0, self, lambda: self.settings_scroll.ensureWidgetVisible(w, 0, 4))

    def clear_error(self, field: str) -> None:
        lab = self.errors.get(field)
        if lab is not None:
            lab.clear_message()

    def set_running(self, running: bool) -> None:
        self.run_button.blockSignals(True)
        self.run_button.setChecked(running)
        self.run_button.blockSignals(False)
        self._label_run(running)

    # --------------------------------------------------------------- requests
    def check(self, field: str, value: Any) -> None:
        """The widget's check of one value (its declared kind and range or choices)."""
        SETTING[field].check(value)

    def request(self, changes: dict[str, Any]) -> bool:
        """Check each value here, then send the changes to the engine and mark them pending
        until a snapshot carries them; False (and the reason under the field) if refused."""
        current = self.config
        changes = {k: v for k, v in changes.items() if getattr(current, k, None) != v}
        for k, v in changes.items():
            try:
                self.check(k, v)
            except ConfigError as e:
                self.show_error(e.field, e.message)
                self._show(current, [k for k in changes if k in self.widgets])
                return False
        if not changes:
            return True
        for k, v in changes.items():
            self.clear_error(k)
            self._pending[k] = v
            self._mark(k, True)
        self._together.append(frozenset(changes))
        self._show(self.config, [k for k in changes if k in self.widgets])
        self.changesRequested.emit(changes)
        return True

    def _text_entered(self, field: str) -> None:
        w = self.widgets[field]
        try:
            value = SETTING[field].parse(w.text())
        except ConfigError as e:
            self.show_error(field, e.message)
            return
        # '32,,32' and '32 32' mean 32, 32: the field shows what was understood
        _show_value(w, value)
        if value == getattr(self.config, field):
            self.clear_error(field)
            return
        self.request({field: value})

    def _combo_chosen(self, field: str) -> None:
        value = self.widgets[field].currentData()
        if value == getattr(self.config, field):
            self.clear_error(field)
            return
        self.request({field: value})

    def _run_toggled(self, on: bool) -> None:
        self._label_run(on)
        self.runToggled.emit(on)

    def _label_run(self, on: bool) -> None:
        self.run_button.setText("Pause" if on else "Run")


def _nearest_field(field: str) -> str:
    """ConfigError fields from a loader look like 'file.json: lr'; map to the setting."""
    return field.rsplit(":", 1)[-1].strip()
