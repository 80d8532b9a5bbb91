"""The README's commands run as written after its two set-up commands.

Every line of its ``bash`` blocks is a set-up command, a ``.venv/bin/batchscope`` command or a
benchmark. The batchscope commands that render run for real (as pasted, in a folder where
``.venv`` and ``examples`` are the checkout's, with at most 10 steps so the test is quick) and
must exit 0 with their pictures written; every batchscope command's training also runs at its
full length in-process and must not diverge ("the examples show good runs"). The Python
example runs too.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
QUICK_STEPS = 10
TIMEOUT = 300
sys.path.insert(0, str(REPO))


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def command_lines() -> list[str]:
    return [ln.strip() for b in blocks("bash") for ln in b.splitlines() if ln.strip()]


def batchscope_lines() -> list[str]:
    return [ln for ln in command_lines() if ln.startswith(".venv/bin/batchscope ")]


def headless(line: str) -> bool:
    return "--screenshot" in line or "--export-dir" in line


def test_every_command_line_is_known_and_runnable_as_pasted():
    lines = command_lines()
    setup = [ln for ln in lines if ln.startswith("python3 -m venv .venv")]
    assert setup == ["python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/batchscope"]
    assert "bash .ci/run" in lines and (REPO / ".ci" / "run").is_file()
    for ln in lines:
        words = shlex.split(ln)
        if ln in setup or ln == "bash .ci/run" or ln.startswith(".venv/bin/batchscope "):
            continue
        assert words[0] == ".venv/bin/python" and words[1].startswith("benchmarks/"), (
            f"README command not runnable as pasted after the set-up: {ln!r}"
        )
        assert (REPO / words[1]).is_file(), words[1]
    assert not [ln for ln in lines if ln.startswith("batchscope")], "write .venv/bin/batchscope"
    assert len(batchscope_lines()) >= 4
    assert sum(map(headless, batchscope_lines())) >= 3


@pytest.mark.parametrize("line", batchscope_lines())
def test_example_trains_without_diverging_at_full_length(line):
    """The settings of each example train for their full --steps (300 for the window)."""
    import main
    from core import Session

    args = main.build_parser().parse_args(shlex.split(line)[1:])
    cwd = os.getcwd()
    os.chdir(REPO)  # the examples' relative paths (examples/house_prices.csv)
    try:
        cfg = main.config_from_args(args)
        session = Session(cfg)
    finally:
        os.chdir(cwd)
    steps = int(args.steps) or 300
    session.run(steps, detail_last=False)
    assert not session.diverged, f"{line}: {session.divergence}"
    assert session.step_count == steps


def test_the_readme_csv_claim_without_scaling():
    """'--scale none diverges within 20 steps' (and the default trains: above)."""
    from core import Config, Session

    s = Session(
        Config(dataset="csv", csv_path=str(REPO / "examples/house_prices.csv"), csv_scale="none")
    )
    s.run(20, detail_last=False)
    assert s.diverged


def _batchscope() -> Path:
    venv = REPO / ".venv" / "bin" / "batchscope"
    if venv.exists():
        return venv
    here = Path(sys.executable).parent / "batchscope"
    assert here.exists(), "no batchscope script: run the README's set-up command"
    return here


def _run_as_pasted(folder: Path, line: str) -> tuple[list[str], subprocess.CompletedProcess]:
    """``line`` (its --steps cut to QUICK_STEPS) run in ``folder``, made like the checkout:
    its .venv/bin/batchscope and examples/, nothing else."""
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "batchscope").symlink_to(_batchscope())
    (folder / "examples").symlink_to(REPO / "examples")
    words = shlex.split(line)
    i = words.index("--steps")
    words[i + 1] = str(min(int(words[i + 1]), QUICK_STEPS))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)  # without a display it must go offscreen by itself
    env["BATCHSCOPE_SETTINGS"] = str(folder / "settings.ini")
    r = subprocess.run(words, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    return words, r


HEADLESS_TEST = "test_headless_example_runs_as_written"


@pytest.fixture(scope="module", autouse=True)
def headless_runs(request, tmp_path_factory):
    """The headless examples this session tests, run two at a time from the module's first
    test on (beside the in-process trainings): {case id: (its folder, its run)}."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {}
        for item in request.session.items:
            if item.module is request.module and item.originalname == HEADLESS_TEST:
                folder = tmp_path_factory.mktemp("example")
                line = item.callspec.params["line"]
                runs[item.callspec.id] = folder, pool.submit(_run_as_pasted, folder, line)
        yield runs


@pytest.mark.parametrize("line", [ln for ln in batchscope_lines() if headless(ln)])
def test_headless_example_runs_as_written(headless_runs, request, line):
    tmp_path, run = headless_runs[request.node.callspec.id]
    words, r = run.result()
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert all(ln.startswith(("step ", "batchscope: ")) for ln in lines), r.stderr
    if "--screenshot" in words:
        shot = tmp_path / words[words.index("--screenshot") + 1]
        assert shot.is_file() and shot.stat().st_size > 10_000
    if "--export-dir" in words:
        out = tmp_path / words[words.index("--export-dir") + 1]
        assert (out / "window.png").is_file() and (out / "loss_surface.png").is_file()
    # what the examples write is ignored by git
    written = [
        p.name for p in tmp_path.iterdir() if p.name not in (".venv", "examples", "settings.ini")
    ]
    ignored = subprocess.run(
        [
            "git",
            "check-ignore",
            "--no-index",
            *[n + ("/" if (tmp_path / n).is_dir() else "") for n in written],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert sorted(ignored.stdout.split()) == sorted(
        n + ("/" if (tmp_path / n).is_dir() else "") for n in written
    ), ignored.stderr


def test_the_python_example_runs():
    (code,) = blocks("python")
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert r.returncode == 0, r.stderr
    assert "e-1" in r.stdout  # the mean of the per-sample gradients is the gradient (~1e-17)
