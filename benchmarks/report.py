"""Printing a benchmark's report: sections and aligned tables (shared by the benchmarks)."""

from __future__ import annotations

import math
import time

__all__ = ["best_of", "section", "table"]


def table(
    headers: list[str], rows: list[list[str]], indent: str = "  ", first_left: bool = True
) -> None:
    """Print rows under their headers, each column as wide as its widest cell: the first
    column left-aligned (a label; unless ``first_left`` is False), the others right-aligned."""
    widths = [max([len(h), *(len(r[k]) for r in rows)]) for k, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) for c, w in zip(cells, widths)]
        if first_left:
            out[0] = cells[0].ljust(widths[0])
        return indent + "  ".join(out)

    print(line(headers))
    print(indent + "  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def section(title: str) -> None:
    """A blank line, the title, and a rule under it as long as the title."""
    print()
    print(title)
    print("=" * len(title), flush=True)


def best_of(fn, repeats: int, number: int) -> float:
    """Seconds per call of ``fn()``: the best of ``repeats`` timings of ``number`` calls."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best
