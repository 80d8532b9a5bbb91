"""The experiments' engines (no Qt): the claims they measure hold, and they can be cancelled."""

from __future__ import annotations

import numpy as np
import pytest

from core import MLP, Config
from core.experiments.cost_lab import STRATEGIES, run_cost_lab
from core.experiments.dldy import averaged_delta_gradient, run_misconception
from core.experiments.race import parse_batch_sizes, run_batch_race
from core.experiments.reductions_lab import CASES, pareto_mask, run_reductions_lab
from core.losses import reduce

SMALL = Config(hidden=(8, 8), n_samples=320)


def test_cost_lab_rows_partials_and_agreement():
    r = run_cost_lab([5, 8, 3], batch_sizes=(1, 4, 16), repeats=1, min_time=0.001)
    assert len(r.rows) == 3 * len(STRATEGIES)
    P = r.n_params
    for row in r.rows:
        assert row.seconds > 0
        assert row.partials == (P if row.strategy == "scalar" else row.batch_size * P)
    assert r.max_abs_diff < 1e-12
    header, rows = r.table()
    assert header == ["strategy", "batch_size", "seconds", "partials"] and len(rows) == 9
    assert run_cost_lab([5, 8, 3], batch_sizes=(1, 2), cancel=lambda: True) is None


def test_cost_lab_loop_costs_more_than_scalar_at_large_batch():
    r = run_cost_lab([5, 16, 16, 3], batch_sizes=(64,), repeats=3, min_time=0.005)
    assert r.ratio("per_sample_loop", 64) > 5 * r.ratio("scalar", 64)


def test_batch_race_shares_the_start_and_the_sample_budget():
    r = run_batch_race(SMALL, (1, 8, None), quick=True)
    n = r.n_train
    assert [run.batch_size for run in r.runs] == [1, 8, n]
    first = {run.train_loss[0] for run in r.runs}
    assert len(first) == 1  # same initial weights and data
    for run in r.runs:
        assert run.samples_seen[-1] >= n or run.steps[-1] >= 20
        assert np.all(np.diff(run.steps) > 0) and np.all(np.diff(run.seconds) >= 0)
        assert run.path.shape == (len(run.steps), 2)
        np.testing.assert_allclose(run.path[0], r.runs[0].path[0])
    assert r.Z.shape == (25, 25)
    header, rows = r.table()
    assert header == ["batch_size", "step", "samples_seen", "seconds", "train_loss", "val_loss"]
    assert len(rows) == sum(len(run.steps) for run in r.runs)
    assert run_batch_race(SMALL, (1, 8), quick=True, cancel=lambda: True) is None


def test_batch_race_marks_a_diverging_run_and_keeps_the_others():
    r = run_batch_race(Config(hidden=(), n_samples=320, lr=50.0), (1, 32), quick=True)
    assert any(run.diverged_at for run in r.runs)


def test_batch_race_stops_a_diverging_run_at_its_last_sane_weights():
    """The race trains with core.training's rule: a run whose loss explodes (while still
    finite) is stopped, the update that led there is undone, and its curve and path end at
    the last weights whose loss was sane."""
    r = run_batch_race(Config(hidden=(), n_samples=320, lr=5.0), (32, 8), quick=True)
    for run in r.runs:
        assert run.diverged_at > 0
        # the step whose loss blew up, and the update before it (undone), are not recorded
        assert run.steps[-1] == run.diverged_at - 2
        assert np.all(np.isfinite(run.train_loss)) and np.all(np.isfinite(run.path))
        assert 0 < len(run.path) <= len(run.steps)  # (points gone far off are left out)
    run = r.runs[0]
    assert run.train_loss[-1] > 1e6 * run.train_loss[0]  # it did explode, still finite


@pytest.mark.parametrize(
    "text,message",
    [
        ("abc", "not a whole number"),
        ("0", "between"),
        ("1, 1", "twice"),
        ("", "at least one"),
        ("99999", "between"),
    ],
)
def test_batch_size_list_refuses_bad_entries(text, message):
    with pytest.raises(ValueError, match=message):
        parse_batch_sizes(text, 1024)
    assert parse_batch_sizes("1, 8, 32, all", 1024) == (1, 8, 32, 1024)


def test_reductions_lab_laws():
    r = run_reductions_lab(SMALL, quick=True)
    assert r.names == CASES
    B = r.batch_size
    assert r.grad_ratio == pytest.approx(B, rel=1e-12)
    assert r.max_abs_grad_diff <= 1e-12 * B * r.grad_norms[0] + 1e-15
    assert r.max_abs_step_diff <= 1e-12
    assert r.scalars[1] == pytest.approx(B * r.scalars[0], rel=1e-12)
    assert r.cosines[0] == pytest.approx(1.0) and r.cosines[1] == pytest.approx(1.0)
    assert r.surfaces.shape[0] == 5
    assert not np.allclose(r.surfaces[0], r.surfaces[2])  # max has its own surface
    np.testing.assert_array_equal(r.pareto, pareto_mask(r.cloud))
    i, j = r.incomparable
    a, b = r.cloud[i], r.cloud[j]
    assert np.any(a < b) and np.any(b < a)  # neither is better on every output
    header, rows = r.table()
    assert header == ["section", "name", "key", "value"]
    assert run_reductions_lab(SMALL, quick=True, cancel=lambda: True) is None


def test_pareto_mask_against_brute_force():
    F = np.random.default_rng(3).random((60, 3))
    brute = [
        not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in range(60)) for i in range(60)
    ]
    np.testing.assert_array_equal(pareto_mask(F), brute)


def test_reductions_lab_scalars_are_the_engine_reductions():
    r = run_reductions_lab(SMALL, quick=True)
    assert r.scalars[2] >= r.scalars[0]  # the largest entry is at least the mean
    M = np.array([[1.0, 4.0], [2.0, 0.5]])
    assert reduce(M, "max").value == 4.0


def _hand_averaged_delta(net, X, T):
    """The stated procedure written out with loops (mse, mean)."""
    acts, pre = [X], []
    a = X
    for k, (W, b) in enumerate(net.layers):
        z = a @ W.T + b
        pre.append(z)
        a = np.tanh(z) if k < len(net.layers) - 1 else z
        acts.append(a)
    B, O = acts[-1].shape
    delta = (2 * (acts[-1] - T) / O).mean(axis=0)
    grads = []
    for k in range(len(net.layers) - 1, -1, -1):
        abar = acts[k].mean(axis=0)
        grads.append((np.outer(delta, abar).ravel(), delta.copy()))
        if k:
            fbar = (1 - np.tanh(pre[k - 1]) ** 2).mean(axis=0)
            delta = (net.layers[k][0].T @ delta) * fbar
    return np.concatenate([np.concatenate(g) for g in reversed(grads)])


def test_averaged_delta_matches_the_stated_formula_and_differs_from_the_gradient():
    rng = np.random.default_rng(0)
    net = MLP([5, 6, 4, 3], seed=2)
    X, T = rng.normal(size=(16, 5)), rng.normal(size=(16, 3))
    ga = averaged_delta_gradient(net, X, T)
    np.testing.assert_allclose(ga, _hand_averaged_delta(net, X, T), rtol=1e-10, atol=1e-14)
    g = net.gradient(X, T)
    assert g @ ga / (np.linalg.norm(g) * np.linalg.norm(ga)) < 0.9999
    x1, t1 = X[:1], T[:1]  # one sample: the two procedures coincide
    np.testing.assert_allclose(
        averaged_delta_gradient(net, x1, t1), net.gradient(x1, t1), rtol=1e-12, atol=1e-15
    )


def test_misconception_run_records_the_comparison():
    r = run_misconception(SMALL, quick=True)
    assert np.all(r.per_sample_diff <= 1e-12)
    assert np.all(r.cosine < 0.9999) and np.all(r.relative_error > 1e-3)
    header, rows = r.table()
    assert header == [
        "step",
        "cosine",
        "relative_error",
        "norm_true",
        "norm_averaged_delta",
        "max_abs_diff_per_sample_mean",
    ]
    assert len(rows) == len(r.steps)
    assert run_misconception(SMALL, quick=True, cancel=lambda: True) is None


def test_batch_race_leader_compares_runs_at_the_same_number_of_samples():
    r = run_batch_race(SMALL, (1, 8, 32), quick=True)
    size, samples, loss = r.leader()
    assert samples == min(int(run.samples_seen[-1]) for run in r.runs)
    at = {run.batch_size: np.interp(samples, run.samples_seen, run.val_loss) for run in r.runs}
    assert size == min(at, key=at.get) and loss == pytest.approx(at[size])
    boom = run_batch_race(Config(hidden=(), n_samples=320, lr=50.0), (32,), quick=True)
    assert boom.leader() is None  # its only run diverged


# ------------------------------------------------------------- cancellation and fairness
@pytest.mark.parametrize(
    "loss,reduction,kw",
    [
        ("mse", "mean", {}),
        ("mse", "sum", {}),
        ("mse", "max", {}),
        ("cross_entropy", "mean", {}),
        ("huber", "weighted", {"output_weights": np.array([2.0, 1.0, 1.0])}),
        ("mae", "weighted", {"sample_weights": "random"}),
    ],
)
def test_loss_and_gradient_in_pieces_are_the_loss_and_gradient(loss, reduction, kw):
    from core.experiments.cancellation import loss_and_gradient_in_pieces

    rng = np.random.default_rng(4)
    net = MLP([5, 7, 6, 3], seed=1)
    X, T = rng.normal(size=(50, 5)), rng.normal(size=(50, 3))
    if loss == "cross_entropy":
        T = np.eye(3)[rng.integers(0, 3, size=50)]
    if kw.get("sample_weights") == "random":
        kw = {"sample_weights": rng.uniform(0.5, 2.0, size=50)}
    whole = net.gradient(X, T, loss, reduction, **kw)
    # pieces of 7 samples (the work budget is samples x parameters)
    value, pieces = loss_and_gradient_in_pieces(
        net, X, T, loss, reduction, work=7 * net.n_params, **kw
    )
    np.testing.assert_allclose(pieces, whole, rtol=1e-12, atol=1e-15)
    assert value == pytest.approx(net.loss(X, T, loss, reduction, **kw), rel=1e-12)


def test_gradient_in_pieces_checks_for_cancellation_between_pieces():
    from core.experiments.cancellation import CancelledError, loss_and_gradient_in_pieces

    net = MLP([5, 4, 3], seed=0)
    X, T = np.ones((40, 5)), np.zeros((40, 3))
    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(CancelledError):
        loss_and_gradient_in_pieces(net, X, T, cancel=cancel, work=4 * net.n_params)
    assert len(polls) == 4  # stopped at the fourth check, not after all ten pieces


@pytest.mark.parametrize("name", ["cost_lab", "race", "reductions", "misconception"])
def test_every_experiment_stops_within_a_few_polls_of_the_request(name):
    """Cancellation is polled often: the run ends within a handful of polls after the flag is
    raised, wherever in the work the request lands."""
    for raise_at in (2, 15, 60):
        polls = []

        def cancel(polls=polls, raise_at=raise_at):
            polls.append(1)
            return len(polls) >= raise_at

        fns = {
            "cost_lab": lambda: run_cost_lab([5, 16, 3], batch_sizes=(4, 64), cancel=cancel),
            "race": lambda: run_batch_race(SMALL, (1, 8), quick=True, cancel=cancel),
            "reductions": lambda: run_reductions_lab(SMALL, quick=True, cancel=cancel),
            "misconception": lambda: run_misconception(SMALL, quick=True, cancel=cancel),
        }
        assert fns[name]() is None
        assert len(polls) == raise_at  # returned at the first poll that saw the request


def test_cost_lab_repeats_each_point_and_reports_median_and_range():
    r = run_cost_lab([5, 8, 3], batch_sizes=(1, 8), repeats=5, min_time=0.001)
    assert r.repeats == 5 and r.complete
    for row in r.rows:
        assert row.low <= row.seconds <= row.high
    B, lo, hi = r.band("scalar")
    assert list(B) == [1, 8] and np.all(lo <= hi)
    assert r.growth("scalar") == pytest.approx(r.seconds("scalar", 8) / r.seconds("scalar", 1))


def test_cost_lab_skips_the_vectorised_strategy_where_it_would_not_fit(monkeypatch):
    import core.experiments.cost_lab as cl

    P = MLP([5, 8, 3]).n_params
    monkeypatch.setattr(cl, "VECTORISED_BYTES", 4 * P * 8)  # B x P floats fit up to B = 4
    partials = []
    r = run_cost_lab(
        [5, 8, 3], batch_sizes=(2, 4, 16), repeats=1, min_time=0.0, partial=partials.append
    )
    assert r.vectorised_max_batch == 4
    assert [b for b in r.series("per_sample_vectorised")[0]] == [2, 4]
    assert len(r.series("per_sample_loop")[0]) == 3
    assert [len(p.rows) for p in partials] == [3, 6] and not partials[0].complete


def test_batch_race_every_run_sees_the_same_samples_from_fresh_weights():
    r = run_batch_race(SMALL, (1, 8, None), quick=True)
    budget = r.samples_budget
    assert budget == 2 * r.n_train  # quick: 2 epochs
    for run in r.runs:
        assert run.samples_seen[-1] == budget  # 1, 8 and n_train all divide 2 n_train
        assert run.steps[-1] == budget // run.batch_size
    assert r.start == "fresh" and r.lr == SMALL.lr and r.optimizer == SMALL.optimizer
    fresh_start = MLP(SMALL.layer_sizes(5, 3), SMALL.activation, seed=SMALL.seed).params
    moved = fresh_start + 0.1
    current = run_batch_race(SMALL, (8,), params=moved, quick=True)
    assert current.start == "current"
    assert current.runs[0].train_loss[0] != r.runs[1].train_loss[0]


def test_batch_race_partial_results_and_thinned_paths(monkeypatch):
    import core.experiments.race as race

    P = MLP(SMALL.layer_sizes(5, 3)).n_params
    monkeypatch.setattr(race, "TRAJECTORY_BYTES", 8 * P * 2 * 12)  # 12 stored points per run
    partials = []
    r = run_batch_race(SMALL, (1, 8), quick=True, partial=partials.append)
    assert len(partials) == 1 and not partials[0].complete
    assert [run.batch_size for run in partials[0].runs] == [1]
    assert r.complete and r.thinned
    for run in r.runs:
        assert 2 <= len(run.path) <= 13 < len(run.steps)
        np.testing.assert_allclose(run.path[0], r.runs[0].path[0])


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "huber"])
def test_mean_loss_in_pieces_is_the_mean_loss(loss):
    from core.experiments.cancellation import mean_loss_in_pieces

    rng = np.random.default_rng(5)
    net = MLP([5, 6, 3], seed=2)
    X, T = rng.normal(size=(45, 5)), rng.normal(size=(45, 3))
    if loss == "cross_entropy":
        T = np.eye(3)[rng.integers(0, 3, size=45)]
    whole = reduce(net.loss_matrix(X, T, loss), "mean", loss).value
    pieces = mean_loss_in_pieces(net, X, T, loss, work=8 * net.n_params)  # 6 pieces
    assert pieces == pytest.approx(whole, rel=1e-13)
    assert np.isnan(mean_loss_in_pieces(net, X[:0], T[:0], loss))
