"""The noise scale in the gradient-spread header and the loss curves: the training set's value
with its age, the one-batch ratio named as what it is, and words (never inf or nan) where a
quantity is undefined."""

from __future__ import annotations

import numpy as np
import pytest

from core import Config, Session
from core.noise_scale import WINDOW_MIN_STEPS, NoiseScaleTracker
from gui.plots.gradient_spread import GradientSpreadPlot, _big
from gui.plots.loss_curves import LossCurvePlot

NUMBERLESS = ("nan", "inf", "∞", "—")


@pytest.fixture
def spread(qtbot):
    view = GradientSpreadPlot()
    qtbot.addWidget(view)
    return view


def header(view) -> str:
    return view.info.text


def assert_no_undefined(text: str) -> None:
    for bad in NUMBERLESS:
        assert bad not in text, (bad, text)


def test_header_names_the_exact_noise_scale_and_its_age(spread):
    s = Session(Config(hidden=(12,), batch_size=16))
    s._noise_scale = NoiseScaleTracker(s.data.n_train, np.random.default_rng(0), interval=7)
    for _ in range(10):
        snap = s.step()
    st = snap.stats
    spread.show_snapshot(snap)
    text = header(spread)
    assert f"{st.noise_scale:.3g}" in text or f"{st.noise_scale:,.0f}" in text
    assert "exact over all 1,024 training samples, 2 steps ago" in text  # measured at step 7
    assert "recent:" not in text  # a range of two values says little
    for _ in range(14):
        snap = s.step()
    spread.show_snapshot(snap)
    st = snap.stats
    lo, hi = st.noise_scale_recent_lo, st.noise_scale_recent_hi
    assert lo <= st.noise_scale <= hi
    assert f"(recent: {_big(lo)}–{_big(hi)})" in header(spread)
    assert "SNR = B/B<sub>noise</sub>" in text and "vs |G|" in text
    assert "this batch alone" in text and "on average below B = 16" in text
    assert_no_undefined(text)


def test_header_before_a_measurement_and_at_b1(spread):
    s = Session(Config(hidden=(8,), batch_size=1))
    spread.show_snapshot(s.snapshot())  # step 0: nothing measured yet
    text = header(spread)
    assert "not measured yet" in text and "needs B ≥ 2" in text
    assert_no_undefined(text)
    snap = s.run(5)
    spread.show_snapshot(snap)
    text = header(spread)
    # at B = 1 the training set's noise scale, SNR and standard error are all defined;
    # only the one-batch ratio is not
    assert "exact" in text and "SNR" in text and "needs B ≥ 2" in text
    assert_no_undefined(text)


def test_header_on_a_large_training_set_shows_an_estimate_with_its_error(spread):
    s = Session(Config(hidden=(8,), n_samples=6000, batch_size=16))
    s._noise_scale = NoiseScaleTracker(s.data.n_train, np.random.default_rng(0), interval=1)
    spread.show_snapshot(s.step())
    assert "(± needs 3 draws)" in header(spread) or "not resolved yet" in header(spread)
    for _ in range(30):
        snap = s.step()
    spread.show_snapshot(snap)
    text = header(spread)
    draws = f"31 draws of {snap.stats.noise_scale_samples:,} in the last {WINDOW_MIN_STEPS} steps"
    assert f"two-batch estimate, {draws}" in text
    if np.isfinite(snap.stats.noise_scale):
        assert " ± " in text
    else:  # the averaged |G|^2 is not positive yet: said in words
        assert "not resolved yet" in text
    assert_no_undefined(text)


def test_loss_curves_draw_the_measured_noise_scale_only(qtbot):
    view = LossCurvePlot()
    qtbot.addWidget(view)
    s = Session(Config(hidden=(8,), batch_size=1))
    s._noise_scale = NoiseScaleTracker(s.data.n_train, np.random.default_rng(0), interval=10)
    snap = s.run(40)
    view.show_snapshot(snap)
    x, y = view.noise.getData()
    assert list(x) == [1, 11, 21, 31]  # the steps measured (history steps count updates)
    assert np.all(np.isfinite(y)) and np.all(y > 0)
    assert "B<sub>noise</sub>" in view.bottom.titleLabel.text
