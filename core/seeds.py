"""Named random streams: every random draw in the engine comes from ``rng_for(seed, purpose)``.

One run's seed feeds several independent streams (the minibatch order, the plane's random
directions, the surface's samples ...). Each purpose has its own fixed stream number, so
drawing more from one stream never shifts another, and the same seed always gives the same
run. The numbers are those the session and the experiments have always used, so runs are
unchanged. Generators are passed in (``np.random.default_rng``); the global RNG is never used.

The network's initial weights (``MLP(seed=...)``) and the data set (``make_dataset``) draw from
``np.random.default_rng(seed)`` itself, stream ``"weights"`` / ``"data"`` here.

>>> rng_for(0, "sampler").integers(10)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

__all__ = ["STREAMS", "rng_for"]

#: purpose -> stream number; ``None`` means the plain seed (``default_rng(seed)``)
STREAMS: dict[str, int | None] = {
    "weights": None,  #: core.mlp.MLP's initial weights
    "data": None,  #: core.data.make_dataset
    "sampler": 1,  #: the order of the minibatches
    "plane": 2,  #: random plane directions (and the fall-backs of the gradient plane)
    "surface_samples": 3,  #: which training samples the live surface is computed on
    "batch_noise": 4,  #: the minibatches of the measured 1/sqrt(B) panel
    "batch_noise_population": 5,  #: the subset of a large training set it draws from
    "race_plane": 7,  #: the batch-size race's plane (when PCA cannot make one)
    "reductions_lab": 11,  #: the reductions lab's batch, plane and cloud of nearby weights
    "critical_batch": 12,  #: the critical-batch runs' minibatches (one stream per B)
    "noise_scale": 13,  #: the noise-scale tracker's big batches
    "misconception_plane": 17,  #: the dL/dY experiment's fall-back second direction
}


def rng_for(seed: int, purpose: str, *keys: int) -> np.random.Generator:
    """The generator of stream ``purpose`` (a key of ``STREAMS``) for run seed ``seed``;
    ``keys`` split a stream further (e.g. one per batch size: ``rng_for(s, "critical_batch",
    B)``).

    Raises KeyError naming the known purposes for an unknown one (a typo would otherwise
    silently share a stream).
    """
    try:
        stream = STREAMS[purpose]
    except KeyError:
        raise KeyError(f"unknown random stream {purpose!r}; known: {', '.join(STREAMS)}") from None
    if stream is None and not keys:
        return np.random.default_rng(seed)
    return np.random.default_rng([seed, *([] if stream is None else [stream]), *keys])
