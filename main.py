"""Batchscope: see what a minibatch gradient is made of.

Usage::

    batchscope                                  # open the window and train
    batchscope --hidden 64,64 --batch-size 8    # with settings
    batchscope --steps 300 --screenshot shot.png          # render headless and exit
    batchscope --steps 300 --export-dir figures/          # every view as PNG + CSV

Exit status: 0 everything as asked; 1 a picture could not be written; 2 a bad value (one line
naming the option and the reason); 3 the run diverged (the pictures are still written).
"""

from __future__ import annotations

import os

# One BLAS thread (set before NumPy loads): on these small matrices a second OpenBLAS thread
# mostly spins, and when the cores are shared each call can wait a scheduler slice for it
# (benchmarks/bench_engine.py: the float32 grid 0.2 s with one thread, 1.3-2.7 s without,
# under load). The engine process and the window each get one core instead.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from core.config import SETTING, SETTINGS, Config, ConfigError

#: --screenshot: file extension -> the Qt image format written
SCREENSHOT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
EXIT_DIVERGED = 3


class UsageError(Exception):
    """A bad command line: ``option`` and ``reason`` make the one line printed."""

    def __init__(self, option: str | None, reason: str) -> None:
        super().__init__(f"{option}: {reason}" if option else reason)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2, no usage dump
        raise UsageError("arguments", message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="batchscope",
        description="See what a minibatch gradient is made of: a live NumPy MLP with its "
        "loss matrix, per-sample gradients, their mean and the loss surface.",
        epilog="exit status: 0 everything as asked; 1 a picture could not be written; "
        "2 a bad value; 3 the run diverged (the pictures are still written)",
    )
    settings = p.add_argument_group("settings (each also a config-file key)")
    for s in SETTINGS:  # one option per declared setting (core.config)
        settings.add_argument(
            s.cli_option,
            dest=s.name,
            metavar=s.metavar or None,
            help=s.help_text().replace("%", "%%"),
        )
    a = p.add_argument
    a("--config", metavar="FILE.json", help="settings from a JSON file (options override it)")
    a("--steps", metavar="N", default="0", help="train N steps before showing or rendering")
    a(
        "--screenshot",
        metavar="PATH.png",
        help="save the whole window after the steps as PNG or JPEG (.png, .jpg, .jpeg); exit",
    )
    a(
        "--export-dir",
        metavar="DIR",
        help="write every view as <view>.png and <view>.csv (and .svg) into DIR, with "
        "noise_vs_batch.csv (the measured 1/sqrt(B) panel); exit",
    )
    a(
        "--record",
        metavar="PATH.mp4",
        help="record the training run headless as a clip (.mp4 H.264, or .gif); exit",
    )
    a("--fps", metavar="N", default="30", help="frames per second of --record (default 30)")
    a("--size", metavar="WxH", default="1600x1000", help="window size for rendering")
    return p


def _int(option: str, text: str, lo: int, hi: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise UsageError(option, f"{text!r} is not a whole number") from None
    if not lo <= v <= hi:
        raise UsageError(option, f"must be between {lo} and {hi} (got {v})")
    return v


def option_of(field: str, fallback: str | None = None) -> str:
    """The command-line option of a Config field (``batch_size`` -> ``--batch-size``)."""
    s = SETTING.get(field)
    return s.cli_option if s is not None else (fallback or f"--{field}")


def last_config() -> Config | None:
    """The settings of the last window session (QSettings, stored as JSON text), if they are
    still valid; None otherwise."""
    import json

    from gui.main_window import settings

    text = settings().value("config/last")
    if not isinstance(text, str):
        return None
    try:
        return Config.from_dict(json.loads(text), source="last settings")
    except (ValueError, ConfigError):
        return None


def config_from_args(args: argparse.Namespace, remembered: bool = False) -> Config:
    """The Config the command line asks for; UsageError naming the option if it is bad.

    remembered : start from the last window session's settings when no --config is given.
    """
    if args.config:
        try:
            base = Config.load(args.config)
        except ConfigError as e:
            raise UsageError("--config", f"{e.field}: {e.message}") from None
    else:
        base = (last_config() if remembered else None) or Config()
    changes: dict = {}
    for s in SETTINGS:
        text = getattr(args, s.name)
        if text is not None and s.group != "CSV":  # CSV options: _csv_changes
            try:
                changes[s.name] = s.parse(text)
            except ConfigError as e:
                raise UsageError(s.cli_option, e.message) from None
    changes.update(_csv_changes(args, base, changes))
    try:
        return base.replace(**changes).validate(changed=changes)
    except ConfigError as e:
        option = option_of(e.field, "--config" if args.config else None)
        raise UsageError(option, e.message) from None


def _csv_changes(args: argparse.Namespace, base: Config, changes: dict) -> dict:
    """The csv_* settings the options ask for. --csv implies --dataset csv; the column, task
    and scale options need CSV data (from --csv or the config file)."""
    out: dict = {}
    if args.csv_path is not None:
        if changes.get("dataset", "csv") != "csv":
            raise UsageError("--csv", f"cannot be combined with --dataset {changes['dataset']}")
        if not args.csv_path.strip():
            raise UsageError("--csv", "give the path of a CSV file")
        out["dataset"] = "csv"
        # another file's columns do not carry over from the config file
        out["csv_inputs"], out["csv_targets"] = (), ()
    dataset = out.get("dataset", changes.get("dataset", base.dataset))
    for s in SETTINGS:
        text = getattr(args, s.name)
        if s.group != "CSV" or text is None:
            continue
        if dataset != "csv":
            reason = _NOT_CSV.get(s.name, "applies to CSV data: add --csv PATH")
            raise UsageError(s.cli_option, reason)
        try:
            out[s.name] = s.parse(text)
        except ConfigError as e:
            raise UsageError(s.cli_option, e.message) from None
    return out


_NOT_CSV = {"csv_scale": "applies to CSV data (--csv PATH); the built-in data are on a unit scale"}


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise UsageError("--size", f"{text!r} is not WIDTHxHEIGHT, e.g. 1600x1000") from None
    if not (400 <= w <= 8000 and 300 <= h <= 8000):
        raise UsageError("--size", f"{w}x{h} is outside 400x300 .. 8000x8000")
    return w, h


def screenshot_format(path: str) -> str:
    """The image format ``path``'s extension names ("PNG" or "JPEG"); UsageError otherwise."""
    ext = Path(path).suffix.lower()
    if ext not in SCREENSHOT_FORMATS:
        raise UsageError(
            "--screenshot",
            f"{Path(path).name}: name a .png, .jpg or .jpeg file (the extension sets the format)",
        )
    return SCREENSHOT_FORMATS[ext]


def _check_output_file(option: str, path: str) -> None:
    p = Path(path)
    if p.is_dir():
        raise UsageError(option, f"{path} is a folder; give a file name such as shot.png")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(option, f"the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(option, f"cannot write into {parent}: permission denied")


def _check_record(path: str) -> None:
    if Path(path).suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(
            "--record",
            f"{Path(path).name}: name a .mp4 or .gif file (the extension sets the format)",
        )
    _check_output_file("--record", path)


def _check_output_dir(option: str, path: str) -> None:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(option, f"{path} is a file, not a folder")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise UsageError(option, f"cannot write into {probe}: permission denied")


def _ensure_display(headless: bool) -> None:
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if headless or os.environ.get("QT_QPA_PLATFORM"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return
    raise UsageError(
        None,
        "no display found (DISPLAY/WAYLAND_DISPLAY unset); to "
        "render without one use --screenshot PATH.png or --export-dir DIR",
    )


def train(session, steps: int) -> bool:
    """Train ``steps`` steps, printing progress; False (and one line saying so) if the run
    diverged."""
    if steps <= 0:
        return True
    report = max(1, steps // 4)
    for k in range(steps):
        snap = session.step(detail=False)
        if snap.diverged:
            print(
                f"batchscope: diverged: {session.divergence}; the pictures show the weights "
                f"after step {session.step_count} (exit status {EXIT_DIVERGED}; try a smaller "
                "--lr)",
                file=sys.stderr,
            )
            return False
        if (k + 1) % report == 0 or k + 1 == steps:
            print(f"step {snap.step}: loss {snap.loss:.6g}", file=sys.stderr)
    return True


def describe_data(session) -> str:
    """One line on a CSV data set: rows, columns, task (and why), scale."""
    d, cfg = session.data, session.config
    n_val = len(d.X_val)
    return (
        f"batchscope: data: {Path(cfg.csv_path).name}, {d.n_train + n_val} rows "
        f"({d.n_train} training), inputs {', '.join(d.input_names)} -> "
        f"{', '.join(d.target_names)}; {d.task_note}; {d.scale_note}"
    )


def _wait_for_first_picture(app, window, session) -> None:
    """Process events until the worker's first snapshot is drawn, surface included (or the
    run diverged), at most 20 s."""
    from PySide6.QtCore import QElapsedTimer

    clock = QElapsedTimer()
    clock.start()
    while clock.elapsed() < 20000:
        app.processEvents()
        d = window.drawn_snapshot
        if d is not None and (d.surface is not None or session.diverged):
            break
        window.thread().msleep(10)
    for _ in range(5):
        app.processEvents()


def _export(window, export_dir: str) -> None:
    """Run the experiments' quick versions, then write every view and experiment."""
    for title, why in window.run_experiments_blocking(quick=True).items():
        print(f"batchscope: {title}: not exported ({why})", file=sys.stderr)
    files = window.export_all(export_dir)
    print(f"batchscope: wrote {len(files)} files to {export_dir}", file=sys.stderr)


def render(
    session,
    screenshot: str | None,
    export_dir: str | None,
    size: tuple[int, int],
    fmt: str = "PNG",
    record: tuple[str, int, int] | None = None,
) -> int:
    """Show the trained session in a window offscreen (or on the display), save, exit."""
    from gui.app import make_app, quiet_offscreen_messages
    from gui.export import ExportError, save_pixmap
    from gui.main_window import MainWindow
    from gui.recorder import RecordError

    app = make_app()
    if app.platformName() == "offscreen":
        quiet_offscreen_messages()
    if session.needs_surface():  # after a divergence too: at the last finite weights
        session.compute_surface()
    session.measure_batch_noise()  # the spread view's measured 1/sqrt(B) panel
    window = MainWindow(session=session, run=False, remember=False)
    window.resize(*size)
    window.fit_docks_to_width(size[0])
    window.show()
    _wait_for_first_picture(app, window, session)
    status = 0
    try:
        if record:
            from gui.recorder import record_training

            path, steps, fps = record
            record_training(app, window, session, steps, path, fps)
            print(f"batchscope: recorded {path}", file=sys.stderr)
        if export_dir:
            _export(window, export_dir)
        if screenshot:
            save_pixmap(window.grab(), screenshot, fmt)
            print(f"batchscope: saved {screenshot}", file=sys.stderr)
    except (ExportError, OSError, RecordError) as e:
        print(f"batchscope: {e}", file=sys.stderr)
        status = 1
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()
        app.processEvents()
    return status


def _start_session(args, cfg, headless: bool):
    """The Session of ``cfg``; UsageError when it cannot start. A window whose remembered
    settings no longer load (a CSV moved or changed) starts from the defaults instead of
    refusing to open for good."""
    from core import Session

    try:
        return Session(cfg)
    except ConfigError as e:
        if headless or args.config or args.csv_path or cfg == config_from_args(args):
            raise UsageError(option_of(e.field), e.message) from None
        print(
            f"batchscope: the last session's settings were not used ({e.message})", file=sys.stderr
        )
    try:
        return Session(config_from_args(args))
    except ConfigError as e2:
        raise UsageError(option_of(e2.field), e2.message) from None


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the program itself (not a caller's test): until the window takes
        # SIGINT over (gui.app.run), Ctrl+C ends it silently, as SIGTERM does, not with a
        # KeyboardInterrupt traceback from whatever was loading
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        args = build_parser().parse_args(argv)
        headless = bool(args.screenshot or args.export_dir or args.record)
        cfg = config_from_args(args, remembered=not headless)
        steps = _int("--steps", args.steps, 0, 10**7)
        size = _parse_size(args.size)
        fmt = "PNG"
        if args.screenshot:
            fmt = screenshot_format(args.screenshot)
            _check_output_file("--screenshot", args.screenshot)
        if args.export_dir:
            _check_output_dir("--export-dir", args.export_dir)
        fps = _int("--fps", args.fps, 1, 120)
        if args.record:
            _check_record(args.record)
        _ensure_display(headless)
        session = _start_session(args, cfg, headless)
        cfg = session.config
    except UsageError as e:
        print(f"batchscope: error: {e}", file=sys.stderr)
        return 2
    if cfg.dataset == "csv":
        print(describe_data(session), file=sys.stderr)
    finished = True if args.record else train(session, steps)
    if headless:
        record = (args.record, steps, fps) if args.record else None
        status = render(session, args.screenshot, args.export_dir, size, fmt, record)
        if args.record and session.diverged:
            finished = False
            print(
                f"batchscope: diverged: {session.divergence}; the clip ends at step "
                f"{session.step_count} (exit status {EXIT_DIVERGED}; try a smaller --lr)",
                file=sys.stderr,
            )
        return status if status or finished else EXIT_DIVERGED
    from gui.app import run

    return run(session=session)


if __name__ == "__main__":
    sys.exit(main())
