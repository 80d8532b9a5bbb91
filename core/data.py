"""Data sets, train/validation splits and reproducible minibatches.

Built-in tasks (samples are rows):

* ``teacher``: the question's setting. X (N, 5) ~ N(0, 1); targets T (N, 3) are the outputs of a
  fixed random 5-16-3 tanh "teacher" network plus Gaussian noise.
* ``waves``: 2 inputs on [-2, 2]^2, 3 smooth outputs (easy to picture), plus noise.
* ``blobs``: 2 inputs, 3 Gaussian classes, one-hot targets (for cross-entropy).
* ``csv``: chosen input and target columns of a CSV file with a header row.

All randomness comes from ``np.random.default_rng(seed)`` passed in; never the global RNG.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from .config import Config, ConfigError

__all__ = ["Dataset", "MinibatchSampler", "make_dataset", "load_csv"]


@dataclass(frozen=True)
class Dataset:
    """A split data set.

    X_train : (N, n_in), T_train : (N, n_out), X_val : (V, n_in), T_val : (V, n_out) float64
    weights_train : (N,) per-sample weights used by the ``weighted`` reduction
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
        """Indices (B,) of the next minibatch."""
        if not 1 <= batch_size <= self.n:
            raise ValueError(f"batch size must be in 1..{self.n}, got {batch_size}")
        if self._pos + batch_size > self.n:
            self.epoch += 1
            self._perm = self.rng.permutation(self.n)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + batch_size]
        self._pos += batch_size
        self.samples_seen += batch_size
        return idx


def _split(X, T, val_fraction: float, rng: np.random.Generator):
    n = X.shape[0]
    n_val = int(round(n * val_fraction))
    perm = rng.permutation(n)
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


def load_csv(path: str, inputs: tuple[str, ...], targets: tuple[str, ...]):
    """Read the named columns of a CSV file with a header row.

    Returns X (N, len(inputs)), T (N, len(targets)) float64. Errors are ConfigError naming the
    field (csv_path, csv_inputs, csv_targets) and, for bad cells, the row and column.
    """
    if not inputs:
        raise ConfigError("csv_inputs", "choose at least one input column")
    if not targets:
        raise ConfigError("csv_targets", "choose at least one target column")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise ConfigError("csv_path", f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("csv_path", f"{path}: cannot be read ({e})") from None
    except csv.Error as e:
        raise ConfigError("csv_path", f"{path}: not a valid CSV file ({e})") from None
    if not rows:
        raise ConfigError("csv_path", f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    cols = {}
    for field, names in (("csv_inputs", inputs), ("csv_targets", targets)):
        for name in names:
            if name not in header:
                raise ConfigError(
                    field,
                    f"column {name!r} is not in {os.path.basename(path)} "
                    f"(columns: {', '.join(header)})",
                )
            cols[name] = header.index(name)
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if len(body) < 8:
        raise ConfigError("csv_path", f"{path}: needs at least 8 data rows (has {len(body)})")
    data = np.empty((len(body), len(inputs) + len(targets)))
    for i, row in enumerate(body):
        for j, name in enumerate((*inputs, *targets)):
            c = cols[name]
            cell = row[c].strip() if c < len(row) else ""
            try:
                v = float(cell)
            except ValueError:
                raise ConfigError(
                    "csv_path", f"{path}: row {i + 2}, column {name!r}: {cell!r} is not a number"
                ) from None
            if not np.isfinite(v):
                raise ConfigError(
                    "csv_path", f"{path}: row {i + 2}, column {name!r}: {cell!r} is not finite"
                )
            data[i, j] = v
    return data[:, : len(inputs)], data[:, len(inputs) :]


def make_dataset(config: Config, rng: np.random.Generator | None = None) -> Dataset:
    """Build and split the data set that ``config`` names.

    rng : defaults to ``np.random.default_rng(config.seed)``.
    """
    rng = np.random.default_rng(config.seed) if rng is None else rng
    task = "regression"
    in_names: tuple[str, ...] = ()
    out_names: tuple[str, ...] = ()
    if config.dataset == "teacher":
        X, T = _teacher(config.n_samples, config.noise, rng)
    elif config.dataset == "waves":
        X, T = _waves(config.n_samples, config.noise, rng)
    elif config.dataset == "blobs":
        X, T = _blobs(config.n_samples, config.noise, rng)
        task = "classification"
        out_names = ("class 1", "class 2", "class 3")
    elif config.dataset == "csv":
        X, T = load_csv(config.csv_path, config.csv_inputs, config.csv_targets)
        in_names, out_names = config.csv_inputs, config.csv_targets
        if T.shape[1] > 1 and np.all((T == 0) | (T == 1)) and np.all(T.sum(axis=1) == 1):
            task = "classification"
    else:
        raise ConfigError("dataset", f"unknown dataset {config.dataset!r}")
    Xt, Tt, Xv, Tv = _split(X, T, config.val_fraction, rng)
    if config.sample_weighting == "x1_positive_double":
        weights = np.where(Xt[:, 0] > 0, 2.0, 1.0)
    else:
        weights = np.ones(Xt.shape[0])
    arrays = [np.ascontiguousarray(a) for a in (Xt, Tt, Xv, Tv, weights)]
    for a in arrays:
        a.flags.writeable = False
    return Dataset(config.dataset, *arrays, task=task, input_names=in_names, target_names=out_names)
