"""The command line (main.py in a subprocess, no display): bad values exit with status 2 and
one line naming the option; --export-dir and --screenshot render headless and exit."""

from __future__ import annotations

import csv
import subprocess

import pytest
from gui_testing import CSV_HEADERS, REPO_ROOT, VIEW_NAMES, cli_env, main_cmd
from PySide6.QtGui import QImage

TIMEOUT = 120


def run_main(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        main_cmd(*args),
        cwd=REPO_ROOT,
        env=cli_env(tmp_path / "cli-settings.ini"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


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


@pytest.mark.parametrize(
    ("args", "option"), BAD_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_value_exits_2_with_one_line(tmp_path, args, option):
    args = list(args)
    if "{malformed}" in args:
        bad = tmp_path / "malformed.json"
        bad.write_text('{"lr": 0.1,,}')
        args[args.index("{malformed}")] = str(bad)
    if "{badfield}" in args:
        bad = tmp_path / "badfield.json"
        bad.write_text('{"batch_size": "lots"}')
        args[args.index("{badfield}")] = str(bad)
    if "missing.json" in args:
        args[args.index("missing.json")] = str(tmp_path / "missing.json")
    shot = tmp_path / "shot.png"
    r = run_main(tmp_path, *args, "--screenshot", str(shot))
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


def test_diverging_run_still_writes_the_picture(tmp_path):
    shot = tmp_path / "diverged.png"
    r = run_main(tmp_path, "--lr", "1000", "--steps", "200", "--screenshot", str(shot))
    assert r.returncode == 0, r.stderr
    assert "diverged at step" in r.stderr
    assert "Traceback" not in r.stderr
    img = QImage(str(shot))
    assert not img.isNull() and (img.width(), img.height()) == (1600, 1000)


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
    ):
        assert option in r.stdout


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
