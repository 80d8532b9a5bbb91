"""The common shape of a view: a pyqtgraph layout widget that draws Snapshots and exports."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers the exporters)
from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem

from core.config import write_text_atomic
from core.snapshot import Snapshot

#: the live stream writes its titles and readouts at most this often (seconds); HTML layout of
#: ~9 labels a frame was a tenth of a frame's cost, and text changing 30 times a second cannot
#: be read anyway. A forced draw (paused, a step, draw_now, an export) always writes them.
LIVE_TEXT_INTERVAL = 0.1


class ViewWidget(pg.GraphicsLayoutWidget):
    """Base of every view. Subclasses build their items once in ``__init__`` and update them
    in ``show_snapshot`` with setData/setImage; ``table()`` returns the view's data for CSV.

    (Named ``show_snapshot``, not ``update``: QWidget.update() means "repaint" and pyqtgraph
    calls it.)
    """

    object_name = ""
    title = ""
    help_text = ""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName(self.object_name)
        self.setToolTip(self.help_text)
        self.setMinimumSize(260, 180)
        self.snapshot: Snapshot | None = None
        self._axes_cached = False
        self._stale = False  #: a snapshot kept but not drawn (the view was hidden)
        self.ci.setContentsMargins(4, 4, 4, 4)
        # live text throttle: {id(item): (write, item, text, kw)} kept back by a live frame,
        # written by the next frame due to write text, a forced draw or this timer
        self._text_due = True
        self._text_written = -1.0
        self._pending_text: dict[int, tuple] = {}
        self._text_timer = QTimer(self)
        self._text_timer.setSingleShot(True)
        self._text_timer.timeout.connect(self.flush_text)

    def set_text(self, label: pg.LabelItem, text: str) -> None:
        """Set a label's rich text only when it changed (re-layout of HTML is not free). The
        label wraps its lines to the width the view gives it instead of widening the view.
        A live frame between two text frames keeps it back (``LIVE_TEXT_INTERVAL``)."""
        self._put_text(_write_label, label, text)

    def set_title(self, plot: pg.PlotItem, text: str, **kw) -> None:
        """Set a plot's title only when it changed; it wraps to the plot's width."""
        self._put_text(_write_title, plot, text, **kw)

    def _put_text(self, write, item, text: str, **kw) -> None:
        key = id(item)
        if getattr(item, "_bs_text", None) == text:
            self._pending_text.pop(key, None)
            return
        if self._text_due:
            self._pending_text.pop(key, None)
            write(item, text, **kw)
            return
        self._pending_text[key] = (write, item, text, kw)
        if not self._text_timer.isActive():
            # only a stream that stops needs it: the next text frame comes sooner (a timer
            # at one interval fired just before it and cost a whole extra paint)
            self._text_timer.start(int(2 * LIVE_TEXT_INTERVAL * 1000))

    def flush_text(self) -> None:
        """Write every title and readout a live frame kept back."""
        self._text_timer.stop()
        pending, self._pending_text = self._pending_text, {}
        for write, item, text, kw in pending.values():
            if getattr(item, "_bs_text", None) != text:
                write(item, text, **kw)
        if pending:
            self.scene().prepareForPaint()

    def cache_axes(self) -> None:
        """Cache every axis as a pixmap: an axis whose range did not change is then blitted,
        not re-rendered text by text (text drawing was most of a frame's paint time). (Text
        items are not cached: a QGraphicsTextItem whose HTML changed was blitted blank.)"""
        for item in self.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    @contextlib.contextmanager
    def uncached(self):
        """Items drawn from their source while active (a vector export must not receive the
        pixmaps the screen is painted from)."""
        items = [
            it for it in self.scene().items() if it.cacheMode() != QGraphicsItem.CacheMode.NoCache
        ]
        modes = [it.cacheMode() for it in items]
        for it in items:
            it.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        try:
            yield
        finally:
            for it, mode in zip(items, modes):
                it.setCacheMode(mode)

    def show_snapshot(self, snap: Snapshot, live: bool = False) -> None:
        """Draw ``snap``; a view that a hidden parent keeps off screen (another tab shown)
        only keeps it and draws it when it is shown again (or exported). ``live``: a frame
        of the running stream, which writes its text at most every ``LIVE_TEXT_INTERVAL``
        (what it keeps back is written by the next text frame, or after two intervals if
        the stream stops); any other draw writes it all."""
        self.snapshot = snap
        if not self.isVisible() and not self.isHidden():
            self._stale = True
            return
        self._draw_now(live)

    def _draw_now(self, live: bool = False) -> None:
        if not self._axes_cached:
            self.cache_axes()
            self._axes_cached = True
        self._stale = False
        now = time.perf_counter()
        self._text_due = not live or now - self._text_written >= LIVE_TEXT_INTERVAL
        try:
            self.draw(self.snapshot)
        finally:
            if self._text_due:
                self._text_written = now
                self.flush_text()
            self._text_due = True  # a draw outside the stream (a resize) writes its text
        # Settle ranges and layouts now, not during the paint: otherwise the paint changes
        # them and schedules a second full paint of the view.
        self.scene().prepareForPaint()

    def ensure_drawn(self) -> None:
        """Draw the snapshot kept while the view was hidden, if any, and the text kept back."""
        if self._stale and self.snapshot is not None:
            self._draw_now()
        self.flush_text()

    def showEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().showEvent(ev)
        self.ensure_drawn()

    def draw(self, snap: Snapshot) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def table(self) -> tuple[list[str], list[list]]:  # pragma: no cover - abstract
        """(header, rows) of what the view shows, for CSV."""
        raise NotImplementedError

    # ------------------------------------------------------------------ export
    def export_png(self, path: str, width: int | None = None) -> None:
        self.ensure_drawn()
        ex = pg.exporters.ImageExporter(self.ci)
        if width:
            ex.parameters()["width"] = int(width)
        tmp = _tmp_name(path)
        try:
            ex.export(tmp)
            if not os.path.exists(tmp):
                raise OSError(f"could not write {path}")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def export_svg(self, path: str) -> None:
        """Vector SVG of the view: the scene painted into Qt's QSvgGenerator.

        (pyqtgraph's SVGExporter cannot parse the path syntax recent Qt versions write, so the
        scene is rendered directly.)"""
        self.ensure_drawn()
        tmp = _tmp_name(path)
        gen = QSvgGenerator()
        gen.setFileName(tmp)
        size = self.size()
        gen.setSize(size)
        gen.setViewBox(QRect(0, 0, size.width(), size.height()))
        gen.setTitle(self.title or self.objectName())
        gen.setDescription("Batchscope")
        painter = QPainter()
        try:
            if not painter.begin(gen):
                raise OSError(f"could not write {path}")
            with self.uncached():  # text and axes as vectors, not the screen's pixmaps
                self.render(painter)
            painter.end()
            if not os.path.exists(tmp) or os.path.getsize(tmp) == 0:
                raise OSError(f"could not write {path}")
            os.replace(tmp, path)
        finally:
            if painter.isActive():
                painter.end()
            if os.path.exists(tmp):
                os.unlink(tmp)

    def export_csv(self, path: str) -> None:
        write_csv(path, *self.table())

    def extra_tables(self) -> dict[str, tuple[list[str], list[list]]]:
        """Further CSV files the view writes on export: {file stem: (header, rows)}."""
        return {}


def _write_label(label: pg.LabelItem, text: str) -> None:
    label._bs_text = text
    make_wrapping(label)
    label.setText(text)


def _write_title(plot: pg.PlotItem, text: str, **kw) -> None:
    plot._bs_text = text
    make_wrapping(plot.titleLabel, plot)
    plot.setTitle(text, **kw)


def set_data(item: pg.PlotDataItem, x: np.ndarray, y: np.ndarray, **kw) -> None:
    """``item.setData(x, y, **kw)`` unless it holds exactly these data already (a curve
    measured every few steps, the train loss or lambda_max, is the same in most frames, and a
    setData re-ranges its plot). Use it for every setData of ``item``."""
    x, y = np.asarray(x), np.asarray(y)
    last = getattr(item, "_bs_data", None)
    if (
        last is not None
        and last[2] == kw
        and np.array_equal(last[0], x, equal_nan=True)
        and np.array_equal(last[1], y, equal_nan=True)
    ):
        return
    item._bs_data = (x.copy(), y.copy(), dict(kw))
    item.setData(x, y, **kw)


def write_csv(path: str, header: list[str], rows: list[list]) -> None:
    """Write a CSV file all or nothing (a temporary name, then renamed)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def thin_to_pixels(*items: pg.PlotDataItem) -> None:
    """Draw each curve through about two points a pixel column: pyqtgraph's peak
    downsampling (each column's lowest and highest value, so no spike is lost) clipped to
    the view, with one sample a pixel as the threshold (pyqtgraph's default, 5, left a
    4,000-point loss curve whole, and its 1.5 px pen drew 4,000 segments a frame: 1.2 ms)."""
    for item in items:
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        item.opts["autoDownsampleFactor"] = 1.0  # no setter; read at every paint


def sticky_range(plot: pg.PlotItem, axis: str, lo: float, hi: float) -> None:
    """Keep an axis range while the data fill at least 25 % of it and stay inside it; else
    set it to the data plus 15 % each side, widened to a round step (a bound at 0 stays 0).
    (Autoranging every frame makes the axes regenerate their ticks every frame, most of a
    small plot's paint time.)"""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 1e-3
    vb = plot.getViewBox()
    vb.enableAutoRange(axis=axis, enable=False)
    cur_lo, cur_hi = vb.viewRange()[0 if axis == "x" else 1]
    width = cur_hi - cur_lo
    if cur_lo <= lo and hi <= cur_hi and (hi - lo) >= 0.25 * width:
        return
    # a new range with room to move in, on a round step: it then lasts for many frames
    pad = 0.15 * (hi - lo)
    step = nice_step((hi - lo + 2 * pad) / 10)
    new_lo = np.floor((lo - pad) / step) * step if lo != 0 else 0.0
    new_hi = np.ceil((hi + pad) / step) * step if hi != 0 else 0.0
    if new_hi <= new_lo:
        new_lo, new_hi = lo - pad, hi + pad
    if axis == "x":
        vb.setXRange(new_lo, new_hi, padding=0)
    else:
        vb.setYRange(new_lo, new_hi, padding=0)


def nice_step(x: float) -> float:
    """The smallest of 1, 2, 5 x 10^k at least ``x`` > 0."""
    e = 10.0 ** np.floor(np.log10(x))
    return float(next((m * e for m in (1, 2, 5) if m * e >= x * (1 - 1e-9)), 10 * e))


def make_wrapping(label: pg.LabelItem, plot: pg.PlotItem | None = None) -> None:
    """Make ``label`` wrap its text to the width it is given, never asking for more than a
    little width (pyqtgraph's labels ask for their whole one-line width, which pushed views
    wider than their widgets: the right part was cut off). ``plot``: the label is that
    plot's title; the title row then grows to the wrapped height."""
    if getattr(label, "_bs_wrapping", False):
        return
    label._bs_wrapping = True

    def update_min() -> None:
        item = label.item
        width = label.rect().width()
        before = item.textWidth()
        item.setTextWidth(-1)
        natural = item.boundingRect().width()
        if 20 < width < natural:
            item.setTextWidth(width)
        if item.textWidth() != before and not getattr(label, "_bs_placing", False):
            # pyqtgraph placed the text by its bounds before this re-wrap: place it again
            # (a title grown from wrapped to one line sat 13 px past the right edge)
            label._bs_placing = True
            try:
                label.resizeEvent(None)
            finally:
                label._bs_placing = False
        # The height only grows while the width stays: a text whose wrapped lines come and go
        # from frame to frame would otherwise lay the whole view out again each time (and
        # re-render every axis in it).
        h = label.itemRect().height()
        if getattr(label, "_bs_for_width", None) == round(width):
            h = max(h, label._bs_height)
        label._bs_for_width, label._bs_height = round(width), h
        if getattr(label, "_bs_min", None) == (min(natural, 40.0), h):
            return  # nothing the layout needs to know
        label._bs_min = (min(natural, 40.0), h)
        label.setMinimumWidth(min(natural, 40.0))
        label.setMinimumHeight(h)
        label._sizeHint = {
            Qt.SizeHint.MinimumSize: (min(natural, 40.0), h),
            Qt.SizeHint.PreferredSize: (min(natural, 40.0), h),
            Qt.SizeHint.MaximumSize: (-1, -1),
            Qt.SizeHint.MinimumDescent: (0, 0),
        }
        label.updateGeometry()
        if plot is not None and label.isVisible():
            rows = plot.layout
            label.setMaximumHeight(max(h, 18.0))  # PlotItem.setTitle caps it at 30 px
            if abs(rows.rowMinimumHeight(0) - max(h, 18.0)) > 0.5:
                rows.setRowFixedHeight(0, max(h, 18.0))
                rows.invalidate()  # lay the plot out again with the new title height
                plot.updateGeometry()

    label.updateMin = update_min


def coloured(text: str, rgb: tuple[int, int, int]) -> str:
    """``text`` as rich text in the colour of its mark (a title that is also the legend)."""
    r, g, b = rgb[:3]
    return f"<span style='color: #{r:02x}{g:02x}{b:02x}; font-weight: 600'>{text}</span>"


def integer_ticks(axis: pg.AxisItem, n: int, first: int = 0, max_ticks: int = 7) -> None:
    """Ticks at whole numbers ``first .. first + n - 1`` (a sample or output index), at most
    about ``max_ticks`` of them, fewer on a narrow axis (one per ~24 px), in steps of 1, 2, 5,
    10, 20 ..., labelled as integers. Cheap to call every frame (it acts on a change)."""
    if axis.orientation in ("bottom", "top") and axis.width() > 0:
        max_ticks = max(2, min(max_ticks, int(axis.width() // 24)))
    key = (n, first, max_ticks)
    if getattr(axis, "_bs_int_ticks", None) == key:
        return
    if not hasattr(axis, "_bs_int_ticks"):  # follow the axis's width when it is resized
        axis.geometryChanged.connect(lambda: integer_ticks(axis, *axis._bs_int_ticks[:2]))
    axis._bs_int_ticks = key
    step = 1
    for k in range(12):
        for m in (1, 2, 5):
            step = m * 10**k
            if n / step <= max_ticks:
                break
        else:
            continue
        break
    major = [(float(i), str(i + first)) for i in range(0, n, step)]
    axis.enableAutoSIPrefix(False)  # whole numbers: never "(x0.001)"
    axis.setTicks([major, []])


def _tmp_name(path: str) -> str:
    d, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    return os.path.join(d, f".{stem}.partial{ext}")


def fmt(x: float, digits: int = 3) -> str:
    """A short number for readouts: 0.0331, 1.7e-17, 38.2."""
    if x != x:
        return "—"
    if x == float("inf"):
        return "∞"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.{max(1, digits - 1)}e}"
