"""The control panel as a user meets it: fixed objectNames and tooltips, widgets built from the
settings' declarations, two checks on the way (at the widget as typed, in the engine when
applied: a refused entry shows why under the field and leaves the run alone), pending edits
marked until the engine takes them, and valid entries reaching the engine between two steps."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from gui_testing import (
    child,
    choose,
    small_config,
    start_training,
    type_into,
    wait_drawn,
    wait_snapshot,
)
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

CONTROLS = {
    "hiddenLayersEdit": QLineEdit,
    "batchSizeSpin": QSpinBox,
    "learningRateSpin": QDoubleSpinBox,
    "lossCombo": QComboBox,
    "reductionCombo": QComboBox,
    "optimizerCombo": QComboBox,
    "activationCombo": QComboBox,
    "datasetCombo": QComboBox,
    "seedSpin": QSpinBox,
    "runButton": QPushButton,
    "stepButton": QPushButton,
    "resetButton": QPushButton,
    "exportButton": QPushButton,
}
ERROR_LABELS = {
    "hiddenLayersEdit": "hiddenLayersError",
    "batchSizeSpin": "batchSizeError",
    "learningRateSpin": "learningRateError",
    "lossCombo": "lossError",
    "reductionCombo": "reductionError",
    "optimizerCombo": "optimizerError",
    "activationCombo": "activationError",
    "datasetCombo": "datasetError",
    "seedSpin": "seedError",
}


def _more_steps(qtbot, window, n: int = 10):
    """Let the run go on ``n`` more steps (the session had its chance to change)."""
    k = window.last_snapshot.step
    return wait_snapshot(qtbot, window, lambda s: s.step >= k + n)


def _error(window, name: str) -> QLabel:
    return child(window, QLabel, name)


def _wait_error(qtbot, window, name: str, words: str) -> QLabel:
    """Wait for the engine's refusal to appear under the field (it answers asynchronously)."""
    lab = _error(window, name)
    qtbot.waitUntil(lambda: lab.isVisible() and words in lab.text(), timeout=15_000)
    return lab


def test_controls_have_fixed_names_tooltips_and_hidden_error_labels(window):
    for name, cls in CONTROLS.items():
        w = child(window, cls, name)
        assert w.toolTip().strip(), f"{name} has no tooltip"
        assert w.isVisibleTo(window), f"{name} is not shown"
        assert w.focusPolicy() != Qt.FocusPolicy.NoFocus, f"{name} has no keyboard path"
    for label in ERROR_LABELS.values():
        lab = _error(window, label)
        assert not lab.isVisible(), f"{label} is visible before any entry ({lab.text()!r})"
    assert child(window, QPushButton, "runButton").isCheckable()
    assert child(window, QLineEdit, "hiddenLayersEdit").text() == "16, 16"


def test_hidden_layers_refused_then_rebuilt_with_history_kept(window, qtbot):
    edit = child(window, QLineEdit, "hiddenLayersEdit")
    err = _error(window, "hiddenLayersError")
    before = start_training(qtbot, window, min_step=20)

    type_into(qtbot, edit, "abc")
    assert err.isVisible()
    assert "abc" in err.text() and "whole number" in err.text()
    snap = _more_steps(qtbot, window)
    assert snap.layer_sizes == (5, 16, 16, 3)
    assert snap.run_id == before.run_id
    assert window.controls.config.hidden == (16, 16)

    for bad, words in (("0", "at least 1"), ("10^9", "whole number"), ("100000", "at most")):
        type_into(qtbot, edit, bad)
        assert err.isVisible(), f"{bad!r} was accepted"
        assert words in err.text(), err.text()
    snap = _more_steps(qtbot, window)
    assert snap.layer_sizes == (5, 16, 16, 3) and snap.run_id == before.run_id
    k = snap.step

    type_into(qtbot, edit, "24, 12")
    assert not err.isVisible()
    assert err.text() == ""
    rebuilt = wait_snapshot(qtbot, window, lambda s: s.layer_sizes == (5, 24, 12, 3))
    # a new network (new run id), but the history carries on from where it was
    assert rebuilt.run_id != before.run_id
    assert rebuilt.step >= k
    h = rebuilt.history
    assert len(h) == rebuilt.step and h.steps[0] == 1
    assert any("rebuilt" in text for _, text in h.events)
    later = wait_snapshot(qtbot, window, lambda s: s.step > rebuilt.step + 10)
    assert later.layer_sizes == (5, 24, 12, 3)
    drawn = wait_drawn(qtbot, window, lambda s: s.layer_sizes == (5, 24, 12, 3))
    assert drawn.n_params == 5 * 24 + 24 + 24 * 12 + 12 + 12 * 3 + 3


def test_batch_size_larger_than_training_set_refused(make_window, qtbot):
    # 80 samples, 20 % held out: a training set of 64, so full batch stays cheap
    window = make_window(small_config(n_samples=80))
    spin = child(window, QSpinBox, "batchSizeSpin")
    err = _error(window, "batchSizeError")
    before = start_training(qtbot, window, min_step=5)
    n_train = before.n_train
    assert n_train == 64
    for bad in (n_train + 1, 5000):
        type_into(qtbot, spin, str(bad))  # in the declared range: the widget takes it ...
        err = _wait_error(qtbot, window, "batchSizeError", "larger than the training set")
        assert str(n_train) in err.text()  # ... and the engine refuses it, under the field
        qtbot.waitUntil(lambda: spin.value() == 32)  # the field shows what is applied
        assert not spin.property("pending")
    snap = _more_steps(qtbot, window)
    assert snap.batch_size == 32 and snap.run_id == before.run_id
    assert window.controls.config.batch_size == 32

    type_into(qtbot, spin, str(n_train))  # the whole training set: full batch is allowed
    assert not err.isVisible()
    snap = wait_snapshot(qtbot, window, lambda s: s.batch_size == n_train)
    assert snap.M.shape == (n_train, 3)
    assert snap.run_id == before.run_id


def test_loss_and_reduction_switch(make_window, qtbot):
    # a small rate: the sum reduction multiplies the step by B (at 0.05 it diverges)
    window = make_window(small_config(lr=0.002))
    loss = child(window, QComboBox, "lossCombo")
    red = child(window, QComboBox, "reductionCombo")
    start_training(qtbot, window, min_step=5)
    first_surface = wait_drawn(qtbot, window, lambda s: s.surface is not None).surface.surface_id

    choose(loss, "mae")
    snap = wait_snapshot(qtbot, window, lambda s: s.config.loss == "mae")
    assert snap.loss == pytest.approx(float(np.mean(np.asarray(snap.M))), rel=1e-12)
    choose(loss, "huber")
    wait_snapshot(qtbot, window, lambda s: s.config.loss == "huber")
    choose(loss, "mse")
    wait_snapshot(qtbot, window, lambda s: s.config.loss == "mse")

    for reduction in ("sum", "max", "weighted", "mean"):
        choose(red, reduction)
        snap = wait_snapshot(
            qtbot, window, lambda s, r=reduction: s.config.reduction == r and s.detail
        )
        assert not snap.diverged
        M = np.asarray(snap.M)
        # the one backpropagated scalar is the reduction of M
        assert snap.loss == pytest.approx(
            float(np.asarray(snap.weights) @ np.asarray(snap.per_sample_loss)), rel=1e-9
        )
        if reduction == "sum":
            assert snap.loss == pytest.approx(float(M.sum() / M.shape[1]), rel=1e-9)
        if reduction == "max":
            assert snap.loss == pytest.approx(float(M.max()), rel=1e-12)
        if reduction == "mean":
            assert snap.loss == pytest.approx(float(M.mean()), rel=1e-12)
    for name in ("lossError", "reductionError"):
        assert not _error(window, name).isVisible()
    # a new scalar means a new surface
    drawn = wait_drawn(
        qtbot,
        window,
        lambda s: s.surface is not None and s.surface.surface_id != first_surface,
    )
    assert drawn.config.reduction in ("max", "weighted", "mean")


def test_combo_by_keyboard(window, qtbot):
    combo = child(window, QComboBox, "reductionCombo")
    assert combo.currentData() == "mean"
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentIndex() == 1
    want = combo.currentData()
    assert want != "mean"
    assert window.controls.config.reduction == want
    click_step = child(window, QPushButton, "stepButton")
    qtbot.mouseClick(click_step, Qt.MouseButton.LeftButton)
    snap = wait_snapshot(qtbot, window, lambda s: s.step == 1)
    assert snap.config.reduction == want


def test_cross_entropy_needs_classes(window, qtbot):
    loss = child(window, QComboBox, "lossCombo")
    dataset = child(window, QComboBox, "datasetCombo")
    err = _error(window, "lossError")
    before = start_training(qtbot, window, min_step=5)

    choose(loss, "cross_entropy")
    _wait_error(qtbot, window, "lossError", "cross-entropy")  # refused by the engine
    assert "blobs" in err.text()
    qtbot.waitUntil(lambda: loss.currentData() == "mse")  # the combo shows what is in force
    snap = _more_steps(qtbot, window)
    assert snap.config.loss == "mse" and snap.run_id == before.run_id

    choose(dataset, "blobs")
    snap = wait_snapshot(qtbot, window, lambda s: s.config.dataset == "blobs")
    assert snap.layer_sizes == (2, 16, 16, 3)
    choose(loss, "cross_entropy")
    assert not err.isVisible()
    snap = wait_snapshot(qtbot, window, lambda s: s.config.loss == "cross_entropy")
    assert snap.task == "classification"
    assert math.isfinite(snap.loss)


def test_learning_rate_steps_on_a_log_scale(make_window, qtbot):
    window = make_window(small_config(lr=0.01))
    spin = child(window, QDoubleSpinBox, "learningRateSpin")
    assert spin.value() == pytest.approx(0.01)
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    assert spin.value() == pytest.approx(0.0178, abs=1e-12)
    assert spin.text() == "0.0178"
    assert window.controls.config.lr == pytest.approx(0.0178)
    # each arrow step multiplies by 10^(1/4), shown to 3 significant digits
    values = [spin.value()]
    for _ in range(3):
        qtbot.keyClick(spin, Qt.Key.Key_Up)
        values.append(spin.value())
    assert values[-1] == pytest.approx(0.1, abs=1e-12)  # four steps: one decade
    ratios = np.array(values[1:]) / np.array(values[:-1])
    assert ratios == pytest.approx(10**0.25, rel=5e-3)
    spin.stepBy(-3)
    assert spin.value() == pytest.approx(0.0178, rel=1e-2)
    qtbot.keyClick(spin, Qt.Key.Key_Down)
    assert spin.value() == pytest.approx(0.01, abs=1e-12)
    assert window.controls.config.lr == pytest.approx(0.01, abs=1e-12)
    qtbot.mouseClick(child(window, QPushButton, "stepButton"), Qt.MouseButton.LeftButton)
    snap = wait_snapshot(qtbot, window, lambda s: s.step == 1)
    assert snap.config.lr == pytest.approx(0.01)

    # any value can be typed; the session uses it
    type_into(qtbot, spin, "0.0025")
    assert spin.value() == pytest.approx(0.0025)
    qtbot.mouseClick(child(window, QPushButton, "stepButton"), Qt.MouseButton.LeftButton)
    snap = wait_snapshot(qtbot, window, lambda s: s.step == 2)
    assert snap.config.lr == pytest.approx(0.0025)
    assert not _error(window, "learningRateError").isVisible()


def test_other_settings_reach_the_engine(window, qtbot):
    start_training(qtbot, window, min_step=5)
    choose(child(window, QComboBox, "optimizerCombo"), "adam")
    choose(child(window, QComboBox, "activationCombo"), "relu")
    snap = wait_snapshot(
        qtbot, window, lambda s: s.config.optimizer == "adam" and s.config.activation == "relu"
    )
    run_id = snap.run_id
    type_into(qtbot, child(window, QSpinBox, "seedSpin"), "7")
    snap = wait_snapshot(qtbot, window, lambda s: s.config.seed == 7)
    assert snap.run_id != run_id  # a new seed starts new weights
    for name in ERROR_LABELS.values():
        assert not child(window, QWidget, name).isVisible()


# ------------------------------------------------------- one declaration, two checks
def test_every_setting_has_a_widget_an_option_and_a_key(qtbot, monkeypatch):
    """Derived from ``core.config.SETTINGS``: each declared setting has its widget (the CSV
    ones in the CSV dialog) with the declared range or choices and tooltip, a command-line
    option and a config-file key; a new declaration gets all three."""
    import main
    from core.config import CSV, SETTINGS, Config, Setting
    from gui.controls import ControlPanel, make_widget
    from gui.csv_dialog import CsvDialog

    panel, dialog = ControlPanel(Config()), CsvDialog(Config())
    qtbot.addWidget(panel)
    qtbot.addWidget(dialog)
    options = {a.dest: a.option_strings for a in main.build_parser()._actions}
    keys = Config().to_dict()
    for s in SETTINGS:
        host = dialog if s.group == CSV else panel
        w = host.findChild(QWidget, s.control)
        assert w is not None, f"{s.name}: no widget {s.control!r}"
        assert options[s.name] == [s.cli_option], s.name
        assert Config.from_dict({s.name: keys[s.name]}) == Config(), s.name  # the key loads
        if s.kind == "choice":
            shown = {w.itemData(i) for i in range(w.count())}
            assert shown == set(s.keys()) - {"csv"}, s.name
            assert w.toolTip() == s.tooltip
        if host is dialog:
            continue
        assert w.toolTip() == s.tooltip
        assert panel.findChild(QLabel, s.error_label) is not None
        if s.kind == "int":
            assert (w.minimum(), w.maximum()) == (s.lo, s.hi), s.name
    assert options["batch_size"] == ["--batch-size"] and options["csv_path"] == ["--csv"]

    new = Setting("int", "&Width", "A new setting.", lo=2, hi=9, control="widthSpin")
    new = dataclasses.replace(new, name="width", default=4)
    w = make_widget(new)
    assert isinstance(w, QSpinBox) and w.objectName() == "widthSpin"
    assert (w.minimum(), w.maximum(), w.toolTip()) == (2, 9, "A new setting.")
    monkeypatch.setattr(main, "SETTINGS", (*SETTINGS, new))
    help_text = " ".join(main.build_parser().format_help().split())
    assert "--width" in help_text and "a new setting (default 4)" in help_text


def test_a_batch_size_passes_two_checks_from_the_spin_box_to_the_sampler(qtbot, monkeypatch):
    """Typed B goes through exactly two checks (the widget's, then Config.validate in the
    engine) and reaches the sampler unchanged; out of the declared range it is refused at
    the widget, over the training set by the engine, each with its reason under the field."""
    from core import Session
    from core.config import Config, ConfigError
    from core.data import MinibatchSampler
    from gui.controls import ControlPanel

    session = Session(small_config(n_samples=80))  # 64 training samples
    panel = ControlPanel(session.config)
    qtbot.addWidget(panel)
    panel.show()
    calls, taken = [], []
    real = (ControlPanel.check, Config.validate, MinibatchSampler.next)

    def widget_check(self, field, value):
        calls.append(("widget", field, value))
        return real[0](self, field, value)

    def engine_check(self, *args, **kwargs):
        calls.append(("engine", self.batch_size))
        return real[1](self, *args, **kwargs)

    def sample(self, B):
        taken.append(B)
        return real[2](self, B)

    monkeypatch.setattr(ControlPanel, "check", widget_check)
    monkeypatch.setattr(Config, "validate", engine_check)
    monkeypatch.setattr(MinibatchSampler, "next", sample)

    def engine(changes):  # what the engine process does with an Update between two steps
        try:
            session.update(**changes)
        except ConfigError as e:
            panel.refused(e.field, e.message)
            return
        panel.show_applied(session.step().config)

    queued = []
    panel.changesRequested.connect(queued.append)  # the engine takes it between two steps
    spin = child(panel, QSpinBox, "batchSizeSpin")
    err = child(panel, QLabel, "batchSizeError")
    type_into(qtbot, spin, "8")
    assert queued == [{"batch_size": 8}] and calls == [("widget", "batch_size", 8)]
    assert spin.property("pending") and spin.font().italic()  # shown, marked pending
    assert "Pending" in spin.toolTip() and panel.config.batch_size == 8
    engine(queued.pop())
    assert calls == [("widget", "batch_size", 8), ("engine", 8)]
    assert taken == [8] and session.config.batch_size == 8
    assert spin.value() == 8 and not spin.property("pending") and not spin.font().italic()
    assert not err.isVisible() and "Pending" not in spin.toolTip()
    panel.changesRequested.connect(engine)

    calls.clear()
    for bad in ("0", "100000"):  # outside the declared 1..65536: refused as typed
        type_into(qtbot, spin, bad)
        assert err.isVisible() and "between 1 and 65536" in err.text(), err.text()
        assert spin.value() == 8
    assert calls == [] and taken == [8]

    type_into(qtbot, spin, "65")  # in range, but the engine knows the data: 64 samples
    assert calls == [("widget", "batch_size", 65), ("engine", 65)]
    assert err.isVisible() and "65 is larger than the training set (64 samples)" in err.text()
    assert spin.value() == 8 and not spin.property("pending")
    assert session.config.batch_size == 8 and taken == [8]
    assert panel.config.batch_size == 8


def test_a_refusal_blamed_on_another_setting_ends_the_pending_edit(qtbot):
    from core.config import Config
    from gui.controls import ControlPanel

    panel = ControlPanel(Config())
    qtbot.addWidget(panel)
    assert panel.request({"n_samples": 500, "noise": 0.5})
    spin = child(panel, QSpinBox, "samplesSpin")
    assert spin.property("pending") and panel.pending == {"n_samples": 500, "noise": 0.5}
    panel.refused("batch_size", "32 is larger than the training set (20 samples)")
    assert panel.pending == {} and not spin.property("pending") and spin.value() == 1280
    assert child(panel, QLabel, "batchSizeError").text().startswith("32 is larger")
    assert panel.config == Config()
    panel.show()
    more = child(panel, QLabel, "noiseError").parentWidget()
    assert not more.isVisible()  # "More settings" is folded ...
    assert not panel.request({"noise": -1.0})  # refused at the widget: nothing pending
    assert panel.pending == {}
    assert child(panel, QLabel, "noiseError").text() == "must be >= 0.0 and <= 100 (got -1.0)"
    assert more.isVisible() and child(panel, QLabel, "noiseError").isVisible()  # ... unfolds


def test_the_panel_is_whole_with_more_settings_open_in_a_small_window(window, qtbot):
    """At 1280 x 720 the unfolded "More settings" make the settings scroll: every control is
    as wide as it needs and ends left of the scroll bar (none under it, none past the dock),
    and Run, Step, Reset and Export stay below the settings, in sight; folded, nothing
    scrolls and no edge line shows."""
    window.resize(1280, 720)
    window.fit_docks_to_width(1280)
    panel, dock = window.controls, window.controls_dock
    panel.more_button.setChecked(True)
    bar = panel.settings_scroll.verticalScrollBar()
    qtbot.waitUntil(bar.isVisible)
    qtbot.wait(50)
    assert child(window, QFrame, "settingsEdge").isVisible()  # the edge they scroll under
    assert child(window, QSpinBox, "surfaceSamplesSpin").isVisibleTo(panel)
    edge = bar.mapTo(dock, QPoint(0, 0)).x()
    kinds = (QAbstractSpinBox, QPushButton, QComboBox, QLineEdit)
    shown = [w for k in kinds for w in panel.findChildren(k) if w.isVisibleTo(panel)]
    assert len(shown) >= 20
    for w in shown:
        need = w.minimumSizeHint().width()
        assert w.width() >= need, f"{w.objectName()} is {w.width()} px wide, needs {need}"
        right = w.mapTo(dock, QPoint(w.width(), 0)).x()
        limit = edge if panel.settings_scroll.isAncestorOf(w) else dock.width()
        assert right <= limit, f"{w.objectName()} ends at {right} px, past {limit}"
    for name in ("runButton", "stepButton", "resetButton", "exportButton"):
        b = child(window, QPushButton, name)
        bottom = b.mapTo(dock, QPoint(0, b.height())).y()
        assert b.isVisible() and bottom <= dock.height(), f"{name} is out of sight"
    panel.more_button.setChecked(False)
    qtbot.waitUntil(lambda: not bar.isVisible())
    assert not child(window, QFrame, "settingsEdge").isVisible()
