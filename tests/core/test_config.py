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


# ------------------------------------------------------------------ the declarations
def test_every_field_is_declared_once_with_a_valid_default():
    from core.config import SETTING, SETTINGS

    assert [s.name for s in SETTINGS] == list(Config().to_dict())  # one per field, in order
    assert len({s.control for s in SETTINGS}) == len(SETTINGS)  # one widget each
    assert len({s.cli_option for s in SETTINGS}) == len(SETTINGS)  # one option each
    for s in SETTINGS:
        assert s.default == getattr(Config(), s.name)
        assert s.check(s.default) == s.default
        assert s.label and s.tooltip and s.help_text()
        assert s.error_label.endswith("Error") and s.error_label != s.control
    assert SETTING["batch_size"].error_label == "batchSizeError"
    assert SETTING["hidden"].error_label == "hiddenLayersError"
    assert SETTING["csv_path"].cli_option == "--csv"


@pytest.mark.parametrize(
    "name, text, words",
    [
        ("batch_size", "abc", "not a whole number"),
        ("batch_size", "0", "between 1 and 65536"),
        ("batch_size", str(10**9), "between 1 and 65536"),
        ("lr", "nan", "finite"),
        ("lr", "0", "> 0"),
        ("hidden", "10^9", "whole number"),
        ("loss", "hinge", "not one of"),
        ("output_weights", "2, x", "not a number"),
        ("csv_inputs", " , ", "column names"),
    ],
)
def test_a_typed_value_is_refused_with_its_reason(name, text, words):
    from core.config import SETTING

    with pytest.raises(ConfigError) as info:
        SETTING[name].parse(text)
    assert info.value.field == name and words in info.value.message


def test_parse_gives_the_fields_type():
    from core.config import SETTING

    assert SETTING["batch_size"].parse(" 8 ") == 8
    assert SETTING["lr"].parse("1e-3") == 0.001
    assert SETTING["hidden"].parse("8 4") == (8, 4)
    assert SETTING["output_weights"].parse("2, 1, 1") == (2.0, 1.0, 1.0)
    assert SETTING["csv_targets"].parse("a, b") == ("a", "b")


def test_the_data_sets_sizes_and_tasks_come_from_their_declarations():
    from core.config import SETTING
    from core.data import DATA_SOURCES, declared_shape, make_dataset

    for d in DATA_SOURCES:
        if d.make is None:
            continue
        cfg = Config(dataset=d.name, n_samples=50, loss="mse")
        shape = declared_shape(cfg)
        data = make_dataset(cfg)
        assert (shape.n_train, shape.n_in, shape.n_out, shape.task) == (
            data.n_train,
            data.n_in,
            data.n_out,
            data.task,
        )
        assert cfg.io_sizes() == (d.n_in, d.n_out) and cfg.train_size() == data.n_train
    assert SETTING["dataset"].keys() == tuple(d.name for d in DATA_SOURCES)


def test_validate_knows_the_task_and_blames_the_setting_changed():
    cfg = Config(loss="cross_entropy")  # teacher: regression targets
    assert field_of(cfg.validate) == "loss"
    assert field_of(cfg.validate, changed={"dataset"}) == "dataset"
    Config(dataset="blobs", loss="cross_entropy").validate()
    # a loaded data set (anything with n_train, n_in, n_out, task) overrides the declaration
    classes = type("Shape", (), {"n_train": 40, "n_in": 5, "n_out": 3, "task": "classification"})
    cfg.validate(classes)
    assert field_of(Config(batch_size=41).validate, classes) == "batch_size"


def test_a_registered_loss_is_a_choice_at_once():
    import numpy as np

    from core.config import SETTING
    from core.losses import Loss, registered

    class Hinge(Loss):
        name = "hinge_test"
        label = "hinge"
        task = "classification"

        def matrix(self, Y, T):
            return np.maximum(0.0, 1.0 - Y * T)

        def grad(self, Y, T, U):
            return -U * T * (Y * T < 1.0)

    with registered(Hinge()):
        assert "hinge_test" in SETTING["loss"].keys()
        Config(dataset="blobs", loss="hinge_test").validate()
        with pytest.raises(ConfigError, match="hinge needs class targets"):
            Config(loss="hinge_test").validate()
    assert field_of(Config(loss="hinge_test").validate) == "loss"  # gone with its registration


def test_validate_changes_is_config_validate():
    from core.session import validate_changes

    assert validate_changes(Config(), {"batch_size": 8}) == Config(batch_size=8)
    with pytest.raises(ConfigError) as info:
        validate_changes(Config(), {"learning_rate": 0.1})
    assert info.value.field == "learning_rate"
    assert field_of(validate_changes, Config(), {"batch_size": 33}, 32, "regression") == (
        "batch_size"
    )
