"""A multilayer perceptron on one flat float64 parameter vector.

Samples are rows everywhere: ``X`` is (B, n_in), outputs are (B, n_out).

Flat layout (the order of a torch ``nn.Linear``'s weight then bias, layer by layer)::

    params = [W1.ravel(), b1, W2.ravel(), b2, ...]      W_l : (n_out_l, n_in_l), b_l : (n_out_l,)

``net.layers`` holds ``(W, b)`` *views* into ``net.params``: writing into either changes the
other. The optimiser, the loss landscape and the per-sample gradients all use this layout.

Backward kernels (numpy-ml style names), for layer l with input activations A (B, n_in):

* ``dLdY``: the per-sample output deltas, row i = dL_i/dY_i (B, n_out);
* ``delta`` of a layer: dL_i/dZ_i for its pre-activation (B, n_out_l);
* ``dW = delta.T @ A`` (summed over samples) or ``delta[:, :, None] * A[:, None, :]``
  (one (n_out, n_in) block per sample); ``db = delta.sum(0)`` or ``delta``;
* ``delta_prev = (delta @ W) * act'(Z_prev)``.

Hessian-vector products (``hessian_operator``, ``hvp``) apply Pearlmutter's R-operator
(R{f} = d/dt f(params + t v) at t = 0) to that same factored pass, forward over reverse:

* forward: ``R{Z} = R{A} @ W.T + A @ V.T + c``, ``R{A_next} = act'(Z) * R{Z}`` (R{X} = 0);
* output: ``R{dLdY}`` row i = ``w_i H_i R{Y_i}`` with H_i the loss's own Hessian in Y_i;
* backward: ``Hv_W = R{delta}.T @ A + delta.T @ R{A}``, ``Hv_b = R{delta}.sum(0)``,
  ``R{delta_prev} = (R{delta} @ W + delta @ V) * act'(Z_prev)
  + (delta @ W) * act''(Z_prev) * R{Z_prev}``,

with (V, c) the (W, b) views of v. Exact to round-off for every loss with its own second
derivative (``Loss.hess_times``: all the built-in ones); a user loss without one gets central
differences of its ``grad`` in Y at the output only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import get_activation
from .losses import Loss, Objective, Reduced, as_one_hot

__all__ = ["MLP", "Backprop", "HessianOperator", "LayerSlice"]


@dataclass(frozen=True)
class LayerSlice:
    """Where layer ``index``'s W and b live in the flat vector."""

    index: int
    n_in: int
    n_out: int
    w_start: int
    w_stop: int
    b_stop: int

    @property
    def b_start(self) -> int:
        return self.w_stop


@dataclass
class Backprop:
    """One forward and backward pass over a batch, kept in factored form.

    inputs : list over layers of (B, n_in_l), each layer's input activations
    deltas : list over layers of (B, n_out_l), per-sample dL_i/dZ (not weighted by w)
    reduced : the scalar and its per-sample weights ``reduced.weights`` (B,)
    Y : (B, n_out) outputs, M : (B, n_out) loss matrix

    Sample i's gradient of its own loss is, for every layer, ``outer(deltas[l][i],
    inputs[l][i])`` for W and ``deltas[l][i]`` for b. Any linear combination
    ``sum_i u_i g_i`` is therefore one matrix product per layer (see ``combine``).
    """

    net: MLP
    inputs: list[np.ndarray]
    deltas: list[np.ndarray]
    reduced: Reduced
    Y: np.ndarray
    M: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.Y.shape[0]

    def combine(self, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``sum_i u[i] * g_i`` (P,) for weights u (B,), without forming the (B, P) matrix."""
        net = self.net
        g = np.empty(net.n_params) if out is None else out
        for sl, A, D in zip(net.slices, self.inputs, self.deltas):
            Du = D * u[:, None]
            np.matmul(Du.T, A, out=g[sl.w_start : sl.w_stop].reshape(sl.n_out, sl.n_in))
            np.sum(Du, axis=0, out=g[sl.b_start : sl.b_stop])
        return g

    def gradient(self, out: np.ndarray | None = None) -> np.ndarray:
        """The gradient of the reduced scalar, ``sum_i w_i g_i`` (P,)."""
        return self.combine(self.reduced.weights, out=out)

    def per_sample(self, out: np.ndarray | None = None) -> np.ndarray:
        """Materialise the per-sample gradients G (B, P); row i is the gradient of L_i."""
        net = self.net
        B = self.batch_size
        G = np.empty((B, net.n_params)) if out is None else out
        for sl, A, D in zip(net.slices, self.inputs, self.deltas):
            blk = G[:, sl.w_start : sl.w_stop].reshape(B, sl.n_out, sl.n_in)
            # The same products as ``np.multiply(D[:, :, None], A[:, None, :], out=blk)``
            # (bit for bit: no sums), but einsum's kernel writes the strided (B, P) blocks about
            # twice as fast as the broadcasting ufunc (benchmarks/bench_engine.py).
            np.einsum("bo,bi->boi", D, A, out=blk)
            G[:, sl.b_start : sl.b_stop] = D
        return G

    def norms_sq(self) -> np.ndarray:
        """||g_i||^2 (B,) from the factors: ||a_i||^2 ||delta_i||^2 + ||delta_i||^2 per layer."""
        total = np.zeros(self.batch_size)
        for A, D in zip(self.inputs, self.deltas):
            d2 = np.einsum("bo,bo->b", D, D)
            total += d2 * (np.einsum("bi,bi->b", A, A) + 1.0)
        return total

    def dots(self, V) -> np.ndarray:
        """g_i . v_k for vectors V (K, P), a list of K (P,) vectors, or one (P,) vector
        -> (B, K) (or (B,) for one vector), without forming G: per layer and vector,
        ``delta_i^T Vw a_i + delta_i . vb`` (contiguous views of each vector, no copies)."""
        single = isinstance(V, np.ndarray) and V.ndim == 1
        vecs = [V] if single else list(V)
        out = np.zeros((self.batch_size, len(vecs)))
        for sl, A, D in zip(self.net.slices, self.inputs, self.deltas):
            for k, v in enumerate(vecs):
                Vw = v[sl.w_start : sl.w_stop].reshape(sl.n_out, sl.n_in)
                out[:, k] += np.einsum("bi,bi->b", D @ Vw, A)
                out[:, k] += D @ v[sl.b_start : sl.b_stop]
        return out[:, 0] if single else out

    def gram(self) -> np.ndarray:
        """K (B, B) with K[i, j] = g_i . g_j = sum_l (a_i.a_j + 1)(delta_i.delta_j)."""
        return self.gram_rows(0, self.batch_size)

    def gram_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the Gram matrix, (stop - start, B): K[i, :] for i in the
        slice (a caller can build K in pieces, between other work)."""
        K = np.zeros((stop - start, self.batch_size))
        for A, D in zip(self.inputs, self.deltas):
            K += (A[start:stop] @ A.T + 1.0) * (D[start:stop] @ D.T)
        return K


class HessianOperator:
    """v -> H v for the Hessian H (P, P) of the reduced loss at fixed weights and batch.

    Made by ``MLP.hessian_operator``, which runs the forward and backward pass once and keeps
    what every product needs (layer inputs, deltas weighted by w, act' and act'' terms); each
    ``matvec`` then costs one R-forward and one R-backward pass, about one gradient. It is
    the Hessian at the weights the network had when it was made (it keeps a copy): training
    on afterwards does not change it.

    H is the exact Hessian of ``sum_i w_i L_i`` with the weights w and output coefficients U
    held at their values (as the gradient does): for ``max`` the Hessian of the selected entry;
    for mae, huber and relu the piecewise second derivatives (zero curvature of |r| away from
    0, curvature 1 inside Huber's delta, relu'' = 0 away from z = 0). A registered loss without
    its own ``hess_times`` contributes central differences of its ``grad`` in Y there (about 8
    digits; ``Loss.exact_hessian`` says which).

    Attributes
    ----------
    n_params : int, P
    params : (P,) float64, a copy of the weights it is the Hessian at
    value : float, the reduced loss at these weights
    n_matvec : int, how many products have been computed (for cost accounting)
    """

    def __init__(
        self,
        net: MLP,
        X,
        T,
        loss: str | Loss | Objective = "mse",
        reduction: str = "mean",
        **kw,
    ) -> None:
        objective = Objective.of(loss, reduction, **kw)
        T = net._check_T(X, T)
        inputs, Zs, Y = net._forward(X)
        M, red = objective.evaluate(Y, T)
        w = np.asarray(red.weights)[:, None]
        delta = objective.grad(Y, T, red.coefficients) * w
        act = net._act
        n_hidden = len(Zs)
        deltas: list[np.ndarray] = [delta]
        d1: list[np.ndarray] = [np.empty(0)] * n_hidden  # act'(Z_k)
        e2: list[np.ndarray] = [np.empty(0)] * n_hidden  # (delta_{k+1} @ W_{k+1}) * act''(Z_k)
        for k in range(n_hidden - 1, -1, -1):
            Z, A = Zs[k], inputs[k + 1]
            back = delta @ net.layers[k + 1][0]
            d1[k] = act.derivative(Z, A, np.empty_like(Z))
            e2[k] = act.second_derivative(Z, A, np.empty_like(Z))
            e2[k] *= back
            back *= d1[k]
            delta = back
            deltas.append(delta)
        deltas.reverse()
        self.net = net
        self.n_params = net.n_params
        self.params = net.params.copy()
        self._W = [W for W, _ in net.views(self.params)]
        self.value = red.value
        self.n_matvec = 0
        self._inputs, self._deltas, self._d1, self._e2 = inputs, deltas, d1, e2
        self._out = (Y, T, red.coefficients, w, objective)

    def gradient(self, out: np.ndarray | None = None) -> np.ndarray:
        """The gradient (P,) of the reduced loss at these weights, from the cached pass."""
        net = self.net
        g = np.empty(net.n_params) if out is None else out
        for sl, A, D in zip(net.slices, self._inputs, self._deltas):
            np.matmul(D.T, A, out=g[sl.w_start : sl.w_stop].reshape(sl.n_out, sl.n_in))
            np.sum(D, axis=0, out=g[sl.b_start : sl.b_stop])
        return g

    def matvec(self, v: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """H v (P,) for v (P,) float64 (Pearlmutter's R-operator, forward over reverse)."""
        net = self.net
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (net.n_params,):
            raise ValueError(
                f"v must have shape ({net.n_params},) like the parameters; got {v.shape}"
            )
        Hv = np.empty(net.n_params) if out is None else out
        dirs = net.views(v)
        inputs, deltas, d1, e2 = self._inputs, self._deltas, self._d1, self._e2
        last = len(dirs) - 1
        # R-forward: R{Z_k} and R{A_{k+1}} = act'(Z_k) R{Z_k}; the inputs X do not move.
        RZs: list[np.ndarray] = []
        RAs: list[np.ndarray | None] = [None]
        for k, (V, c) in enumerate(dirs):
            RZ = inputs[k] @ V.T
            RZ += c
            RA = RAs[k]
            if RA is not None:
                RZ += RA @ self._W[k].T
            RZs.append(RZ)
            if k < last:
                RAs.append(d1[k] * RZ)
        Y, T, U, w, objective = self._out
        Rdelta = objective.hess_times(Y, T, U, RZs[last])
        Rdelta *= w
        # R-backward.
        for k in range(last, -1, -1):
            sl = net.slices[k]
            blk = Hv[sl.w_start : sl.w_stop].reshape(sl.n_out, sl.n_in)
            np.matmul(Rdelta.T, inputs[k], out=blk)
            RA = RAs[k]
            if RA is not None:
                blk += deltas[k].T @ RA
            np.sum(Rdelta, axis=0, out=Hv[sl.b_start : sl.b_stop])
            if k:
                back = Rdelta @ self._W[k]
                back += deltas[k] @ dirs[k][0]
                back *= d1[k - 1]
                e = e2[k - 1] * RZs[k - 1]
                back += e
                Rdelta = back
        self.n_matvec += 1
        return Hv

    __call__ = matvec

    def dense(self) -> np.ndarray:
        """The full Hessian H (P, P), one product per column (for small nets and tests)."""
        P = self.n_params
        H = np.empty((P, P))
        e = np.zeros(P)
        for j in range(P):
            e[j] = 1.0
            self.matvec(e, out=H[:, j])
            e[j] = 0.0
        return H


class MLP:
    """Fully connected network; hidden layers use ``activation``, the output layer is linear.

    Parameters
    ----------
    layer_sizes : sequence of int, e.g. ``[5, 32, 32, 3]`` (inputs, hidden..., outputs)
    activation : "tanh", "relu", "sigmoid" or "identity"
    seed : int, for ``np.random.default_rng`` (weights ~ N(0, gain / n_in), biases 0)
    """

    def __init__(self, layer_sizes, activation: str = "tanh", seed: int = 0) -> None:
        sizes = [int(n) for n in layer_sizes]
        if len(sizes) < 2 or any(n < 1 for n in sizes):
            raise ValueError("layer_sizes needs at least two positive sizes")
        self.layer_sizes: list[int] = sizes
        self.activation = activation
        self._act = get_activation(activation)
        self.slices: list[LayerSlice] = []
        off = 0
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w_stop = off + n_in * n_out
            self.slices.append(LayerSlice(k, n_in, n_out, off, w_stop, w_stop + n_out))
            off = w_stop + n_out
        self.n_params = off
        self.params = np.zeros(off)
        self.layers: list[tuple[np.ndarray, np.ndarray]] = [
            (
                self.params[s.w_start : s.w_stop].reshape(s.n_out, s.n_in),
                self.params[s.b_start : s.b_stop],
            )
            for s in self.slices
        ]
        self.init_params(seed)

    # --------------------------------------------------------------- pickling
    def __getstate__(self) -> dict:
        # ``layers`` are views into ``params``; pickled as they are they would come back as
        # copies, and the optimiser would update weights the forward pass no longer reads.
        state = self.__dict__.copy()
        del state["layers"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.layers = self.views(self.params)

    # ------------------------------------------------------------------ set-up
    def init_params(self, seed: int) -> None:
        """Draw fresh weights from ``np.random.default_rng(seed)``; biases are zero."""
        rng = np.random.default_rng(seed)
        gain = 2.0 if self.activation == "relu" else 1.0
        for W, b in self.layers:
            W[...] = rng.normal(0.0, np.sqrt(gain / W.shape[1]), size=W.shape)
            b[...] = 0.0

    def set_activation(self, activation: str) -> None:
        """Change the hidden activation; the weights stay as they are."""
        self._act = get_activation(activation)
        self.activation = activation

    def param_names(self) -> list[str]:
        """Short labels of the parameter groups in flat order: W1, b1, W2, b2, ..."""
        return [f"{p}{s.index + 1}" for s in self.slices for p in ("W", "b")]

    @property
    def n_in(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_out(self) -> int:
        return self.layer_sizes[-1]

    # ----------------------------------------------------------------- forward
    def _forward(self, X: np.ndarray, params: np.ndarray | None = None):
        """Return (inputs per layer, pre-activations per hidden layer, outputs Y)."""
        layers = self.layers if params is None else self.views(params)
        A = np.ascontiguousarray(X, dtype=np.float64)
        inputs, Zs = [], []
        last = len(layers) - 1
        for k, (W, b) in enumerate(layers):
            inputs.append(A)
            Z = A @ W.T
            Z += b
            if k == last:
                return inputs, Zs, Z
            Zs.append(Z)
            A = self._act.forward(Z, np.empty_like(Z))
        raise AssertionError("unreachable")

    def views(self, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W, b) views into another flat vector with this network's layout."""
        return [
            (
                params[s.w_start : s.w_stop].reshape(s.n_out, s.n_in),
                params[s.b_start : s.b_stop],
            )
            for s in self.slices
        ]

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Outputs Y (B, n_out) for inputs X (B, n_in)."""
        self._check_X(X)
        return self._forward(X)[2]

    def loss_matrix(
        self, X, T, loss: str | Loss | Objective = "mse", huber_delta: float = 1.0
    ) -> np.ndarray:
        """M (B, n_out): elementwise losses; for mse ``(Y - T)**2``."""
        if not isinstance(loss, Objective):
            loss = Objective(loss, huber_delta=huber_delta)
        T = self._check_T(X, T)
        return loss.matrix(self.forward(X), T)

    def loss(
        self, X, T, loss: str | Loss | Objective = "mse", reduction: str = "mean", **kw
    ) -> float:
        """The one scalar that is backpropagated (float): M reduced by ``reduction``.

        ``loss`` is a registered loss's name (``core.losses.loss_names()``), a Loss, or a whole
        ``Objective``; ``kw``: output_weights (O,), sample_weights (B,), huber_delta, as the
        fields of ``Objective``. The same arguments for every method below.

        For mse + mean this is ``mean((T - Y)**2)`` over all B x n_out entries (to the last
        bit or so: it sums over outputs first, then over samples).
        """
        objective = Objective.of(loss, reduction, **kw)
        T = self._check_T(X, T)
        return objective.evaluate(self._forward(X)[2], T)[1].value

    # ---------------------------------------------------------------- backward
    def backprop(
        self, X, T, loss: str | Loss | Objective = "mse", reduction: str = "mean", **kw
    ) -> Backprop:
        """Forward and backward pass, kept factored (see ``Backprop``)."""
        objective = Objective.of(loss, reduction, **kw)
        T = self._check_T(X, T)
        inputs, Zs, Y = self._forward(X)
        M, red = objective.evaluate(Y, T)
        delta = objective.grad(Y, T, red.coefficients)
        deltas = [delta]
        for k in range(len(self.layers) - 1, 0, -1):
            W = self.layers[k][0]
            Z, A = Zs[k - 1], inputs[k]
            dprev = delta @ W
            dprev *= self._act.derivative(Z, A, np.empty_like(Z))
            deltas.append(dprev)
            delta = dprev
        deltas.reverse()
        return Backprop(self, inputs, deltas, red, Y, M)

    def gradient(
        self, X, T, loss: str | Loss | Objective = "mse", reduction: str = "mean", **kw
    ) -> np.ndarray:
        """Gradient (P,) of the reduced scalar by one vectorised backward pass.

        The output delta is scaled by each sample's weight w_i before the backward pass, so this
        is the ordinary "backpropagate the scalar" gradient.
        """
        objective = Objective.of(loss, reduction, **kw)
        T = self._check_T(X, T)
        inputs, Zs, Y = self._forward(X)
        _, red = objective.evaluate(Y, T)
        delta = objective.grad(Y, T, red.coefficients) * red.weights[:, None]
        g = np.empty(self.n_params)
        for k in range(len(self.layers) - 1, -1, -1):
            sl = self.slices[k]
            np.matmul(delta.T, inputs[k], out=g[sl.w_start : sl.w_stop].reshape(sl.n_out, sl.n_in))
            np.sum(delta, axis=0, out=g[sl.b_start : sl.b_stop])
            if k:
                dprev = delta @ self.layers[k][0]
                dprev *= self._act.derivative(Zs[k - 1], inputs[k], np.empty_like(Zs[k - 1]))
                delta = dprev
        return g

    def hessian_operator(
        self, X, T, loss: str | Loss | Objective = "mse", reduction: str = "mean", **kw
    ) -> HessianOperator:
        """The Hessian of the reduced loss on (X, T) as an operator v -> H v (see
        ``HessianOperator``): one forward and backward pass now, about one gradient per
        product after (``benchmarks/bench_engine.py``, section 7). Keyword arguments as for
        ``gradient`` (output_weights, sample_weights, huber_delta)."""
        return HessianOperator(self, X, T, loss, reduction, **kw)

    def hvp(
        self, X, T, v, loss: str | Loss | Objective = "mse", reduction: str = "mean", **kw
    ) -> np.ndarray:
        """Exact Hessian-vector product H v (P,) of the reduced loss, for v (P,).

        Same arguments as ``gradient``; forward-over-reverse (Pearlmutter's R-operator) through
        the factored backward pass. To multiply many vectors at the same weights, make one
        ``hessian_operator`` and call it: that skips repeating the plain pass.
        """
        return HessianOperator(self, X, T, loss, reduction, **kw).matvec(v)

    def per_sample_gradients(
        self,
        X,
        T,
        loss: str | Loss | Objective = "mse",
        reduction: str = "mean",
        out=None,
        **kw,
    ) -> np.ndarray:
        """G (B, P): row i is the gradient of sample i's own loss L_i.

        L_i is sample i's row of M reduced over the outputs (the mean over outputs for mse, the
        sum for cross-entropy, the per-output weights for ``weighted``, the largest entry for
        ``max``). All rows come from one vectorised pass (outer products of each layer's input
        activations and deltas), so ``w @ G`` equals ``gradient`` to round-off, and with
        reduction "mean" ``G.mean(axis=0) == gradient(X, T)`` to ~1e-12.

        out : optional preallocated (B, P) float64 array to write into.
        """
        bp = self.backprop(X, T, loss, reduction, **kw)
        return bp.per_sample(out=out)

    # ------------------------------------------------------------------ checks
    def _check_X(self, X) -> None:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"X must be (B, {self.n_in}); got {X.shape}")

    def _check_T(self, X, T) -> np.ndarray:
        self._check_X(X)
        T = as_one_hot(T, self.n_out)
        if T.shape != (np.shape(X)[0], self.n_out):
            raise ValueError(f"T must be (B, {self.n_out}); got {T.shape}")
        return T

    def __repr__(self) -> str:
        return f"MLP({self.layer_sizes}, activation={self.activation!r}, P={self.n_params})"
