"""Dataset → "Open CSV…": choose a file, see its first rows, pick the input and target columns,
the task and the scale; and the menu that offers it with the recently opened files.

The dialog checks the choice the way the engine will (``core.csv_data`` reads the file,
``make_dataset`` splits and scales it, ``Config.validate`` checks the batch size and the
network against it), so a refusal is shown in the dialog, with the file's line number, and
the running session is untouched. Accepted, it yields the settings to apply
(``CsvDialog.changes()``); the window applies them like any other change, so they are in the
config file it saves and in the last session it remembers.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.config import SETTING, Config, ConfigError
from core.csv_data import read_table
from core.data import make_dataset
from core.session import validate_changes

from .config_files import RecentFiles

PREVIEW_ROWS = 20
MAX_RECENT_CSV = 8
#: the task and scale choices as declared in core.config
TASK_LABELS = {c.key: c.label for c in SETTING["csv_task"].options()}
SCALE_LABELS = {c.key: c.label for c in SETTING["csv_scale"].options()}


class CsvDialog(QDialog):
    """Choose a CSV file and how to use it.

    config : the current settings (the columns, task and scale start from them when
    ``path`` is the file they name)
    path : a file to show at once (a recent file), or "" to start empty
    """

    def __init__(self, config: Config, path: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("csvDialog")
        self.setWindowTitle("Open CSV data")
        self._config = config
        self._header: tuple[str, ...] = ()
        self._changes: dict | None = None
        self._table = None  # the whole file, once checked (see _whole_file)
        self._table_key: tuple | None = None

        file_row = self._build_file_row()
        self._build_preview()
        self._build_choices(config)
        self._build_messages()
        self._build_buttons()
        self._lay_out(file_row)
        self.resize(720, 640)
        self.ok_button.setEnabled(False)
        start = path or (config.csv_path if config.dataset == "csv" else "")
        if start:
            self.show_file(start)

    # ----------------------------------------------------------------- building
    def _build_file_row(self) -> QHBoxLayout:
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("csvPathEdit")
        self.path_edit.setToolTip("The CSV file: a header row naming the columns, one sample a row")
        self.path_edit.editingFinished.connect(lambda: self.show_file(self.path_edit.text()))
        browse = QPushButton("&Browse…")
        browse.setObjectName("csvBrowseButton")
        browse.setToolTip("Choose a CSV file")
        browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path_edit, 1)
        file_row.addWidget(browse)
        return file_row

    def _build_preview(self) -> None:
        self.preview = QTableWidget()
        self.preview.setObjectName("csvPreview")
        self.preview.setToolTip(f"The first {PREVIEW_ROWS} rows of the file")
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.setMinimumHeight(160)
        self.preview_note = QLabel()
        self.preview_note.setObjectName("csvPreviewNote")

    def _build_choices(self, config: Config) -> None:
        self.inputs = self._column_list("csvInputsList", "Input columns (tick to use)")
        self.targets = self._column_list("csvTargetsList", "Target columns (tick to use)")
        self.targets.itemChanged.connect(self._target_ticked)
        self.task_combo = self._choice_combo("csvTaskCombo", TASK_LABELS, config.csv_task)
        self.task_combo.setToolTip(SETTING["csv_task"].tooltip)
        self.scale_combo = self._choice_combo("csvScaleCombo", SCALE_LABELS, config.csv_scale)
        self.scale_combo.setToolTip(SETTING["csv_scale"].tooltip)
        self.task_combo.currentIndexChanged.connect(self._check)
        self.scale_combo.currentIndexChanged.connect(self._check)

    def _build_messages(self) -> None:
        self.summary = QLabel()
        self.summary.setObjectName("csvSummary")
        self.summary.setWordWrap(True)
        self.error = QLabel()
        self.error.setObjectName("csvError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b;")
        self.error.setVisible(False)

    def _build_buttons(self) -> None:
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.setObjectName("csvButtons")
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setObjectName("csvOkButton")
        self.ok_button.setText("&Use this data")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def _lay_out(self, file_row: QHBoxLayout) -> None:
        cols = QHBoxLayout()
        for title, widget in (("&Inputs", self.inputs), ("&Targets", self.targets)):
            box = QVBoxLayout()
            lab = QLabel(title)
            lab.setBuddy(widget)
            box.addWidget(lab)
            box.addWidget(widget)
            cols.addLayout(box)
        form = QFormLayout()
        form.addRow("Ta&sk", self.task_combo)
        form.addRow("S&cale", self.scale_combo)
        lay = QVBoxLayout(self)
        file_lab = QLabel("&File")
        file_lab.setBuddy(self.path_edit)
        lay.addWidget(file_lab)
        lay.addLayout(file_row)
        lay.addWidget(self.preview, 1)
        lay.addWidget(self.preview_note)
        lay.addLayout(cols)
        lay.addLayout(form)
        lay.addWidget(self.summary)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)

    # ----------------------------------------------------------------- widgets
    def _column_list(self, name: str, tip: str) -> QListWidget:
        w = QListWidget()
        w.setObjectName(name)
        w.setToolTip(tip)
        w.setMaximumHeight(150)
        w.itemChanged.connect(self._check)
        return w

    @staticmethod
    def _choice_combo(name: str, labels: dict, value: str) -> QComboBox:
        c = QComboBox()
        c.setObjectName(name)
        for key, label in labels.items():
            c.addItem(label, key)
        c.setCurrentIndex(max(0, c.findData(value)))
        return c

    def _browse(self) -> None:
        start = os.path.dirname(self.path_edit.text()) or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open CSV data", start, "CSV files (*.csv *.txt);;All files (*)"
        )
        if path:
            self.show_file(path)

    # ------------------------------------------------------------------- logic
    def show_file(self, path: str) -> bool:
        """Read the first rows of ``path`` into the preview and offer its columns."""
        path = path.strip()
        self.path_edit.setText(path)
        self._header = ()
        self.inputs.clear()
        self.targets.clear()
        self.preview.clear()
        self.preview.setRowCount(0)
        self.preview.setColumnCount(0)
        self.preview_note.clear()
        if not path:
            return self._refuse("choose a CSV file")
        try:
            table = read_table(path, max_rows=PREVIEW_ROWS)
        except ConfigError as e:
            return self._refuse(e.message)
        self._header = table.header
        self.preview.setColumnCount(len(table.header))
        self.preview.setHorizontalHeaderLabels(list(table.header))
        self.preview.setRowCount(len(table.rows))
        self.preview.setVerticalHeaderLabels([f"line {n}" for n in table.lines])
        for i, row in enumerate(table.rows):
            for j, cell in enumerate(row):
                self.preview.setItem(i, j, QTableWidgetItem(cell))
        self.preview.resizeColumnsToContents()
        self.preview_note.setText(
            f"The first {len(table.rows)} rows of {Path(path).name} "
            f"(the header is line {table.header_line})."
        )
        cfg = self._config
        same = cfg.dataset == "csv" and os.path.abspath(cfg.csv_path) == os.path.abspath(path)
        targets = [t for t in cfg.csv_targets if t in table.header] if same else []
        targets = targets or [table.header[-1]]
        inputs = [c for c in cfg.csv_inputs if c in table.header] if same else []
        inputs = inputs or [c for c in table.header if c not in targets]
        for lst, chosen in ((self.inputs, inputs), (self.targets, targets)):
            lst.blockSignals(True)
            for name in table.header:
                item = QListWidgetItem(name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if name in chosen else Qt.CheckState.Unchecked
                )
                lst.addItem(item)
            lst.blockSignals(False)
        return self._check()

    def _target_ticked(self, item: QListWidgetItem) -> None:
        """A column ticked as a target stops being an input."""
        if item.checkState() == Qt.CheckState.Checked:
            other = self.inputs.findItems(item.text(), Qt.MatchFlag.MatchExactly)
            for o in other:
                o.setCheckState(Qt.CheckState.Unchecked)

    @staticmethod
    def _ticked(lst: QListWidget) -> tuple[str, ...]:
        return tuple(
            lst.item(i).text()
            for i in range(lst.count())
            if lst.item(i).checkState() == Qt.CheckState.Checked
        )

    def chosen(self) -> dict:
        """The settings the dialog shows now (not yet checked)."""
        return {
            "dataset": "csv",
            "csv_path": os.path.abspath(self.path_edit.text().strip()),
            "csv_inputs": self._ticked(self.inputs),
            "csv_targets": self._ticked(self.targets),
            "csv_task": self.task_combo.currentData(),
            "csv_scale": self.scale_combo.currentData(),
        }

    def _check(self, *_args) -> bool:
        """Check the choice on the whole file, as the engine will; say what it gives."""
        self._changes = None
        if not self._header:
            self.ok_button.setEnabled(False)
            return False
        changes = self.chosen()
        if not changes["csv_inputs"]:
            return self._refuse("tick at least one input column")
        if not changes["csv_targets"]:
            return self._refuse("tick at least one target column")
        try:
            new = validate_changes(self._config, changes)
            data = make_dataset(new, table=self._whole_file(changes["csv_path"]))
            new.validate(data)  # size, inputs, outputs and task of the file
        except ConfigError as e:
            return self._refuse(e.message if e.field.startswith("csv") else str(e))
        self.error.setVisible(False)
        self.summary.setText(
            f"{data.n_train + len(data.X_val)} rows ({data.n_train} for training): "
            f"{data.n_in} input{'s' if data.n_in != 1 else ''} → {data.n_out} "
            f"output{'s' if data.n_out != 1 else ''}; {data.task_note}; {data.scale_note}."
        )
        self._changes = changes
        self.ok_button.setEnabled(True)
        return True

    def _whole_file(self, path: str):
        """The whole file, read once per version of it (ticking a column re-reads nothing)."""
        try:
            st = os.stat(path)
        except OSError:
            return read_table(path)  # raises the ConfigError that says why
        key = (path, st.st_size, st.st_mtime_ns)
        if self._table_key != key:
            self._table, self._table_key = read_table(path), key
        return self._table

    def _refuse(self, message: str) -> bool:
        self.summary.clear()
        self.error.setText(message)
        self.error.setVisible(True)
        self.ok_button.setEnabled(False)
        return False

    def changes(self) -> dict | None:
        """The checked settings to apply, or None if the choice is refused."""
        return self._changes

    def accept(self) -> None:
        if self._check():
            super().accept()


class CsvMenu:
    """The Dataset menu: "Open CSV…" and the recent CSV files.

    window : the MainWindow (``controls.config``, ``apply_changes``, ``statusBar``)
    menu : the QMenu to fill
    """

    def __init__(self, window, menu: QMenu, remember: bool = True) -> None:
        self.window = window
        self.menu = menu
        self.remember = remember
        menu.setObjectName("datasetMenu")
        self.open_action = QAction("Open &CSV…", window)
        self.open_action.setObjectName("openCsvAction")
        self.open_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        tip = "Train on your own data: a CSV file with a header row"
        self.open_action.setStatusTip(tip)
        self.open_action.setToolTip(tip)
        self.open_action.triggered.connect(lambda: self.open_dialog())
        window.addAction(self.open_action)
        menu.addAction(self.open_action)
        self.recent_menu = menu.addMenu("&Recent CSV files")
        self.recent_menu.setObjectName("recentCsvMenu")
        self.dialog: CsvDialog | None = None
        self._recent = RecentFiles(
            self.recent_menu,
            "data/recent_csv",
            self.open_dialog,
            remember,
            MAX_RECENT_CSV,
            tip="Open {path} in the CSV dialog",
        )

    def recent(self) -> list[str]:
        return list(self._recent.paths)

    def add_recent(self, path: str) -> None:
        self._recent.add(path)

    def open_dialog(self, path: str = "") -> CsvDialog:
        """Show the dialog (non-blocking); OK applies the data and remembers the file."""
        dlg = CsvDialog(self.window.controls.config, path, self.window)
        dlg.accepted.connect(lambda: self._accepted(dlg))
        self.dialog = dlg
        dlg.open()
        return dlg

    def _accepted(self, dlg: CsvDialog) -> None:
        changes = dlg.changes()
        if not changes:
            return
        current = self.window.controls.config
        changes = {k: v for k, v in changes.items() if getattr(current, k) != v}
        if not changes or self.window.apply_changes(changes):
            self.add_recent(dlg.chosen()["csv_path"])
            name = Path(dlg.chosen()["csv_path"]).name
            self.window.statusBar().showMessage(f"data: {name}", 6000)
