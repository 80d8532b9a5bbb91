"""Soak benchmark: a long run with every view live, offscreen.

Trains N steps (default 20,000) in the real window and samples, every ``--every`` steps, the
resident memory (RSS of the window's process plus the engine process) and the redraw rate.
Prints a table, the memory growth after warm-up and the spread of the redraw rate, then
PASS/MISS against the targets of issue 6: growth < 30 MB after warm-up, redraw rate steady (no
window slower than half the median).

    python benchmarks/bench_soak.py            # 20,000 steps
    python benchmarks/bench_soak.py --steps 3000 --every 500
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def soak(steps: int, every: int, warmup: int, config=None, timeout: float = 600.0) -> dict:
    """Run the window until ``steps`` steps; return the samples and the summary figures."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("BATCHSCOPE_SETTINGS", os.path.join(tempfile.mkdtemp(), "s.ini"))
    import gc

    import psutil
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from core import Config
    from gui.app import make_app
    from gui.main_window import MainWindow

    app = make_app()
    proc = psutil.Process()
    window = MainWindow(config or Config(), run=True, remember=False)
    window.resize(1600, 1000)
    window.show()
    samples: list[dict] = []
    clock = QElapsedTimer()
    clock.start()
    state = {"next": every, "redraws": 0, "t": 0.0}
    loop = QEventLoop()

    def poll() -> None:
        snap = window.last_snapshot
        step = snap.step if snap is not None else 0
        if step >= state["next"]:
            gc.collect()
            now = clock.elapsed() / 1000
            dt = max(now - state["t"], 1e-9)
            samples.append(
                {
                    "step": step,
                    "seconds": now,
                    "rss_mb": _rss_mb(proc),
                    "redraws_per_s": (window.redraw_count - state["redraws"]) / dt,
                    "redraw_ms_p95": _p95(window.redraw_ms),
                    "steps_per_s": snap.steps_per_second,
                }
            )
            state.update(next=state["next"] + every, redraws=window.redraw_count, t=now)
        if step >= steps or clock.elapsed() > timeout * 1000:
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    loop.exec()
    timer.stop()
    window.close()
    window.deleteLater()
    app.processEvents()
    after = [s for s in samples if s["step"] >= warmup]
    growth = after[-1]["rss_mb"] - after[0]["rss_mb"] if len(after) > 1 else float("nan")
    rates = sorted(s["redraws_per_s"] for s in after[1:]) or [float("nan")]
    median = rates[len(rates) // 2]
    return {
        "samples": samples,
        "growth_mb": growth,
        "redraw_median": median,
        "redraw_min": rates[0],
        "steps_done": samples[-1]["step"] if samples else 0,
    }


def _rss_mb(proc) -> float:
    """Resident memory of the window's process and its children (the engine process)."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except Exception:  # the child may just have ended
            pass
    return total / 2**20


def _p95(values) -> float:
    v = sorted(values)
    return v[int(0.95 * (len(v) - 1))] if v else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=3000)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = soak(args.steps, args.every, min(args.warmup, args.steps // 2))
    wall = time.perf_counter() - t0
    print(f"Soak: {out['steps_done']:,} steps with every view live, offscreen, in {wall:.1f} s")
    print(
        f"{'step':>8} {'seconds':>8} {'RSS MB':>8} {'redraws/s':>10} {'redraw p95 ms':>14} "
        f"{'steps/s':>8}"
    )
    for s in out["samples"]:
        print(
            f"{s['step']:>8} {s['seconds']:>8.1f} {s['rss_mb']:>8.1f} "
            f"{s['redraws_per_s']:>10.1f} {s['redraw_ms_p95']:>14.1f} {s['steps_per_s']:>8.0f}"
        )
    growth = out["growth_mb"]
    steady = out["redraw_min"] >= 0.5 * out["redraw_median"]
    print()
    print(
        f"RSS growth after warm-up ({min(args.warmup, args.steps // 2):,} steps): "
        f"{growth:+.1f} MB   target < 30 MB   {'PASS' if growth < 30 else 'MISS'}"
    )
    print(
        f"redraw rate: median {out['redraw_median']:.1f}/s, slowest window "
        f"{out['redraw_min']:.1f}/s   target: steady (slowest >= half the median)   "
        f"{'PASS' if steady else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
