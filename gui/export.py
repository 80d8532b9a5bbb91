"""Exports: the whole window as PNG, every view as PNG, SVG and CSV (pyqtgraph exporters).

Every file is written to a temporary name and renamed, so a failure (unwritable folder, full
disk, a name that is a folder) leaves nothing partial; the error says which file and why.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSaveFile
from PySide6.QtGui import QPixmap

from .plots.base import write_csv


class ExportError(OSError):
    """An export failed; the message names the file and the reason."""


def check_folder(folder: str | os.PathLike) -> Path:
    """The folder as a Path, created if missing; ExportError if it cannot be written."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ExportError(f"{path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create {path}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write into {path}: permission denied")
    return path


def save_pixmap(pixmap: QPixmap, path: str | os.PathLike, fmt: str = "PNG") -> None:
    """Save a pixmap through QSaveFile (all or nothing); ``fmt``: "PNG" or "JPEG"."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ExportError(f"{path} is a folder")
    f = QSaveFile(path)
    if not f.open(QSaveFile.OpenModeFlag.WriteOnly):
        raise ExportError(f"cannot write {path}: {f.errorString()}")
    if not pixmap.save(f, fmt):
        f.cancelWriting()
        f.commit()
        raise ExportError(f"cannot write {path}: the image could not be encoded")
    if not f.commit():
        raise ExportError(f"cannot write {path}: {f.errorString()}")


def export_views(
    views: dict, folder: str | os.PathLike, svg: bool = True, progress=None
) -> list[Path]:
    """Write ``<name>.png``, ``<name>.csv`` (and ``<name>.svg``) for each view.

    views : {file stem: view widget with export_png/export_csv/export_svg}
    progress : optional callable(done, total, text)
    Returns the files written.
    """
    out = check_folder(folder)
    written: list[Path] = []
    skipped: list[Path] = []
    total = len(views)
    for k, (name, view) in enumerate(views.items()):
        if progress is not None:
            progress(k, total, name)
        for ext, fn in (
            ("png", view.export_png),
            ("csv", view.export_csv),
            ("svg", view.export_svg if svg else None),
        ):
            if fn is None:
                continue
            target = out / f"{name}.{ext}"
            try:
                fn(os.fspath(target))
            except ExportError:
                raise
            except OSError as e:
                raise ExportError(f"cannot write {target}: {e.strerror or e}") from None
            except Exception:
                if ext != "svg":
                    raise
                # pyqtgraph's SVG exporter cannot translate every item; SVG is a bonus, the
                # PNG and CSV of the view are written regardless.
                skipped.append(target)
                continue
            written.append(target)
        # further tables a view holds (the spread view's noise_vs_batch.csv)
        extra = getattr(view, "extra_tables", None)
        for stem, (header, rows) in (extra() if extra is not None else {}).items():
            target = out / f"{stem}.csv"
            try:
                write_csv(os.fspath(target), header, rows)
            except OSError as e:
                raise ExportError(f"cannot write {target}: {e.strerror or e}") from None
            written.append(target)
    if progress is not None:
        progress(total, total, "done")
    return written
