"""Statistics of the per-sample gradients g_1..g_B of one minibatch.

Everything here is computed from four primitives that both gradient sets provide:

* ``norms_sq()`` -> (B,) ||g_i||^2
* ``dots(V)`` -> (B, K) g_i . v_k
* ``gram()`` -> (B, B) g_i . g_j
* ``combine(u)`` -> (P,) sum_i u_i g_i

``DenseGradients`` holds G (B, P) in memory; ``core.mlp.Backprop`` computes the same from the
per-layer factors (||g_i||^2 = sum_l (||a_i||^2 + 1) ||delta_i||^2, Goodfellow 2015) without
forming the B x P matrix, which is what the session uses when B x P x 8 bytes would exceed
``MATERIALISE_LIMIT_BYTES``.

Definitions (gbar = (1/B) sum_i g_i; G, Sigma: the mean and covariance of the per-sample
gradients over the whole training set, estimated by ``core.noise_scale``):

* noise scale B_noise = tr(Sigma) / ||G||^2 (McCandlish et al. 2018): the batch size at which a
  minibatch gradient's noise is as large as its signal;
* standard error of the mean gradient = sqrt(tr(Sigma) / B), shrinking like 1/sqrt(B) (for
  batches drawn with replacement; the sampler draws without, a factor sqrt(1 - B/n) less);
* signal-to-noise ratio = ||G||^2 / (tr(Sigma) / B) = B / B_noise.

These three use the training-set estimate passed in as ``noise`` (NaN without one). The batch
alone gives tr(Sigma_B) = sum_i ||g_i - gbar||^2 / (B - 1) and the one-batch ratio
``noise_scale_batch`` = tr(Sigma_B) / ||gbar||^2, shown only as what it is: since
E||gbar||^2 = ||G||^2 + tr(Sigma)/B, it tends to B whenever ||G||^2 is small against
tr(Sigma)/B, whatever the true noise scale. Both are undefined (NaN) for B = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "DenseGradients",
    "GradStats",
    "MATERIALISE_LIMIT_BYTES",
    "disagreement_direction",
    "gradient_stats",
]

MATERIALISE_LIMIT_BYTES = 50 * 1024 * 1024
NAN = float("nan")
EIGH_MAX = 256  #: above this batch size the top eigenvector comes from power iteration


class DenseGradients:
    """Per-sample gradients held as a matrix G (B, P)."""

    def __init__(self, G: np.ndarray) -> None:
        self.G = G

    @property
    def batch_size(self) -> int:
        return self.G.shape[0]

    def norms_sq(self) -> np.ndarray:
        return np.einsum("bp,bp->b", self.G, self.G)

    def dots(self, V) -> np.ndarray:
        """g_i . v_k for V (K, P) or a list of (P,) vectors -> (B, K); (P,) -> (B,)."""
        if isinstance(V, np.ndarray) and V.ndim == 1:
            return self.G @ V
        return self.G @ np.asarray(V).T

    def gram(self) -> np.ndarray:
        return self.G @ self.G.T

    def combine(self, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.matmul(u, self.G, out=out)


@dataclass(frozen=True)
class GradStats:
    """Statistics of one batch's per-sample gradients (arrays are read-only), with the
    training set's noise scale from ``core.noise_scale`` (see the module docstring).

    per_sample_norms : (B,) ||g_i||
    cosines : (B,) cos(g_i, gbar)
    projections : (B, K) g_i . d_k for the K directions asked for (K may be 0)

    Batch alone: ``mean_norm`` ||gbar||, ``trace_sigma_batch``, ``noise_scale_batch`` (NaN for
    B = 1). Training set (NaN without an estimate): ``trace_sigma``, ``grad_sq`` ||G||^2,
    ``noise_scale`` (NaN also while ||G||^2 is not resolved), ``noise_scale_err`` (one standard
    error; 0 when exact), ``snr``, ``std_error``. ``noise_scale_mode`` is "exact", "two-batch"
    or "" (none yet); ``noise_scale_age`` the number of updates between the weights it was
    measured at and this batch's; ``noise_scale_interval`` steps between measurements;
    ``noise_scale_samples`` the training set's size (exact) or the larger sample (two-batch);
    ``noise_scale_measurements`` how many measurements the two-batch averages hold;
    ``noise_scale_recent_lo``/``_hi`` the range of the last few exact values (NaN otherwise);
    ``noise_scale_window`` the steps the two-batch averages cover (0 when exact).
    """

    batch_size: int
    mean_norm: float
    per_sample_norms: np.ndarray
    cosines: np.ndarray
    frac_against: float
    trace_sigma_batch: float
    noise_scale_batch: float
    projections: np.ndarray
    trace_sigma: float = NAN
    grad_sq: float = NAN
    noise_scale: float = NAN
    noise_scale_err: float = NAN
    snr: float = NAN
    std_error: float = NAN
    noise_scale_mode: str = ""
    noise_scale_step: int = -1
    noise_scale_age: int = 0
    noise_scale_interval: int = 0
    noise_scale_samples: int = 0
    noise_scale_measurements: int = 0
    noise_scale_recent_lo: float = NAN
    noise_scale_recent_hi: float = NAN
    noise_scale_window: int = 0

    def with_noise(self, noise, age: int = 0) -> GradStats:
        """A copy carrying the training-set estimate ``noise`` (a ``NoiseEstimate`` or None);
        ``age``: updates between its weights and this batch's."""
        return replace(self, **_noise_fields(self.batch_size, noise, age))


def _noise_fields(B: int, noise, age: int) -> dict:
    if noise is None:
        return {}
    S, G2, ns = noise.trace_sigma, noise.grad_sq, noise.noise_scale
    return {
        "trace_sigma": float(S),
        "grad_sq": float(G2),
        "noise_scale": float(ns),
        "noise_scale_err": float(noise.noise_scale_err),
        # B / B_noise; with ||G||^2 unresolved (noise_scale NaN) the signal is not measured
        "snr": float(B / ns) if ns > 0 else NAN,
        "std_error": float(np.sqrt(S / B)) if S >= 0 else NAN,
        "noise_scale_mode": noise.mode,
        "noise_scale_step": int(noise.step),
        "noise_scale_age": int(age),
        "noise_scale_interval": int(noise.interval),
        "noise_scale_samples": int(noise.samples),
        "noise_scale_measurements": int(noise.measurements),
        "noise_scale_recent_lo": float(noise.recent_lo),
        "noise_scale_recent_hi": float(noise.recent_hi),
        "noise_scale_window": int(noise.window),
    }


def gradient_stats(
    gs,
    gbar: np.ndarray | None = None,
    directions: np.ndarray | None = None,
    noise=None,
    age: int = 0,
):
    """Compute ``GradStats`` from a gradient set (DenseGradients or Backprop).

    gbar : (P,) the plain mean of the per-sample gradients; computed if not given
    directions : (K, P) directions to project every g_i on (not normalised here)
    noise : the training set's ``core.noise_scale.NoiseEstimate`` (None: those fields NaN);
    age : updates between its weights and this batch's
    """
    B = gs.batch_size
    if gbar is None:
        gbar = gs.combine(np.full(B, 1.0 / B))
    n2 = np.maximum(gs.norms_sq(), 0.0)
    norms = np.sqrt(n2)
    gbar2 = float(gbar @ gbar)
    gnorm = np.sqrt(gbar2)
    V = [gbar] if directions is None else [gbar, *directions]
    D = gs.dots(V)
    dots_mean = D[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where((norms > 0) & (gnorm > 0), dots_mean / (norms * gnorm), 0.0)
    cos = np.clip(cos, -1.0, 1.0)
    ss = max(float(n2.sum()) - B * gbar2, 0.0)  # sum_i ||g_i - gbar||^2
    trace = ss / (B - 1) if B > 1 else NAN
    noise_batch = trace / gbar2 if (B > 1 and gbar2 > 0) else NAN
    proj = D[:, 1:] if directions is not None else np.zeros((B, 0))
    arrays = [np.ascontiguousarray(a) for a in (norms, cos, proj)]
    for a in arrays:
        a.flags.writeable = False
    return GradStats(
        batch_size=B,
        mean_norm=float(gnorm),
        per_sample_norms=arrays[0],
        cosines=arrays[1],
        frac_against=float(np.mean(cos < 0)),
        trace_sigma_batch=float(trace),
        noise_scale_batch=float(noise_batch),
        projections=arrays[2],
        **_noise_fields(B, noise, age),
    )


def _top_eigenpair(C: np.ndarray, iters: int = 200, tol: float = 1e-10):
    """Largest eigenvalue and its unit eigenvector of a symmetric PSD matrix by power
    iteration (O(B^2) a step instead of O(B^3) for the full decomposition)."""
    B = C.shape[0]
    u = np.linspace(1.0, 2.0, B)  # deterministic start, not orthogonal to a positive vector
    u /= np.linalg.norm(u)
    lam = 0.0
    for _ in range(iters):
        v = C @ u
        n = np.linalg.norm(v)
        if n == 0:
            return 0.0, u
        v /= n
        if abs(n - lam) <= tol * n:
            u, lam = v, n
            break
        u, lam = v, n
    return float(u @ C @ u), u


def disagreement_direction(gs, gbar: np.ndarray) -> np.ndarray:
    """Unit vector (P,) orthogonal to gbar along which the per-sample gradients vary most.

    The top principal direction of the residuals ``r_i = g_i - gbar`` with their gbar
    component removed, found from the B x B Gram matrix (so P can be large):
    ``Gram(r') = H K H - p p^T`` with ``p_i = r_i . ghat``; its top eigenvector u gives
    ``d = sum_i u_i r'_i``. Returns zeros if the gradients do not vary (B = 1).
    """
    B = gs.batch_size
    gnorm = np.linalg.norm(gbar)
    if B < 2:
        return np.zeros_like(gbar)
    K = gs.gram()
    ghat = gbar / gnorm if gnorm > 0 else np.zeros_like(gbar)
    # Centre K (H K H with H = I - 11^T/B) in O(B^2): subtract row and column means.
    r = K.mean(axis=0)
    Kc = K - r[None, :] - r[:, None] + r.mean()
    p = gs.dots(ghat) - gnorm
    C = Kc - np.outer(p, p)
    if not np.all(np.isfinite(C)):
        return np.zeros_like(gbar)  # overflow: the run is diverging; nothing to show
    C = (C + C.T) / 2
    if B <= EIGH_MAX:
        vals, vecs = np.linalg.eigh(C)
        top, u = vals[-1], vecs[:, -1]
    else:
        top, u = _top_eigenpair(C)
    # Below ~1e-12 of the total squared norm the eigenvalue is centring round-off, not spread.
    if top <= 1e-12 * float(np.trace(K)):
        return np.zeros_like(gbar)
    # d = sum_i u_i (g_i - gbar - p_i ghat)
    d = gs.combine(u) - u.sum() * gbar - (u @ p) * ghat
    d -= (d @ ghat) * ghat  # round-off
    n = np.linalg.norm(d)
    return d / n if n > 0 else d
