"""Cost and truth of the live noise scale (core/noise_scale.py).

Run from the repository root::

    python benchmarks/bench_noise_scale.py           # about a minute
    python benchmarks/bench_noise_scale.py --quick   # smoke run, figures rough

1. Cost: one measurement (the exact pass over the training set, or the two-batch estimator's
   larger sample) against one training step (``Session.step(detail=False)``, estimator off),
   side by side, the interval that keeps it at 10 % of training time, and the share it took in
   a real run with the adaptive cadence.
2. Truth: after training at B = 8, 32 and 128, the live value (``snap.stats.noise_scale``),
   the one-batch ratio it replaced (``noise_scale_batch``), the exact value at the same
   weights, and the two-batch estimate at those weights (many draws), side by side.

Everything is measured in this one process; times are the best of several repeats.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks.report import best_of, section, table  # noqa: E402
from core import Config, Session  # noqa: E402
from core.noise_scale import (  # noqa: E402
    COST_FRACTION,
    NoiseScaleTracker,
    big_batch_size,
    exact_moments,
)


def loss_kw(s: Session) -> dict:
    return {"loss": s.config.loss, "reduction": s.config.reduction}


CASES = [
    # label, config
    ("default, B = 8", Config(batch_size=8)),
    ("default, B = 32", Config()),
    ("default, B = 128", Config(batch_size=128)),
    ("hidden 256,256, B = 32", Config(hidden=(256, 256), lr=0.01)),
    ("n = 4,096, B = 32", Config(n_samples=5120)),
    ("n = 16,000, B = 32 (two-batch)", Config(n_samples=20_000)),
]


def cost_row(label: str, cfg: Config, quick: bool, run_steps: int) -> list[str]:
    s = Session(cfg)
    n = s.data.n_train
    s._noise_scale = NoiseScaleTracker(n, np.random.default_rng(0), interval=10**9)
    s.run(20, detail_last=False)
    t_step = best_of(lambda: s.step(detail=False), 3 if quick else 5, 20 if quick else 100)
    X, T = s.data.X_train, s.data.T_train
    kw = loss_kw(s)
    if s._noise_scale.mode == "exact":
        what = f"exact, {n:,}"

        def measure():
            with threadpool_limits(limits=1, user_api="blas"):
                exact_moments(s.net, X, T, kw)

    else:
        bb = big_batch_size(cfg.batch_size, n)
        what = f"two-batch, {bb:,}+"
        rng = np.random.default_rng(1)

        def measure():
            with threadpool_limits(limits=1, user_api="blas"):
                idx = np.sort(rng.choice(n, bb, replace=False))
                bp = s.net.backprop(X[idx], T[idx], **kw)
                bp.combine(np.full(bb, 1.0 / bb))

    t_meas = best_of(measure, 3 if quick else 5, 5 if quick else 20)
    ratio = t_meas / t_step
    k = max(1, math.ceil(ratio / COST_FRACTION))
    # a real run with the adaptive cadence
    r = Session(cfg)
    t0 = time.perf_counter()
    r.run(run_steps, detail_last=False)
    total = time.perf_counter() - t0
    trk = r._noise_scale
    return [
        label,
        what,
        f"{t_step * 1e3:.3f} ms",
        f"{t_meas * 1e3:.3f} ms",
        f"{ratio:.1f}",
        f"{k}",
        f"{trk.interval}",
        f"{trk.measurements}",
        f"{trk.seconds_measuring / total:.1%}",
    ]


def bench_cost(quick: bool) -> None:
    section("1. Cost of a measurement against a training step")
    run_steps = 300 if quick else 3000
    rows = [cost_row(label, cfg, quick, run_steps) for label, cfg in CASES]
    table(
        [
            "case",
            "measurement",
            "train step",
            "measure",
            "ratio",
            "k @10%",
            "live k",
            "meas.",
            f"share of {run_steps} steps",
        ],
        rows,
    )
    print()
    print("  ratio = one measurement / one training step (detail off, estimator off); k @10% =")
    print("  the interval that keeps measuring at 10 % of training time by these best-of times;")
    print("  live k = the interval the tracker chose from its own running times at the end of a")
    print("  real run, and its share of that run's wall time (includes the first steps, which")
    print("  measure before the times are known). Measurements run on one BLAS thread. The")
    print("  two-batch sample starts at 512 and grows to 2 x the estimate (so the live k grows).")


def bench_truth(quick: bool) -> None:
    steps = 500 if quick else 3000
    draws = 100 if quick else 600
    jitter_steps = 50 if quick else 200
    section(f"2. The live noise scale after {steps:,} steps against the exact value")
    rows = []
    for B in (8, 32, 128):
        s = Session(Config(batch_size=B))
        snap = s.run(steps, detail_last=False)
        st = snap.stats
        X, T = s.data.X_train, s.data.T_train
        g2, tr, _ = exact_moments(s.net, X, T, loss_kw(s))
        exact_now = tr / g2
        # the live value at these weights (measure now, whatever the cadence)
        w = s.net.params.copy()
        s._noise_scale.request()
        live = s.step(detail=False).stats  # measured before this step's update, at w
        s.net.params[...] = w  # back to w for the two-batch estimate
        # the two-batch estimator at the same (fixed) weights, minibatches of B
        n = len(X)
        trk = NoiseScaleTracker(
            n, np.random.default_rng(B), exact_max=0, interval=1, decay=1 - 1 / draws
        )
        rng = np.random.default_rng([B, 2])
        Gm = s.net.per_sample_gradients(X, T)
        for k in range(draws):
            gs = Gm[rng.choice(n, B, replace=False)].mean(axis=0)
            est = trk.observe(k, s.net, X, T, loss_kw(s), float(gs @ gs), B)
        # the exact value at the iterate, every step for a while (how much it jitters)
        s.net.params[...] = w
        s._noise_scale = NoiseScaleTracker(n, np.random.default_rng(0), interval=1)
        series = np.array([s.step(detail=False).stats.noise_scale for _ in range(jitter_steps)])
        lo, med, hi = np.percentile(series, [10, 50, 90])
        rows.append(
            [
                f"{B}",
                f"{st.noise_scale_batch:,.1f}",
                f"{st.noise_scale:,.0f} ({st.noise_scale_age} old)",
                f"{exact_now:,.0f}",
                f"{live.noise_scale:,.0f}",
                f"{est.noise_scale:,.0f} ± {est.noise_scale_err:,.0f}",
                f"{med:,.0f} ({lo:,.0f}-{hi:,.0f})",
            ]
        )
    table(
        [
            "B",
            "one-batch ratio",
            "live at the last step",
            "exact, same weights",
            "live, measured now",
            f"two-batch, {draws} draws",
            f"next {jitter_steps} steps: median (10-90 %)",
        ],
        rows,
        first_left=False,
    )
    print()
    print("  The one-batch ratio tr(Sigma_B)/|gbar|^2 (what the view showed before) echoes B;")
    print("  the live value is the exact noise scale of the training set (at most a few dozen")
    print("  steps old); the two-batch estimator (used for training sets over 4,096) finds the")
    print("  same value from minibatches of any B. Each B trains its own run, so the three")
    print("  exact values differ: they are three different weights. Late in a run |G| at the")
    print("  weights is mostly SGD's own jitter (it shrinks with larger B or smaller lr), so the")
    print("  exact value at the iterate moves from step to step (last column: measured every")
    print("  step) and its level grows with B; the live value shown is one of those, with its age.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run, figures rough")
    args = ap.parse_args()
    print("Batchscope noise-scale benchmark")
    print(f"  Python {sys.version.split()[0]}, NumPy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"  load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    bench_cost(args.quick)
    bench_truth(args.quick)


if __name__ == "__main__":
    main()
