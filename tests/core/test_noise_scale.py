"""The training set's gradient noise scale (``core.noise_scale``) against G and Sigma computed
over the whole set from the materialised per-sample gradients, and in a live Session."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from core import Config, Session
from core.mlp import MLP
from core.noise_scale import (
    NoiseScaleTracker,
    TwoBatchAverage,
    big_batch_size,
    exact_moments,
    two_batch_estimates,
)

SIZES = [5, 12, 8, 3]


def problem(seed: int = 0, n: int = 300, loss: str = "mse"):
    rng = np.random.default_rng(seed)
    net = MLP(SIZES, activation="tanh", seed=seed)
    net.params[...] = rng.normal(0.0, 0.7, size=net.n_params)
    X = rng.normal(size=(n, SIZES[0]))
    T = np.eye(3)[rng.integers(0, 3, n)] if loss == "cross_entropy" else rng.normal(size=(n, 3))
    return net, X, T, rng


def truth(Gm: np.ndarray) -> tuple[float, float]:
    """|G|^2 and tr(Sigma) of the rows of the (n, P) matrix, textbook formulas."""
    G = Gm.mean(axis=0)
    return float(G @ G), float(np.var(Gm, axis=0, ddof=1).sum())


# ------------------------------------------------------------------------- exact mode
@pytest.mark.parametrize(
    "loss, reduction, chunk",
    [("mse", "mean", None), ("mse", "mean", 7), ("cross_entropy", "sum", 64),
     ("huber", "weighted", 50), ("mae", "max", 33)],
)  # fmt: skip
def test_exact_moments_equal_the_whole_set_formulas(loss, reduction, chunk):
    net, X, T, rng = problem(1, loss=loss)
    kw = {"loss": loss, "reduction": reduction}
    if reduction == "weighted":
        kw["output_weights"] = np.array([2.0, 1.0, 0.5])
        kw["sample_weights"] = rng.uniform(0.5, 2.0, len(X))  # do not enter g_i
    Gm = net.per_sample_gradients(X, T, **kw)
    g2, tr = truth(Gm)
    got_g2, got_tr, G = exact_moments(net, X, T, kw, chunk=chunk)
    assert got_g2 == pytest.approx(g2, rel=1e-10)
    assert got_tr == pytest.approx(tr, rel=1e-10)
    np.testing.assert_allclose(G, Gm.mean(axis=0), rtol=1e-10, atol=1e-14)
    assert tr > 0 and g2 > 0  # a non-trivial case


def test_session_reports_the_exact_noise_scale_of_its_training_set():
    s = Session(Config(hidden=(12, 8), batch_size=16, n_samples=500))
    s._noise_scale = NoiseScaleTracker(s.data.n_train, np.random.default_rng(0), interval=5)
    for k in range(12):
        w = s.net.params.copy()
        snap = s.step(detail=(k == 11))
        st = snap.stats
        assert st.noise_scale_mode == "exact" and st.noise_scale_samples == 400
        assert st.noise_scale_interval == 5
        assert st.noise_scale_age == k % 5  # measured at steps 0, 5, 10
        if k % 5 == 0:  # measured at the weights of this step's batch
            net = copy.deepcopy(s.net)
            net.params[...] = w
            g2, tr = truth(net.per_sample_gradients(s.data.X_train, s.data.T_train))
            assert st.noise_scale == pytest.approx(tr / g2, rel=1e-9)
            assert st.trace_sigma == pytest.approx(tr, rel=1e-9)
            assert st.grad_sq == pytest.approx(g2, rel=1e-9)
            assert st.noise_scale_err == 0.0
            assert snap.history.noise_scale[-1] == pytest.approx(tr / g2, rel=1e-9)
        else:
            assert np.isnan(snap.history.noise_scale[-1])  # not measured at this step
        assert st.std_error == pytest.approx(np.sqrt(st.trace_sigma / 16), rel=1e-12)
        assert st.snr == pytest.approx(16 / st.noise_scale, rel=1e-12)
    h = snap.history.noise_scale
    assert np.count_nonzero(np.isfinite(h)) == 3 and not np.any(np.isinf(h))
    # the range of the recent exact values (three so far): the measured ones
    measured = h[np.isfinite(h)]
    assert st.noise_scale_recent_lo == pytest.approx(measured.min(), rel=1e-12)
    assert st.noise_scale_recent_hi == pytest.approx(measured.max(), rel=1e-12)
    # a snapshot without training says how many updates old the estimate is
    assert s.snapshot(detail=False).stats.noise_scale_age == 2


# --------------------------------------------------------------------- two-batch mode
@pytest.mark.parametrize("replace", [False, True])
def test_two_batch_estimators_are_unbiased(replace):
    """McCandlish et al. 2018, Appendix A: over many independent draws of a small and a big
    batch, the mean of the estimates is tr(Sigma) and |G|^2 of the set. Batches drawn without
    replacement use the finite-set form (n given); with replacement the population form
    (n = None), whose tr is the population variance (n-1)/n tr(Sigma)."""
    net, X, T, _ = problem(2, n=240)
    Gm = net.per_sample_gradients(X, T)
    g2, tr = truth(Gm)
    n = len(X)
    if replace:
        tr *= (n - 1) / n
    rng = np.random.default_rng(12345)
    bs, bb, draws = 4, 48, 20_000
    S = np.empty(draws)
    G2 = np.empty(draws)
    naive = np.empty(draws)
    for k in range(draws):
        gs = Gm[rng.choice(n, bs, replace=replace)].mean(axis=0)
        gb = Gm[rng.choice(n, bb, replace=replace)].mean(axis=0)
        S[k], G2[k] = two_batch_estimates(
            float(gs @ gs), bs, float(gb @ gb), bb, None if replace else n
        )
        naive[k] = gs @ gs
    for est, want in ((S, tr), (G2, g2)):
        se = est.std(ddof=1) / np.sqrt(draws)
        assert se < 0.01 * want  # the tolerance below is tight: it cannot pass by accident
        assert abs(est.mean() - want) < 4 * se
    if not replace:  # and it resolves the finite-set term: without it |G|^2 is off by tr/n
        uncorrected = G2 - S / n
        se = uncorrected.std(ddof=1) / np.sqrt(draws)
        assert abs(uncorrected.mean() - g2) > 10 * se
    # the same test catches a biased estimator: the small batch's |g|^2 alone is |G|^2 plus
    # the noise tr(Sigma)/B
    se = naive.std(ddof=1) / np.sqrt(draws)
    assert naive.mean() - g2 > 20 * se


def test_two_batch_estimators_refuse_bad_sizes():
    with pytest.raises(ValueError, match="B_small < B_big"):
        two_batch_estimates(1.0, 8, 1.0, 8)
    with pytest.raises(ValueError, match="larger than the set"):
        two_batch_estimates(1.0, 8, 1.0, 64, n=32)
    assert big_batch_size(8, 10_000) == 512 and big_batch_size(100, 10_000) == 800
    assert big_batch_size(100, 500) == 500


def test_average_is_the_ratio_of_averages_with_a_calibrated_error():
    """Pairs with known means: the average's ratio converges to the ratio of the means (not the
    mean of the ratios), and its reported standard error matches the spread over runs."""
    rng = np.random.default_rng(7)
    mean_s, mean_g = 10.0, 0.02
    ratios, errs = [], []
    for _ in range(300):
        avg = TwoBatchAverage(decay=0.95)
        for _ in range(200):
            e = rng.normal(size=2)
            # correlated noise, as the two estimates share their batches
            avg.add(mean_s + 3.0 * e[0], mean_g + 0.01 * (0.6 * e[0] + 0.8 * e[1]))
        r, err, _, _, used = avg.estimate()
        assert used == 200
        ratios.append(r)
        errs.append(err)
    ratios = np.array(ratios)
    assert np.median(ratios) == pytest.approx(mean_s / mean_g, rel=0.05)
    assert np.mean(errs) == pytest.approx(ratios.std(ddof=1), rel=0.25)
    # the mean of per-pair ratios would be dominated by pairs with |G|^2 near 0
    avg = TwoBatchAverage(decay=0.0)  # keeps only the newest pair
    avg.add(1.0, 1.0)
    avg.add(4.0, 2.0)
    assert avg.estimate()[0] == 2.0 and np.isnan(avg.estimate()[1])
    empty = TwoBatchAverage()
    assert all(np.isnan(v) for v in empty.estimate()[:4]) and empty.estimate()[4] == 0
    avg = TwoBatchAverage()
    avg.add(5.0, -0.1)  # |G|^2 not resolved: no ratio, and never inf
    assert np.isnan(avg.estimate()[0])


def test_window_forgets_the_early_steps_entirely():
    """|G|^2 falls 1000x early in training: an exponential average still carries the first
    steps (a small weight on a huge value), a window of steps does not."""
    avg = TwoBatchAverage(decay=0.95)
    rng = np.random.default_rng(3)
    for step in range(0, 600, 10):
        g2 = 1.0 if step < 100 else 1e-3
        avg.add(2.0 + 0.1 * rng.normal(), g2 * (1 + 0.1 * rng.normal()), step=step)
    r_exp = avg.estimate()[0]
    r_win, err, S, G2, used = avg.estimate(now=590, window=200)
    assert used == 20  # steps 400..590
    assert r_win == pytest.approx(2000, rel=0.1) and err < 0.1 * r_win
    assert r_exp < 0.5 * r_win  # what the exponential average read


# ------------------------------------------------------- no dependence on the batch size
@pytest.fixture(scope="module")
def converged():
    """A default session trained until the one-batch ratio echoes B (|G|^2 << tr(Sigma)/B)."""
    s = Session(Config())
    s.run(1500, detail_last=False)
    return s


def test_after_convergence_the_noise_scale_does_not_depend_on_B(converged):
    s = converged
    X, T = s.data.X_train, s.data.T_train
    g2, tr = truth(s.net.per_sample_gradients(X, T))
    exact = tr / g2
    assert exact > 3 * 128  # a converged run: the true noise scale is far above the batches
    live, batch = {}, {}
    for B in (8, 128):
        c = copy.deepcopy(s)
        c.update(batch_size=B)
        c._noise_scale.request()  # measure at these weights, whatever the cadence
        st = c.step(detail=False).stats
        live[B], batch[B] = st.noise_scale, st.noise_scale_batch
    assert live[8] == pytest.approx(exact, rel=1e-9)
    assert live[128] == pytest.approx(exact, rel=1e-9)
    # the naive one-batch ratio follows B instead (why it is labelled apart): about B at
    # B = 8, far below the truth, and many times larger at B = 128
    assert batch[8] < 4 * 8 < exact / 10
    assert batch[128] > 4 * batch[8]


def test_after_convergence_the_two_batch_estimate_does_not_depend_on_B(converged):
    """At fixed converged weights, the two-batch estimator (large-data mode, forced here)
    with minibatches of 8 and of 128 finds the exact noise scale within its stated error."""
    s = converged
    X, T = s.data.X_train, s.data.T_train
    Gm = s.net.per_sample_gradients(X, T)
    g2, tr = truth(Gm)
    exact = tr / g2
    n = len(X)
    kw = {"loss": "mse", "reduction": "mean"}
    got = {}
    for B in (8, 128):
        rng = np.random.default_rng(B)
        trk = NoiseScaleTracker(
            n, np.random.default_rng([B, 1]), exact_max=0, interval=1, decay=0.998
        )
        for k in range(600):
            gs = Gm[rng.choice(n, B, replace=False)].mean(axis=0)
            est = trk.observe(k, s.net, X, T, kw, float(gs @ gs), B)
        assert est.mode == "two-batch" and est.measurements == 600
        assert est.noise_scale_err < 0.15 * exact  # precise enough to mean something
        assert abs(est.noise_scale - exact) < 4 * est.noise_scale_err
        got[B] = est
    diff = abs(got[8].noise_scale - got[128].noise_scale)
    assert diff < 4 * np.hypot(got[8].noise_scale_err, got[128].noise_scale_err)


# ------------------------------------------------------------------- session behaviour
def test_cadence_keeps_the_cost_at_the_budget():
    """With a fake clock: a measurement costing 8 training steps at a 1/8 budget runs every
    64 steps, and the time it took is not counted as training time."""
    cost, train = 2.0**-8, 2.0**-11  # exact in binary: the interval is exactly 64
    now = [0.0]

    def clock():
        now[0] += cost  # each call moves on: t1 - t0 = cost
        return now[0]

    net, X, T, _ = problem(3, n=100)
    trk = NoiseScaleTracker(len(X), np.random.default_rng(0), budget=0.125, clock=clock)
    measured = []
    last = 0.0
    for k in range(200):
        est = trk.observe(k, net, X, T, {"loss": "mse"}, 1.0, 8, last_step_seconds=last)
        measured.append(est.step == k)
        last = train + (cost if measured[-1] else 0.0)  # the step's time includes measuring
    assert trk.interval == 64
    assert np.flatnonzero(measured).tolist() == [0, 1, 65, 129, 193]
    assert trk.seconds_measuring == pytest.approx(5 * cost)


def test_b1_and_settings_changes():
    s = Session(Config(batch_size=1, hidden=(8,), n_samples=200))
    s._noise_scale = NoiseScaleTracker(s.data.n_train, np.random.default_rng(0), interval=10**4)
    for _ in range(20):
        snap = s.step(detail=False)
    st = snap.stats
    assert np.isfinite(st.noise_scale) and np.isfinite(st.snr) and np.isfinite(st.std_error)
    assert np.isnan(st.noise_scale_batch) and np.isnan(st.trace_sigma_batch)
    assert not np.any(np.isinf(snap.history.noise_scale))
    s.run(30, detail_last=False)
    s.update(loss="mae")  # another scalar: measured afresh at the next step
    st = s.step(detail=False).stats
    assert st.noise_scale_age == 0 and st.noise_scale_step == s.step_count - 1
    before = s._noise_scale.measurements
    s.update(batch_size=4)  # the set's noise does not depend on B: no new measurement
    s.step(detail=False)
    assert s._noise_scale.measurements == before


def test_large_training_set_uses_the_two_batch_estimator():
    s = Session(Config(hidden=(8,), n_samples=6000, batch_size=16))
    assert s.data.n_train > 4096
    s._noise_scale = NoiseScaleTracker(s.data.n_train, np.random.default_rng(0), interval=2)
    for _ in range(12):
        snap = s.step(detail=False)
    st = snap.stats
    assert st.noise_scale_mode == "two-batch" and st.noise_scale_samples >= 512
    assert st.noise_scale_measurements == 6
    assert np.isfinite(st.noise_scale_err) and st.noise_scale_err >= 0
