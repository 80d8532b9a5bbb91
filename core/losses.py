"""Losses as registered objects (the loss matrix M), and the reductions that turn M into a scalar.

Shapes, with B samples (rows) and O outputs:

* ``Y`` : (B, O) network outputs, ``T`` : (B, O) targets (one-hot for cross-entropy; a class
  index vector (B,) is accepted by the network and converted with ``as_one_hot``).
* ``M`` : (B, O) elementwise losses. For ``mse`` ``M = (Y - T)**2``.

A loss is one object: a subclass of ``Loss`` with a ``name`` (the key in Config, config files
and ``--loss``), a ``label`` (what the window shows), a ``task`` and two methods, registered once::

    from core.losses import Loss, register

    class LogCosh(Loss):
        name = "logcosh"
        label = "log-cosh"
        task = "regression"
        def matrix(self, Y, T):
            return np.log(np.cosh(Y - T))
        def grad(self, Y, T, U):
            return U * np.tanh(Y - T)

    register(LogCosh())

The engine, ``Config``, the window's loss list and the command line read the registry
(``get_loss``, ``loss_names``, ``loss_label``), so that is the whole edit. The engine runs in a
spawned process: ``core.remote.EngineProcess`` sends it the losses registered beyond the
built-in ones (``pickled_user_losses``), so their class must be importable by module name (a
class defined in a ``__main__`` script is not: choosing it then says so, see ``get_loss``).

A reduction is split in two honest halves so that one law holds for every choice:

1. an *output* reduction turns sample i's row of M into its own loss
   ``L_i = sum_o U[i, o] * M[i, o]`` (mean over outputs, or the sum for a loss with
   ``sum_outputs`` such as cross-entropy, so that ``mean`` is the usual cross-entropy;
   per-output weights for ``weighted``; the largest entry for ``max``);
2. a *sample* reduction combines them, ``scalar = sum_i w_i L_i``.

Because the scalar is linear in the ``L_i`` (with ``w`` held at its value for ``max``, which is
the subgradient), its gradient is ``sum_i w_i g_i`` where ``g_i`` is the gradient of ``L_i``:
the gradient of the mean *is* the mean of the per-sample gradients.

``Objective`` bundles the loss, the reduction, its weights and the loss's settings (Huber's
delta): the one value the network's loss, gradient and Hessian passes take.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BUILTIN_LOSSES",
    "REDUCTIONS",
    "REDUCTION_LABELS",
    "TASKS",
    "CrossEntropy",
    "Huber",
    "Loss",
    "MAE",
    "MSE",
    "Objective",
    "Reduced",
    "as_one_hot",
    "get_loss",
    "loss_choices",
    "loss_label",
    "loss_names",
    "pickled_user_losses",
    "reduce",
    "reduce_many",
    "register",
    "registered",
    "restore_losses",
    "unregister",
    "user_losses",
]

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "max", "weighted")
#: what a loss expects of the targets: any real numbers, or one-hot classes
TASKS: tuple[str, ...] = ("regression", "classification")
REDUCTION_LABELS = {
    "mean": "mean over samples (and outputs)",
    "sum": "sum over samples (= B x mean)",
    "max": "largest entry of M",
    "weighted": "per-output and per-sample weights",
}


# ------------------------------------------------------------------------------ the interface
class Loss:
    """An elementwise loss. Subclass it, set the class attributes, write ``matrix`` and
    ``grad``, and ``register`` one instance.

    Attributes
    ----------
    name : str, the key in Config, config files and ``--loss`` (a Python identifier)
    label : str, the short name the window shows
    task : "regression" (any real targets) or "classification" (one-hot targets: such a loss
        is refused on a regression data set)
    description : str, the longer explanation (the window's tooltip); the label if empty
    sum_outputs : bool, sample i's own loss sums its row of M instead of averaging it (for
        cross-entropy, whose row holds one non-zero entry)

    Every array method works on any leading shape (..., B, O), which the loss grid uses to
    evaluate many weight settings at once, and may be given float32 arrays there.
    """

    name: str = ""
    label: str = ""
    task: str = "regression"
    description: str = ""
    sum_outputs: bool = False

    def matrix(self, Y: np.ndarray, T: np.ndarray) -> np.ndarray:
        """M (B, O): the elementwise losses of outputs Y (B, O) against targets T (B, O)."""
        raise NotImplementedError(f"loss {self.name!r} has no matrix()")

    def grad(self, Y: np.ndarray, T: np.ndarray, U: np.ndarray) -> np.ndarray:
        """dL/dY (B, O) for L = sum(U * M): row i is dL_i/dY_i with ``L_i = sum_o U[i,o]
        M[i,o]``, U (B, O) the reduction's output coefficients (not the sample weights w)."""
        raise NotImplementedError(f"loss {self.name!r} has no grad()")

    def hess_times(self, Y: np.ndarray, T: np.ndarray, U: np.ndarray, dY: np.ndarray):
        """The change of ``grad`` along dY (B, O): row i is ``H_i @ dY_i`` with H_i the
        Hessian of L_i in Y_i, U held at its value (the Hessian-vector product needs it).

        Optional. This default takes central differences of ``grad`` along dY with a step
        of eps^(1/3) relative to Y (about 8 correct digits); the built-in losses override
        it with their exact second derivative.
        """
        size = float(np.max(np.abs(dY), initial=0.0))
        if size == 0.0 or not np.isfinite(size):
            return np.zeros(np.broadcast_shapes(np.shape(U), np.shape(dY)))
        scale = max(1.0, float(np.max(np.abs(Y), initial=0.0)))
        h = np.cbrt(np.finfo(np.float64).eps) * scale / size
        return (self.grad(Y + h * dY, T, U) - self.grad(Y - h * dY, T, U)) / (2.0 * h)

    @property
    def exact_hessian(self) -> bool:
        """Whether ``hess_times`` is the loss's own (exact) and not finite differences."""
        return type(self).hess_times is not Loss.hess_times

    def matrix_into(self, Y: np.ndarray, T: np.ndarray) -> np.ndarray:
        """M like ``matrix``, allowed to overwrite Y's buffer (the loss grid's hot loop)."""
        return self.matrix(Y, T)

    def configured(self, **settings) -> Loss:
        """This loss with the settings it reads taken from ``settings`` (Huber reads
        ``huber_delta``); the default reads none and returns itself."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class MSE(Loss):
    name = "mse"
    label = "MSE  (Y − T)²"
    description = "Squared error (Y − T)² per output and sample"

    def matrix(self, Y, T):
        R = Y - T
        return R * R

    def grad(self, Y, T, U):
        return U * (2.0 * (Y - T))

    def hess_times(self, Y, T, U, dY):
        return U * (2.0 * dY)

    def matrix_into(self, Y, T):
        return np.square(np.subtract(Y, T, out=Y), out=Y)


class MAE(Loss):
    name = "mae"
    label = "MAE  |Y − T|"
    description = "Absolute error |Y − T| per output and sample"

    def matrix(self, Y, T):
        return np.abs(Y - T)

    def grad(self, Y, T, U):
        return U * np.sign(Y - T)

    def hess_times(self, Y, T, U, dY):
        # |r| has zero curvature away from its kink at 0
        return np.zeros(np.broadcast_shapes(np.shape(U), np.shape(dY)))


class Huber(Loss):
    """Quadratic ``r²/2`` inside ``|r| <= delta``, linear ``delta (|r| - delta/2)`` beyond."""

    name = "huber"
    label = "Huber"
    description = "Squared near zero, absolute beyond δ: robust to outliers"

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = float(delta)

    def configured(self, **settings) -> Loss:
        delta = float(settings.get("huber_delta", self.delta))
        return self if delta == self.delta else Huber(delta)

    def matrix(self, Y, T):
        R = Y - T
        A = np.abs(R)
        d = self.delta
        return np.where(A <= d, 0.5 * R * R, d * (A - 0.5 * d))

    def grad(self, Y, T, U):
        return U * np.clip(Y - T, -self.delta, self.delta)

    def hess_times(self, Y, T, U, dY):
        # curvature 1 inside |r| <= delta, 0 outside
        return U * np.where(np.abs(Y - T) <= self.delta, dY, 0.0)


def _log_softmax(Y: np.ndarray) -> np.ndarray:
    Z = Y - Y.max(axis=-1, keepdims=True)
    return Z - np.log(np.exp(Z).sum(axis=-1, keepdims=True))


class CrossEntropy(Loss):
    """``M[i, o] = -T[i, o] log softmax(Y_i)[o]``; with ``H_i = s_i (diag(p_i) - p_i p_i^T)``,
    ``s_i = sum_o U[i,o] T[i,o]``."""

    name = "cross_entropy"
    label = "cross-entropy"
    task = "classification"
    description = (
        "Softmax cross-entropy: one loss per sample, summed over the outputs (classification)"
    )
    sum_outputs = True

    def matrix(self, Y, T):
        return -T * _log_softmax(Y)

    def grad(self, Y, T, U):
        P = np.exp(_log_softmax(Y))
        UT = U * T
        return P * UT.sum(axis=-1, keepdims=True) - UT

    def hess_times(self, Y, T, U, dY):
        P = np.exp(_log_softmax(Y))
        PdY = P * dY
        s = (U * T).sum(axis=-1, keepdims=True)
        return s * (PdY - P * PdY.sum(axis=-1, keepdims=True))


# ------------------------------------------------------------------------------- the registry
class _Registry:
    """Name -> Loss, in registration order (the window lists them in this order)."""

    def __init__(self, builtins: tuple[Loss, ...]) -> None:
        self.losses: dict[str, Loss] = {}
        self.builtin: tuple[str, ...] = ()
        #: name -> why a loss registered in the parent process could not be loaded here
        self.unavailable: dict[str, str] = {}
        for loss in builtins:
            self.add(loss)
        self.builtin = tuple(self.losses)

    def add(self, loss: Loss, replace: bool = False) -> Loss:
        _check_loss_class(loss)
        if loss.name in self.builtin and self.losses[loss.name] is not loss:
            raise ValueError(f"{loss.name!r} is a built-in loss; give yours another name")
        if loss.name in self.losses and not replace:
            raise ValueError(
                f"a loss called {loss.name!r} is already registered "
                "(register(..., replace=True) replaces it)"
            )
        self.losses[loss.name] = loss
        self.unavailable.pop(loss.name, None)
        return loss

    def get(self, name) -> Loss:
        try:
            return self.losses[name]
        except (KeyError, TypeError):
            pass
        why = self.unavailable.get(name) if isinstance(name, str) else None
        if why is not None:
            raise ValueError(
                f"loss {name!r} was registered in the window's process but the engine could "
                f"not load it ({why}); define its class in an importable module, not in a "
                "__main__ script"
            )
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(self.losses)}")


def _check_loss_class(loss) -> None:
    """A clear message for a loss that cannot work, at ``register`` and not mid-training."""
    if not isinstance(loss, Loss):
        raise TypeError(f"register() takes a Loss instance, got {type(loss).__name__}")
    kind = type(loss).__name__
    if not isinstance(loss.name, str) or not loss.name.isidentifier():
        raise ValueError(f"{kind}.name must be a word such as 'logcosh', got {loss.name!r}")
    if not isinstance(loss.label, str) or not loss.label.strip():
        raise ValueError(f"{kind}.label must be the text the window shows, got {loss.label!r}")
    if loss.task not in TASKS:
        raise ValueError(f"{kind}.task must be one of {', '.join(TASKS)}, got {loss.task!r}")
    for method in ("matrix", "grad"):
        if getattr(type(loss), method) is getattr(Loss, method):
            raise ValueError(f"{kind} must define {method}()")


_REGISTRY = _Registry((MSE(), MAE(), Huber(), CrossEntropy()))
#: the names of the losses that ship with Batchscope
BUILTIN_LOSSES: tuple[str, ...] = _REGISTRY.builtin


def register(loss: Loss, *, replace: bool = False) -> Loss:
    """Make ``loss`` available everywhere under ``loss.name``; returns it.

    Raises ValueError for a name already taken (unless ``replace``; a built-in loss is never
    replaced) or a loss without a name, label, valid task, ``matrix`` or ``grad``.
    """
    return _REGISTRY.add(loss, replace)


def unregister(name: str) -> Loss:
    """Remove the user loss called ``name`` and return it (built-in losses stay)."""
    if name in _REGISTRY.builtin:
        raise ValueError(f"{name!r} is a built-in loss and cannot be removed")
    loss = _REGISTRY.get(name)
    del _REGISTRY.losses[name]
    return loss


@contextlib.contextmanager
def registered(loss: Loss) -> Iterator[Loss]:
    """``with registered(LogCosh()):`` the loss exists inside the block only (for tests)."""
    register(loss)
    try:
        yield loss
    finally:
        if _REGISTRY.losses.get(loss.name) is loss:
            unregister(loss.name)


def get_loss(name: str) -> Loss:
    """The registered loss called ``name``; ValueError naming the choices if there is none."""
    return _REGISTRY.get(name)


def loss_names(task: str | None = None) -> tuple[str, ...]:
    """Names of the registered losses in registration order (built-ins first); with ``task``,
    only the losses of that task ("regression" or "classification")."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    return tuple(n for n, loss in _REGISTRY.losses.items() if task in (None, loss.task))


def loss_label(name: str) -> str:
    """What the window shows for the loss ``name``."""
    return get_loss(name).label


def loss_choices(task: str | None = None) -> dict[str, tuple[str, str]]:
    """``{name: (label, description)}`` of the registered losses, in ``loss_names`` order:
    what a list of losses shows (the label) and explains (the description, e.g. a tooltip)."""
    out = {}
    for name in loss_names(task):
        loss = get_loss(name)
        out[name] = (loss.label, loss.description or loss.label)
    return out


def user_losses() -> tuple[Loss, ...]:
    """The registered losses that are not built in (what a spawned engine must be sent)."""
    return tuple(v for k, v in _REGISTRY.losses.items() if k not in _REGISTRY.builtin)


def pickled_user_losses() -> tuple[tuple[str, bytes | str], ...]:
    """The user losses for a spawned engine (``restore_losses``): (name, pickle) each, or
    (name, reason) for one that cannot be pickled. A pickle names the loss's class by module,
    so the engine imports that module; a pickle is made so that a class the engine cannot
    import costs that one loss, not the engine's start."""
    out: list[tuple[str, bytes | str]] = []
    for loss in user_losses():
        try:
            out.append((loss.name, pickle.dumps(loss)))
        except Exception as e:  # a lambda attribute, a class local to a function, ...
            out.append((loss.name, f"cannot be pickled: {e}"))
    return tuple(out)


def restore_losses(items: Iterable[tuple[str, bytes | str]]) -> None:
    """Register in this process (the engine) the losses ``pickled_user_losses`` packed in
    the window's. One that cannot be loaded is remembered with the reason, which ``get_loss``
    gives when it is asked for."""
    for name, payload in items:
        try:
            if isinstance(payload, str):
                raise ValueError(payload)
            register(pickle.loads(payload), replace=True)
        except Exception as e:
            _REGISTRY.unavailable[name] = str(e) or type(e).__name__


def as_loss(loss: str | Loss) -> Loss:
    """A Loss for a registered name, or the Loss itself."""
    return loss if isinstance(loss, Loss) else get_loss(loss)


# ------------------------------------------------------------------------------- reductions
def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")


def as_one_hot(T: np.ndarray, n_out: int) -> np.ndarray:
    """Return targets as a (B, n_out) float64 array; a (B,) class-index vector becomes one-hot."""
    T = np.asarray(T)
    if T.ndim == 1:
        idx = T.astype(np.int64)
        if np.any(idx != T) or np.any(idx < 0) or np.any(idx >= n_out):
            raise ValueError(f"class indices must be integers in 0..{n_out - 1}")
        out = np.zeros((T.shape[0], n_out))
        out[np.arange(T.shape[0]), idx] = 1.0
        return out
    return np.asarray(T, dtype=np.float64)


def output_coefficients(
    M: np.ndarray, reduction: str, loss: str | Loss, output_weights: np.ndarray | None = None
) -> np.ndarray:
    """U (B, O): how sample i's own loss weighs its row of M, ``L_i = sum_o U[i,o] M[i,o]``."""
    check_reduction(reduction)
    B, O = M.shape[-2:]
    if reduction == "max":
        U = np.zeros_like(M)
        idx = np.argmax(M, axis=-1)
        np.put_along_axis(U, idx[..., None], 1.0, axis=-1)
        return U
    scale = float(O) if as_loss(loss).sum_outputs else 1.0
    if reduction == "weighted" and output_weights is not None:
        v = np.asarray(output_weights, dtype=np.float64)
        if v.shape != (O,):
            raise ValueError(f"output_weights must have {O} entries, got {v.shape}")
        u = scale * v / v.sum()
    else:
        u = np.full(O, scale / O)
    return np.broadcast_to(u, M.shape)


def sample_weights_for(
    L: np.ndarray, reduction: str, sample_weights: np.ndarray | None = None
) -> np.ndarray:
    """w (..., B): the weights with which per-sample losses (and gradients) combine."""
    check_reduction(reduction)
    B = L.shape[-1]
    if reduction == "mean":
        return np.full(L.shape, 1.0 / B)
    if reduction == "sum":
        return np.ones(L.shape)
    if reduction == "max":
        w = np.zeros(L.shape)
        np.put_along_axis(w, np.argmax(L, axis=-1)[..., None], 1.0, axis=-1)
        return w
    if sample_weights is None:
        return np.full(L.shape, 1.0 / B)
    s = np.asarray(sample_weights, dtype=np.float64)
    if s.shape != (B,):
        raise ValueError(f"sample_weights must have {B} entries, got {s.shape}")
    return np.broadcast_to(s / s.sum(), L.shape)


@dataclass(frozen=True)
class Reduced:
    """The scalar made from M, and how it was made.

    value : float, the one number that is backpropagated
    per_sample : (B,) L_i, each sample's own loss
    weights : (B,) w_i with ``value == weights @ per_sample``
    coefficients : (B, O) U with ``per_sample == (U * M).sum(1)`` (dL_i / dM)
    """

    value: float
    per_sample: np.ndarray
    weights: np.ndarray
    coefficients: np.ndarray


def reduce(
    M: np.ndarray,
    reduction: str = "mean",
    loss: str | Loss = "mse",
    output_weights: np.ndarray | None = None,
    sample_weights: np.ndarray | None = None,
) -> Reduced:
    """Turn the loss matrix M (B, O) into the scalar that is minimised."""
    U = output_coefficients(M, reduction, loss, output_weights)
    L = (U * M).sum(axis=-1)
    w = sample_weights_for(L, reduction, sample_weights)
    return Reduced(float(w @ L), L, np.asarray(w), np.asarray(U))


def reduce_many(
    M: np.ndarray,
    reduction: str,
    loss: str | Loss,
    output_weights: np.ndarray | None = None,
    sample_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Scalars for a stack of loss matrices M (..., B, O) -> (...,).

    For mean, sum and weighted the scalar is linear in M with fixed coefficients
    ``w_i u_o``: one matrix-vector product over the flattened (B, O), in M's dtype, with no
    (..., B, O) temporaries. Max picks per-sample maxima and is done the general way.
    """
    if reduction == "max":
        U = output_coefficients(M, reduction, loss, output_weights)
        return (U * M).sum(axis=-1).max(axis=-1)
    B, O = M.shape[-2:]
    u = output_coefficients(M[(0,) * (M.ndim - 2)], reduction, loss, output_weights)[0]
    w = sample_weights_for(np.zeros(B), reduction, sample_weights)
    c = np.outer(w, u).ravel().astype(M.dtype, copy=False)
    return np.ascontiguousarray(M).reshape(*M.shape[:-2], B * O) @ c


# ------------------------------------------------------------------------------- the objective
@dataclass(frozen=True, eq=False)
class Objective:
    """What is minimised: a loss, a reduction, the reduction's weights and the loss's settings.

    loss : a registered loss's name (or a Loss)
    reduction : one of ``REDUCTIONS``
    output_weights : (O,) per-output weights for ``weighted``, or None (equal)
    sample_weights : (B,) per-sample weights for ``weighted``, or None (equal)
    huber_delta : Huber's delta (read by losses that take it)

    Unknown names raise ValueError at construction, naming the choices.
    """

    loss: str | Loss = "mse"
    reduction: str = "mean"
    output_weights: np.ndarray | None = None
    sample_weights: np.ndarray | None = None
    huber_delta: float = 1.0
    fn: Loss = field(init=False, repr=False)  #: the configured Loss object

    def __post_init__(self) -> None:
        check_reduction(self.reduction)
        fn = as_loss(self.loss).configured(huber_delta=self.huber_delta)
        object.__setattr__(self, "fn", fn)

    @classmethod
    def of(cls, loss: str | Loss | Objective = "mse", reduction: str = "mean", **kw) -> Objective:
        """The Objective for ``MLP``'s keyword API: ``loss`` may already be an Objective
        (then no other argument may be given)."""
        if isinstance(loss, Objective):
            if kw or reduction != "mean":
                raise TypeError("pass either an Objective or loss=/reduction=/..., not both")
            return loss
        return cls(loss, reduction, **kw)

    @classmethod
    def from_config(cls, config, sample_weights: np.ndarray | None = None) -> Objective:
        """The objective a Config's loss settings describe (output weights () = equal)."""
        ow = np.asarray(config.output_weights, dtype=np.float64) if config.output_weights else None
        return cls(config.loss, config.reduction, ow, sample_weights, config.huber_delta)

    def matrix(self, Y: np.ndarray, T: np.ndarray) -> np.ndarray:
        """M (..., B, O) for outputs Y and targets T (B, O)."""
        return self.fn.matrix(Y, T)

    def reduce(self, M: np.ndarray) -> Reduced:
        """M (B, O) -> the scalar, the L_i, their weights w and the coefficients U."""
        return reduce(M, self.reduction, self.fn, self.output_weights, self.sample_weights)

    def reduce_many(self, M: np.ndarray) -> np.ndarray:
        """Scalars for a stack M (..., B, O) -> (...,)."""
        return reduce_many(M, self.reduction, self.fn, self.output_weights, self.sample_weights)

    def evaluate(self, Y: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, Reduced]:
        """(M, Reduced) for outputs Y (B, O) and targets T (B, O)."""
        M = self.fn.matrix(Y, T)
        return M, self.reduce(M)

    def grad(self, Y: np.ndarray, T: np.ndarray, U: np.ndarray) -> np.ndarray:
        """Per-sample output deltas (B, O), row i = dL_i/dY_i (not weighted by w)."""
        return self.fn.grad(Y, T, U)

    def hess_times(self, Y, T, U, dY) -> np.ndarray:
        """Row i = H_i dY_i (B, O), H_i = d2 L_i / dY_i^2 (not weighted by w)."""
        return self.fn.hess_times(Y, T, U, dY)

    def with_sample_weights(self, sample_weights: np.ndarray | None) -> Objective:
        """The same objective with other sample weights (another batch)."""
        return Objective(
            self.loss, self.reduction, self.output_weights, sample_weights, self.huber_delta
        )
