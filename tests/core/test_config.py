"""Config validation (``ConfigError.field`` names the setting) and the JSON file format."""

from __future__ import annotations

import json
import math

import pytest

from core.config import (
    MAX_LAYERS,
    MAX_WIDTH,
    Config,
    ConfigError,
    count_params,
    parse_hidden,
)


def field_of(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, ValueError)  # callers may catch ValueError
    assert err.message and err.field
    assert str(err) == f"{err.field}: {err.message}"
    return err.field


# ------------------------------------------------------------------------ parse_hidden
@pytest.mark.parametrize(
    "text, expected",
    [
        ("32, 32", (32, 32)),
        ("32 32", (32, 32)),
        ("  8,16 ,4 ", (8, 16, 4)),
        ("1", (1,)),
        ("", ()),
        ("   ", ()),
        (f"{MAX_WIDTH}", (MAX_WIDTH,)),
        (" ".join(["3"] * MAX_LAYERS), (3,) * MAX_LAYERS),
    ],
)
def test_parse_hidden_accepts(text, expected):
    assert parse_hidden(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "32, abc",
        "3.5",
        "0",
        "8, 0",
        "-4",
        str(10**9),
        str(MAX_WIDTH + 1),
        " ".join(["3"] * (MAX_LAYERS + 1)),
    ],
)
def test_parse_hidden_refuses(text):
    assert field_of(parse_hidden, text) == "hidden"


def test_parse_hidden_refuses_non_text():
    assert field_of(parse_hidden, [32, 32]) == "hidden"


# --------------------------------------------------------------------------- validate
def test_default_config_is_valid_and_frozen():
    cfg = Config()
    assert cfg.validate() is cfg
    assert cfg.layer_sizes() == [5, 32, 32, 3]
    with pytest.raises(AttributeError):
        cfg.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"hidden": (0,)}, "hidden"),
        ({"hidden": (10**9,)}, "hidden"),
        ({"hidden": (4,) * (MAX_LAYERS + 1)}, "hidden"),
        ({"hidden": ("abc",)}, "hidden"),
        ({"hidden": (True,)}, "hidden"),
        ({"hidden": (4096, 4096, 4096)}, "hidden"),  # over the parameter cap
        ({"batch_size": 2000}, "batch_size"),  # larger than the training set (1024)
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 8.0}, "batch_size"),
        ({"lr": math.nan}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": 0.0}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"lr": True}, "lr"),
        ({"activation": "softplus"}, "activation"),
        ({"loss": "hinge"}, "loss"),
        ({"reduction": "median"}, "reduction"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"dataset": "mnist"}, "dataset"),
        ({"plane": "hessian"}, "plane"),
        ({"sample_weighting": "random"}, "sample_weighting"),
        ({"n_samples": 4}, "n_samples"),
        ({"val_fraction": 0.95}, "val_fraction"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"noise": -1.0}, "noise"),
        ({"huber_delta": 0.0}, "huber_delta"),
        ({"momentum": 1.0}, "momentum"),
        ({"seed": -1}, "seed"),
        ({"surface_resolution": 2}, "surface_resolution"),
        ({"eval_every": 0}, "eval_every"),
        ({"dataset": "csv"}, "csv_path"),
        ({"output_weights": (1.0, -1.0, 1.0)}, "output_weights"),
        ({"output_weights": (1.0, math.nan, 1.0)}, "output_weights"),
        ({"output_weights": (0.0, 0.0, 0.0)}, "output_weights"),
        ({"output_weights": (1.0, 2.0)}, "output_weights"),  # teacher has 3 outputs
    ],
)
def test_validate_names_the_bad_field(changes, field):
    cfg = Config().replace(**changes)
    assert field_of(cfg.validate) == field


@pytest.mark.parametrize(
    "changes",
    [
        {"hidden": ()},
        {"hidden": (MAX_WIDTH,)},
        {"batch_size": 1024},  # exactly the training set
        {"batch_size": 1},
        {"lr": 1e6},
        {"val_fraction": 0.0},
        {"output_weights": (2.0, 1.0, 0.0)},
        {"dataset": "blobs", "loss": "cross_entropy"},
    ],
)
def test_validate_accepts_edge_values(changes):
    Config().replace(**changes).validate()


def test_batch_size_is_checked_against_a_given_train_size():
    cfg = Config(batch_size=32)
    assert field_of(cfg.validate, train_size=31) == "batch_size"
    cfg.validate(train_size=32)


def test_parameter_cap_uses_the_real_io_sizes():
    P = count_params([5, 4096, 4096, 3])
    assert P == 5 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 3 + 3
    Config(hidden=(4096, 4096)).validate()  # 16.8 M: under the cap
    cfg = Config(hidden=(4096, 4096), dataset="csv", csv_path="x.csv")
    assert field_of(cfg.validate, train_size=100, n_in=1000, n_out=3) == "hidden"


# ------------------------------------------------------------------------------- JSON
def test_save_load_round_trip(tmp_path):
    cfg = Config(
        hidden=(16, 8, 4),
        activation="relu",
        dataset="blobs",
        loss="cross_entropy",
        reduction="weighted",
        output_weights=(2.0, 1.0, 1.0),
        lr=0.003,
        optimizer="adam",
        seed=99,
        batch_size=17,
        plane="pca",
    )
    path = tmp_path / "settings.json"
    cfg.save(path)
    assert json.loads(path.read_text())["hidden"] == [16, 8, 4]
    assert Config.load(path) == cfg
    assert Config.load(str(path)) == cfg
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp files left


def test_load_subset_uses_defaults_and_coerces(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"hidden": "12, 6", "lr": 1, "batch_size": 16.0}))
    cfg = Config.load(path)
    assert cfg == Config(hidden=(12, 6), lr=1.0, batch_size=16)
    assert isinstance(cfg.lr, float) and isinstance(cfg.batch_size, int)


def load_error_field(path) -> str:
    field = field_of(Config.load, path)
    assert str(path) in field, f"the file name is missing from {field!r}"
    return field


@pytest.mark.parametrize(
    "content",
    [
        b'{"lr": 0.1',
        b"{lr: 0.1}",
        b"",
        b'{"lr": NaN}',
        b'{"lr": Infinity}',
        b"[" * 100_000,
        bytes(range(256)),
        b"\xff\xfe\x00junk\x00",
        "\u00e9t\u00e9".encode("latin-1"),
    ],
    ids=["truncated", "bare-key", "empty", "nan", "infinity", "deep", "binary", "bom", "latin1"],
)
def test_load_malformed_file(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert load_error_field(path) == str(path)


@pytest.mark.parametrize("data", [[1, 2], "text", 3, None, True])
def test_load_non_object_json(tmp_path, data):
    path = tmp_path / "list.json"
    path.write_text(json.dumps(data))
    assert load_error_field(path) == str(path)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"lr": "fast"}, "lr"),
        ({"lr": None}, "lr"),
        ({"lr": [0.1]}, "lr"),
        ({"lr": True}, "lr"),
        ({"batch_size": 16.5}, "batch_size"),
        ({"batch_size": "16"}, "batch_size"),
        ({"batch_size": False}, "batch_size"),
        ({"hidden": [32, "x"]}, "hidden"),
        ({"hidden": [32.0]}, "hidden"),
        ({"hidden": "32, x"}, "hidden"),
        ({"hidden": {"a": 1}}, "hidden"),
        ({"loss": 3}, "loss"),
        ({"csv_inputs": [1, 2]}, "csv_inputs"),
        ({"output_weights": ["a"]}, "output_weights"),
        ({"lr": -1}, "lr"),
        ({"loss": "hinge"}, "loss"),
        ({"batch_size": 5000}, "batch_size"),
    ],
)
def test_load_bad_field(tmp_path, data, key):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(data))
    assert load_error_field(path) == f"{path}: {key}"


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    field = load_error_field(path)
    assert field == str(path)


def test_load_directory(tmp_path):
    assert load_error_field(tmp_path) == str(tmp_path)


def test_from_dict_names_the_source():
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"lr": -1.0}, source="window")
    assert info.value.field == "window: lr"


def test_save_refuses_a_folder(tmp_path):
    with pytest.raises(OSError):
        Config().save(tmp_path)
