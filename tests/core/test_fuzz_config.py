"""Fuzzing the settings: any JSON, any bytes, any command-line value is either accepted as a
valid Config or refused with a ConfigError / UsageError naming the field; never another
exception, never a partial file."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import Config, ConfigError
from core.config import SETTINGS, write_text_atomic

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import main  # noqa: E402

FIELDS = list(Config().to_dict())
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_value = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=10,
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _check_loaded(path: Path) -> None:
    try:
        cfg = Config.load(path)
    except ConfigError as e:
        assert str(path) in e.field  # the file is named ...
        assert e.message  # ... and the reason given
        return
    assert isinstance(cfg, Config)
    cfg.validate()  # what loads is valid


@FUZZ
@given(data=st.dictionaries(st.sampled_from(FIELDS + ["bogus", ""]), json_value, max_size=6))
def test_any_settings_object_loads_or_names_the_field(tmp_path, data):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data, allow_nan=True), encoding="utf-8")
    _check_loaded(path)


@FUZZ
@given(value=json_value)
def test_any_json_document_loads_or_is_refused(tmp_path, value):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(value, allow_nan=True), encoding="utf-8")
    _check_loaded(path)


@FUZZ
@given(blob=st.binary(max_size=200))
def test_binary_junk_is_refused_cleanly(tmp_path, blob):
    path = tmp_path / "c.json"
    path.write_bytes(blob)
    _check_loaded(path)


@FUZZ
@given(
    # every option declared in core.config.SETTINGS (the CSV ones need a file: test_cli_main)
    option=st.sampled_from([s.cli_option for s in SETTINGS if s.group != "CSV"]),
    value=st.one_of(
        st.text(max_size=10),
        st.integers(-(10**10), 10**10).map(str),
        st.floats().map(repr),
        st.sampled_from(["nan", "inf", "-1", "0", "1e309", "10^9", "32,,32", "", "１２"]),
    ),
)
def test_any_command_line_value_is_a_config_or_one_named_refusal(option, value):
    try:
        args = main.build_parser().parse_args([option, value])
        cfg = main.config_from_args(args)
    except main.UsageError as e:
        text = str(e)
        assert "\n" not in text and text.startswith((option, "arguments")), text
        return
    assert isinstance(cfg, Config)
    cfg.validate()
    if option == "--lr":
        assert math.isfinite(cfg.lr) and cfg.lr > 0


def test_atomic_write_leaves_nothing_partial_on_failure(tmp_path):
    target = tmp_path / "folder"
    target.mkdir()
    try:
        write_text_atomic(target, "{}")  # a name that is a folder
    except OSError:
        pass
    else:  # pragma: no cover
        raise AssertionError("writing over a folder must fail")
    assert sorted(os.listdir(tmp_path)) == ["folder"]
    missing = tmp_path / "no" / "such" / "dir" / "c.json"
    try:
        Config().save(missing)
    except OSError:
        pass
    assert not missing.exists()
    good = tmp_path / "c.json"
    Config(batch_size=8).save(good)
    assert Config.load(good).batch_size == 8
    assert sorted(os.listdir(tmp_path)) == ["c.json", "folder"]
