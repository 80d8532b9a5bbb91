"""The command line (main.py in a subprocess, no display): bad values exit with status 2 and
one line naming the option; --export-dir and --screenshot render headless and exit."""

from __future__ import annotations

import csv
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from gui_testing import (
    CSV_HEADERS,
    REPO_ROOT,
    VIEW_NAMES,
    cli_env,
    main_cmd,
    run_main,
    selected_cases,
)
from PySide6.QtGui import QImage

BAD_VALUES = [
    (["--lr", "abc"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--hidden", "abc"], "--hidden"),
    (["--hidden", "0"], "--hidden"),
    (["--hidden", "100000"], "--hidden"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "100000"], "--batch-size"),
    (["--batch-size", "5000"], "--batch-size"),  # larger than the training set
    (["--batch-size", "eight"], "--batch-size"),
    (["--loss", "foo"], "--loss"),
    (["--reduction", "median"], "--reduction"),
    (["--loss", "cross_entropy"], "--loss"),  # needs class targets; teacher is regression
    (["--seed", "-3"], "--seed"),
    (["--steps", "many"], "--steps"),
    (["--size", "huge"], "--size"),
    (["--config", "missing.json"], "--config"),
    (["--config", "{malformed}"], "--config"),
    (["--config", "{badfield}"], "--config"),
    (["--bogus"], "--bogus"),
]


def _bad_value_args(folder, args: list[str]) -> list[str]:
    """``args`` with the placeholders replaced by files made in ``folder``."""
    args = list(args)
    if "{malformed}" in args:
        bad = folder / "malformed.json"
        bad.write_text('{"lr": 0.1,,}')
        args[args.index("{malformed}")] = str(bad)
    if "{badfield}" in args:
        bad = folder / "badfield.json"
        bad.write_text('{"batch_size": "lots"}')
        args[args.index("{badfield}")] = str(bad)
    if "missing.json" in args:
        args[args.index("missing.json")] = str(folder / "missing.json")
    return args


@pytest.fixture(scope="module")
def bad_value_runs(request, tmp_path_factory):
    """main.py with each bad value this session tests, two at a time from the first case on
    (each run is a start-up and an exit, ~0.35 s): {case id: (its folder, its run)}."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {}
        for case, params in selected_cases(request, "test_bad_value_exits_2_with_one_line"):
            folder = tmp_path_factory.mktemp("bad-value")
            args = _bad_value_args(folder, params["args"])
            shot = str(folder / "shot.png")
            runs[case] = folder, pool.submit(run_main, folder, *args, "--screenshot", shot)
        yield runs


@pytest.mark.parametrize(
    ("args", "option"), BAD_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_value_exits_2_with_one_line(bad_value_runs, request, args, option):
    tmp_path, run = bad_value_runs[request.node.callspec.id]
    shot = tmp_path / "shot.png"
    r = run.result()
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert option in lines[0], lines[0]
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert len(lines[0]) > len(option) + 10  # a reason, not just the name
    assert not shot.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == []


def test_export_dir_writes_every_view(tmp_path):
    out = tmp_path / "figures"
    r = run_main(tmp_path, "--hidden", "16,16", "--steps", "20", "--export-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "step 20" in r.stderr
    img = QImage(str(out / "window.png"))
    assert not img.isNull() and (img.width(), img.height()) == (1600, 1000)
    for view in VIEW_NAMES:
        png, table = out / f"{view}.png", out / f"{view}.csv"
        assert png.is_file() and png.stat().st_size > 1000, view
        assert not QImage(str(png)).isNull(), view
        with open(table, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert ",".join(rows[0]) == CSV_HEADERS[view]
        assert len(rows) > 1, f"{view}.csv has no data"
    with open(out / "loss_curves.csv", newline="", encoding="utf-8") as fh:
        assert len(list(csv.reader(fh))) == 1 + 20
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_screenshot_with_size(tmp_path):
    shot = tmp_path / "shot.png"
    r = run_main(
        tmp_path, "--hidden", "8", "--steps", "5", "--size", "1280x800", "--screenshot", str(shot)
    )
    assert r.returncode == 0, r.stderr
    img = QImage(str(shot))
    assert not img.isNull()
    assert (img.width(), img.height()) == (1280, 800)
    # only the run's own lines: no chatter from Qt's offscreen plugin
    assert "does not support" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert all(ln.startswith(("step ", "batchscope: ")) for ln in lines), r.stderr


def own_lines(stderr: str) -> list[str]:
    """stderr's non-empty lines, each checked to be one of the app's own."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert all(ln.startswith(("step ", "batchscope: ")) for ln in lines), stderr
    return lines


def test_diverging_run_still_writes_every_picture_and_exits_3(tmp_path):
    out = tmp_path / "figures"
    shot = tmp_path / "shot.png"
    r = run_main(
        tmp_path,
        "--hidden", "64,64", "--lr", "1000", "--reduction", "max", "--steps", "200",
        "--export-dir", str(out), "--screenshot", str(shot),
    )  # fmt: skip
    assert r.returncode == 3, r.stderr
    lines = own_lines(r.stderr)  # no RuntimeWarning, no Qt chatter, no traceback
    said = [ln for ln in lines if "diverged" in ln.lower()]
    assert len(said) == 1 and said[0].lower().count("diverged") == 1, said
    assert "exit status 3" in said[0] and "--lr" in said[0]
    img = QImage(str(shot))
    assert not img.isNull() and (img.width(), img.height()) == (1600, 1000)
    for view in VIEW_NAMES:
        assert QImage(str(out / f"{view}.png")).width() > 100, view
        assert (out / f"{view}.csv").is_file(), view
    assert not QImage(str(out / "window.png")).isNull()


@pytest.mark.parametrize(
    "name, fmt", [("shot.jpg", b"\xff\xd8\xff"), ("shot.JPEG", b"\xff\xd8\xff")]
)
def test_screenshot_format_follows_the_extension(tmp_path, name, fmt):
    shot = tmp_path / name
    r = run_main(tmp_path, "--hidden", "8", "--steps", "3", "--screenshot", str(shot))
    assert r.returncode == 0, r.stderr
    assert shot.read_bytes()[:3] == fmt
    assert not QImage(str(shot)).isNull()


@pytest.mark.parametrize("name", ["shot.bmp", "shot", "shot.png.txt"])
def test_screenshot_other_formats_are_refused(tmp_path, name):
    r = run_main(tmp_path, "--steps", "3", "--screenshot", str(tmp_path / name))
    assert r.returncode == 2
    (line,) = own_lines(r.stderr)
    assert line.startswith("batchscope: error: --screenshot: ") and ".png" in line
    assert line.count("batchscope") == 1
    assert not (tmp_path / name).exists()


def house_csv(tmp_path, n=240):
    """An Excel-style CSV (BOM, CRLF, quoted numbers) with raw targets in the hundreds."""
    rng = np.random.default_rng(1)
    area = rng.uniform(40, 250, n)
    rooms = rng.integers(1, 7, n)
    age = rng.integers(0, 80, n)
    price = 1.8 * area + 12 * rooms - 0.9 * age + 60 + rng.normal(0, 15, n)
    lines = ["area_m2,rooms,age_years,price_k"] + [
        f'{a:.1f},{r},{g},"{p:.1f}"' for a, r, g, p in zip(area, rooms, age, price)
    ]
    path = tmp_path / "house.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    return str(path)


def test_csv_trains_at_default_settings_and_says_how(tmp_path):
    shot = tmp_path / "house.png"
    r = run_main(
        tmp_path, "--csv", house_csv(tmp_path), "--steps", "300", "--screenshot", str(shot)
    )
    assert r.returncode == 0, r.stderr
    lines = own_lines(r.stderr)
    data = [ln for ln in lines if ln.startswith("batchscope: data:")]
    assert len(data) == 1
    assert "area_m2, rooms, age_years -> price_k" in data[0]
    assert "regression (guessed" in data[0] and "standardised on the training split" in data[0]
    assert "step 300" in r.stderr and "diverged" not in r.stderr
    assert not QImage(str(shot)).isNull()


def test_csv_options(tmp_path):
    path = house_csv(tmp_path)
    shot = str(tmp_path / "s.png")
    r = run_main(
        tmp_path, "--csv", path, "--inputs", "area_m2, rooms", "--targets", "price_k",
        "--task", "regression", "--scale", "none", "--lr", "1e-6", "--steps", "2",
        "--screenshot", shot,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (data,) = [ln for ln in own_lines(r.stderr) if ln.startswith("batchscope: data:")]
    assert "inputs area_m2, rooms -> price_k" in data and "raw values" in data
    assert "regression (chosen)" in data


@pytest.fixture(scope="module")
def csv_refusal_runs(request, tmp_path_factory):
    """main.py with each refused CSV set-up this session tests, two at a time from the first
    case on: {case id: its run}."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {}
        for case, params in selected_cases(request, "test_csv_refusals_are_one_line"):
            folder = tmp_path_factory.mktemp("csv-refusal")
            broken = folder / "broken.csv"
            broken.write_text('a,b\n1,2\n3,4\n5,"6\n' + "7,8\n" * 300)
            subs = {
                "{house}": house_csv(folder),
                "{missing}": str(folder / "nope.csv"),
                "{broken}": str(broken),
            }
            args = [subs.get(a, a) for a in params["args"]]
            runs[case] = pool.submit(run_main, folder, *args, "--screenshot", str(folder / "s.png"))
        yield runs


@pytest.mark.parametrize(
    "args, option, words",
    [
        (["--inputs", "a,b"], "--inputs", ["--csv"]),
        (["--scale", "none"], "--scale", ["CSV"]),
        (["--csv", "{house}", "--dataset", "teacher"], "--csv", ["--dataset"]),
        (["--csv", "{house}", "--inputs", "nope"], "--inputs", ["'nope'"]),
        (["--csv", "{house}", "--task", "clustering"], "--task", ["'clustering'"]),
        (["--csv", "{house}", "--scale", "minmax"], "--scale", ["'minmax'"]),
        (["--csv", "{missing}"], "--csv", ["no such file"]),
        (["--csv", "{broken}"], "--csv", ["line 4:", "never closes"]),
    ],
)
def test_csv_refusals_are_one_line(csv_refusal_runs, request, args, option, words):
    r = csv_refusal_runs[request.node.callspec.id].result()
    assert r.returncode == 2, r.stderr
    (line,) = own_lines(r.stderr)
    assert line.startswith(f"batchscope: error: {option}: "), line
    assert len(line) < 200 + len("batchscope: error: ") + len(option) + 2
    for w in words:
        assert w in line, line


def test_unwritable_screenshot_path_is_refused(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("x")
    r = run_main(tmp_path, "--screenshot", str(plain / "shot.png"))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--screenshot" in lines[0]
    r = run_main(tmp_path, "--export-dir", str(plain))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--export-dir" in lines[0]
    assert plain.read_text() == "x"


def test_help(tmp_path):
    r = run_main(tmp_path, "--help")
    assert r.returncode == 0
    for option in (
        "--hidden",
        "--batch-size",
        "--lr",
        "--loss",
        "--reduction",
        "--optimizer",
        "--activation",
        "--dataset",
        "--seed",
        "--config",
        "--steps",
        "--screenshot",
        "--export-dir",
        "--csv",
        "--inputs",
        "--targets",
        "--task",
        "--scale",
    ):
        assert option in r.stdout
    assert "3 the run diverged" in " ".join(r.stdout.split())


def test_no_display_and_no_output_is_a_usage_error(tmp_path):
    """Opening the window needs a display; without one the user is told what to do."""
    r = subprocess.run(
        main_cmd("--hidden", "8"),
        cwd=REPO_ROOT,
        env=cli_env(tmp_path / "cli-settings.ini", offscreen=False),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "display" in lines[0] and "--screenshot" in lines[0]
    assert lines[0].count("batchscope") == 1, lines[0]  # the prefix once


def test_a_last_session_whose_csv_is_gone_still_opens(tmp_path):
    """The window remembers its last settings; if their CSV was moved, it opens with the
    defaults and says so, instead of refusing to start for good."""
    import json
    import signal

    from PySide6.QtCore import QSettings

    ini = tmp_path / "cli-settings.ini"
    s = QSettings(str(ini), QSettings.Format.IniFormat)
    gone = {"dataset": "csv", "csv_path": str(tmp_path / "gone.csv")}
    s.setValue("config/last", json.dumps(gone))
    s.sync()
    p = subprocess.Popen(
        main_cmd("--hidden", "8"),
        cwd=REPO_ROOT,
        env=cli_env(ini),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stderr.readline()  # the window is open (and waits) once this is written
        assert line.startswith("batchscope: the last session's settings were not used")
        assert "gone.csv: no such file" in line
        assert p.poll() is None  # running, not refused
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stderr.close()
