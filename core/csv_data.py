"""A user's own data: reading a CSV file the way spreadsheets write it.

Accepted: a header row naming the columns, then one sample per row; UTF-8 with or without the
byte-order mark Excel's "CSV UTF-8" writes; LF, CRLF or CR line ends; numbers quoted or not;
blank lines; extra *empty* cells at the end of a row (spreadsheets pad rows that way); an empty
header cell (pandas writes one over its index column) is named ``column N``.

Refused, with the physical line number (a quoted cell may span lines, so it is not the row
count) and a message under 200 characters: a row with more (non-empty) or fewer cells than the
header; a quote that never closes; text, an empty cell, NaN or infinity in a number column;
too few rows; undecodable bytes. Every refusal is a ``ConfigError`` naming the setting
(``csv_path``, ``csv_inputs``, ``csv_targets``, ``csv_task``): the loader returns data or
raises that one type (a hypothesis test fuzzes it).

The task: ``regression`` (numbers), ``classification`` (one label column, any text or
numbers, made one-hot; or several 0/1 columns that are already one-hot), or ``auto``: several
one-hot target columns, or one column mostly of text (at most ``MAX_CLASSES`` values), is
classification; anything else regression (so a stray word among numbers is refused with its
line, not taken for a class). The choice and the reason are reported in ``CsvData.task_note``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass

import numpy as np

from .config import MAX_SAMPLES, ConfigError

__all__ = [
    "CsvData",
    "CsvTable",
    "MIN_ROWS",
    "MAX_CLASSES",
    "read_table",
    "load_table",
    "short",
]

MIN_ROWS = 8  #: data rows a CSV needs (the smallest data set the config allows)
MAX_CLASSES = 100  #: a label column with more distinct values is refused as classification
MAX_BYTES = 1 << 30  #: a larger file is refused before it is read
MAX_MESSAGE = 199  #: characters in a refusal, however long the path or the cell
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def short(text: str, n: int = 24) -> str:
    """``repr`` of ``text`` cut to about ``n`` characters (for messages)."""
    text = text.replace("\r", " ").replace("\n", " ")
    return repr(text if len(text) <= n else text[: n - 1] + "…")


def _refuse(field: str, path: str, line: int | None, what: str) -> ConfigError:
    name = os.path.basename(os.fspath(path)) or os.fspath(path)
    if len(name) > 40:
        name = name[:18] + "…" + name[-21:]
    where = f"{name}: line {line}: " if line is not None else f"{name}: "
    text = where + what
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    return ConfigError(field, text)


@dataclass(frozen=True)
class CsvTable:
    """The cells of a CSV file as text.

    header : the column names (stripped; an empty one is named ``column N``)
    rows : one list of stripped cells per data row, each as long as the header
    lines : the physical line (1-based) where each data row starts
    header_line : the physical line of the header
    last_line : the last physical line read
    """

    path: str
    header: tuple[str, ...]
    rows: list[list[str]]
    lines: list[int]
    header_line: int
    last_line: int


def read_table(path: str | os.PathLike, max_rows: int | None = None) -> CsvTable:
    """Parse the file into header and rows; ConfigError("csv_path", ...) for what is refused.

    max_rows : stop after this many data rows (a preview); None reads the whole file and
    refuses more than ``MAX_SAMPLES`` rows.
    """
    path = os.fspath(path)
    text = _decode(path, _read_bytes(path), max_rows)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    end = 0  # physical lines consumed so far
    limit = MAX_SAMPLES if max_rows is None else max_rows
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise _refuse("csv_path", path, start, _csv_problem(str(e))) from None
        end = reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells):
            continue  # a blank line, or a row of empty cells
        if header is None:
            header, header_line = _header(path, cells, start), start
            continue
        cells = _fit_row(path, start, cells, header)
        if len(rows) >= limit:
            if max_rows is not None:
                break
            raise _refuse(
                "csv_path", path, start, f"more than {MAX_SAMPLES:,} data rows (the most allowed)"
            )
        rows.append(cells)
        lines.append(start)
    if header is None:
        raise _refuse("csv_path", path, None, "the file is empty (no header row)")
    return CsvTable(path, tuple(header), rows, lines, header_line, max(end, header_line))


def _decode(path: str, raw: bytes, max_rows: int | None) -> str:
    """The file's bytes as text (UTF-8, a BOM dropped); refused when NUL bytes or undecodable
    bytes fall in the part that is read (a preview tolerates them after its rows)."""
    nul = raw.find(b"\x00")
    if nul >= 0 and (max_rows is None or raw[:nul].count(b"\n") <= max_rows + 1):
        raise _refuse(
            "csv_path",
            path,
            raw[:nul].count(b"\n") + 1,
            "holds a NUL byte: not a CSV text file (UTF-16? save as CSV UTF-8)",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if max_rows is None or raw[: e.start].count(b"\n") < max_rows + 1:
            line = raw[: e.start].count(b"\n") + 1
            raise _refuse(
                "csv_path", path, line, "is not UTF-8 text (save the file as CSV UTF-8)"
            ) from None
        return raw[: e.start].decode("utf-8-sig")  # a preview: the part before is enough


def _fit_row(path: str, line: int, cells: list[str], header: list[str]) -> list[str]:
    """The row's cells, trailing empty cells beyond the header dropped; refused when a cell
    is missing or an extra one holds something."""
    n = len(header)
    if len(cells) > n:
        extra = next((c for c in cells[n:] if c), "")
        if extra:
            raise _refuse(
                "csv_path",
                path,
                line,
                f"{len(cells)} cells, the header has {n} (extra cell {short(extra)})",
            )
        return cells[:n]
    if len(cells) < n:
        raise _refuse(
            "csv_path",
            path,
            line,
            f"{len(cells)} cell{'s' if len(cells) != 1 else ''}, the header has {n} "
            f"(missing {short(header[len(cells)])})",
        )
    return cells


def _read_bytes(path: str) -> bytes:
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise _refuse(
                "csv_path", path, None, f"{size / 2**30:.1f} GiB is over the 1 GiB a CSV may have"
            )
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise _refuse("csv_path", path, None, "no such file") from None
    except IsADirectoryError:
        raise _refuse("csv_path", path, None, "is a folder, not a file") from None
    except OSError as e:
        raise _refuse("csv_path", path, None, f"cannot be read ({e.strerror or e})") from None


def _csv_problem(message: str) -> str:
    if "unexpected end of data" in message:
        return 'a quote (") opens here and never closes'
    if "NUL" in message:
        return "holds a NUL byte (is it a CSV text file?)"
    if "field larger than field limit" in message:
        return "a cell is longer than 131,072 characters"
    if "expected after" in message:
        return 'text follows a closing quote (write a quote inside a cell as "")'
    return f"not valid CSV ({message[:60]})"


def _header(path: str, cells: list[str], line: int) -> list[str]:
    while cells and not cells[-1]:
        cells = cells[:-1]  # trailing empty header cells: padding
    names = [c if c else f"column {i + 1}" for i, c in enumerate(cells)]
    if all(_NUMBER.fullmatch(c) for c in cells):
        raise _refuse(
            "csv_path", path, line, "the first row holds numbers; add a header row naming columns"
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise _refuse(
                "csv_path",
                path,
                line,
                f"column {short(name)} appears twice (columns {seen[name] + 1} and {i + 1})",
            )
        seen[name] = i
    return names


@dataclass(frozen=True)
class CsvData:
    """The chosen columns of a CSV file, as arrays.

    X : (N, n_in) float64 inputs; T : (N, n_out) float64 targets (one-hot for classification)
    input_names : (n_in,), target_names : (n_out,) (for one label column: ``label=value``)
    task : "regression" or "classification"; task_note : what was chosen and why
    """

    X: np.ndarray
    T: np.ndarray
    input_names: tuple[str, ...]
    target_names: tuple[str, ...]
    task: str
    task_note: str


def load_table(
    table: CsvTable,
    inputs: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
    task: str = "auto",
) -> CsvData:
    """The chosen columns of ``table`` as numbers.

    inputs, targets : column names; empty: every column but the last are inputs, the last
    is the target (or every column not named as a target).
    task : "auto", "regression" or "classification" (see the module docstring).
    """
    path, header = table.path, table.header
    targets = tuple(targets) or ((header[-1],) if not inputs or header[-1] not in inputs else ())
    if not targets:
        raise _refuse("csv_targets", path, None, "choose a target column")
    inputs = tuple(inputs) or tuple(h for h in header if h not in targets)
    if not inputs:
        raise _refuse(
            "csv_inputs",
            path,
            None,
            f"needs an input column besides the target {short(targets[0])}",
        )
    for field, names in (("csv_inputs", inputs), ("csv_targets", targets)):
        for name in names:
            if name not in header:
                cols = ", ".join(header)
                raise _refuse(field, path, None, f"no column {short(name)} (has {short(cols, 80)})")
        if len(set(names)) != len(names):
            raise _refuse(field, path, None, "a column is chosen twice")
    both = [n for n in inputs if n in targets]
    if both:
        raise _refuse("csv_targets", path, None, f"{short(both[0])} is both input and target")
    n = len(table.rows)
    if n < MIN_ROWS:
        raise _refuse(
            "csv_path",
            path,
            table.lines[-1] if table.rows else table.header_line,
            f"the file ends after {n} data row{'s' if n != 1 else ''}; at least {MIN_ROWS} "
            "are needed",
        )
    X = _numbers(table, inputs)
    if task not in ("auto", "regression", "classification"):
        raise _refuse(
            "csv_task", path, None, f"{short(task)} is not auto, regression or classification"
        )
    return _targets(table, X, inputs, targets, task)


def _numbers(table: CsvTable, names: tuple[str, ...]) -> np.ndarray:
    """(N, len(names)) float64 of the named columns; refuses a cell that is not a number."""
    idx = [table.header.index(nm) for nm in names]
    out = np.empty((len(table.rows), len(idx)))
    # Fast path, one conversion per column: on ASCII without "_", Python's float syntax
    # (which NumPy's conversion uses) is _NUMBER's plus nan/inf, which isfinite catches. Any
    # doubt, and the cell-by-cell pass below finds the culprit and says why.
    for j, c in enumerate(idx):
        cells = [row[c] for row in table.rows]
        joined = "\n".join(cells)
        if not joined.isascii() or "_" in joined:
            break
        try:
            out[:, j] = np.array(cells, dtype=np.float64)
        except ValueError:
            break
        if not np.all(np.isfinite(out[:, j])):
            break
    else:
        return out
    for i, row in enumerate(table.rows):
        for j, c in enumerate(idx):
            cell = row[c]
            if _NUMBER.fullmatch(cell):
                out[i, j] = float(cell)
                if np.isfinite(out[i, j]):
                    continue
                why = "is too large for a number"
            elif not cell:
                why = "is empty"
            elif _NOT_FINITE.fullmatch(cell):
                why = f"is {short(cell)}, not a finite number"
            else:
                why = f"{short(cell)} is not a number"
            raise _refuse(
                "csv_path", table.path, table.lines[i], f"column {short(names[j])}: {why}"
            )
    return out


def _targets(table, X, inputs, targets, task) -> CsvData:
    path = table.path
    column = table.header.index(targets[0])
    if len(targets) == 1 and task != "regression":
        labels = [row[column] for row in table.rows]
        n_numbers = sum(1 for v in labels if _NUMBER.fullmatch(v))
        numeric = n_numbers == len(labels)
        # mostly text: labels; mostly numbers with a stray word: a typo, refused as regression
        text_labels = 2 * n_numbers < len(labels) and len(set(labels)) <= MAX_CLASSES
        if task == "classification" or text_labels:
            T, names = _one_hot(table, labels, numeric, targets[0])
            why = "chosen" if task == "classification" else "guessed: the target holds text labels"
            note = f"classification, {len(names)} classes ({why})"
            return CsvData(X, T, inputs, names, "classification", note)
    T = _numbers(table, targets)
    one_hot = T.shape[1] > 1 and np.all((T == 0) | (T == 1)) and np.all(T.sum(axis=1) == 1)
    if task == "classification":
        if not one_hot:
            good = np.all((T == 0) | (T == 1), axis=1) & (T.sum(axis=1) == 1)
            bad = int(np.flatnonzero(~good)[0])
            raise _refuse(
                "csv_task",
                path,
                table.lines[bad],
                "classification over several target columns needs one 1 and the rest 0 in each row",
            )
        return CsvData(X, T, inputs, targets, "classification", "classification (chosen)")
    if task == "auto" and one_hot:
        note = "classification (guessed: the target columns are one-hot)"
        return CsvData(X, T, inputs, targets, "classification", note)
    if task == "regression":
        note = "regression (chosen)"
    else:
        note = "regression (guessed: numeric targets; choose classification for class labels)"
    return CsvData(X, T, inputs, targets, "regression", note)


def _one_hot(table, labels: list[str], numeric: bool, name: str):
    if numeric:
        keys = [f"{float(v):g}" for v in labels]
        classes = sorted(set(keys), key=float)
    else:
        keys = labels
        classes = sorted(set(keys))
    if any(not k for k in keys):
        i = keys.index("")
        raise _refuse("csv_path", table.path, table.lines[i], f"column {short(name)}: is empty")
    if len(classes) < 2:
        raise _refuse(
            "csv_task", table.path, None, f"column {short(name)} has one class; classes need 2+"
        )
    if len(classes) > MAX_CLASSES:
        raise _refuse(
            "csv_task",
            table.path,
            None,
            f"column {short(name)} has {len(classes):,} distinct values: over {MAX_CLASSES} "
            "classes (a regression target?)",
        )
    index = {c: k for k, c in enumerate(classes)}
    T = np.zeros((len(keys), len(classes)))
    T[np.arange(len(keys)), [index[k] for k in keys]] = 1.0
    return T, tuple(f"{name}={c}" for c in classes)
