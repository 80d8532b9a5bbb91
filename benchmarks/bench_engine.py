"""Speed of the engine: the scalar backward pass, per-sample gradients and the loss grid.

Run from the repository root::

    python benchmarks/bench_engine.py           # full run, under a minute
    python benchmarks/bench_engine.py --quick   # smoke run, a few seconds, figures rough

Everything is measured in this one process, so the ratios are fair even where the absolute times
depend on the machine. A time is the best of several repeats (``time.perf_counter``), each repeat
long enough to be above the timer's resolution; the tables show absolute times and ratios side by
side, and a last section says PASS or MISS for each target with its figure.

What is compared (the question in docs/the-question.md, point 5):

* ``net.gradient(X, T)``: backpropagate the scalar mean loss once -> P partial derivatives;
* ``net.per_sample_gradients(X, T, out=G)``: all B per-sample gradients (B x P partials) from one
  vectorised pass, then their mean;
* the per-sample loop: B separate backward passes ``net.gradient(X[i:i+1], T[i:i+1])``, then
  their mean -- the "B times the work" the question is about;
* ``loss_grid`` (41 x 41 points of a plane, 512 samples, float32 and float64) against
  ``loss_grid_loop`` (one forward pass per grid point);
* ``Session.step`` with and without the drawing details, in steps per second;
* ``net.hvp`` (exact Hessian-vector product) against ``net.gradient``, and the Hessian-vector
  products Lanczos (``core.curvature``) spends on lambda_max from a cold and a warm start.

The script reads the environment (OPENBLAS_CORETYPE etc.) and prints it; it changes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.report import section, table  # noqa: E402
from core.curvature import top_eigenpair  # noqa: E402
from core.landscape import loss_grid, loss_grid_loop, random_plane  # noqa: E402
from core.mlp import MLP  # noqa: E402
from core.session import Session  # noqa: E402

try:  # minor page faults per call (Unix only)
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

N_IN, N_OUT = 5, 3
HIDDEN = 64
BATCH = 32
GRID_SAMPLES = 512
GRID_RES = 41
BATCH_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256)
WIDTH_SWEEP = (16, 32, 64, 128, 256, 512, 1024)
FAULT_WIDTHS = (64, 256, 1024)

# Targets (checked in the last section).
MAX_PER_SAMPLE_OVER_SCALAR = 2.5
MIN_LOOP_OVER_VECTORISED = 5.0
MIN_GRID_SPEED_UP = 4.0
MAX_GRID_SECONDS = 0.300
MAX_GRADIENT_DIFF = 1e-12
MAX_HVP_OVER_GRADIENT = 3.0


# --------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class Settings:
    """How hard to measure: ``repeats`` timed repeats, each at least ``min_time`` seconds of
    calls; a slow call is repeated at most until ``budget`` seconds are spent on it.
    ``warm_up``: the first call is not timed (with False it counts as a repeat)."""

    repeats: int
    min_time: float
    budget: float
    session_steps: int
    warm_up: bool = True


FULL = Settings(repeats=7, min_time=0.02, budget=1.5, session_steps=200)
QUICK = Settings(repeats=2, min_time=0.002, budget=0.05, session_steps=20, warm_up=False)


@dataclass(frozen=True)
class Timing:
    """Seconds per call: ``best`` and ``median`` over the repeats; ``faults`` is the number of
    minor page faults per call (nan where unavailable)."""

    best: float
    median: float
    number: int
    repeats: int
    faults: float


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def measure_many(
    fns: dict[str, Callable[[], object]], s: Settings, max_repeats: int | None = None
) -> dict[str, Timing]:
    """Time each ``fn()`` of ``fns``, their repeats interleaved round-robin.

    Each function gets one warm-up call, then up to ``s.repeats`` repeats of ``number`` calls,
    with ``number`` chosen so that a repeat lasts at least ``s.min_time``. The repeats of a slow
    call are capped so that it costs about ``s.budget`` seconds at most (at least one repeat; in
    a quick run a call slower than the budget is timed once, cold). Interleaving the repeats
    means that a burst of load from another process falls on all the compared functions alike,
    so the ratios between them stay fair.
    """
    cap = s.repeats if max_repeats is None else min(s.repeats, max_repeats)
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        plan: dict[str, tuple[int, int]] = {}  # name -> (number, timed repeats)
        times: dict[str, list[float]] = {}
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            first = max(time.perf_counter() - t0, 1e-9)
            number = max(1, math.ceil(s.min_time / first))
            repeats = max(1, min(cap, int(s.budget / (first * number))))
            times[name] = [] if s.warm_up else [first]
            plan[name] = (number, max(0 if times[name] else 1, repeats - len(times[name])))
        faults = dict.fromkeys(fns, 0)
        spent = dict.fromkeys(fns, 0.0)
        done = dict.fromkeys(fns, 0)
        for r in range(max(n for _, n in plan.values())):
            for name, fn in fns.items():
                number, n_timed = plan[name]
                # Stop early once over budget (calls can be slower than the first one when
                # other processes compete for the cores).
                if r >= n_timed or (r > 0 and spent[name] >= s.budget):
                    continue
                f0 = _minor_faults()
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                dt = time.perf_counter() - t0
                spent[name] += dt
                done[name] += 1
                times[name].append(dt / number)
                faults[name] += _minor_faults() - f0
    finally:
        if gc_was_on:
            gc.enable()
    out = {}
    for name, (number, _) in plan.items():
        t = times[name]
        n_timed = done[name]
        per_call = faults[name] / (n_timed * number) if resource and n_timed else float("nan")
        out[name] = Timing(min(t), float(np.median(t)), number, len(t), per_call)
    return out


def measure(fn: Callable[[], object], s: Settings, max_repeats: int | None = None) -> Timing:
    """Time one function (see ``measure_many``)."""
    return measure_many({"fn": fn}, s, max_repeats)["fn"]


# --------------------------------------------------------------------------- formatting
def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def fmt_ratio(r: float) -> str:
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def fmt_int(n: int) -> str:
    return f"{n:,}"


def load_average() -> str:
    """The 1-minute load average (Linux), to tell a run disturbed by other processes."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


def others_cpu_seconds() -> float:
    """CPU seconds used so far by everything on the machine except this process (Linux:
    busy and steal time from /proc/stat minus our own CPU time; nan elsewhere). The
    difference over a section says whether other work competed for the cores."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    busy = (user + nice + system + irq + softirq + steal) / tick
    me = os.times()
    return busy - (me.user + me.system)


def run_section(bench: Callable[[Settings], object], s: Settings):
    """Run one section and say how much CPU other processes took meanwhile."""
    before, t0 = others_cpu_seconds(), time.perf_counter()
    result = bench(s)
    others, wall = others_cpu_seconds() - before, time.perf_counter() - t0
    if not math.isnan(others):
        disturbed = others > max(0.1 * wall, 0.05)
        flag = "  <- disturbed: treat these figures with care" if disturbed else ""
        print(f"  [section: {wall:.1f} s; other processes used {max(others, 0.0):.1f} CPU-s{flag}]")
    return result


def environment(s: Settings, quick: bool) -> None:
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - only informative
        pass
    env = ", ".join(
        f"{k}={os.environ.get(k, '<unset>')}"
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    )
    print("Batchscope engine benchmark")
    print(
        f"  Python {platform.python_version()}, NumPy {np.__version__}, BLAS {blas}, "
        f"{os.cpu_count()} CPUs ({platform.machine()})"
    )
    print(f"  {env}")
    print(f"  load average (1 min) at start: {load_average()} (other processes skew the times;")
    print("  each section reports the CPU time other processes took while it ran)")
    mode = "QUICK (smoke run: figures are rough)" if quick else "full"
    print(
        f"  mode: {mode}; best of up to {s.repeats} repeats, each >= {s.min_time * 1e3:g} ms "
        "of calls"
    )


# --------------------------------------------------------------------------- workloads
def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs (n, 5) and targets (n, 3) from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, N_IN)), rng.standard_normal((n, N_OUT))


def make_net(width: int = HIDDEN) -> MLP:
    return MLP([N_IN, width, width, N_OUT], activation="tanh", seed=0)


def loop_gradients(net: MLP, X: np.ndarray, T: np.ndarray, G: np.ndarray) -> np.ndarray:
    """B separate backward passes, one per sample, into the rows of G (B, P)."""
    for i in range(X.shape[0]):
        G[i] = net.gradient(X[i : i + 1], T[i : i + 1])
    return G


@dataclass(frozen=True)
class BatchTimes:
    P: int
    B: int
    scalar: Timing
    vec: Timing
    loop: Timing

    @property
    def vec_over_scalar(self) -> float:
        return self.vec.best / self.scalar.best

    @property
    def loop_over_vec(self) -> float:
        return self.loop.best / self.vec.best


def time_batch(net: MLP, X: np.ndarray, T: np.ndarray, s: Settings) -> BatchTimes:
    """Scalar gradient, vectorised per-sample gradients (out=) and the per-sample loop."""
    G = np.empty((X.shape[0], net.n_params))
    G_loop = np.empty_like(G)
    return BatchTimes(
        net.n_params,
        X.shape[0],
        **measure_many(
            {
                "scalar": lambda: net.gradient(X, T),
                "vec": lambda: net.per_sample_gradients(X, T, out=G),
                "loop": lambda: loop_gradients(net, X, T, G_loop),
            },
            s,
        ),
    )


# --------------------------------------------------------------------------- sections
def bench_minibatch(s: Settings) -> dict:
    net = make_net()
    X, T = make_data(BATCH)
    B, P = BATCH, net.n_params
    G = np.empty((B, P))
    G_loop = np.empty((B, P))

    t = measure_many(
        {
            "scalar": lambda: net.gradient(X, T),
            "vec": lambda: net.per_sample_gradients(X, T, out=G),
            "fresh": lambda: net.per_sample_gradients(X, T),
            "vec_mean": lambda: net.per_sample_gradients(X, T, out=G).mean(axis=0),
            "loop": lambda: loop_gradients(net, X, T, G_loop),
            "loop_mean": lambda: loop_gradients(net, X, T, G_loop).mean(axis=0),
        },
        s,
    )
    t_scalar, t_vec, t_loop = t["scalar"], t["vec"], t["loop"]

    g = net.gradient(X, T)
    mean_vec = net.per_sample_gradients(X, T, out=G).mean(axis=0)
    mean_loop = loop_gradients(net, X, T, G_loop).mean(axis=0)
    diffs = {
        "vec_vs_scalar": float(np.max(np.abs(mean_vec - g))),
        "loop_vs_scalar": float(np.max(np.abs(mean_loop - g))),
        "loop_vs_vec_mean": float(np.max(np.abs(mean_loop - mean_vec))),
        "loop_vs_vec_rows": float(np.max(np.abs(G_loop - G))),
        "g_max": float(np.max(np.abs(g))),
    }

    section(
        f"1. One minibatch: {N_IN}-{HIDDEN}-{HIDDEN}-{N_OUT} tanh, B = {B}, float64, "
        f"MSE, mean (P = {fmt_int(P)} parameters)"
    )
    sc = t_scalar.best
    vb = t_vec.best
    rows = [
        ("scalar backward pass: net.gradient(X, T)", t_scalar, P),
        ("per-sample, vectorised per_sample_gradients(out=G)", t_vec, B * P),
        ("per-sample, vectorised, fresh G (no out=)", t["fresh"], B * P),
        ("per-sample, vectorised (out=G), then mean", t["vec_mean"], B * P),
        (f"per-sample loop: {B} x net.gradient(X[i:i+1])", t_loop, B * P),
        (f"per-sample loop: {B} x net.gradient, then mean", t["loop_mean"], B * P),
    ]
    table(
        ["what", "time (best)", "median", "/ scalar", "/ vectorised", "partials"],
        [
            [
                name,
                fmt_time(tm.best),
                fmt_time(tm.median),
                fmt_ratio(tm.best / sc),
                fmt_ratio(tm.best / vb),
                fmt_int(n),
            ]
            for name, tm, n in rows
        ],
    )
    print()
    print(
        f"  per-sample vectorised / scalar : {fmt_ratio(vb / sc)}   (target <= "
        f"{MAX_PER_SAMPLE_OVER_SCALAR}x)"
    )
    print(
        f"  per-sample loop / vectorised   : {fmt_ratio(t_loop.best / vb)}   (target >= "
        f"{MIN_LOOP_OVER_VECTORISED:g}x)"
    )
    print(
        f"  per-sample loop / scalar       : {fmt_ratio(t_loop.best / sc)}   (the 'B = {B} "
        "times the work')"
    )
    print()
    print(
        "  Mean of gradients = gradient of the mean (max |difference|, largest |g_p| = "
        f"{diffs['g_max']:.3g}):"
    )
    print(f"    mean of vectorised per-sample - scalar gradient : {diffs['vec_vs_scalar']:.2e}")
    print(f"    mean of the {B} loop gradients - scalar gradient : {diffs['loop_vs_scalar']:.2e}")
    print(f"    mean of loop - mean of vectorised               : {diffs['loop_vs_vec_mean']:.2e}")
    print(f"    loop rows - vectorised rows (each sample)       : {diffs['loop_vs_vec_rows']:.2e}")
    return {
        "vec_over_scalar": vb / sc,
        "loop_over_vec": t_loop.best / vb,
        **diffs,
    }


def bench_grid(s: Settings) -> dict:
    net = make_net()
    X, T = make_data(GRID_SAMPLES)
    plane = random_plane(net, net.params, np.random.default_rng(0))
    args = (net, X, T, plane, (0.0, 0.0), 1.0, GRID_RES)

    Z: dict[str, np.ndarray] = {}  # the last result of each, kept for the accuracy column

    def grid_loop() -> None:
        Z["loop"] = loss_grid_loop(*args)[2]

    def grid(name: str, kw: dict) -> Callable[[], None]:
        def run() -> None:
            Z[name] = loss_grid(*args, **kw)[2]

        return run

    runs = {
        "loss_grid float32": dict(dtype=np.float32),
        "loss_grid float64": dict(dtype=np.float64),
        "loss_grid float32, threads=2": dict(dtype=np.float32, threads=2),
        "loss_grid float64, threads=2": dict(dtype=np.float64, threads=2),
    }
    times = measure_many(
        {"loop": grid_loop, **{name: grid(name, kw) for name, kw in runs.items()}}, s
    )
    t_loop = times.pop("loop")
    Z_loop = Z["loop"]
    errs = {name: float(np.max(np.abs(Z[name] - Z_loop))) for name in runs}
    z_scale = float(np.max(np.abs(Z_loop)))

    n_pts = GRID_RES * GRID_RES
    section(
        f"2. Loss grid: {GRID_RES} x {GRID_RES} = {fmt_int(n_pts)} points of a random plane, "
        f"{GRID_SAMPLES} samples, {N_IN}-{HIDDEN}-{HIDDEN}-{N_OUT} tanh"
    )
    rows = [
        [
            "loss_grid_loop (1 forward pass per point, float64)",
            fmt_time(t_loop.best),
            fmt_time(t_loop.median),
            "1.00x",
            fmt_time(t_loop.best / n_pts),
            "reference",
        ]
    ]
    for name, t in times.items():
        rows.append(
            [
                name,
                fmt_time(t.best),
                fmt_time(t.median),
                fmt_ratio(t_loop.best / t.best),
                fmt_time(t.best / n_pts),
                f"{errs[name] / z_scale:.1e}",
            ]
        )
    table(
        ["what", "time (best)", "median", "loop / this", "per point", "max |Z - Z_loop| / max |Z|"],
        rows,
    )
    print()
    print("  The app draws the float32 grid with threads=1 (Session.compute_surface): the engine")
    print("  process shares the cores with the window while it trains. threads=2 shares chunks")
    print("  over two Python threads, each with a single-threaded BLAS (threadpoolctl), so both")
    print("  cores run the elementwise work too. The loop's GEMMs use BLAS's own threads.")
    return {
        "loop": t_loop.best,
        "f32": times["loss_grid float32"].best,
        "f64": times["loss_grid float64"].best,
        "f32_t2": times["loss_grid float32, threads=2"].best,
    }


def bench_batch_sweep(s: Settings) -> None:
    net = make_net()
    X_all, T_all = make_data(max(BATCH_SWEEP))
    section(
        f"3. Batch-size sweep: {N_IN}-{HIDDEN}-{HIDDEN}-{N_OUT} tanh, float64, MSE, mean "
        f"(P = {fmt_int(net.n_params)})"
    )
    rows = []
    for B in BATCH_SWEEP:
        r = time_batch(net, X_all[:B], T_all[:B], s)
        rows.append(
            [
                str(B),
                fmt_time(r.scalar.best),
                fmt_time(r.vec.best),
                fmt_time(r.loop.best),
                fmt_ratio(r.vec_over_scalar),
                fmt_ratio(r.loop_over_vec),
                fmt_ratio(r.loop.best / r.scalar.best),
                fmt_time(r.scalar.best / B),
                fmt_int(r.P),
                fmt_int(B * r.P),
            ]
        )
    table(
        [
            "B",
            "scalar",
            "per-sample",
            "loop",
            "ps/scalar",
            "loop/ps",
            "loop/scalar",
            "scalar/sample",
            "partials P",
            "partials B*P",
        ],
        rows,
    )
    print()
    print("  scalar = net.gradient (P partials); per-sample = per_sample_gradients(out=G) and loop")
    print("  = B x net.gradient on one sample (both B*P partials).")


def bench_width_sweep(s: Settings) -> None:
    X, T = make_data(BATCH)
    section(f"4. Width sweep: {N_IN}-w-w-{N_OUT} tanh, B = {BATCH}, float64, MSE, mean")
    rows = []
    for w in WIDTH_SWEEP:
        net = make_net(w)
        r = time_batch(net, X, T, s)
        rows.append(
            [
                str(w),
                fmt_int(r.P),
                f"{BATCH * r.P * 8 / 2**20:.1f} MB",
                fmt_time(r.scalar.best),
                fmt_time(r.vec.best),
                fmt_time(r.loop.best),
                fmt_ratio(r.vec_over_scalar),
                fmt_ratio(r.loop_over_vec),
                fmt_ratio(r.loop.best / r.scalar.best),
            ]
        )
        del net, r
    table(
        [
            "width",
            "P",
            "G (B x P)",
            "scalar",
            "per-sample",
            "loop",
            "ps/scalar",
            "loop/ps",
            "loop/scalar",
        ],
        rows,
    )
    print()
    print("  per-sample = per_sample_gradients(out=G); the loop's repeats are capped for large w.")
    print("  The per-sample pass writes B*P numbers, so where G outgrows the caches its cost")
    print("  follows the memory bandwidth, while the scalar pass sums over B inside one GEMM.")


def bench_temporaries(s: Settings) -> None:
    X, T = make_data(BATCH)
    section(f"5. Fresh temporaries vs out=: per_sample_gradients, {N_IN}-w-w-{N_OUT}, B = {BATCH}")
    rows = []
    for w in FAULT_WIDTHS:
        net = make_net(w)
        G = np.empty((BATCH, net.n_params))
        t = measure_many(
            {
                "out": lambda net=net, G=G: net.per_sample_gradients(X, T, out=G),
                "new": lambda net=net: net.per_sample_gradients(X, T),
            },
            s,
        )
        t_out, t_new = t["out"], t["new"]
        for name, t in (("out=G (preallocated)", t_out), ("fresh G each call", t_new)):
            rows.append(
                [
                    f"w = {w}: {name}",
                    f"{G.nbytes / 2**20:.1f} MB",
                    fmt_time(t.best),
                    fmt_time(t.median),
                    fmt_ratio(t.best / t_out.best),
                    fmt_ratio(t.median / t_out.median),
                    f"{t.faults:.0f}",
                ]
            )
        del net, G
    table(["what", "G", "best", "median", "best / out=", "median / out=", "page faults/call"], rows)
    print()
    print("  Minor page faults per call come from getrusage. Whether a fresh G faults depends on")
    print("  the C allocator: once glibc has freed a large block it raises its mmap threshold to")
    print("  that size (up to 32 MB) and serves the next blocks from the heap without faults, so")
    print("  here only a G over 32 MB pays for fresh pages on every call.")


def bench_session(s: Settings) -> dict:
    sess = Session()
    cfg = sess.config
    for _ in range(5):  # warm up; the first detailed step also makes the plane
        sess.step(detail=True)
    n = s.session_steps

    def run(detail: bool) -> None:
        for _ in range(n):
            sess.step(detail=detail)

    runs = dataclasses.replace(s, min_time=0.0, budget=2 * s.budget)
    t = measure_many({d: (lambda d=d: run(d)) for d in (False, True)}, runs, max_repeats=5)
    out = {d: t[d].best / n for d in (False, True)}
    t_surf = measure(lambda: sess.compute_surface(), s, max_repeats=5)

    section(
        f"6. Session (default Config): {'-'.join(map(str, sess.net.layer_sizes))} "
        f"{cfg.activation}, B = {cfg.batch_size}, {cfg.loss}, {cfg.reduction}, "
        f"{cfg.optimizer}"
    )
    rows = [
        [f"Session.step(detail={d})", fmt_time(out[d]), f"{1.0 / out[d]:,.0f}"]
        for d in (False, True)
    ]
    rows.append(
        [
            f"Session.compute_surface() ({cfg.surface_resolution}^2 points, "
            f"{min(cfg.surface_samples, sess.data.n_train)} samples, float32)",
            fmt_time(t_surf.best),
            f"{1.0 / t_surf.best:,.1f}",
        ]
    )
    table(["what", "time per call", "calls/s"], rows)
    print()
    print(f"  best of up to 5 runs of {n} consecutive steps; training goes on between runs.")
    return out


def lanczos_counts(tol: float, fresh_batches: bool, steps: int) -> dict:
    """Train the bench net with SGD (lr 0.05) for ``steps`` steps on a fixed batch of B (or a
    fresh one each step); every 4 steps find lambda_max from a random start and from the last
    eigenvector. Returns the mean products (cold, warm), the largest relative difference of
    the two lambda_max, and the last estimate's batch and warm start (for timing it)."""
    rng = np.random.default_rng(1)
    net = make_net()
    X_all = rng.standard_normal((512, N_IN))
    T_all = np.tanh(X_all @ rng.standard_normal((N_IN, N_OUT)))
    lr = 0.05
    v = v_prev = None
    cold_n, warm_n, diff = [], [], 0.0
    for step in range(steps):
        idx = rng.integers(0, 512, BATCH) if fresh_batches else np.arange(BATCH)
        X, T = X_all[idx], T_all[idx]
        if step % 4 == 0:
            op = net.hessian_operator(X, T)
            cold = top_eigenpair(op, net.n_params, tol=tol)
            warm = top_eigenpair(op, net.n_params, v0=v, tol=tol)
            if v is not None:
                cold_n.append(cold.n_hvp)
                warm_n.append(warm.n_hvp)
                diff = max(diff, abs(warm.value - cold.value) / abs(cold.value))
            v_prev, v = v, warm.vector
            last = (X, T, v_prev)
        net.params -= lr * net.gradient(X, T)
    return {
        "cold": float(np.mean(cold_n)),
        "warm": float(np.mean(warm_n)),
        "diff": diff,
        "net": net,
        "last": last,
    }


def bench_hvp(s: Settings) -> dict:
    net = make_net()
    X, T = make_data(BATCH)
    v = np.random.default_rng(2).standard_normal(net.n_params)
    op = net.hessian_operator(X, T)
    t = measure_many(
        {
            "gradient": lambda: net.gradient(X, T),
            "hvp": lambda: net.hvp(X, T, v),
            "build": lambda: net.hessian_operator(X, T),
            "matvec": lambda: op.matvec(v),
        },
        s,
    )
    g = t["gradient"].best
    section(
        f"7. Hessian-vector products: {N_IN}-{HIDDEN}-{HIDDEN}-{N_OUT} tanh, B = {BATCH}, "
        f"float64, MSE, mean (P = {fmt_int(net.n_params)})"
    )
    rows = [
        ("gradient: net.gradient(X, T)", t["gradient"]),
        ("one product: net.hvp(X, T, v)", t["hvp"]),
        ("net.hessian_operator(X, T) (forward + backward, kept)", t["build"]),
        ("then each product: op.matvec(v)", t["matvec"]),
    ]
    table(
        ["what", "time (best)", "median", "/ gradient"],
        [[n, fmt_time(tm.best), fmt_time(tm.median), fmt_ratio(tm.best / g)] for n, tm in rows],
    )

    steps = 16 if s is QUICK else 60
    rows = []
    for fresh in (False, True):
        for tol in (1e-8, 1e-4):
            c = lanczos_counts(tol, fresh, steps)
            rows.append(
                [
                    "fresh batch each step" if fresh else "one fixed batch",
                    f"{tol:g}",
                    f"{c['cold']:.1f}",
                    f"{c['warm']:.1f}",
                    fmt_ratio(c["warm"] / c["cold"]),
                    f"{c['diff']:.1e}",
                ]
            )
            if not fresh and tol == 1e-4:
                track = c
    print()
    print(f"  lambda_max by Lanczos while training (SGD, lr 0.05, every 4 of {steps} steps):")
    table(["batch", "tol", "HVPs cold", "HVPs warm", "warm/cold", "|warm-cold|/lam"], rows)

    # One estimate's wall time, operator and Lanczos included, interleaved with the gradient.
    tn, (Xl, Tl, v_prev) = track["net"], track["last"]

    def estimate(v0):
        return lambda: top_eigenpair(tn.hessian_operator(Xl, Tl), tn.n_params, v0=v0, tol=1e-4)

    te = measure_many(
        {"gradient": lambda: tn.gradient(Xl, Tl), "warm": estimate(v_prev), "cold": estimate(None)},
        s,
    )
    n_warm = top_eigenpair(tn.hessian_operator(Xl, Tl), tn.n_params, v0=v_prev, tol=1e-4).n_hvp
    n_cold = top_eigenpair(tn.hessian_operator(Xl, Tl), tn.n_params, tol=1e-4).n_hvp
    g2 = te["gradient"].best
    print()
    table(
        ["one lambda_max estimate (fixed batch, tol 1e-4)", "HVPs", "time (best)", "/ gradient"],
        [
            [name, str(n), fmt_time(te[key].best), fmt_ratio(te[key].best / g2)]
            for name, key, n in (("warm start", "warm", n_warm), ("cold start", "cold", n_cold))
        ],
    )
    print()
    print("  warm = started from the previous eigenvector (plus a 1e-3 random part). tol bounds")
    print("  the residual, so lam is within tol of an eigenvalue; its actual error is about")
    print("  residual^2 / gap (the |warm-cold| column). Minibatch Hessians at B = 32 differ, and")
    print("  so do their top eigenvectors: a warm start helps little there; on one fixed batch it")
    print("  halves the products. Lanczos's own work (reorthogonalisation, the tridiagonal's")
    print("  eigenvalues) adds roughly half a product's time per step at this size.")
    return {
        "hvp_over_grad": t["hvp"].best / g,
        "matvec_over_grad": t["matvec"].best / g,
        "warm_over_grad": te["warm"].best / g2,
    }


def report_targets(mb: dict, grid: dict, quick: bool, hvp: dict | None = None) -> bool:
    section("Targets")
    if quick:
        print("  (quick run: single cold calls; run without --quick for the verdict)")
    tol = MAX_GRADIENT_DIFF
    checks = [
        (
            f"per-sample vectorised (out=) / scalar at B = {BATCH} <= "
            f"{MAX_PER_SAMPLE_OVER_SCALAR}x",
            mb["vec_over_scalar"] <= MAX_PER_SAMPLE_OVER_SCALAR,
            fmt_ratio(mb["vec_over_scalar"]),
        ),
        (
            f"per-sample loop / vectorised at B = {BATCH} >= {MIN_LOOP_OVER_VECTORISED:g}x",
            mb["loop_over_vec"] >= MIN_LOOP_OVER_VECTORISED,
            fmt_ratio(mb["loop_over_vec"]),
        ),
        (
            f"max |mean of per-sample - scalar gradient| <= {tol:g}",
            mb["vec_vs_scalar"] <= tol,
            f"{mb['vec_vs_scalar']:.2e}",
        ),
        (
            f"max |mean of loop gradients - scalar gradient| <= {tol:g}",
            mb["loop_vs_scalar"] <= tol,
            f"{mb['loop_vs_scalar']:.2e}",
        ),
    ]
    for name, key in (
        ("float32", "f32"),
        ("float32, threads=2", "f32_t2"),
        ("float64", "f64"),
    ):
        sp = grid["loop"] / grid[key]
        checks.append(
            (
                f"loss grid {name}: >= {MIN_GRID_SPEED_UP:g}x faster than the loop",
                sp >= MIN_GRID_SPEED_UP,
                f"{fmt_ratio(sp)} ({fmt_time(grid[key])} vs {fmt_time(grid['loop'])})",
            )
        )
        checks.append(
            (
                f"loss grid {name}: under {MAX_GRID_SECONDS * 1e3:g} ms",
                grid[key] < MAX_GRID_SECONDS,
                fmt_time(grid[key]),
            )
        )
    if hvp is not None:
        checks.append(
            (
                f"net.hvp / net.gradient at B = {BATCH} <= {MAX_HVP_OVER_GRADIENT:g}x",
                hvp["hvp_over_grad"] <= MAX_HVP_OVER_GRADIENT,
                fmt_ratio(hvp["hvp_over_grad"]),
            )
        )
    width = max(len(c[0]) for c in checks)
    for name, ok, figure in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {name.ljust(width)}  {figure}")
    return all(ok for _, ok, _ in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few repeats: a smoke run in a few seconds (figures rough)",
    )
    opts = parser.parse_args(argv)
    s = QUICK if opts.quick else FULL
    t0 = time.perf_counter()
    environment(s, opts.quick)
    mb = run_section(bench_minibatch, s)
    grid = run_section(bench_grid, s)
    run_section(bench_batch_sweep, s)
    run_section(bench_width_sweep, s)
    run_section(bench_temporaries, s)
    run_section(bench_session, s)
    hvp = run_section(bench_hvp, s)
    all_ok = report_targets(mb, grid, opts.quick, hvp)
    print()
    print(f"  load average (1 min) at end: {load_average()}")
    print(
        f"  total benchmark time: {time.perf_counter() - t0:.1f} s"
        + ("" if all_ok else "  (some targets missed; see above)")
    )
    return 0


if __name__ == "__main__":
    main()
