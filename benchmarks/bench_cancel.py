"""How fast each experiment stops when asked: the cancel latency at a wide network.

Each experiment runs in a thread (as in the window); after a delay the cancel flag is set,
and the time until the experiment's function returns is the latency. Several delays per
experiment land the request in different parts of the work (training steps, timing repeats,
loss-grid chunks). One process, one BLAS thread (as main.py sets it).

    .venv/bin/python benchmarks/bench_cancel.py               # hidden 2048,2048
    .venv/bin/python benchmarks/bench_cancel.py --hidden 512,512 --delays 0.5,2
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import Config  # noqa: E402
from core.config import parse_hidden  # noqa: E402
from core.experiments.cost_lab import run_cost_lab  # noqa: E402
from core.experiments.dldy import run_misconception  # noqa: E402
from core.experiments.race import run_batch_race  # noqa: E402
from core.experiments.reductions_lab import run_reductions_lab  # noqa: E402


def experiments(cfg: Config):
    """name -> fn(progress, cancel), as the tabs call them (full, not quick)."""
    sizes = [5, *cfg.hidden, 3]
    return {
        "cost_lab": lambda p, c: run_cost_lab(sizes, progress=p, cancel=c),
        "batch_race": lambda p, c: run_batch_race(cfg, (1, 8, 32, None), progress=p, cancel=c),
        "reductions": lambda p, c: run_reductions_lab(cfg, progress=p, cancel=c),
        "misconception": lambda p, c: run_misconception(cfg, progress=p, cancel=c),
    }


def latency(fn, delay: float) -> tuple[float, str]:
    """Seconds from setting the flag to the function's return, and where it was."""
    flag = threading.Event()
    where = ["start"]
    finished = threading.Event()

    def progress(done, total, text):
        where[0] = text

    def body():
        fn(progress, flag.is_set)
        finished.set()

    t = threading.Thread(target=body, daemon=True)
    t.start()
    if finished.wait(delay):
        return float("nan"), "finished before the request"
    t0 = time.perf_counter()
    flag.set()
    finished.wait(60)
    return time.perf_counter() - t0, where[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", default="2048,2048")
    ap.add_argument("--delays", default="0.3,1.5,4,10")
    ap.add_argument("--lr", default="0.005")
    args = ap.parse_args()
    # lr 0.005: at the default 0.05 a 2048-wide network diverges within a few steps, and the
    # race would stop its runs early instead of training
    cfg = Config(hidden=parse_hidden(args.hidden), lr=float(args.lr))
    delays = [float(x) for x in args.delays.split(",")]
    print(f"cancel latency, hidden {args.hidden}, delays {delays} s after the start")
    print(f"{'experiment':<15}{'worst (s)':>10}   per delay: latency (s) @ where")
    for name, fn in experiments(cfg).items():
        got = [latency(fn, d) for d in delays]
        worst = max((g[0] for g in got if g[0] == g[0]), default=float("nan"))
        detail = "; ".join(f"{lat:.3f} @ {w}" for lat, w in got)
        print(f"{name:<15}{worst:>10.3f}   {detail}", flush=True)


if __name__ == "__main__":
    main()
