"""The per-step record of a run, bounded for runs of hours.

One row per step until the record holds ``max_rows`` rows; then neighbouring rows are merged
in pairs and from there on each row stands for ``stride`` steps (2, 4, 8, ... as the run goes
on), so memory stays below ``max_rows`` rows however long the window trains. (Unbounded, the
record grew the window's process by 0.26 MB per 1,000 steps, with its curves' copies: at
3,000 steps a second, about 2.8 GB an hour; measured with benchmarks/bench_soak.py.)
A merged row holds the mean of its steps' values (train and validation loss: the mean of
those measured, NaN if none was) and the last step's number and batch size.
"""

from __future__ import annotations

import numpy as np

from .snapshot import HISTORY_FIELDS, History

__all__ = ["HistoryBuffer", "MAX_ROWS"]

MAX_ROWS = 40_000  #: rows kept before neighbouring rows are merged (about 2.2 MB)

#: fields whose merged row keeps its last step's value; the others take the mean of their
#: non-NaN values (NaN where there are none)
_LAST = ("steps", "batch_size")


class HistoryBuffer:
    """Append-only columns (``HISTORY_FIELDS``) whose ``view()`` is a read-only History.

    max_rows : even int >= 2 (default ``MAX_ROWS``). ``generation`` counts merges: a view
    taken before one is not a prefix of a view taken after it (``core.remote`` then sends
    the whole record again).
    """

    def __init__(self, max_rows: int | None = None) -> None:
        max_rows = MAX_ROWS if max_rows is None else max_rows
        if max_rows < 2 or max_rows % 2:
            raise ValueError(f"max_rows must be an even number >= 2, got {max_rows}")
        self.max_rows = max_rows
        self._cols = {f: np.empty(min(1024, max_rows)) for f in HISTORY_FIELDS}
        self.n = 0
        self.stride = 1  #: steps per row from now on
        self.generation = 0
        self.events: list[tuple[int, str]] = []
        self._undo: tuple | None = None  #: the state before the last append
        self._clear_bucket()

    def __len__(self) -> int:
        return self.n

    def append(self, **row: float) -> None:
        """Record one step: a value for every field of HISTORY_FIELDS. ``drop_last()`` can
        take it back until the next append."""
        self._undo = (
            self.n,
            self.stride,
            self.generation,
            self._bucket_steps,
            dict(self._sum),
            dict(self._weight),
        )
        self._add(row, 1)
        if self._bucket_steps == self.stride:
            self._flush()

    def drop_last(self) -> bool:
        """Take back the last ``append`` (a step whose update is undone). False when there is
        nothing to take back, or when that append merged the rows (once per ``max_rows``
        rows; the record then keeps the step)."""
        if self._undo is None or self._undo[2] != self.generation:
            return False
        self.n, self.stride, _, self._bucket_steps, self._sum, self._weight = self._undo
        self._undo = None
        return True

    def view(self) -> History:
        views = []
        for f in HISTORY_FIELDS:
            v = self._cols[f][: self.n]
            v.flags.writeable = False
            views.append(v)
        return History(*views, events=tuple(self.events), generation=self.generation)

    def light_state(self) -> dict:
        """Everything but the rows: row count, stride, generation, the steps waiting to make
        the next row. With the rows a window already holds, ``from_rows`` rebuilds the buffer
        (a restarted engine process carries on the record; see core.remote)."""
        return {
            "max_rows": self.max_rows,
            "n": self.n,
            "stride": self.stride,
            "generation": self.generation,
            "bucket": (self._bucket_steps, dict(self._sum), dict(self._weight)),
        }

    @classmethod
    def from_rows(cls, rows: History, state: dict) -> HistoryBuffer:
        """The buffer whose ``light_state()`` was ``state`` and whose rows (and events) are
        those of ``rows``; ValueError if ``rows`` is not that record."""
        if len(rows) != state["n"] or rows.generation != state["generation"]:
            raise ValueError(
                f"the rows ({len(rows)}, generation {rows.generation}) are not the record's "
                f"({state['n']}, generation {state['generation']})"
            )
        buf = cls(state["max_rows"])
        size = min(buf.max_rows, max(1024, 2 * buf.n, 2 * state["n"]))
        buf._cols = {f: np.empty(size) for f in HISTORY_FIELDS}
        for f in HISTORY_FIELDS:
            buf._cols[f][: state["n"]] = getattr(rows, f)
        buf.n = state["n"]
        buf.stride = state["stride"]
        buf.generation = state["generation"]
        buf.events = list(rows.events)
        steps, sums, weights = state["bucket"]
        buf._bucket_steps, buf._sum, buf._weight = steps, dict(sums), dict(weights)
        return buf

    # ------------------------------------------------------------------ inside
    def _clear_bucket(self) -> None:
        """The steps that will make the next row: weighted sums (NaN values left out)."""
        self._bucket_steps = 0
        self._sum = dict.fromkeys(HISTORY_FIELDS, 0.0)
        self._weight = dict.fromkeys(HISTORY_FIELDS, 0)

    def _add(self, row: dict[str, float], steps: int) -> None:
        for f in HISTORY_FIELDS:
            v = float(row[f])
            if f in _LAST:
                self._sum[f], self._weight[f] = v, 1
            elif not np.isnan(v):
                self._sum[f] += steps * v
                self._weight[f] += steps
        self._bucket_steps += steps

    def _flush(self) -> None:
        row = {f: self._sum[f] / self._weight[f] if self._weight[f] else np.nan for f in self._sum}
        steps = self._bucket_steps
        self._clear_bucket()
        if self.n == self.max_rows:
            # Full: merge the rows in pairs; this row now holds half of the new stride's
            # steps, so it waits in the bucket for the other half.
            self._halve()
            self._add(row, steps)
            return
        size = self._cols["steps"].size
        if self.n == size:  # grow (at most to max_rows); earlier views keep the old arrays
            grown = min(self.max_rows, 2 * size)
            for f in HISTORY_FIELDS:
                new = np.empty(grown)
                new[: self.n] = self._cols[f][: self.n]
                self._cols[f] = new
        for f in HISTORY_FIELDS:
            self._cols[f][self.n] = row[f]
        self.n += 1

    def _halve(self) -> None:
        """Merge rows (0, 1), (2, 3), ...: half as many rows, each for twice the steps."""
        half = self.n // 2
        for f in HISTORY_FIELDS:
            pairs = self._cols[f][: 2 * half].reshape(half, 2)
            merged = pairs[:, 1].copy() if f in _LAST else _finite_mean(pairs)
            new = np.empty(self._cols[f].size)  # new arrays: views already handed out stay
            new[:half] = merged
            self._cols[f] = new
        self.n = half
        self.stride *= 2
        self.generation += 1


def _finite_mean(a: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the non-NaN entries; NaN where there are none."""
    ok = ~np.isnan(a)
    count = ok.sum(axis=-1)
    total = np.where(ok, a, 0.0).sum(axis=-1)
    out = np.full(count.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out
