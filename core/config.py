"""Every setting of a Batchscope run, declared once, and the one check of a whole run.

Each ``Config`` field carries its ``Setting`` (its kind, range or choices, default, label,
tooltip and command-line option) in the field's metadata; ``SETTINGS`` lists them in field
order. From these declarations come:

* ``Config.validate(data)``: the one check of a whole configuration (raises
  ``ConfigError(field, message)``); it knows the data set's size and task, from the data set
  declarations in ``core.data`` or from the loaded data;
* ``Setting.check`` / ``Setting.parse``: the check of one value, as the window's controls
  run it while a value is typed (``gui.controls`` builds its widgets from ``SETTINGS``);
* the command line's options and ``--help`` (``main.build_parser``);
* the config file's keys (``Config.from_dict`` / ``load``): plain JSON, any subset.

Adding a field with ``setting(...)`` adds its widget, its option and its key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "Choice",
    "Config",
    "ConfigError",
    "DataShape",
    "MAX_BATCH",
    "MAX_LAYERS",
    "MAX_PARAMS",
    "MAX_WIDTH",
    "MEMORY_BUDGET",
    "SETTING",
    "SETTINGS",
    "Setting",
    "count_params",
    "parse_hidden",
    "write_text_atomic",
]

MAX_WIDTH = 4096  #: largest hidden layer
MAX_LAYERS = 16  #: most hidden layers
MAX_PARAMS = 20_000_000  #: most parameters (160 MB of float64 per copy)
MAX_SAMPLES = 1_000_000
MEMORY_BUDGET = 2 * 2**30  #: settings that would allocate more are refused up front
MAX_BATCH = 65_536

#: the control panel's groups (``Setting.group``); CSV settings are edited in the CSV dialog
NETWORK, DATA, OPTIMISATION, VIEW, MORE, CSV = (
    "Network",
    "Data",
    "Optimisation",
    "View",
    "More settings",
    "CSV",
)


class ConfigError(ValueError):
    """A setting was refused. ``field`` names it; ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DataShape(Protocol):
    """What the check needs to know of a data set (``core.data.Dataset`` and a Snapshot's
    fields are enough): its training-set size, input and output widths and task."""

    n_train: int
    n_in: int
    n_out: int
    task: str


@dataclass(frozen=True)
class Choice:
    """One choice of a setting: its key (in Config, files and options), what the window's
    list shows, and the longer explanation (the item's tooltip)."""

    key: str
    label: str = ""
    about: str = ""


@dataclass(frozen=True)
class Setting:
    """The declaration of one setting.

    kind : "int", "float", "choice", "text", "sizes" (hidden layers), "names" (CSV columns)
        or "numbers" (a list of weights)
    lo, hi : the range of an int or float (``low_open``: lo itself is refused)
    choices : the choices of a "choice", or a function returning them (read when needed, so
        a loss registered later is offered)
    label : the control panel's label (``&`` marks the keyboard shortcut)
    tooltip : what the control's tooltip says; help : the ``--help`` line (tooltip if empty)
    option, metavar : the command-line option (derived from the name if empty)
    control : the widget's objectName; its error label is the same name ending in "Error"
    group : the control panel's group (CSV settings: the CSV dialog)
    log : a positive float whose arrows step on a log scale
    """

    kind: str
    label: str
    tooltip: str
    lo: float | None = None
    hi: float | None = None
    low_open: bool = False
    choices: tuple[Choice, ...] | Callable[[], tuple[Choice, ...]] = ()
    help: str = ""
    option: str = ""
    metavar: str = ""
    control: str = ""
    group: str = MORE
    log: bool = False
    name: str = ""
    default: Any = None

    # ------------------------------------------------------------- derived
    @property
    def cli_option(self) -> str:
        return self.option or "--" + self.name.replace("_", "-")

    @property
    def error_label(self) -> str:
        """objectName of the label under the control that shows a refusal."""
        for suffix in ("Spin", "Edit", "Combo", "List"):
            if self.control.endswith(suffix):
                return self.control[: -len(suffix)] + "Error"
        return self.control + "Error"

    def options(self) -> tuple[Choice, ...]:
        """The choices now (a registry is read at each call)."""
        return self.choices() if callable(self.choices) else self.choices

    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.options())

    def help_text(self) -> str:
        text = self.help or self.tooltip.split(". ")[0].rstrip(".")
        if not text[1:2].isupper():  # "Activation of ..." -> "activation of ..."; not "CSV"
            text = text[0].lower() + text[1:]
        if self.kind == "choice":
            text += f": one of {', '.join(self.keys())}"
        default = _show(self.default)
        return f"{text} (default {default})" if default else text

    # --------------------------------------------------------------- checks
    def check(self, value: Any) -> Any:
        """Raise ConfigError(name, reason) unless ``value`` is of the declared kind and in the
        declared range or choices; return it. Knows nothing of the data (``Config.validate``
        does)."""
        _CHECKS[self.kind](self, value)
        return value

    def parse(self, text: str) -> Any:
        """The value typed as ``text`` (a command-line option, a text field), checked."""
        return self.check(_PARSERS[self.kind](self, text))

    def from_json(self, value: Any) -> Any:
        """A config file's JSON value as the field's value (types only; ``validate`` checks
        ranges)."""
        return _FROM_JSON[self.kind](self, value)


def setting(default: Any, kind: str, label: str, tooltip: str, **declared: Any) -> Any:
    """A Config field declared with its ``Setting`` (see there for the keywords)."""
    return field(default=default, metadata={"setting": Setting(kind, label, tooltip, **declared)})


# ---------------------------------------------------------------- choices read when needed
def _activation_choices() -> tuple[Choice, ...]:
    from .activations import ACTIVATIONS

    return tuple(Choice(a, a) for a in ACTIVATIONS)


def _dataset_choices() -> tuple[Choice, ...]:
    from .data import DATA_SOURCES

    return tuple(Choice(d.name, d.label, d.about) for d in DATA_SOURCES)


def _loss_choices() -> tuple[Choice, ...]:
    from .losses import loss_choices  # the registry, read at each call

    return tuple(Choice(k, label, about) for k, (label, about) in loss_choices().items())


def _reduction_choices() -> tuple[Choice, ...]:
    from .losses import REDUCTION_LABELS, REDUCTIONS

    return tuple(Choice(r, r, REDUCTION_LABELS.get(r, "")) for r in REDUCTIONS)


def _optimizer_choices() -> tuple[Choice, ...]:
    from .optimizers import OPTIMIZERS

    return tuple(Choice(k, *OPTIMIZER_LABELS.get(k, (k, ""))) for k in OPTIMIZERS)


OPTIMIZER_LABELS = {
    "sgd": ("SGD", "Plain gradient step: w ← w − lr · g"),
    "momentum": ("momentum", "Heavy-ball momentum (μ: the momentum setting, 0.9 by default)"),
    "nesterov": ("Nesterov", "Nesterov momentum (μ: the momentum setting, 0.9 by default)"),
    "adam": ("Adam", "Adam (β1 = 0.9, β2 = 0.999)"),
}
PLANES = (
    Choice("gradient", "gradient × spread", "d1 = the mean gradient, d2 = the main disagreement"),
    Choice("random", "random", "Two random filter-normalised directions (Li et al. 2018)"),
    Choice("pca", "PCA of the path", "The two main directions of the recent trajectory"),
)
SAMPLE_WEIGHTINGS = (
    Choice("uniform", "uniform", "Every sample counts the same"),
    Choice("x1_positive_double", "x1 > 0 counts 2×", "Samples whose first input is > 0 count 2×"),
)
#: a CSV's task: guessed from its target columns, or as chosen
CSV_TASKS = (
    Choice("auto", "guess from the targets", "Classes if the targets look like classes"),
    Choice("regression", "regression (numbers)", "Any real-valued targets"),
    Choice("classification", "classification (class labels)", "One-hot rows or labels"),
)
#: standard: inputs and regression targets shifted and scaled to mean 0, sd 1 on the
#: training split (raw targets in the hundreds then train at the default rate); none: raw
CSV_SCALES = (
    Choice("standard", "standardise (mean 0, sd 1 on the training split)", "Inputs and targets"),
    Choice("none", "raw values", "The values as they are in the file"),
)


@dataclass(frozen=True)
class Config:
    """All settings of a run. Sizes of the input and output layers come from the data set."""

    hidden: tuple[int, ...] = setting(
        (32, 32), "sizes", "&Hidden layers",
        "Hidden layer sizes, comma separated (e.g. '32, 32'; empty = no hidden layer). "
        "Press Enter to apply: a new shape builds a new network (the history is kept).",
        help="hidden layer sizes, e.g. 32,32", metavar="SIZES", control="hiddenLayersEdit",
        group=NETWORK,
    )  # fmt: skip
    activation: str = setting(
        "tanh", "choice", "&Activation",
        "Activation of the hidden layers (the output layer is linear). Keeps the weights.",
        choices=_activation_choices, metavar="NAME", control="activationCombo", group=NETWORK,
    )  # fmt: skip
    dataset: str = setting(
        "teacher", "choice", "Data&set",
        "The task. teacher: the question's 5 inputs → 3 outputs; blobs is for cross-entropy.",
        help="the data set", choices=_dataset_choices, metavar="NAME", control="datasetCombo",
        group=DATA,
    )  # fmt: skip
    n_samples: int = setting(
        1280, "int", "Sample &count", "Samples in the built-in data set (training and validation).",
        lo=8, hi=MAX_SAMPLES, metavar="N", control="samplesSpin",
    )  # fmt: skip
    val_fraction: float = setting(
        0.2, "float", "Validat&ion share", "Share of the samples held out for validation.",
        lo=0.0, hi=0.9, metavar="F", control="validationFractionSpin",
    )  # fmt: skip
    noise: float = setting(
        0.1, "float", "&Target noise", "Standard deviation of the noise on the built-in targets.",
        lo=0.0, hi=100.0, metavar="SD", control="noiseSpin",
    )  # fmt: skip
    csv_path: str = setting(
        "", "text", "&File", "train on your own data: a CSV file with a header row",
        option="--csv", metavar="PATH", control="csvPathEdit", group=CSV,
    )  # fmt: skip
    csv_inputs: tuple[str, ...] = setting(
        (), "names", "&Inputs", "CSV input columns (default: every column but the targets)",
        option="--inputs", metavar="A,B,C", control="csvInputsList", group=CSV,
    )  # fmt: skip
    csv_targets: tuple[str, ...] = setting(
        (), "names", "&Targets", "CSV target columns (default: the last column)",
        option="--targets", metavar="Y1,Y2", control="csvTargetsList", group=CSV,
    )  # fmt: skip
    csv_task: str = setting(
        "auto", "choice", "Ta&sk",
        "Regression fits numbers; classification one label column (text or whole numbers, "
        "one output per class) or several one-hot columns",
        help="CSV task (auto: guessed from the targets, and said)", choices=CSV_TASKS,
        option="--task", metavar="NAME", control="csvTaskCombo", group=CSV,
    )  # fmt: skip
    csv_scale: str = setting(
        "standard", "choice", "S&cale",
        "Standardised inputs and regression targets train at the default learning rate "
        "whatever their units; raw targets in the hundreds diverge within a few steps",
        help="CSV values (standard: inputs and regression targets to mean 0, sd 1 on the "
        "training split)", choices=CSV_SCALES, option="--scale", metavar="NAME",
        control="csvScaleCombo", group=CSV,
    )  # fmt: skip
    batch_size: int = setting(
        32, "int", "&Batch size B",
        "Minibatch size B: the number of per-sample gradients averaged into one step. "
        "Applies from the next step; the spread of the mean shrinks like 1/√B.",
        help="minibatch size", lo=1, hi=MAX_BATCH, metavar="B", control="batchSizeSpin",
        group=DATA,
    )  # fmt: skip
    lr: float = setting(
        0.05, "float", "&Learning rate",
        "Learning rate (> 0). The arrows step on a log scale (×1.78); type any value. "
        "Keeps the weights.",
        help="learning rate", lo=0.0, hi=1e6, low_open=True, log=True, metavar="RATE",
        control="learningRateSpin", group=OPTIMISATION,
    )  # fmt: skip
    loss: str = setting(
        "mse", "choice", "L&oss", "Elementwise loss: fills the matrix M (outputs × batch).",
        help="the elementwise loss", choices=_loss_choices, metavar="NAME", control="lossCombo",
        group=OPTIMISATION,
    )  # fmt: skip
    reduction: str = setting(
        "mean", "choice", "&Reduction",
        "How M becomes the one scalar that is minimised. Changing it changes the surface.",
        help="how M becomes the scalar", choices=_reduction_choices, metavar="NAME",
        control="reductionCombo", group=OPTIMISATION,
    )  # fmt: skip
    output_weights: tuple[float, ...] = setting(
        (), "numbers", "Output &weights",
        "Per-output weights of the weighted reduction, e.g. '2, 1, 1' (empty: output 1 "
        "counts twice).",
        help="per-output weights of the weighted reduction, e.g. 2,1,1 (default: output 1 "
        "counts twice)", metavar="W1,W2", control="outputWeightsEdit",
    )  # fmt: skip
    sample_weighting: str = setting(
        "uniform", "choice", "Sample wei&ghts", "Per-sample weights of the weighted reduction.",
        choices=SAMPLE_WEIGHTINGS, metavar="NAME", control="sampleWeightingCombo",
    )  # fmt: skip
    huber_delta: float = setting(
        1.0, "float", "H&uber δ", "Where the Huber loss turns from squared to absolute.",
        lo=0.0, hi=1e6, low_open=True, log=True, metavar="DELTA", control="huberDeltaSpin",
    )  # fmt: skip
    optimizer: str = setting(
        "sgd", "choice", "O&ptimiser", "Update rule on the flat parameter vector.",
        choices=_optimizer_choices, metavar="NAME", control="optimizerCombo", group=OPTIMISATION,
    )  # fmt: skip
    momentum: float = setting(
        0.9, "float", "&Momentum μ", "Momentum of the momentum and Nesterov optimisers.",
        lo=0.0, hi=0.9999, metavar="MU", control="momentumSpin",
    )  # fmt: skip
    seed: int = setting(
        0, "int", "S&eed",
        "Random seed for the data, the initial weights and the batch order. A new seed "
        "starts new weights.",
        help="random seed", lo=0, hi=2**31 - 1, metavar="N", control="seedSpin", group=DATA,
    )  # fmt: skip
    plane: str = setting(
        "gradient", "choice", "Pla&ne",
        "The plane through the weights on which the loss surface is drawn.",
        help="loss-surface plane", choices=PLANES, metavar="NAME", control="planeCombo",
        group=VIEW,
    )  # fmt: skip
    surface_resolution: int = setting(
        41, "int", "Surface grid si&ze", "Points per side of the loss-surface grid.",
        lo=5, hi=201, metavar="N", control="surfaceResolutionSpin",
    )  # fmt: skip
    surface_samples: int = setting(
        256, "int", "Surface samples (&k)", "Training samples the loss surface is computed on.",
        lo=8, hi=100_000, metavar="N", control="surfaceSamplesSpin",
    )  # fmt: skip
    eval_every: int = setting(
        10, "int", "Evaluate every (&j)", "Steps between two train/validation loss evaluations.",
        lo=1, hi=100_000, metavar="STEPS", control="evalEverySpin",
    )  # fmt: skip

    # ---------------------------------------------------------------- validate
    def validate(
        self,
        data: DataShape | None = None,
        *,
        train_size: int | None = None,
        n_in: int | None = None,
        n_out: int | None = None,
        task: str | None = None,
        changed: Collection[str] = (),
    ) -> Config:
        """The one check of a whole run: raise ConfigError(field, reason) for the first bad
        setting; return self if all are good.

        data : the loaded data (anything with n_train, n_in, n_out, task); None: the built-in
            data set's declaration (``core.data.DATA_SOURCES``); a CSV's size and task are
            only known once loaded, so without ``data`` its data-dependent checks are left out.
        train_size, n_in, n_out, task : the same given one by one (they override ``data``).
        changed : the settings just changed: a conflict between two is blamed on the one
            changed (a regression data set chosen under a classification loss: "dataset").
        """
        for s in SETTINGS:
            s.check(getattr(self, s.name))
        if self.dataset == "csv" and not self.csv_path:
            raise ConfigError("csv_path", "the csv dataset needs a file (csv_path)")
        from .data import declared_shape

        known = _shape_of(data, declared_shape(self))
        given = (train_size, n_in, n_out, task)
        self._check_against(_Shape(*(k if g is None else g for g, k in zip(given, known))), changed)
        return self

    def _check_against(self, d: _Shape, changed: Collection[str]) -> None:
        """The checks that need the data: batch vs training set, task, sizes, memory."""
        if d.n_train is not None and self.batch_size > d.n_train:
            _batch_over(self.batch_size, d.n_train, changed)
        if d.task is not None:
            _check_task(self.loss, d.task, "dataset" if "dataset" in changed else "loss")
        if d.n_in is None or d.n_out is None:
            return
        if self.output_weights and len(self.output_weights) != d.n_out:
            raise ConfigError(
                "output_weights",
                f"needs {d.n_out} weights, one per output (got {len(self.output_weights)})",
            )
        P = count_params([d.n_in, *self.hidden, d.n_out])
        if P > MAX_PARAMS:
            raise ConfigError(
                "hidden", f"{P:,} parameters is over the cap of {MAX_PARAMS:,}; use smaller layers"
            )
        need = self.memory_estimate(d.n_in, d.n_out)
        if need > MEMORY_BUDGET:
            field_ = "batch_size" if self._batch_memory(d.n_in, d.n_out) > need / 2 else "hidden"
            raise ConfigError(
                field_,
                f"these settings would need about {need / 2**30:.1f} GiB of memory "
                f"(the budget is {MEMORY_BUDGET / 2**30:.0f} GiB); use a smaller "
                f"{'batch' if field_ == 'batch_size' else 'network'}",
            )

    def changed(self, changes: dict[str, Any]) -> Config:
        """A copy with ``changes`` (Config field names) made, not yet checked (``validate``);
        ConfigError for a name that is no setting."""
        for k in changes:
            if k not in SETTING:
                raise ConfigError(k, "unknown setting")
        if "hidden" in changes:
            changes = {**changes, "hidden": tuple(changes["hidden"])}
        return dataclasses.replace(self, **changes)

    def _batch_memory(self, n_in: int, n_out: int) -> int:
        """Bytes of one batch's forward/backward arrays (activations, deltas, derivatives)."""
        return 8 * self.batch_size * (n_in + 3 * (sum(self.hidden) + n_out))

    def memory_estimate(self, n_in: int, n_out: int) -> int:
        """A conservative estimate (bytes) of what a session with these settings allocates:
        weights and their copies (optimiser state, last good weights, gradients), the
        trajectory ring, the per-sample gradients (materialised only up to 50 MB), one batch's
        activations, the loss-surface buffers, and the data."""
        from .gradstats import MATERIALISE_LIMIT_BYTES  # the caps where they apply
        from .landscape import TRAJECTORY_BYTES, TRAJECTORY_MAX

        P = count_params([n_in, *self.hidden, n_out])
        widest = max([*self.hidden, n_out])
        weights = 8 * P * 8
        trajectory = max(min(TRAJECTORY_BYTES, 8 * P * TRAJECTORY_MAX), 8 * P * 2)  # >= 2 rows
        per_sample = min(8 * self.batch_size * P, MATERIALISE_LIMIT_BYTES)
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
        """Number of training samples for the built-in data sets (``core.data.split_sizes``)."""
        from .data import split_sizes

        return split_sizes(self.n_samples, self.val_fraction)[0]

    def io_sizes(self) -> tuple[int, int]:
        """(n_in, n_out): the built-in data set's declaration; csv: the chosen columns."""
        from .data import declared_shape

        shape = declared_shape(self)
        if shape.n_in is None:
            return len(self.csv_inputs), len(self.csv_targets)
        return shape.n_in, shape.n_out

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
        kwargs: dict[str, Any] = {}
        try:
            for key, value in data.items():
                if key not in SETTING:
                    raise ConfigError(key, "unknown setting")
                kwargs[key] = SETTING[key].from_json(value)
            return cls(**kwargs).validate()
        except ConfigError as e:
            raise ConfigError(f"{source}: {e.field}", e.message) from None

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


#: every setting, in the order of Config's fields
SETTINGS: tuple[Setting, ...] = tuple(
    dataclasses.replace(f.metadata["setting"], name=f.name, default=f.default)
    for f in fields(Config)
)
SETTING: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class _Shape:
    n_train: int | None
    n_in: int | None
    n_out: int | None
    task: str | None


def _shape_of(data: Any, declared: Any) -> tuple:
    src = declared if data is None else data
    return (src.n_train, src.n_in, src.n_out, src.task)


#: settings that change the training set's size
_SIZE_FIELDS = ("n_samples", "val_fraction", "dataset", "csv_path")


def _batch_over(batch_size: int, n_train: int, changed: Collection[str]) -> None:
    """Refuse a batch larger than the training set, blaming the setting just changed."""
    blamed = [k for k in _SIZE_FIELDS if k in changed]
    if "batch_size" in changed or not blamed:
        raise ConfigError(
            "batch_size", f"{batch_size} is larger than the training set ({n_train} samples)"
        )
    raise ConfigError(
        blamed[0],
        f"the training set would hold {n_train} samples, fewer than the batch size "
        f"{batch_size}; lower the batch size first",
    )


def _check_task(loss: str, task: str, field_: str) -> None:
    """A classification loss needs class targets (one-hot rows)."""
    from .losses import get_loss

    if get_loss(loss).task == "classification" and task != "classification":
        label = get_loss(loss).label or loss
        raise ConfigError(
            field_,
            f"{label} needs class targets: use the blobs data set (or a CSV with "
            "class targets), or a regression loss",
        )


def parse_hidden(text: str) -> tuple[int, ...]:
    """Parse hidden layer sizes typed as ``"32, 32"`` (commas or spaces; empty = no hidden layer).

    Raises ConfigError("hidden", ...) for anything that is not a list of positive integers
    within the caps.
    """
    if not isinstance(text, str):
        raise ConfigError("hidden", "expected text such as '32, 32'")
    sizes = []
    for p in text.replace(",", " ").split():
        try:
            sizes.append(int(p))
        except ValueError:
            raise ConfigError(
                "hidden", f"{p!r} is not a whole number; type sizes like '32, 32'"
            ) from None
    hidden = tuple(sizes)
    _check_hidden(hidden)
    return hidden


def _check_hidden(hidden: Any) -> None:
    if not isinstance(hidden, tuple):
        raise ConfigError("hidden", f"expected a list of sizes, got {hidden!r}")
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


# ------------------------------------------------------------- one value, by kind
def _check_int(s: Setting, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(s.name, f"expected a whole number, got {value!r}")
    if not s.lo <= value <= s.hi:
        raise ConfigError(s.name, f"must be between {s.lo} and {s.hi} (got {value})")


def _check_float(s: Setting, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(s.name, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(s.name, f"must be a finite number (got {value})")
    if (value <= s.lo if s.low_open else value < s.lo) or value > s.hi:
        lo_txt = f"> {s.lo}" if s.low_open else f">= {s.lo}"
        raise ConfigError(s.name, f"must be {lo_txt} and <= {s.hi:g} (got {value})")


def _check_choice(s: Setting, value: Any) -> None:
    keys = s.keys()
    if value not in keys:
        raise ConfigError(s.name, f"{value!r} is not one of {', '.join(keys)}")


def _check_text(s: Setting, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(s.name, f"expected text, got {value!r}")


def _check_names(s: Setting, value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(s.name, "expected a list of column names")


def _check_numbers(s: Setting, value: Any) -> None:
    if not isinstance(value, tuple):
        raise ConfigError(s.name, f"expected a list of numbers, got {value!r}")
    for w in value:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ConfigError(s.name, f"weights must be finite and >= 0 (got {w!r})")
    if value and sum(value) <= 0:
        raise ConfigError(s.name, "at least one weight must be positive")


_CHECKS: dict[str, Callable[[Setting, Any], None]] = {
    "int": _check_int,
    "float": _check_float,
    "choice": _check_choice,
    "text": _check_text,
    "sizes": lambda s, v: _check_hidden(v),
    "names": _check_names,
    "numbers": _check_numbers,
}


def _parse_int(s: Setting, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ConfigError(s.name, f"{text!r} is not a whole number") from None


def _parse_float(s: Setting, text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ConfigError(s.name, f"{text!r} is not a number") from None


def _parse_names(s: Setting, text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    if not text.strip() or not all(names):
        raise ConfigError(s.name, f"{text!r}: give column names separated by commas, e.g. a,b,c")
    return names


def _parse_numbers(s: Setting, text: str) -> tuple[float, ...]:
    out = []
    for p in text.replace(",", " ").split():
        try:
            out.append(float(p))
        except ValueError:
            raise ConfigError(
                s.name, f"{p!r} is not a number; type weights like '2, 1, 1'"
            ) from None
    return tuple(out)


_PARSERS: dict[str, Callable[[Setting, str], Any]] = {
    "int": _parse_int,
    "float": _parse_float,
    "choice": lambda s, text: text.strip(),
    "text": lambda s, text: text,
    "sizes": lambda s, text: parse_hidden(text),
    "names": _parse_names,
    "numbers": _parse_numbers,
}


def _json_int(s: Setting, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(s.name, f"expected a whole number, got {_jtype(value)}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ConfigError(s.name, f"expected a whole number, got {value!r}")
        value = int(value)
    return value


def _json_float(s: Setting, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(s.name, f"expected a number, got {_jtype(value)}")
    return float(value)


def _json_text(s: Setting, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(s.name, f"expected text, got {_jtype(value)}")
    return value


def _json_list(s: Setting, value: Any, ok: Callable[[Any], bool], what: str) -> tuple:
    if not isinstance(value, list):
        raise ConfigError(s.name, f"expected a list, got {_jtype(value)}")
    if not all(ok(v) for v in value):
        raise ConfigError(s.name, f"expected a list of {what}")
    return tuple(value)


def _json_sizes(s: Setting, value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        return parse_hidden(value)
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    return _json_list(s, value, whole, "whole numbers such as [32, 32]")


def _json_numbers(s: Setting, value: Any) -> tuple[float, ...]:
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    return tuple(float(v) for v in _json_list(s, value, number, "numbers"))


_FROM_JSON: dict[str, Callable[[Setting, Any], Any]] = {
    "int": _json_int,
    "float": _json_float,
    "choice": _json_text,
    "text": _json_text,
    "sizes": _json_sizes,
    "names": lambda s, v: _json_list(s, v, lambda x: isinstance(x, str), "column names"),
    "numbers": _json_numbers,
}


def _show(value: Any) -> str:
    """A default as the command line writes it: 32,32 / 0.05 / mse ("" for none)."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "" if value == "" else f"{value:g}" if isinstance(value, float) else str(value)


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


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in a config file")


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
