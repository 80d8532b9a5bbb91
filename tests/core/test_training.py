"""The one training step (``core.training``) and the named random streams (``core.seeds``)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from core import MLP, Config, Session, training
from core.data import MinibatchSampler, make_dataset
from core.experiments.critical_batch import train_to_target
from core.experiments.dldy import run_misconception
from core.experiments.race import run_batch_race
from core.optimizers import make_optimizer
from core.seeds import STREAMS, rng_for
from core.training import BatchObjective, DivergenceRule, Trainer, objective_for

SMALL = Config(hidden=(6,), n_samples=200)


def trainer_for(cfg: Config, lr: float | None = None) -> Trainer:
    data = make_dataset(cfg)
    net = MLP(cfg.layer_sizes(data.n_in, data.n_out), cfg.activation, seed=cfg.seed)
    opt = make_optimizer("sgd", net.n_params, cfg.lr if lr is None else lr)
    sampler = MinibatchSampler(data.n_train, rng_for(cfg.seed, "sampler"))
    return Trainer(net, opt, sampler, data.X_train, data.T_train, objective_for(cfg, data))


def test_a_step_is_sample_gradient_and_update():
    cfg = SMALL.replace(reduction="weighted", sample_weighting="x1")
    tr = trainer_for(cfg)
    before = tr.net.params.copy()
    order = MinibatchSampler(tr.X.shape[0], rng_for(cfg.seed, "sampler")).next(16)
    result = tr.step(16, 1)
    np.testing.assert_array_equal(result.idx, order)  # the sampler stream, nothing else
    X, T = tr.X[order], tr.T[order]
    kw = tr.objective(order)
    assert kw["reduction"] == "weighted" and kw["sample_weights"].shape == (16,)
    g = _at(tr.net, before).gradient(X, T, **kw)
    np.testing.assert_allclose(result.evaluation.grad, g, rtol=1e-12, atol=1e-15)
    assert result.evaluation.loss == pytest.approx(_at(tr.net, before).loss(X, T, **kw))
    np.testing.assert_allclose(tr.net.params, before - cfg.lr * g, rtol=1e-12, atol=1e-15)
    assert not result.diverged and tr.can_undo


def _at(net: MLP, params: np.ndarray) -> MLP:
    """A copy of ``net`` at weights ``params``."""
    other = copy.deepcopy(net)
    other.params[...] = params
    return other


def test_the_rule_stops_a_blown_up_loss_and_undoes_the_update_that_led_there():
    tr = trainer_for(SMALL)
    tr.step(8, 1)
    after_first = tr.net.params.copy()
    tr.step(8, 2)
    reference = tr.rule.reference
    assert reference is not None
    tr.net.params[...] *= 1e6  # as if the second update had blown the weights up
    result = tr.step(8, 3)
    assert result.diverged.startswith("the loss grew to") and result.undo_last
    assert "1e+08 times" in result.diverged and "at step 3" in result.diverged
    assert tr.diverge(result.undo_last)  # the update that led there is undone ...
    np.testing.assert_array_equal(tr.net.params, after_first)
    assert not tr.can_undo and not tr.diverge(True)  # ... once


def test_an_update_to_infinite_weights_is_undone_at_once_and_momentum_cleared():
    tr = trainer_for(SMALL)
    tr.optimizer = make_optimizer("momentum", tr.net.n_params, 0.01)
    tr.step(8, 1)
    assert np.any(tr.optimizer.velocity)
    before = tr.net.params.copy()
    huge = np.full(len(before), 1e300)  # finite, and so is the loss: the update is not
    tr.optimizer.lr = 1e10
    result = tr.step(8, 2, evaluate=lambda idx: training.Evaluation(idx, 1.0, huge))
    assert result.diverged == "the weights became infinite at step 2" and not result.undo_last
    np.testing.assert_array_equal(tr.net.params, before)
    assert not tr.diverge(result.undo_last)
    assert not np.any(tr.optimizer.velocity)  # state cleared


def test_a_nan_loss_diverges_and_before_update_sees_only_sane_steps():
    tr = trainer_for(SMALL)
    seen = []
    ok = tr.step(8, 1, before_update=lambda ev: seen.append(ev.loss))
    assert not ok.diverged and seen == [ok.evaluation.loss]
    bad = tr.step(8, 2, evaluate=lambda idx: training.Evaluation(idx, float("nan"), np.zeros(3)))
    assert bad.diverged == "the loss became nan at step 2" and len(seen) == 1


def test_the_rule_reference_is_the_first_finite_loss_until_restarted():
    rule = DivergenceRule(factor=10.0)
    g = np.zeros(2)
    assert rule.verdict(float("inf"), g, 1)  # no reference from a non-finite loss
    assert rule.reference is None
    assert rule.verdict(2.0, g, 2) == "" and rule.reference == 2.0
    assert rule.verdict(19.0, g, 3) == ""
    assert "grew to 21" in rule.verdict(21.0, g, 4)
    rule.restart()
    assert rule.verdict(21.0, g, 5) == "" and rule.reference == 21.0


def test_every_trainer_uses_the_one_rule(monkeypatch):
    """A lower factor (read when each rule is made) stops the session and the experiments
    alike: there is one rule, not one per loop."""
    monkeypatch.setattr(training, "DIVERGENCE_FACTOR", 1.0001)
    cfg = Config(hidden=(), n_samples=320, lr=1e-3)  # batches' losses vary about the first
    s = Session(cfg)
    assert s.run(50, detail_last=False).diverged and "1e+00 times" in s.divergence
    assert all(run.diverged_at for run in run_batch_race(cfg, (32,), quick=True).runs)
    assert len(run_misconception(cfg, quick=True).steps) < 20
    data = make_dataset(cfg)
    net = MLP(cfg.layer_sizes(data.n_in, data.n_out), seed=0)
    opt = make_optimizer("sgd", net.n_params, cfg.lr)
    tr = train_to_target(
        net, opt, data.X_train, data.T_train, 32, rng_for(0, "critical_batch", 32), 0.0, 200, 10
    )
    assert tr.diverged


def test_batch_objective_pickles_and_gives_the_batch_weights():
    w = np.arange(10.0)
    obj = BatchObjective("huber", "weighted", 0.5, np.array([2.0, 1.0]), w)
    kw = pickle.loads(pickle.dumps(obj))(np.array([3, 7]))
    assert kw["loss"] == "huber" and kw["huber_delta"] == 0.5
    np.testing.assert_array_equal(kw["sample_weights"], [3.0, 7.0])
    assert set(BatchObjective()(np.arange(3))) == {"loss", "reduction", "huber_delta"}


def test_named_streams_are_fixed_distinct_and_refuse_a_typo():
    # the numbers the engine always used: runs from older versions repeat exactly
    assert rng_for(3, "sampler").random() == np.random.default_rng([3, 1]).random()
    assert rng_for(3, "weights").random() == np.random.default_rng(3).random()
    assert rng_for(3, "critical_batch", 8).random() == np.random.default_rng([3, 12, 8]).random()
    firsts = {rng_for(0, p).random() for p in STREAMS if STREAMS[p] is not None}
    assert len(firsts) == sum(v is not None for v in STREAMS.values())
    with pytest.raises(KeyError, match="unknown random stream 'samplr'"):
        rng_for(0, "samplr")
