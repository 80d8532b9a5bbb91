"""Run time of the critical batch size experiment (core/experiments/critical_batch.py).

Run from the repository root::

    python benchmarks/bench_critical_batch.py           # about half a minute
    python benchmarks/bench_critical_batch.py --quick   # the quick version only

On the default settings (5-32-32-3, SGD, the teacher task, 1,024 training samples): the quick
version (``--export-dir``: B = 1, 4, 16, ... the set, target from 100 full-batch steps) and the
full one (B = 1, 2, 4, ..., target from 300 steps), each the best of ``--repeats`` runs in this
one process, with the share of each in training steps of the largest batch (a reference: one
full-batch gradient) and the figures it measures (B_crit, B_noise, their ratio).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from core import MLP, Config  # noqa: E402
from core.data import make_dataset  # noqa: E402
from core.experiments.critical_batch import run_critical_batch  # noqa: E402


def best_of(fn, repeats: int) -> tuple[float, object]:
    """(the shortest time in seconds, the last result) of ``repeats`` calls of ``fn``."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def full_batch_gradient_seconds(config: Config) -> float:
    """One gradient of the whole training set (the experiment's unit of work), one thread."""
    data = make_dataset(config)
    net = MLP(config.layer_sizes(data.n_in, data.n_out), config.activation, seed=config.seed)
    with threadpool_limits(limits=1, user_api="blas"):
        t, _ = best_of(lambda: [net.gradient(data.X_train, data.T_train) for _ in range(20)], 3)
    return t / 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the quick version only")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    config = Config()
    unit = full_batch_gradient_seconds(config)
    print(f"one full-batch gradient (1,024 samples, P = 1,347): {1e3 * unit:.2f} ms")
    for quick in (True,) if args.quick else (True, False):
        t, r = best_of(lambda q=quick: run_critical_batch(config, quick=q), args.repeats)
        name = "quick" if quick else "full "
        print(
            f"{name}: {t:6.2f} s = {t / unit:8,.0f} full-batch gradients · "
            f"{len(r.points)} batch sizes · B_crit {r.fit.B_crit:.3g} · B_noise {r.B_noise:,.0f} "
            f"(at the start {r.B_noise_start:.3g}) · B_crit / B_noise {r.ratio:.2g}"
        )


if __name__ == "__main__":
    main()
