"""Cost of tracking lambda_max live (core/sharpness.py).

Run from the repository root::

    python benchmarks/bench_sharpness.py           # about half a minute
    python benchmarks/bench_sharpness.py --quick   # smoke run, figures rough

Per case: one training step (``Session.step(detail=False)``), one warm-started measurement of
lambda_max on a fixed training batch of the run's batch size (tol 1e-4), their ratio, the
interval that keeps tracking at 10 % of training time, and the share tracking took in a run
driving ``SharpnessTracker`` with its adaptive cadence beside the session's steps.
Everything is measured in this one process; times are the best of several repeats.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import best_of  # noqa: E402
from core import Config, Session  # noqa: E402
from core.curvature import top_eigenpair  # noqa: E402
from core.sharpness import COST_FRACTION, TOL, SharpnessTracker  # noqa: E402

CASES = [
    ("default, B = 32", Config()),
    ("default, B = 128", Config(batch_size=128)),
    ("hidden 256,256, B = 32", Config(hidden=(256, 256), lr=0.01)),
]


def row(label: str, cfg: Config, quick: bool, run_steps: int) -> list[str]:
    s = Session(cfg)
    s.run(20, detail_last=False)
    t_step = best_of(lambda: s.step(detail=False), 3 if quick else 5, 20 if quick else 100)
    b = cfg.batch_size
    X, T = s.data.X_train[:b], s.data.T_train[:b]
    kw = {"loss": cfg.loss, "reduction": cfg.reduction}
    v = top_eigenpair(s.net.hessian_operator(X, T, **kw), s.net.n_params, None, TOL).vector

    def measure():
        top_eigenpair(s.net.hessian_operator(X, T, **kw), s.net.n_params, v, TOL)

    t_meas = best_of(measure, 3 if quick else 5, 3 if quick else 10)
    k = max(1, math.ceil(t_meas / (COST_FRACTION * t_step)))
    r = Session(cfg)
    tr = SharpnessTracker(X, T)
    last = 0.0
    t0 = time.perf_counter()
    for i in range(run_steps):
        ts = time.perf_counter()
        tr.observe(i, r.net, kw, cfg.optimizer, cfg.lr, last_step_seconds=last)
        r.step(detail=False)
        last = time.perf_counter() - ts
    total = time.perf_counter() - t0
    share = tr.seconds_measuring / max(total - tr.seconds_measuring, 1e-9)
    return [
        label,
        f"{t_step * 1e3:.3f}",
        f"{t_meas * 1e3:.3f}",
        f"{t_meas / t_step:.1f}",
        str(k),
        str(tr.interval),
        f"{100 * share:.1f} %",
        str(tr.measurements),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    steps = 300 if a.quick else 2000
    head = ["case", "step ms", "lambda ms", "ratio", "k(10%)", "live k", "live share", "meas"]
    rows = [row(lbl, cfg, a.quick, steps) for lbl, cfg in CASES]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
