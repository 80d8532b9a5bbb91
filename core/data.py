"""Data sets, train/validation splits and reproducible minibatches.

Built-in tasks (samples are rows):

* ``teacher``: the question's setting. X (N, 5) ~ N(0, 1); targets T (N, 3) are the outputs of a
  fixed random 5-16-3 tanh "teacher" network plus Gaussian noise.
* ``waves``: 2 inputs on [-2, 2]^2, 3 smooth outputs (easy to picture), plus noise.
* ``blobs``: 2 inputs, 3 Gaussian classes, one-hot targets (for cross-entropy).
* ``csv``: chosen input and target columns of a CSV file with a header row
  (``core.csv_data`` reads it). By default (``csv_scale="standard"``) its inputs and its
  regression targets are standardised with the training split's mean and standard deviation,
  so a target in the hundreds trains at the default rate; ``Dataset.scale_note`` says so.

All randomness comes from ``np.random.default_rng(seed)`` passed in; never the global RNG.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .config import Config, ConfigError
from .csv_data import CsvTable, load_table, read_table

__all__ = [
    "DATA_SOURCES",
    "DataSource",
    "Dataset",
    "DeclaredShape",
    "MinibatchSampler",
    "declared_shape",
    "make_dataset",
    "load_csv",
    "scale_caption",
    "split_sizes",
    "standardise",
]


@dataclass(frozen=True)
class Dataset:
    """A split data set.

    X_train : (N, n_in), T_train : (N, n_out), X_val : (V, n_in), T_val : (V, n_out) float64
    weights_train : (N,) per-sample weights used by the ``weighted`` reduction
    x_shift, x_scale : (n_in,) and t_shift, t_scale : (n_out,) float64: the arrays hold
        ``(raw - shift) / scale`` (zeros and ones when unscaled)
    scale_note : how the values are scaled, e.g. "standardised on the training split"
    task_note : for a CSV, the task and why (guessed or chosen)
    """

    name: str
    X_train: np.ndarray
    T_train: np.ndarray
    X_val: np.ndarray
    T_val: np.ndarray
    weights_train: np.ndarray
    task: str = "regression"
    input_names: tuple[str, ...] = ()
    target_names: tuple[str, ...] = ()
    x_shift: np.ndarray | None = None
    x_scale: np.ndarray | None = None
    t_shift: np.ndarray | None = None
    t_scale: np.ndarray | None = None
    scale_note: str = ""
    task_note: str = ""

    @property
    def scaled(self) -> bool:
        """True when inputs or targets are standardised (not the raw values)."""
        return bool(self.scale_note) and self.scale_note != "raw values"

    @property
    def n_in(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_out(self) -> int:
        return self.T_train.shape[1]

    @property
    def n_train(self) -> int:
        return self.X_train.shape[0]


class MinibatchSampler:
    """Epoch-aware minibatches: each epoch is a fresh permutation of the training set.

    A batch never straddles two epochs: when fewer than B samples are left, a new epoch starts.
    Changing B between calls is allowed and continues in the current permutation.
    """

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n = n
        self.rng = rng
        self.epoch = 0
        self.samples_seen = 0
        self._perm = rng.permutation(n)
        self._pos = 0

    def next(self, batch_size: int) -> np.ndarray:
        """Indices (B,) of the next minibatch.

        batch_size : 1 <= B <= n, as ``Config.validate`` (the one check of the settings)
            guarantees; the sampler does not check it again (the assert guards against a
            programming error, not a user's entry).
        """
        assert 1 <= batch_size <= self.n, (batch_size, self.n)
        if self._pos + batch_size > self.n:
            self.epoch += 1
            self._perm = self.rng.permutation(self.n)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + batch_size]
        self._pos += batch_size
        self.samples_seen += batch_size
        return idx


def split_sizes(n: int, val_fraction: float) -> tuple[int, int]:
    """(training, validation) sample counts of ``n`` samples split at ``val_fraction``."""
    n_val = int(round(n * val_fraction))
    return n - n_val, n_val


def _split(X, T, val_fraction: float, rng: np.random.Generator):
    n_val = split_sizes(X.shape[0], val_fraction)[1]
    perm = rng.permutation(X.shape[0])
    v, t = perm[:n_val], perm[n_val:]
    return X[t], T[t], X[v], T[v]


def _teacher(n: int, noise: float, rng: np.random.Generator):
    X = rng.normal(size=(n, 5))
    W1 = rng.normal(0, 1 / np.sqrt(5), size=(16, 5)) * 1.5
    b1 = rng.normal(0, 0.3, size=16)
    W2 = rng.normal(0, 1 / np.sqrt(16), size=(3, 16)) * 1.5
    T = np.tanh(X @ W1.T + b1) @ W2.T
    T += noise * rng.normal(size=T.shape)
    return X, T


def _waves(n: int, noise: float, rng: np.random.Generator):
    X = rng.uniform(-2.0, 2.0, size=(n, 2))
    x, y = X[:, 0], X[:, 1]
    T = np.stack([np.sin(1.5 * x) * np.cos(y), 0.5 * x * y, np.exp(-(x * x + y * y))], axis=1)
    T += noise * rng.normal(size=T.shape)
    return X, T


def _blobs(n: int, noise: float, rng: np.random.Generator):
    centres = np.array([[-1.2, -0.8], [1.2, -0.8], [0.0, 1.3]])
    labels = rng.integers(0, 3, size=n)
    X = centres[labels] + (0.55 + noise) * rng.normal(size=(n, 2))
    T = np.eye(3)[labels]
    return X, T


@dataclass(frozen=True)
class DataSource:
    """The declaration of a data set: its key, what the window shows, its input and output
    widths and task (None: known once a file is read), and its generator
    ``make(n, noise, rng) -> X (n, n_in), T (n, n_out)`` (None for a CSV file)."""

    name: str
    label: str
    about: str
    n_in: int | None
    n_out: int | None
    task: str | None
    make: Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]] | None
    output_names: tuple[str, ...] = ()


#: every data set, the one place their sizes and tasks are written (Config's ``dataset``
#: choices, its checks and ``make_dataset`` read it)
DATA_SOURCES: tuple[DataSource, ...] = (
    DataSource(
        "teacher",
        label="teacher net 5 → 3",
        about="A fixed random teacher network, 5 inputs → 3 outputs (the question)",
        n_in=5,
        n_out=3,
        task="regression",
        make=_teacher,
    ),
    DataSource(
        "waves",
        label="waves 2 → 3",
        about="Three smooth waves of 2 inputs: easy to picture",
        n_in=2,
        n_out=3,
        task="regression",
        make=_waves,
    ),
    DataSource(
        "blobs",
        label="blobs, 3 classes",
        about="Gaussian blobs of 2 inputs in 3 classes: for cross-entropy",
        n_in=2,
        n_out=3,
        task="classification",
        make=_blobs,
        output_names=("class 1", "class 2", "class 3"),
    ),
    DataSource(
        "csv",
        label="CSV file",
        about="Your own data from a CSV file (Dataset → Open CSV… or --csv PATH)",
        n_in=None,
        n_out=None,
        task=None,
        make=None,  # known once the file is read
    ),
)
_SOURCE = {d.name: d for d in DATA_SOURCES}


@dataclass(frozen=True)
class DeclaredShape:
    """What the declarations tell of the data a config names before any is made: training
    samples, input and output widths, task (None where only the file can tell)."""

    n_train: int | None
    n_in: int | None
    n_out: int | None
    task: str | None


def declared_shape(config: Config) -> DeclaredShape:
    """The data shape ``config`` implies by the declarations alone (a CSV: all None)."""
    d = _SOURCE.get(config.dataset)
    if d is None or d.make is None:
        return DeclaredShape(None, None, None, None)
    n_train = split_sizes(config.n_samples, config.val_fraction)[0]
    return DeclaredShape(n_train, d.n_in, d.n_out, d.task)


def load_csv(
    path: str, inputs: tuple[str, ...] = (), targets: tuple[str, ...] = (), task: str = "auto"
):
    """Read the named columns of a CSV file with a header row (see ``core.csv_data``).

    inputs, targets : column names; empty: every column but the last are inputs, the last is
    the target. Returns X (N, n_in), T (N, n_out) float64 (T one-hot for classification).
    Errors are ConfigError naming the field (csv_path, csv_inputs, csv_targets, csv_task)
    with the file's physical line number where there is one.
    """
    d = load_table(read_table(path), inputs, targets, task)
    return d.X, d.T


def standardise(
    train: np.ndarray, *others: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Mean 0, standard deviation 1 per column, with the statistics of ``train`` (N, K).

    Returns (shift (K,), scale (K,), [each array (M, K) as (a - shift) / scale]); a constant
    column keeps scale 1 (it is only shifted).
    """
    shift = train.mean(axis=0) if len(train) else np.zeros(train.shape[1])
    scale = train.std(axis=0) if len(train) else np.ones(train.shape[1])
    scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(shift)), scale, 1.0)
    return shift, scale, [(a - shift) / scale for a in (train, *others)]


def train_size_of(config: Config) -> int:
    """Training samples of the data ``config`` names; for a CSV, from its rows (read once per
    file version: the count is cached on the path, size and modification time)."""
    if config.dataset != "csv":
        return config.train_size()
    try:
        st = os.stat(config.csv_path)
    except OSError:
        raise ConfigError("csv_path", f"{config.csv_path}: no such file") from None
    n = _csv_rows(config.csv_path, st.st_size, st.st_mtime_ns)
    return split_sizes(n, config.val_fraction)[0]


@functools.lru_cache(maxsize=8)
def _csv_rows(path: str, size: int, mtime_ns: int) -> int:
    return len(read_table(path).rows)


def scale_caption(config: Config, task: str) -> str:
    """Which scale the losses on screen are on, in words for the views: "standardised
    targets" or "raw targets" for CSV regression; "" for the built-in data and for classes
    (one-hot targets are never scaled)."""
    if config.dataset != "csv" or task != "regression":
        return ""
    return "standardised targets" if config.csv_scale == "standard" else "raw targets"


def _no_scaling(n_in: int, n_out: int) -> list[np.ndarray]:
    """x_shift, x_scale, t_shift, t_scale of unscaled data."""
    return [np.zeros(n_in), np.ones(n_in), np.zeros(n_out), np.ones(n_out)]


def _scale_csv(config: Config, task: str, Xt, Tt, Xv, Tv):
    """A CSV's split arrays standardised as ``csv_scale`` asks (regression targets too);
    returns the four arrays, [x_shift, x_scale, t_shift, t_scale] and the scale note."""
    shifts = _no_scaling(Xt.shape[1], Tt.shape[1])
    if config.csv_scale != "standard":
        return (Xt, Tt, Xv, Tv), shifts, "raw values"
    shifts[0], shifts[1], (Xt, Xv) = standardise(Xt, Xv)
    if task != "regression":
        return (Xt, Tt, Xv, Tv), shifts, "inputs standardised on the training split"
    shifts[2], shifts[3], (Tt, Tv) = standardise(Tt, Tv)
    return (Xt, Tt, Xv, Tv), shifts, "inputs and targets standardised on the training split"


def make_dataset(
    config: Config, rng: np.random.Generator | None = None, table: CsvTable | None = None
) -> Dataset:
    """Build and split the data set that ``config`` names.

    rng : defaults to ``np.random.default_rng(config.seed)``.
    table : for a CSV, the file already read (``core.csv_data.read_table``), e.g. by a dialog
        that checks one choice of columns after another; None reads ``config.csv_path``.
    """
    rng = np.random.default_rng(config.seed) if rng is None else rng
    source = _SOURCE.get(config.dataset)
    if source is None:
        raise ConfigError("dataset", f"unknown dataset {config.dataset!r}")
    in_names: tuple[str, ...] = ()
    out_names, task, task_note = source.output_names, source.task, ""
    if source.make is not None:
        X, T = source.make(config.n_samples, config.noise, rng)
    else:
        d = load_table(
            read_table(config.csv_path) if table is None else table,
            config.csv_inputs,
            config.csv_targets,
            config.csv_task,
        )
        X, T, task, task_note = d.X, d.T, d.task, d.task_note
        in_names, out_names = d.input_names, d.target_names
    Xt, Tt, Xv, Tv = _split(X, T, config.val_fraction, rng)
    shifts, scale_note = _no_scaling(Xt.shape[1], Tt.shape[1]), ""
    if config.dataset == "csv":
        (Xt, Tt, Xv, Tv), shifts, scale_note = _scale_csv(config, task, Xt, Tt, Xv, Tv)
    if config.sample_weighting == "x1_positive_double":
        weights = np.where(Xt[:, 0] > 0, 2.0, 1.0)
    else:
        weights = np.ones(Xt.shape[0])
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (Xt, Tt, Xv, Tv, weights)]
    for a in (*arrays, *shifts):
        a.flags.writeable = False
    return Dataset(
        config.dataset,
        *arrays,
        task=task,
        input_names=in_names,
        target_names=out_names,
        x_shift=shifts[0],
        x_scale=shifts[1],
        t_shift=shifts[2],
        t_scale=shifts[3],
        scale_note=scale_note,
        task_note=task_note,
    )
