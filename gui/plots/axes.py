"""Logarithmic axes that read like a paper's: labels at 1, 2 and 5 times a power of ten only,
written plainly (0.05, 20, 1,000, 200,000, 2·10⁶), never an SI prefix such as "(x0.001)".

pyqtgraph's own log axis labels every minor tick when the range spans a decade or two, so
the labels run into each other ("3·10¹4·10¹5·10¹…"), and its automatic SI prefix rescales
the unit of a log axis in a way few readers expect.
"""

from __future__ import annotations

import math

import pyqtgraph as pg

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
#: mantissas that get a label (the others keep their tick and grid line)
LABELLED = (1.0, 2.0, 5.0)


def log_tick_label(log10_value: float) -> str:
    """The label of the tick at 10**log10_value: plain, with thousands separators, from 0.001
    to 500,000, else m·10ⁿ ("" for a mantissa other than 1, 2 or 5)."""
    n = math.floor(log10_value + 1e-9)
    m = 10 ** (log10_value - n)
    mantissa = next((k for k in LABELLED if abs(m - k) < 1e-6 * k), None)
    if mantissa is None:
        return ""
    return plain(mantissa, n)


def plain(mantissa: float, n: int) -> str:
    if -3 <= n <= 5:
        return f"{mantissa * 10.0**n:,.{max(0, -n)}f}"
    power = f"10{str(n).translate(SUPERSCRIPT)}"
    return power if mantissa == 1 else f"{mantissa:g}·{power}"


class LogAxisItem(pg.AxisItem):
    """An AxisItem whose log mode labels 1, 2, 5 × 10ⁿ only (all ticks when none of those is
    in view); linear mode is pyqtgraph's, without the automatic SI prefix."""

    def __init__(self, orientation: str, **kw) -> None:
        super().__init__(orientation, **kw)
        self.enableAutoSIPrefix(False)

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        """pyqtgraph's levels, without a minor tick where a coarser level has one already
        (its minor level repeats the decades, which drew their labels twice)."""
        seen: list[float] = []
        levels = []
        for spacing, values in super().logTickValues(minVal, maxVal, size, stdTicks):
            values = [v for v in values if all(abs(v - u) > 1e-9 for u in seen)]
            seen.extend(values)
            levels.append((spacing, values))
        return levels

    def tickStrings(self, values, scale, spacing):
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        labels = [log_tick_label(v) for v in values]
        if values and not any(labels):  # a narrow range: two significant digits each
            labels = [f"{10**v:.2g}" for v in values]
        return labels


def use_log_axes(plot: pg.PlotItem, x: bool = False, y: bool = False) -> None:
    """Give ``plot`` LogAxisItems on the log-scaled sides and switch them to log mode.
    Call before setLabel: the new axes replace the old ones."""
    items = {}
    if x:
        items["bottom"] = LogAxisItem("bottom")
    if y:
        items["left"] = LogAxisItem("left")
    plot.setAxisItems(items)
    plot.setLogMode(x=x, y=y)
