"""Data sets, splits, reproducible minibatches and CSV loading (``core.data``)."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import Config, ConfigError
from core.data import MinibatchSampler, load_csv, make_dataset


# --------------------------------------------------------------------------- datasets
@pytest.mark.parametrize(
    "name, n_in, n_out, task",
    [
        ("teacher", 5, 3, "regression"),
        ("waves", 2, 3, "regression"),
        ("blobs", 2, 3, "classification"),
    ],
)
def test_dataset_shapes_split_and_task(name, n_in, n_out, task):
    cfg = Config(dataset=name, n_samples=103, val_fraction=0.2)
    d = make_dataset(cfg)
    n_val = round(103 * 0.2)
    assert d.X_train.shape == (103 - n_val, n_in)
    assert d.T_train.shape == (103 - n_val, n_out)
    assert d.X_val.shape == (n_val, n_in)
    assert d.T_val.shape == (n_val, n_out)
    assert d.n_train == cfg.train_size() == 103 - n_val
    assert (d.n_in, d.n_out) == cfg.io_sizes() == (n_in, n_out)
    assert d.weights_train.shape == (d.n_train,)
    assert d.task == task
    for a in (d.X_train, d.T_train, d.X_val, d.T_val, d.weights_train):
        assert a.dtype == np.float64
        assert a.flags.c_contiguous
        assert not a.flags.writeable
        assert np.all(np.isfinite(a))
    # train and validation samples are disjoint rows of one draw
    rows_t = {r.tobytes() for r in d.X_train}
    assert not any(r.tobytes() in rows_t for r in d.X_val)


def test_blobs_targets_are_one_hot():
    d = make_dataset(Config(dataset="blobs", n_samples=200))
    for T in (d.T_train, d.T_val):
        assert set(np.unique(T)) == {0.0, 1.0}
        np.testing.assert_array_equal(T.sum(axis=1), 1.0)
    assert len(np.unique(d.T_train.argmax(axis=1))) == 3


@pytest.mark.parametrize("name", ["teacher", "waves", "blobs"])
def test_dataset_is_reproducible_from_the_seed(name):
    a = make_dataset(Config(dataset=name, n_samples=64, seed=5))
    b = make_dataset(Config(dataset=name, n_samples=64, seed=5))
    c = make_dataset(Config(dataset=name, n_samples=64, seed=6))
    for f in ("X_train", "T_train", "X_val", "T_val"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.X_train, c.X_train)


def test_dataset_does_not_use_the_global_rng():
    np.random.seed(0)
    a = make_dataset(Config(n_samples=64))
    np.random.seed(1)
    b = make_dataset(Config(n_samples=64))
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_noise_changes_only_the_targets():
    a = make_dataset(Config(n_samples=64, noise=0.0))
    b = make_dataset(Config(n_samples=64, noise=0.5))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    resid = b.T_train - a.T_train
    assert 0.3 < resid.std() < 0.7


def test_sample_weighting():
    d = make_dataset(Config(n_samples=200, sample_weighting="x1_positive_double"))
    np.testing.assert_array_equal(d.weights_train, np.where(d.X_train[:, 0] > 0, 2.0, 1.0))
    assert set(np.unique(d.weights_train)) == {1.0, 2.0}
    u = make_dataset(Config(n_samples=200))
    np.testing.assert_array_equal(u.weights_train, 1.0)


# ---------------------------------------------------------------------------- sampler
def test_every_sample_exactly_once_per_epoch():
    n, B = 12, 4
    s = MinibatchSampler(n, np.random.default_rng(0))
    for epoch in range(4):
        batches = [s.next(B) for _ in range(n // B)]
        assert s.epoch == epoch
        assert all(len(b) == B for b in batches)
        np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n))
    assert s.samples_seen == 4 * n
    s.next(B)
    assert s.epoch == 4


def test_epochs_are_fresh_permutations():
    s = MinibatchSampler(50, np.random.default_rng(1))
    e0 = s.next(50)
    e1 = s.next(50)
    np.testing.assert_array_equal(np.sort(e0), np.arange(50))
    np.testing.assert_array_equal(np.sort(e1), np.arange(50))
    assert not np.array_equal(e0, e1)
    assert not np.array_equal(e0, np.arange(50))


def test_a_batch_never_straddles_epochs():
    n, B = 10, 4  # two batches per epoch, two samples left over
    s = MinibatchSampler(n, np.random.default_rng(2))
    for epoch in range(3):
        a, b = s.next(B), s.next(B)
        assert s.epoch == epoch
        both = np.concatenate([a, b])
        assert len(np.unique(both)) == 2 * B  # no repeats within an epoch
        assert np.all((both >= 0) & (both < n))


def test_changing_batch_size_continues_the_permutation():
    n = 20
    s = MinibatchSampler(n, np.random.default_rng(3))
    parts = [s.next(3), s.next(5), s.next(8), s.next(4)]
    assert s.epoch == 0
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def test_sampler_is_reproducible():
    a = MinibatchSampler(30, np.random.default_rng(9))
    b = MinibatchSampler(30, np.random.default_rng(9))
    c = MinibatchSampler(30, np.random.default_rng(10))
    seq_a = [a.next(7) for _ in range(10)]
    seq_b = [b.next(7) for _ in range(10)]
    seq_c = [c.next(7) for _ in range(10)]
    for x, y in zip(seq_a, seq_b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(seq_a, seq_c))


@pytest.mark.parametrize("B", [0, -1, 11])
def test_sampler_refuses_bad_batch_size(B):
    # 1 <= B <= n is Config.validate's to refuse (the one check); for the sampler it is a
    # contract, guarded against programming errors only
    with pytest.raises(AssertionError):
        MinibatchSampler(10, np.random.default_rng(0)).next(B)


# -------------------------------------------------------------------------------- CSV
def write_csv(path, header, rows):
    lines = [",".join(header)] + [",".join(str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def numeric_rows(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).round(6)


def test_load_csv_success(tmp_path):
    rows = numeric_rows()
    path = write_csv(tmp_path / "d.csv", [" a", "b ", "c", "d"], rows)
    X, T = load_csv(path, ("c", "a"), ("d",))
    assert X.shape == (10, 2) and T.shape == (10, 1)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, rows[:, [2, 0]])
    np.testing.assert_array_equal(T, rows[:, [3]])


def test_load_csv_skips_blank_lines(tmp_path):
    rows = numeric_rows(9)
    path = tmp_path / "d.csv"
    text = "a,b,c,d\n" + "\n".join(",".join(map(str, r)) + "\n" for r in rows)
    path.write_text(text + ",,,\n\n")
    X, T = load_csv(str(path), ("a",), ("b",))
    assert X.shape == (9, 1)


def csv_error(path, inputs=("a", "b"), targets=("c",)) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_csv(str(path), inputs, targets)
    return info.value


def test_load_csv_missing_column(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["a", "b", "c", "d"], numeric_rows())
    err = csv_error(path, inputs=("a", "zz"))
    assert err.field == "csv_inputs" and "zz" in err.message
    err = csv_error(path, targets=("yy",))
    assert err.field == "csv_targets" and "yy" in err.message


def test_load_csv_default_columns(tmp_path):
    """No columns chosen: every column but the last are inputs, the last is the target."""
    rows = numeric_rows()
    path = write_csv(tmp_path / "d.csv", ["a", "b", "c", "d"], rows)
    X, T = load_csv(path)
    np.testing.assert_array_equal(X, rows[:, :3])
    np.testing.assert_array_equal(T, rows[:, [3]])
    X, T = load_csv(path, targets=("a",))  # a target named: the rest are inputs
    np.testing.assert_array_equal(X, rows[:, 1:])
    assert csv_error(path, inputs=("a",), targets=("a",)).field == "csv_targets"


@pytest.mark.parametrize(
    "bad, word",
    [("x1", "not a number"), ("", "empty"), ("nan", "not a finite"), ("inf", "not a finite")],
)
def test_load_csv_bad_cell(tmp_path, bad, word):
    rows = numeric_rows().astype(object)
    rows[4, 1] = bad
    path = write_csv(tmp_path / "d.csv", ["a", "b", "c", "d"], rows)
    err = csv_error(path)
    assert err.field == "csv_path"
    assert word in err.message
    assert "line 6:" in err.message  # header is line 1, the fifth data row is line 6
    assert "'b'" in err.message


def test_load_csv_short_row(tmp_path):
    path = tmp_path / "d.csv"
    rows = numeric_rows()
    text = "a,b,c,d\n" + "".join(",".join(map(str, r)) + "\n" for r in rows[:-1])
    path.write_text(text + "1.0\n")
    err = csv_error(path)
    assert err.field == "csv_path" and "line 11:" in err.message


def test_load_csv_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    err = csv_error(path)
    assert err.field == "csv_path" and "empty" in err.message


def test_load_csv_too_few_rows(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["a", "b", "c"], numeric_rows(3)[:, :3])
    assert csv_error(path).field == "csv_path"


def test_load_csv_missing_and_unreadable_file(tmp_path):
    err = csv_error(tmp_path / "nope.csv")
    assert err.field == "csv_path" and "nope.csv" in err.message
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"a,b,c\n\xff\xfe\x00\x01\n" * 10)
    assert csv_error(bad).field == "csv_path"


def test_csv_dataset_with_one_hot_targets_is_classification(tmp_path):
    rng = np.random.default_rng(4)
    n = 40
    X = rng.normal(size=(n, 2)).round(5)
    labels = np.arange(n) % 3
    T = np.eye(3)[labels].astype(int)
    path = write_csv(tmp_path / "cls.csv", ["x1", "x2", "k0", "k1", "k2"], np.hstack([X, T]))
    cfg = Config(
        dataset="csv",
        csv_path=path,
        csv_inputs=("x1", "x2"),
        csv_targets=("k0", "k1", "k2"),
        n_samples=n,
        batch_size=8,
        loss="cross_entropy",
    )
    d = make_dataset(cfg)
    assert d.task == "classification"
    assert (d.n_in, d.n_out) == (2, 3)
    assert d.n_train + len(d.X_val) == n
    assert d.input_names == ("x1", "x2") and d.target_names == ("k0", "k1", "k2")
    # The same file with a regression target is a regression task.
    cfg2 = cfg.replace(csv_targets=("x2",), csv_inputs=("x1",), loss="mse")
    assert make_dataset(cfg2).task == "regression"
    # A single 0/1 column is not one-hot classification.
    assert make_dataset(cfg2.replace(csv_targets=("k0",))).task == "regression"
