"""How fast the app ends on a stop signal, and how fast a dead engine is replaced.

Part 1 starts the real ``main.py`` (offscreen, in a session of its own) ``--tries`` times per
case, waits until its engine trains, sends SIGINT, SIGTERM or SIGHUP to the app or to its
whole process group, and times until no process of it is left. Each try is also checked:
the exit status is the signal's, stderr is empty, nothing is left running.

Part 3 (``--part checkpoints``) runs the engine's loop in this process for a few seconds at
three network sizes, with the checkpoints a restart needs and without them, every message
pickled and unpickled as the pipe does: steps per second side by side.

Part 2 opens the window in this process, kills its engine with SIGKILL (as the out-of-memory
killer does) ``--tries`` times, and times (a) until the new engine is started (including the
0.25 s the worker waits for a window that is closing anyway) and (b) until training has
resumed (the first new step drawn).

    python benchmarks/bench_stop.py                 # 10 tries each
    python benchmarks/bench_stop.py --tries 3 --part signals
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _group_alive(pgid: int) -> list:
    import psutil

    found = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


def one_stop(name: str, whole_group: bool, folder: Path) -> tuple[float, str]:
    """Seconds from the signal until the app and all its processes have ended; a problem
    found ('' if none)."""
    import psutil

    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        BATCHSCOPE_SETTINGS=str(folder / "settings.ini"),
        BATCHSCOPE_LOG_DIR=str(folder / "logs"),
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "--hidden", "16,16", "--size", "1280x720"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    app = psutil.Process(proc.pid)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        engines = [c for c in app.children() if "spawn_main" in " ".join(c.cmdline())]
        if engines and engines[0].cpu_times().user > 0.5:
            break
        time.sleep(0.1)
    sig = getattr(signal, name)
    t0 = time.monotonic()
    (os.killpg if whole_group else os.kill)(proc.pid, sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return float("inf"), "still running after 10 s"
    while _group_alive(proc.pid) and time.monotonic() - t0 < 10:
        time.sleep(0.005)
    elapsed = time.monotonic() - t0
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    problem = ""
    if proc.returncode != -sig:
        problem = f"exit status {proc.returncode}"
    if err:
        problem += f" stderr: {err[:200]!r}"
    if _group_alive(proc.pid):
        problem += " processes left"
    return elapsed, problem.strip()


def signals_part(tries: int) -> None:
    print(f"Exit time after a stop signal, {tries} tries per case (seconds; limit 2 s)")
    print(f"{'signal':8} {'sent to':8} {'median':>7} {'min':>6} {'max':>6}  problems")
    with tempfile.TemporaryDirectory() as tmp:
        for name in SIGNALS:
            for whole_group in (False, True):
                times, problems = [], []
                for _ in range(tries):
                    t, p = one_stop(name, whole_group, Path(tmp))
                    times.append(t)
                    if p:
                        problems.append(p)
                print(
                    f"{name:8} {'group' if whole_group else 'process':8} "
                    f"{statistics.median(times):7.2f} {min(times):6.2f} {max(times):6.2f}  "
                    f"{len(problems)} {problems[:1] if problems else ''}",
                    flush=True,
                )


def restart_part(tries: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = tempfile.mkdtemp()
    os.environ.setdefault("BATCHSCOPE_SETTINGS", os.path.join(tmp, "s.ini"))
    os.environ.setdefault("BATCHSCOPE_LOG_DIR", os.path.join(tmp, "logs"))
    from PySide6.QtCore import QElapsedTimer

    from core import Config
    from gui.app import make_app
    from gui.main_window import MainWindow
    from gui.worker import RestartPolicy

    app = make_app()
    window = MainWindow(Config(hidden=(16, 16)), run=True, remember=False)
    window.show()
    window.worker.policy = RestartPolicy(max_deaths=10**9)  # measure, do not give up
    restarted: list = []
    window.worker.engineRestarted.connect(lambda how, step, s: restarted.append((step, s)))

    def wait(predicate, seconds=30.0):
        clock = QElapsedTimer()
        clock.start()
        while not predicate():
            app.processEvents()
            time.sleep(0.002)
            if clock.elapsed() > seconds * 1000:
                raise TimeoutError
        return clock.elapsed() / 1000

    wait(lambda: window.last_snapshot is not None and window.last_snapshot.step > 200)
    to_start, to_train, spawn, lost = [], [], [], []
    for _ in range(tries):
        seen = window.last_snapshot.step
        n = len(restarted)
        t0 = time.perf_counter()
        os.kill(window.worker.engine.process.pid, signal.SIGKILL)
        wait(lambda n=n: len(restarted) > n)
        to_start.append(time.perf_counter() - t0)
        step, seconds = restarted[-1]
        spawn.append(seconds)
        lost.append(seen - step)
        wait(lambda step=step: window._drawn is not None and window._drawn.step > step)
        to_train.append(time.perf_counter() - t0)
        wait(lambda step=step: window.last_snapshot.step > step + 200)
    window.close()
    print(f"\nEngine restart after SIGKILL, {tries} tries (seconds: median, min, max)")
    for label, xs in (
        ("new engine started", to_start),
        ("  of which restore + spawn", spawn),
        ("training resumed (new step drawn)", to_train),
    ):
        print(f"{label:36} {statistics.median(xs):6.2f} {min(xs):6.2f} {max(xs):6.2f}")
    # negative: the new engine starts past the window's newest step (nothing shown is lost)
    print(
        f"{'window step at kill - restored step':36} {statistics.median(lost):6.0f} "
        f"{min(lost):6.0f} {max(lost):6.0f}"
    )


def checkpoints_part(seconds: float = 3.0) -> None:
    import pickle

    import core.remote as remote
    from core import Config, Session
    from core.commands import Run, Stop
    from core.replies import Checkpoint

    class Inbox:  # Run at once, Stop (once) after ``seconds``
        def __init__(self) -> None:
            self.t0 = None
            self.stopped = False

        def get(self, timeout=0.0):
            if self.t0 is None:
                self.t0 = time.perf_counter()
                return Run(True)
            if not self.stopped and time.perf_counter() - self.t0 > seconds:
                self.stopped = True
                return Stop()
            return None

        def defer(self, msg) -> None:
            pass

    class Outbox:  # pays what both ends of the pipe pay
        def __init__(self) -> None:
            self.checkpoints = 0
            self.nbytes = 0

        def put(self, msg) -> None:
            data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(data)
            self.nbytes += len(data)
            self.checkpoints += isinstance(msg, Checkpoint)

    keep = (remote.CHECKPOINT_ALWAYS_BYTES, remote.CHECKPOINT_MAX_BYTES)
    print(f"\nEngine loop with and without checkpoints ({seconds:.0f} s each, Adam)")
    head = ("hidden", "steps/s with", "without", "ratio", "ckpts/s", "MB/s")
    print(f"{head[0]:12} {head[1]:>13} {head[2]:>8} {head[3]:>6} {head[4]:>8} {head[5]:>6}")
    for hidden in ((32, 32), (256, 256), (1000, 1000)):
        rates = [0.0, 0.0]
        # with, without, without, with: a drift of the machine's load cancels out
        for k in (0, 1, 1, 0):
            always, most = keep if k == 0 else (0, 0)
            remote.CHECKPOINT_ALWAYS_BYTES, remote.CHECKPOINT_MAX_BYTES = always, most
            # the smallest live surface: the loop's time goes to steps and messages
            cfg = Config(hidden=hidden, optimizer="adam", surface_resolution=5, surface_samples=16)
            session = Session(cfg)
            out = Outbox()
            remote.serve(session, Inbox(), out)
            rates[k] += session.step_count / seconds / 2
            if k == 0:
                ckpts, mb = out.checkpoints / seconds, out.nbytes / seconds / 1e6
        remote.CHECKPOINT_ALWAYS_BYTES, remote.CHECKPOINT_MAX_BYTES = keep
        print(
            f"{str(hidden):12} {rates[0]:13.0f} {rates[1]:8.0f} {rates[0] / rates[1]:6.2f} "
            f"{ckpts:8.1f} {mb:6.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tries", type=int, default=10)
    ap.add_argument("--part", choices=("signals", "restart", "checkpoints", "both"), default="both")
    args = ap.parse_args()
    if args.part in ("signals", "both"):
        signals_part(args.tries)
    if args.part in ("restart", "both"):
        restart_part(args.tries)
    if args.part in ("checkpoints", "both"):
        checkpoints_part()


if __name__ == "__main__":
    main()
