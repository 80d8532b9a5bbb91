"""The bounded per-step record (core.history): exact below the cap, merged means above it,
earlier views untouched, and the engine's light snapshots still rebuild it whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core.history
from core import Config, Session
from core.history import HistoryBuffer
from core.remote import SnapshotMirror, _Outbox


def _feed(buf: HistoryBuffer, first: int, last: int, eval_every: int = 10) -> None:
    """Steps first..last with loss = step, val measured every ``eval_every`` steps."""
    for k in range(first, last + 1):
        val = 1000.0 + k if k % eval_every == 0 else np.nan
        buf.append(
            steps=k,
            loss=float(k),
            train_loss=val,
            val_loss=val,
            grad_norm=2.0 * k,
            noise_scale=np.nan,
            batch_size=32,
        )


def test_one_row_per_step_below_the_cap():
    buf = HistoryBuffer(max_rows=64)
    _feed(buf, 1, 64)
    h = buf.view()
    assert len(h) == 64 and buf.stride == 1 and h.generation == 0
    np.testing.assert_array_equal(h.steps, np.arange(1, 65))
    np.testing.assert_array_equal(h.loss, np.arange(1, 65))
    assert np.isnan(h.val_loss[:9]).all() and h.val_loss[9] == 1010.0
    assert not h.steps.flags.writeable


@settings(max_examples=40, deadline=None)
@given(
    max_rows=st.sampled_from([2, 4, 6, 8, 16, 50]),
    n_steps=st.integers(1, 2_000),
    eval_every=st.integers(1, 40),
)
def test_rows_stay_bounded_and_hold_the_mean_of_their_steps(max_rows, n_steps, eval_every):
    buf = HistoryBuffer(max_rows=max_rows)
    _feed(buf, 1, n_steps, eval_every)
    h = buf.view()
    assert 1 <= len(h) <= max_rows or n_steps < buf.stride
    assert buf.stride & (buf.stride - 1) == 0  # a power of two
    assert h.generation == int(np.log2(buf.stride))
    # every row stands for the `stride` steps that end at its step number
    np.testing.assert_array_equal(np.diff(h.steps), buf.stride)
    assert h.steps[-1] <= n_steps < h.steps[-1] + buf.stride
    lo = h.steps - buf.stride + 1
    np.testing.assert_allclose(h.loss, (lo + h.steps) / 2)  # mean of lo..step
    np.testing.assert_allclose(h.grad_norm, lo + h.steps)
    assert np.isnan(h.noise_scale).all()  # no value measured: NaN, not 0
    # validation: a value wherever one was measured, within the range of those measured
    for a, b, v in zip(lo, h.steps, h.val_loss):
        measured = [1000.0 + k for k in range(int(a), int(b) + 1) if k % eval_every == 0]
        if measured:
            assert min(measured) <= v <= max(measured)
        else:
            assert np.isnan(v)


def test_views_handed_out_earlier_do_not_change():
    buf = HistoryBuffer(max_rows=8)
    _feed(buf, 1, 8)
    before = buf.view()
    kept = before.loss.copy()
    _feed(buf, 9, 100)
    assert buf.view().generation > 0
    np.testing.assert_array_equal(before.loss, kept)


def test_max_rows_must_be_even_and_at_least_two():
    for bad in (0, 1, 3, 7):
        with pytest.raises(ValueError, match="max_rows"):
            HistoryBuffer(max_rows=bad)


def test_a_long_session_keeps_a_bounded_history_that_the_window_rebuilds(monkeypatch):
    """An hours-long run in small: the record stays under the cap, keeps the events, and
    the light snapshots of core.remote still rebuild it exactly across the merges."""
    monkeypatch.setattr(core.history, "MAX_ROWS", 16)
    s = Session(Config(hidden=(4,), eval_every=5))
    out = _Outbox(type("Q", (), {"items": [], "put": lambda self, m: self.items.append(m)})())
    mirror = SnapshotMirror()
    s.step()
    s.update(batch_size=16)  # an event
    for k in range(300):
        snap = s.step(detail=(k % 3 == 0))
        assert len(snap.history) <= 16
        if snap.detail:
            out.snapshot(snap)
            full = mirror.full(out.q.items[-1].snapshot)
            for f in ("steps", "loss", "train_loss", "val_loss", "grad_norm", "batch_size"):
                np.testing.assert_array_equal(getattr(full.history, f), getattr(snap.history, f))
            assert full.history.events == snap.history.events
    h = s.history
    assert h.generation >= 4 and h.steps[-1] <= s.step_count
    assert np.isfinite(h.val_loss).any()
    assert any("batch" in text for _, text in h.events)


def test_drop_last_takes_back_one_append_exactly():
    """An undone update drops its step: the record is as if the step was never appended,
    within a bucket too; an append that merged the rows cannot be taken back."""
    a, ref = HistoryBuffer(max_rows=8), HistoryBuffer(max_rows=8)
    _feed(a, 1, 8)
    assert a.drop_last()
    assert not a.drop_last()  # only the last append
    _feed(ref, 1, 7)
    assert len(a) == 7
    for f in ("steps", "loss", "val_loss"):
        np.testing.assert_array_equal(getattr(a.view(), f), getattr(ref.view(), f))
    _feed(a, 8, 9)  # the 9th step merges the rows (stride 2)
    assert a.generation == 1 and not a.drop_last()
    _feed(a, 10, 11)  # the 11th waits in a half-full bucket
    assert a.drop_last()
    _feed(a, 11, 14)
    full = HistoryBuffer(max_rows=8)
    _feed(full, 1, 14)
    assert len(a) == len(full)
    for f in ("steps", "loss", "val_loss", "grad_norm"):
        np.testing.assert_array_equal(getattr(a.view(), f), getattr(full.view(), f))
