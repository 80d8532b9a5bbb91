"""The control panel: every setting, validated at the widget, sent on as a changes dict.

A valid entry emits ``changesRequested({field: value})``; an invalid one shows its reason in the
QLabel named after the control (``hiddenLayersEdit`` -> ``hiddenLayersError``) and changes
nothing. The label stays until a valid entry is made in that control.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.activations import ACTIVATIONS
from core.config import DATASETS, PLANES, Config, ConfigError, parse_hidden
from core.losses import REDUCTION_LABELS, REDUCTIONS, loss_choices

#: Config field -> (control objectName, error label objectName)
FIELD_CONTROLS = {
    "hidden": ("hiddenLayersEdit", "hiddenLayersError"),
    "batch_size": ("batchSizeSpin", "batchSizeError"),
    "lr": ("learningRateSpin", "learningRateError"),
    "loss": ("lossCombo", "lossError"),
    "reduction": ("reductionCombo", "reductionError"),
    "optimizer": ("optimizerCombo", "optimizerError"),
    "activation": ("activationCombo", "activationError"),
    "dataset": ("datasetCombo", "datasetError"),
    "seed": ("seedSpin", "seedError"),
    "plane": ("planeCombo", "planeError"),
}

#: what each combo shows (short enough for the ~280 px panel) and, as the item's tooltip,
#: what it means in full
DATASET_LABELS = {
    "teacher": (
        "teacher net 5 → 3",
        "A fixed random teacher network, 5 inputs → 3 outputs (the question)",
    ),
    "waves": ("waves 2 → 3", "Three smooth waves of 2 inputs: easy to picture"),
    "blobs": ("blobs, 3 classes", "Gaussian blobs of 2 inputs in 3 classes: for cross-entropy"),
    "csv": ("CSV file", "Your own data from a CSV file (Dataset → Open CSV… or --csv PATH)"),
}
OPTIMIZER_LABELS = {
    "sgd": ("SGD", "Plain gradient step: w ← w − lr · g"),
    "momentum": ("momentum", "Heavy-ball momentum (μ from the config, 0.9 by default)"),
    "nesterov": ("Nesterov", "Nesterov momentum (μ from the config, 0.9 by default)"),
    "adam": ("Adam", "Adam (β1 = 0.9, β2 = 0.999)"),
}
PLANE_LABELS = {
    "gradient": ("gradient × spread", "d1 = the mean gradient, d2 = the main disagreement"),
    "random": ("random", "Two random filter-normalised directions (Li et al. 2018)"),
    "pca": ("PCA of the path", "The two main directions of the recent trajectory"),
}
REDUCTION_SHORT = {"mean": "mean", "sum": "sum", "max": "max", "weighted": "weighted"}


class LogSpinBox(QDoubleSpinBox):
    """A QDoubleSpinBox for positive values on a log scale: each step multiplies by 10^(1/4)
    (0.01 → 0.018 → 0.032 → 0.056 → 0.1), the arrow keys and the wheel included."""

    FACTOR = 10**0.25

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setDecimals(10)
        self.setRange(1e-6, 1e4)
        self.setKeyboardTracking(False)
        self.setAccelerated(False)

    def stepBy(self, steps: int) -> None:
        # Move on the grid 10^(k/4) (so 0.01 -> 0.0178 -> 0.0316 -> 0.0562 -> 0.1), shown to
        # 3 significant digits; a typed value joins the grid at its nearest point.
        k = round(math.log10(max(self.value(), 1e-300)) * 4) + steps
        v = float(f"{10 ** (k / 4):.3g}")
        self.setValue(min(max(v, self.minimum()), self.maximum()))

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text, pos):
        t = text.strip()
        if t in ("", ".", "-", "e", "1e", "1e-"):
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            # allow partially typed exponents such as "1e-"
            if t[-1:] in "eE-+":
                return QValidator.State.Intermediate, text, pos
            return QValidator.State.Invalid, text, pos
        if not math.isfinite(v):
            return QValidator.State.Invalid, text, pos
        if v < self.minimum() or v > self.maximum():
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos


def _combo(name: str, items: dict[str, str | tuple[str, str]], tip: str) -> QComboBox:
    """A combo of ``{key: label}`` or ``{key: (label, description)}``; the description is
    the item's tooltip (and its long form in the drop-down's status tip)."""
    c = QComboBox()
    c.setObjectName(name)
    for key, label in items.items():
        label, about = label if isinstance(label, tuple) else (label, "")
        c.addItem(label, key)
        if about:
            c.setItemData(c.count() - 1, about, Qt.ItemDataRole.ToolTipRole)
    c.setToolTip(tip)
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(12)
    return c


def _error_label(name: str) -> QLabel:
    lab = QLabel()
    lab.setObjectName(name)
    lab.setWordWrap(True)
    lab.setStyleSheet("color: #c0392b; font-size: 9pt;")
    lab.setVisible(False)
    return lab


class ControlPanel(QWidget):
    """All settings and run buttons. ``validator(changes)`` raises ConfigError for a bad
    change (the window checks against the current config and data)."""

    changesRequested = Signal(dict)
    runToggled = Signal(bool)
    stepRequested = Signal()
    resetRequested = Signal()
    exportRequested = Signal()
    recomputeRequested = Signal()
    logYToggled = Signal(bool)

    def __init__(
        self, config: Config, validator: Callable[[dict], None] | None = None, parent=None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("controlPanel")
        self._validator = validator or (lambda changes: None)
        self._config = config
        self.errors: dict[str, QLabel] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)

        # ---- network
        net = QGroupBox("Network")
        f = self._form(net)
        self.hidden_edit = QLineEdit()
        self.hidden_edit.setObjectName("hiddenLayersEdit")
        self.hidden_edit.setPlaceholderText("e.g. 32, 32")
        self.hidden_edit.setToolTip(
            "Hidden layer sizes, comma separated (e.g. '32, 32'; empty = no hidden layer). "
            "Press Enter to apply: a new shape builds a new network (the history is kept)."
        )
        self.hidden_edit.returnPressed.connect(self._hidden_entered)
        self._row(f, "&Hidden layers", self.hidden_edit, "hidden")
        self.activation_combo = _combo(
            "activationCombo",
            {a: a for a in ACTIVATIONS},
            "Activation of the hidden layers (the output layer is linear). Keeps the weights.",
        )
        self._row(f, "&Activation", self.activation_combo, "activation")
        lay.addWidget(net)

        # ---- data
        data = QGroupBox("Data")
        f = self._form(data)
        self.dataset_combo = _combo(
            "datasetCombo",
            {k: DATASET_LABELS[k] for k in DATASETS if k != "csv"},
            "The task. teacher: the question's 5 inputs → 3 outputs; blobs is for cross-entropy.",
        )
        self._row(f, "Data&set", self.dataset_combo, "dataset")
        self.batch_spin = QSpinBox()
        self.batch_spin.setObjectName("batchSizeSpin")
        self.batch_spin.setRange(1, 65536)
        self.batch_spin.setKeyboardTracking(False)
        self.batch_spin.setToolTip(
            "Minibatch size B: the number of per-sample gradients averaged into one step. "
            "Applies from the next step; the spread of the mean shrinks like 1/√B."
        )
        self._row(f, "&Batch size B", self.batch_spin, "batch_size")
        self.seed_spin = QSpinBox()
        self.seed_spin.setObjectName("seedSpin")
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip(
            "Random seed for the data, the initial weights and the "
            "batch order. A new seed starts new weights."
        )
        self._row(f, "S&eed", self.seed_spin, "seed")
        lay.addWidget(data)

        # ---- optimisation
        opt = QGroupBox("Optimisation")
        f = self._form(opt)
        self.lr_spin = LogSpinBox()
        self.lr_spin.setObjectName("learningRateSpin")
        self.lr_spin.setToolTip(
            "Learning rate (> 0). The arrows step on a log scale "
            "(×1.78); type any value. Keeps the weights."
        )
        self._row(f, "&Learning rate", self.lr_spin, "lr")
        self.loss_combo = _combo(
            "lossCombo", loss_choices(), "Elementwise loss: fills the matrix M (outputs × batch)."
        )
        self._row(f, "L&oss", self.loss_combo, "loss")
        self.reduction_combo = _combo(
            "reductionCombo",
            {k: (REDUCTION_SHORT.get(k, k), REDUCTION_LABELS[k]) for k in REDUCTIONS},
            "How M becomes the one scalar that is minimised. Changing it changes the surface.",
        )
        self._row(f, "&Reduction", self.reduction_combo, "reduction")
        self.optimizer_combo = _combo(
            "optimizerCombo", OPTIMIZER_LABELS, "Update rule on the flat parameter vector."
        )
        self._row(f, "O&ptimiser", self.optimizer_combo, "optimizer")
        lay.addWidget(opt)

        # ---- view
        view = QGroupBox("View")
        f = self._form(view)
        self.plane_combo = _combo(
            "planeCombo",
            {k: PLANE_LABELS[k] for k in PLANES},
            "The plane through the weights on which the loss surface is drawn.",
        )
        self._row(f, "Pla&ne", self.plane_combo, "plane")
        self.log_check = QCheckBox("Log scale for loss curves")
        self.log_check.setObjectName("logYCheck")
        self.log_check.setToolTip("Show the loss curves on a logarithmic y axis.")
        self.log_check.toggled.connect(self.logYToggled)
        f.addRow(self.log_check)
        self.recompute_button = QPushButton("Recompute surface")
        self.recompute_button.setObjectName("recomputeButton")
        self.recompute_button.setToolTip(
            "Recentre the plane on the current weights and compute the loss surface again."
        )
        self.recompute_button.clicked.connect(self.recomputeRequested)
        f.addRow(self.recompute_button)
        lay.addWidget(view)

        # ---- run
        run = QGroupBox("Run")
        h = QHBoxLayout(run)
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setCheckable(True)
        self.run_button.setToolTip("Train continuously (Space). Checked = training.")
        self.run_button.toggled.connect(self._run_toggled)
        self.step_button = QPushButton("Step")
        self.step_button.setObjectName("stepButton")
        self.step_button.setToolTip("Train on one minibatch (S).")
        self.step_button.clicked.connect(self.stepRequested)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setObjectName("resetButton")
        self.reset_button.setToolTip("Fresh weights from the seed; clears the history (R).")
        self.reset_button.clicked.connect(self.resetRequested)
        for b in (self.run_button, self.step_button, self.reset_button):
            h.addWidget(b)
        lay.addWidget(run)
        self.export_button = QPushButton("Export pictures and data…")
        self.export_button.setObjectName("exportButton")
        self.export_button.setToolTip(
            "Save the window and every view as PNG, SVG and CSV into a folder (Ctrl+E)."
        )
        self.export_button.clicked.connect(self.exportRequested)
        lay.addWidget(self.export_button)
        lay.addStretch(1)

        self.set_config(config)
        for combo, field in (
            (self.activation_combo, "activation"),
            (self.dataset_combo, "dataset"),
            (self.loss_combo, "loss"),
            (self.reduction_combo, "reduction"),
            (self.optimizer_combo, "optimizer"),
            (self.plane_combo, "plane"),
        ):
            combo.activated.connect(lambda _i, c=combo, k=field: self._combo_chosen(c, k))
        self.batch_spin.valueChanged.connect(lambda v: self._request({"batch_size": int(v)}))
        self.seed_spin.valueChanged.connect(lambda v: self._request({"seed": int(v)}))
        self.lr_spin.valueChanged.connect(lambda v: self._request({"lr": float(v)}))

    # ------------------------------------------------------------------ layout
    def _form(self, box: QGroupBox) -> QFormLayout:
        f = QFormLayout(box)
        f.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        f.setContentsMargins(6, 4, 6, 4)
        f.setVerticalSpacing(3)
        return f

    def _row(self, form: QFormLayout, label: str, widget: QWidget, field: str) -> None:
        lab = QLabel(label)
        lab.setBuddy(widget)
        form.addRow(lab, widget)
        err = _error_label(FIELD_CONTROLS[field][1])
        self.errors[field] = err
        form.addRow(err)

    # ------------------------------------------------------------------- state
    @property
    def config(self) -> Config:
        return self._config

    def set_config(self, config: Config) -> None:
        """Show ``config`` in every widget without emitting requests."""
        self._config = config
        widgets = [
            self.hidden_edit,
            self.batch_spin,
            self.seed_spin,
            self.lr_spin,
            self.activation_combo,
            self.dataset_combo,
            self.loss_combo,
            self.reduction_combo,
            self.optimizer_combo,
            self.plane_combo,
        ]
        for w in widgets:
            w.blockSignals(True)
        self.hidden_edit.setText(", ".join(map(str, config.hidden)))
        self.batch_spin.setValue(config.batch_size)
        self.seed_spin.setValue(config.seed)
        self.lr_spin.setValue(config.lr)
        for combo, value in (
            (self.activation_combo, config.activation),
            (self.dataset_combo, config.dataset),
            (self.loss_combo, config.loss),
            (self.reduction_combo, config.reduction),
            (self.optimizer_combo, config.optimizer),
            (self.plane_combo, config.plane),
        ):
            i = combo.findData(value)
            if i < 0:
                combo.addItem(value, value)
                i = combo.findData(value)
            combo.setCurrentIndex(i)
        if config.dataset == "csv":  # the combo names the file (Dataset → Open CSV… sets it)
            name = config.csv_path.replace("\\", "/").rsplit("/", 1)[-1]
            self.dataset_combo.setItemText(self.dataset_combo.findData("csv"), f"CSV: {name}")
        for w in widgets:
            w.blockSignals(False)

    def show_error(self, field: str, message: str) -> None:
        """Show ``message`` under the control for ``field`` (or the closest one)."""
        lab = self.errors.get(field) or self.errors.get(_nearest_field(field))
        if lab is None:
            lab = self.errors["hidden"] if "hidden" in field else None
        if lab is None and _nearest_field(field).startswith("csv_"):
            lab = self.errors.get("dataset")  # a CSV file or its columns: under Dataset
        if lab is not None:
            lab.setText(message)
            lab.setVisible(True)

    def clear_error(self, field: str) -> None:
        lab = self.errors.get(field)
        if lab is not None:
            lab.clear()
            lab.setVisible(False)

    def set_running(self, running: bool) -> None:
        self.run_button.blockSignals(True)
        self.run_button.setChecked(running)
        self.run_button.blockSignals(False)
        self._label_run(running)

    # --------------------------------------------------------------- requests
    def _request(self, changes: dict) -> bool:
        field = next(iter(changes))
        try:
            self._validator(changes)
        except ConfigError as e:
            self.show_error(e.field if e.field in self.errors else field, e.message)
            return False
        for k in changes:
            self.clear_error(k)
        self._config = self._config.replace(**changes)
        self.changesRequested.emit(changes)
        return True

    def _hidden_entered(self) -> None:
        try:
            hidden = parse_hidden(self.hidden_edit.text())
        except ConfigError as e:
            self.show_error("hidden", e.message)
            return
        # '32,,32' and '32 32' mean 32, 32: the field shows what was understood
        self.hidden_edit.setText(", ".join(map(str, hidden)))
        if hidden == tuple(self._config.hidden):
            self.clear_error("hidden")
            return
        self._request({"hidden": hidden})

    def _combo_chosen(self, combo: QComboBox, field: str) -> None:
        value = combo.currentData()
        if value == getattr(self._config, field):
            self.clear_error(field)
            return
        if not self._request({field: value}):
            combo.blockSignals(True)
            combo.setCurrentIndex(combo.findData(getattr(self._config, field)))
            combo.blockSignals(False)

    def _run_toggled(self, on: bool) -> None:
        self._label_run(on)
        self.runToggled.emit(on)

    def _label_run(self, on: bool) -> None:
        self.run_button.setText("Pause" if on else "Run")


def _nearest_field(field: str) -> str:
    """ConfigError fields from a loader look like 'file.json: lr'; map to the setting."""
    return field.rsplit(":", 1)[-1].strip()
