"""Every setting of a Batchscope run, validated in one place.

``Config`` is a frozen dataclass. ``Config.validate()`` raises ``ConfigError(field, message)``
naming the field and the reason; the command line, the JSON loader and the window's controls
all call it, so a bad value is refused the same way everywhere. A config file is plain JSON
holding any subset of the fields.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .activations import ACTIVATIONS
from .losses import REDUCTIONS, loss_names
from .optimizers import OPTIMIZERS

__all__ = [
    "Config",
    "ConfigError",
    "DATASETS",
    "PLANES",
    "SAMPLE_WEIGHTINGS",
    "CSV_TASKS",
    "CSV_SCALES",
    "parse_hidden",
    "MAX_WIDTH",
    "MAX_LAYERS",
    "MAX_PARAMS",
    "MEMORY_BUDGET",
]

DATASETS: tuple[str, ...] = ("teacher", "waves", "blobs", "csv")
PLANES: tuple[str, ...] = ("gradient", "random", "pca")
SAMPLE_WEIGHTINGS: tuple[str, ...] = ("uniform", "x1_positive_double")
#: a CSV's task: guessed from its target columns, or as chosen
CSV_TASKS: tuple[str, ...] = ("auto", "regression", "classification")
#: standard: inputs and regression targets shifted and scaled to mean 0, sd 1 on the
#: training split (raw targets in the hundreds then train at the default rate); none: raw
CSV_SCALES: tuple[str, ...] = ("standard", "none")

MAX_WIDTH = 4096  #: largest hidden layer
MAX_LAYERS = 16  #: most hidden layers
MAX_PARAMS = 20_000_000  #: most parameters (160 MB of float64 per copy)
MAX_SAMPLES = 1_000_000
MEMORY_BUDGET = 2 * 2**30  #: settings that would allocate more are refused up front
MAX_BATCH = 65_536


class ConfigError(ValueError):
    """A setting was refused. ``field`` names it; ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_hidden(text: str) -> tuple[int, ...]:
    """Parse hidden layer sizes typed as ``"32, 32"`` (commas or spaces; empty = no hidden layer).

    Raises ConfigError("hidden", ...) for anything that is not a list of positive integers
    within the caps.
    """
    if not isinstance(text, str):
        raise ConfigError("hidden", "expected text such as '32, 32'")
    parts = [p for p in text.replace(",", " ").split() if p]
    sizes = []
    for p in parts:
        try:
            n = int(p)
        except ValueError:
            raise ConfigError(
                "hidden", f"{p!r} is not a whole number; type sizes like '32, 32'"
            ) from None
        sizes.append(n)
    hidden = tuple(sizes)
    _check_hidden(hidden)
    return hidden


def _check_hidden(hidden: tuple[int, ...]) -> None:
    if len(hidden) > MAX_LAYERS:
        raise ConfigError("hidden", f"at most {MAX_LAYERS} hidden layers (got {len(hidden)})")
    for n in hidden:
        if isinstance(n, bool) or not isinstance(n, int):
            raise ConfigError("hidden", f"sizes must be whole numbers (got {n!r})")
        if n < 1:
            raise ConfigError("hidden", f"sizes must be at least 1 (got {n})")
        if n > MAX_WIDTH:
            raise ConfigError("hidden", f"a layer may have at most {MAX_WIDTH} units (got {n})")


def count_params(sizes: list[int] | tuple[int, ...]) -> int:
    """P for an MLP with these layer sizes (weights and biases)."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


@dataclass(frozen=True)
class Config:
    """All settings of a run. Sizes of the input and output layers come from the dataset."""

    hidden: tuple[int, ...] = (32, 32)
    activation: str = "tanh"
    dataset: str = "teacher"
    n_samples: int = 1280
    val_fraction: float = 0.2
    noise: float = 0.1
    csv_path: str = ""
    csv_inputs: tuple[str, ...] = ()
    csv_targets: tuple[str, ...] = ()
    csv_task: str = "auto"
    csv_scale: str = "standard"
    batch_size: int = 32
    lr: float = 0.05
    loss: str = "mse"
    reduction: str = "mean"
    output_weights: tuple[float, ...] = ()
    sample_weighting: str = "uniform"
    huber_delta: float = 1.0
    optimizer: str = "sgd"
    momentum: float = 0.9
    seed: int = 0
    plane: str = "gradient"
    surface_resolution: int = 41
    surface_samples: int = 256
    eval_every: int = 10

    # ---------------------------------------------------------------- validate
    def validate(
        self, train_size: int | None = None, n_in: int | None = None, n_out: int | None = None
    ) -> Config:
        """Raise ConfigError(field, reason) for the first bad setting; return self if all good.

        train_size, n_in, n_out : known once the data are loaded (CSV); for the built-in data
        sets they follow from the config itself.
        """
        _check_hidden(tuple(self.hidden))
        _choice("activation", self.activation, tuple(ACTIVATIONS))
        _choice("dataset", self.dataset, DATASETS)
        _choice("loss", self.loss, loss_names())
        _choice("reduction", self.reduction, REDUCTIONS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("plane", self.plane, PLANES)
        _choice("sample_weighting", self.sample_weighting, SAMPLE_WEIGHTINGS)
        _choice("csv_task", self.csv_task, CSV_TASKS)
        _choice("csv_scale", self.csv_scale, CSV_SCALES)
        _int_range("n_samples", self.n_samples, 8, MAX_SAMPLES)
        _float_range("val_fraction", self.val_fraction, 0.0, 0.9, low_open=False)
        _float_range("noise", self.noise, 0.0, 100.0, low_open=False)
        _float_range("lr", self.lr, 0.0, 1e6)
        _float_range("huber_delta", self.huber_delta, 0.0, 1e6)
        _float_range("momentum", self.momentum, 0.0, 0.9999, low_open=False)
        _int_range("seed", self.seed, 0, 2**32 - 1)
        _int_range("surface_resolution", self.surface_resolution, 5, 201)
        _int_range("surface_samples", self.surface_samples, 8, 100_000)
        _int_range("eval_every", self.eval_every, 1, 100_000)
        _int_range("batch_size", self.batch_size, 1, MAX_BATCH)
        if self.dataset == "csv" and not self.csv_path:
            raise ConfigError("csv_path", "the csv dataset needs a file (csv_path)")
        for w in self.output_weights:
            if (
                isinstance(w, bool)
                or not isinstance(w, (int, float))
                or not math.isfinite(w)
                or w < 0
            ):
                raise ConfigError("output_weights", f"weights must be finite and >= 0 (got {w!r})")
        if self.output_weights and sum(self.output_weights) <= 0:
            raise ConfigError("output_weights", "at least one weight must be positive")
        if train_size is None and self.dataset != "csv":
            train_size = self.train_size()
        if train_size is not None and self.batch_size > train_size:
            raise ConfigError(
                "batch_size",
                f"{self.batch_size} is larger than the training set ({train_size} samples)",
            )
        if n_in is None and self.dataset != "csv":
            n_in, n_out = self.io_sizes()
        if n_in is not None and n_out is not None:
            if self.output_weights and len(self.output_weights) != n_out:
                raise ConfigError(
                    "output_weights",
                    f"needs {n_out} weights, one per output (got {len(self.output_weights)})",
                )
            P = count_params([n_in, *self.hidden, n_out])
            if P > MAX_PARAMS:
                raise ConfigError(
                    "hidden",
                    f"{P:,} parameters is over the cap of {MAX_PARAMS:,}; use smaller layers",
                )
            need = self.memory_estimate(n_in, n_out)
            if need > MEMORY_BUDGET:
                field = "batch_size" if self._batch_memory(n_in, n_out) > need / 2 else "hidden"
                raise ConfigError(
                    field,
                    f"these settings would need about {need / 2**30:.1f} GiB of memory "
                    f"(the budget is {MEMORY_BUDGET / 2**30:.0f} GiB); use a smaller "
                    f"{'batch' if field == 'batch_size' else 'network'}",
                )
        return self

    def _batch_memory(self, n_in: int, n_out: int) -> int:
        """Bytes of one batch's forward/backward arrays (activations, deltas, derivatives)."""
        return 8 * self.batch_size * (n_in + 3 * (sum(self.hidden) + n_out))

    def memory_estimate(self, n_in: int, n_out: int) -> int:
        """A conservative estimate (bytes) of what a session with these settings allocates:
        weights and their copies (optimiser state, last good weights, gradients), the
        trajectory ring, the per-sample gradients (materialised only up to 50 MB), one batch's
        activations, the loss-surface buffers, and the data."""
        P = count_params([n_in, *self.hidden, n_out])
        widest = max([*self.hidden, n_out])
        weights = 8 * P * 8
        trajectory = max(min(96 * 2**20, 8 * P * 2000), 8 * P * 2)  # at least 2 rows
        per_sample = min(8 * self.batch_size * P, 50 * 2**20)
        surface = 4 * (3 * self.surface_samples * widest + 2 * 4 * 2**20 // 4)
        data = 8 * self.n_samples * (n_in + n_out)
        return weights + trajectory + per_sample + self._batch_memory(n_in, n_out) + surface + data

    def output_weight_vector(self, n_out: int) -> tuple[float, ...]:
        """Per-output weights of the ``weighted`` reduction: ``output_weights`` if set, else
        output 1 counts twice (the question's example)."""
        if self.output_weights:
            return tuple(float(w) for w in self.output_weights)
        return (2.0,) + (1.0,) * (n_out - 1)

    def train_size(self) -> int:
        """Number of training samples for the built-in data sets."""
        return self.n_samples - int(round(self.n_samples * self.val_fraction))

    def io_sizes(self) -> tuple[int, int]:
        """(n_in, n_out) of the built-in data sets; csv: from the chosen columns."""
        if self.dataset == "teacher":
            return 5, 3
        if self.dataset in ("waves", "blobs"):
            return 2, 3
        return len(self.csv_inputs), len(self.csv_targets)

    def layer_sizes(self, n_in: int | None = None, n_out: int | None = None) -> list[int]:
        if n_in is None:
            n_in, n_out = self.io_sizes()
        return [n_in, *self.hidden, n_out]

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (not validated: call ``validate``)."""
        return dataclasses.replace(self, **changes)

    # -------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> Config:
        """Build a Config from a dict (e.g. parsed JSON), checking names and types.

        Errors name the source and the field: ``ConfigError("settings.json: lr", "...")``.
        """
        if not isinstance(data, dict):
            raise ConfigError(
                source, f"must be a JSON object of settings, not {type(data).__name__}"
            )
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"{source}: {key}", "unknown setting")
            try:
                kwargs[key] = _coerce(key, value, _default_of(known[key]))
            except ConfigError as e:
                raise ConfigError(f"{source}: {e.field}", e.message) from None
        cfg = cls(**kwargs)
        try:
            cfg.validate()
        except ConfigError as e:
            raise ConfigError(f"{source}: {e.field}", e.message) from None
        return cfg

    @classmethod
    def load(cls, path: str | os.PathLike) -> Config:
        """Read a JSON config file; every problem is a ConfigError naming the file (and field)."""
        name = os.fspath(path)
        try:
            text = Path(path).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise ConfigError(name, "no such file") from None
        except IsADirectoryError:
            raise ConfigError(name, "is a folder, not a file") from None
        except UnicodeDecodeError:
            raise ConfigError(name, "is not a UTF-8 text file") from None
        except OSError as e:
            raise ConfigError(name, f"cannot be read ({e.strerror or e})") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise ConfigError(
                name, f"is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
            ) from None
        except ValueError as e:
            raise ConfigError(name, str(e)) from None
        except RecursionError:
            raise ConfigError(name, "is nested too deeply") from None
        return cls.from_dict(data, source=name)

    def save(self, path: str | os.PathLike) -> None:
        """Write as JSON through a temporary file and a rename: never a partial file."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    if path.is_dir():
        raise OSError(f"{path} is a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in a config file")


def _default_of(f: dataclasses.Field) -> Any:
    return f.default


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check a JSON value against the type of the field's default; return the field value."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {_jtype(value)}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected a whole number, got {_jtype(value)}")
        if isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                raise ConfigError(key, f"expected a whole number, got {value!r}")
            value = int(value)
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected a number, got {_jtype(value)}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(key, f"expected text, got {_jtype(value)}")
        return value
    if isinstance(default, tuple):
        if key == "hidden" and isinstance(value, str):
            return parse_hidden(value)
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {_jtype(value)}")
        if key in ("csv_inputs", "csv_targets"):
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(key, "expected a list of column names")
            return tuple(value)
        if key == "hidden":
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise ConfigError(key, "expected a list of whole numbers such as [32, 32]")
            return tuple(value)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(key, "expected a list of numbers")
        return tuple(float(v) for v in value)
    raise ConfigError(key, "unsupported setting")  # pragma: no cover


def _jtype(value: Any) -> str:
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(name, f"{value!r} is not one of {', '.join(options)}")


def _int_range(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"expected a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be between {lo} and {hi} (got {value})")


def _float_range(name: str, value: Any, lo: float, hi: float, low_open: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number (got {value})")
    if (value <= lo if low_open else value < lo) or value > hi:
        lo_txt = f"> {lo}" if low_open else f">= {lo}"
        raise ConfigError(name, f"must be {lo_txt} and <= {hi:g} (got {value})")
