"""Every "Try" suggestion in the help, and the max-reduction preset, trains as written: no
suggestion leads a new user into a diverged run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core import Config, Session

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def _try_lines() -> list[str]:
    text = (RESOURCES / "help.md").read_text(encoding="utf-8")
    block = text.split("### Try", 1)[1].strip().split("\n\n", 1)[0]
    return [" ".join(item.split()) for item in block.removeprefix("- ").split("\n- ")]


def _train(session: Session, steps: int) -> None:
    for _ in range(steps):
        snap = session.step(detail=False)
        assert not snap.diverged, snap.message


def test_the_help_suggests_what_is_tested_here():
    lines = _try_lines()
    assert len(lines) == 3
    assert "Batch size" in lines[0] and "1" in lines[0] and "256" in lines[0]
    assert re.search(r"Learning rate\*\* to 0\.02, then \*\*Reduction\*\* to \*max\*", lines[1])
    assert "`64, 64, 64`" in lines[2]


def test_batch_size_1_then_256_trains():
    s = Session(Config())
    _train(s, 300)
    s.update(batch_size=1)
    _train(s, 1000)
    s.update(batch_size=256)
    _train(s, 500)


@pytest.mark.parametrize("after", [0, 300])
def test_max_reduction_at_the_suggested_rate_trains(after):
    s = Session(Config())
    _train(s, after)
    s.update(lr=0.02)
    s.update(reduction="max")
    _train(s, 2500)


def test_the_max_preset_trains():
    preset = json.loads((RESOURCES / "presets" / "max_reduction.json").read_text("utf-8"))
    assert preset["reduction"] == "max" and preset["lr"] == 0.02
    s = Session(Config(**{k: tuple(v) if k == "hidden" else v for k, v in preset.items()}))
    _train(s, 2500)


def test_max_at_the_default_rate_does_diverge():
    """Why the help names a rate: at the default 0.05 max diverges from a fresh start."""
    s = Session(Config(reduction="max"))
    assert any(s.step(detail=False).diverged for _ in range(500))


def test_a_new_deeper_network_trains():
    s = Session(Config())
    _train(s, 300)
    s.update(hidden=(64, 64, 64))
    _train(s, 1000)
