"""A user's own CSV (``core.csv_data``): what spreadsheets write is accepted; the rest is
refused with the physical line number in a message under 200 characters; a fuzz test checks
the loader returns data or raises its one error type; standardisation on the training split."""

from __future__ import annotations

import os
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import Session
from core.config import Config, ConfigError
from core.csv_data import _NUMBER, MAX_MESSAGE, MIN_ROWS, load_table, read_table
from core.data import load_csv, make_dataset

HEADER = "a,b,c,y"


def rows_text(n: int = 10, end: str = "\n", seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return "".join(",".join(f"{v:.4f}" for v in rng.normal(size=4)) + end for _ in range(n))


def write(tmp_path, text: str | bytes, name: str = "d.csv") -> str:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_bytes(text.encode("utf-8"))
    return str(p)


def refusal(path, **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_csv(path, **kw)
    err = info.value
    assert len(err.message) < 200, err.message
    assert "\n" not in err.message
    return err


# ---------------------------------------------------------------- what spreadsheets write
def test_excel_csv_utf8_bom_crlf_and_quoted_numbers(tmp_path):
    plain = write(tmp_path, HEADER + "\n" + rows_text(), "plain.csv")
    body = rows_text(end="\r\n")
    quoted = "\r\n".join(
        ",".join(f'"{c}"' for c in line.split(",")) for line in body.strip().split("\r\n")
    )
    excel = write(tmp_path, b"\xef\xbb\xbf" + (HEADER + "\r\n" + quoted + "\r\n").encode(), "x.csv")
    X0, T0 = load_csv(plain)
    X1, T1 = load_csv(excel)
    np.testing.assert_array_equal(X0, X1)
    np.testing.assert_array_equal(T0, T1)
    table = read_table(excel)
    assert table.header == ("a", "b", "c", "y")  # no BOM glued to the first name
    assert table.lines[:3] == [2, 3, 4]


def test_old_mac_line_ends_and_padding(tmp_path):
    # CR only; blank lines; rows padded with empty cells; trailing empty header cells
    body = rows_text(9).replace("\n", ",,\r")
    path = write(tmp_path, HEADER + ",,\r\r" + body)
    X, T = load_csv(path)
    assert X.shape == (9, 3) and T.shape == (9, 1)


def test_pandas_index_column_is_named(tmp_path):
    text = ",x,y\n" + "".join(f"{i},{i * 0.5},{i * 2.0}\n" for i in range(10))
    table = read_table(write(tmp_path, text))
    assert table.header == ("column 1", "x", "y")
    X, T = load_csv(table.path, inputs=("x",))
    np.testing.assert_array_equal(T[:, 0], 2.0 * np.arange(10))


def test_a_quoted_cell_spanning_lines_keeps_physical_line_numbers(tmp_path):
    text = 'name,a,y\n"two\nlines",1,2\n' + "".join(f"r{i},{i},{i}\n" for i in range(8))
    text += "bad,zz,1\n"
    path = write(tmp_path, text)
    table = read_table(path)
    assert table.lines[:2] == [2, 4]  # the second row starts on line 4, not 3
    err = refusal(path, inputs=("a",), targets=("y",))
    assert "line 12:" in err.message and "'zz'" in err.message


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    "bad_line, words",
    [
        ("1,2,3,4,5", ["line 7:", "5 cells", "header has 4"]),
        ("1,2", ["line 7:", "2 cells", "header has 4"]),
        ("1,oops,3,4", ["line 7:", "'b'", "'oops' is not a number"]),
        ("1,NaN,3,4", ["line 7:", "'b'", "not a finite number"]),
        ("1,-inf,3,4", ["line 7:", "not a finite number"]),
        ("1,,3,4", ["line 7:", "'b'", "empty"]),
        ("1,1e999,3,4", ["line 7:", "too large"]),
        ("1,1_000,3,4", ["line 7:", "not a number"]),  # Python's float would take these two
        ("1,١٢,3,4", ["line 7:", "not a number"]),
    ],
)
def test_refusals_name_the_physical_line(tmp_path, bad_line, words):
    lines = rows_text(10).splitlines()
    lines.insert(4, bad_line)  # header line 1, a blank line 2: this is line 7
    path = write(tmp_path, HEADER + "\n\n" + "\n".join(lines) + "\n")
    err = refusal(path)
    assert err.field == "csv_path"
    for w in words:
        assert w in err.message, err.message


def test_unclosed_quote_names_its_line_and_not_the_rest_of_the_file(tmp_path):
    text = HEADER + "\n" + rows_text(3) + '1,"2,3,4\n' + rows_text(500)
    err = refusal(write(tmp_path, text))
    assert "line 5:" in err.message and "never closes" in err.message
    assert len(err.message) < 120


def test_too_few_rows(tmp_path):
    err = refusal(write(tmp_path, HEADER + "\n" + rows_text(5) + "\n\n"))
    assert "line 6:" in err.message and "5 data rows" in err.message and "8" in err.message


@pytest.mark.parametrize(
    "text, words",
    [
        ("", ["empty"]),
        ("\n\n", ["empty"]),
        ("1,2,3\n4,5,6\n", ["line 1:", "header"]),
        ("a,b,a\n1,2,3\n", ["line 1:", "'a' appears twice"]),
        ("a,b\n1,\x002\n", ["line 2:", "NUL"]),
        ('a,b\n"1"x,2\n', ["line 2:", "quote"]),
    ],
)
def test_malformed_files(tmp_path, text, words):
    err = refusal(write(tmp_path, text))
    for w in words:
        assert w in err.message, err.message


def test_undecodable_bytes_name_their_line(tmp_path):
    data = (HEADER + "\n" + rows_text(4)).encode() + b"1,\xff\xfe,3,4\n" + rows_text(5).encode()
    err = refusal(write(tmp_path, data))
    assert "line 6:" in err.message and "UTF-8" in err.message


def test_long_path_and_long_cell_keep_the_message_short(tmp_path):
    d = tmp_path / ("folder" * 30)
    d.mkdir()
    text = HEADER + "\n" + rows_text(3) + "1," + "x" * 5000 + ",3,4\n" + rows_text(6)
    p = d / ("a-very-long-file-name-" * 8 + ".csv")
    p.write_text(text)
    err = refusal(str(p))
    assert "line 5:" in err.message


def test_column_choices(tmp_path):
    path = write(tmp_path, HEADER + "\n" + rows_text())
    assert refusal(path, inputs=("a", "zz")).field == "csv_inputs"
    assert refusal(path, targets=("zz",)).field == "csv_targets"
    assert refusal(path, inputs=("a", "a")).field == "csv_inputs"
    assert refusal(path, inputs=("a", "y"), targets=("y",)).field == "csv_targets"


# ----------------------------------------------------------------------------- the task
def labelled(tmp_path, labels) -> str:
    rng = np.random.default_rng(3)
    text = "x1,x2,kind\n" + "".join(f"{rng.normal():.3f},{rng.normal():.3f},{k}\n" for k in labels)
    return write(tmp_path, text)


def test_text_labels_are_guessed_as_classification(tmp_path):
    path = labelled(tmp_path, ["cat", "dog", "bird"] * 5)
    d = load_table(read_table(path))
    assert d.task == "classification" and "guessed" in d.task_note
    assert d.target_names == ("kind=bird", "kind=cat", "kind=dog")
    np.testing.assert_array_equal(d.T.sum(axis=1), 1.0)
    assert d.T[0].tolist() == [0.0, 1.0, 0.0]  # cat


def test_integer_labels_are_regression_unless_chosen(tmp_path):
    path = labelled(tmp_path, ["0", "1", "2.0"] * 5)
    auto = load_table(read_table(path))
    assert auto.task == "regression" and "choose classification" in auto.task_note
    cls = load_table(read_table(path), task="classification")
    assert cls.task == "classification" and cls.target_names == ("kind=0", "kind=1", "kind=2")
    assert cls.T[2].tolist() == [0.0, 0.0, 1.0]  # "2.0" is class 2
    with pytest.raises(ConfigError) as info:
        load_table(read_table(labelled(tmp_path, ["a", "b"] * 5)), task="regression")
    assert "line 2:" in info.value.message and "not a number" in info.value.message


def test_a_stray_word_among_numbers_is_a_typo_not_a_class(tmp_path):
    path = labelled(tmp_path, ["1.5", "2.5", "3"] * 4 + ["n/a"])
    with pytest.raises(ConfigError) as info:
        load_table(read_table(path))
    assert "line 14:" in info.value.message and "'n/a' is not a number" in info.value.message


def test_a_single_class_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_table(read_table(labelled(tmp_path, ["same"] * 10)))
    assert info.value.field == "csv_task"


# -------------------------------------------------------------------- standardisation
def house_prices(tmp_path, n=200) -> str:
    """Raw targets in the hundreds (a house price in thousands)."""
    rng = np.random.default_rng(7)
    area = rng.uniform(40, 250, n)
    rooms = rng.integers(1, 7, n)
    price = 1.8 * area + 12 * rooms + 60 + rng.normal(0, 15, n)
    text = "area,rooms,price\n" + "".join(
        f"{a:.1f},{r},{p:.1f}\n" for a, r, p in zip(area, rooms, price)
    )
    return write(tmp_path, text, "house.csv")


def test_standardised_on_the_training_split(tmp_path):
    cfg = Config(dataset="csv", csv_path=house_prices(tmp_path), batch_size=16)
    d = make_dataset(cfg)
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(d.X_train.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(d.T_train.mean(axis=0), 0.0, atol=1e-12)
    assert abs(d.T_val.mean()) > 1e-6  # the validation split uses the training statistics
    assert 200 < d.t_shift[0] < 600 and d.t_scale[0] > 50
    raw = make_dataset(cfg.replace(csv_scale="none"))
    np.testing.assert_allclose(d.T_train * d.t_scale + d.t_shift, raw.T_train)
    np.testing.assert_allclose(d.X_val * d.x_scale + d.x_shift, raw.X_val)
    assert "standardised" in d.scale_note and raw.scale_note == "raw values"
    assert d.input_names == ("area", "rooms") and d.target_names == ("price",)


def test_raw_targets_in_the_hundreds_train_at_default_settings(tmp_path):
    cfg = Config(dataset="csv", csv_path=house_prices(tmp_path), batch_size=16)
    s = Session(cfg)
    first = s.step(detail=False).loss
    snap = s.run(300, detail_last=False)
    assert not s.diverged and s.step_count == 301
    assert snap.loss < 0.3 * first
    raw = Session(cfg.replace(csv_scale="none"))
    raw.run(300, detail_last=False)
    assert raw.diverged  # what the default scaling prevents


def test_classes_are_not_standardised(tmp_path):
    cfg = Config(dataset="csv", csv_path=labelled(tmp_path, ["a", "b", "c"] * 6), batch_size=4)
    d = make_dataset(cfg)
    assert set(np.unique(d.T_train)) == {0.0, 1.0}
    assert d.scale_note == "inputs standardised on the training split"


# ------------------------------------------------------------------------------- fuzzing
CELL = st.one_of(
    st.from_regex(r"-?\d{1,4}(\.\d{0,3})?", fullmatch=True),
    st.sampled_from(["", " ", "nan", "inf", "1e999", '"', '""', '"3"', "x", "\r", "\n", ","]),
    st.text(alphabet=string.printable + "é€\ufeff\x00", max_size=6),
)
LINE = st.lists(CELL, min_size=0, max_size=6).map(",".join)
FILE = st.tuples(
    st.lists(LINE, min_size=0, max_size=14),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)


@settings(
    max_examples=int(os.environ.get("BATCHSCOPE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(FILE, st.sampled_from(["auto", "regression", "classification"]), st.binary(max_size=4))
def test_fuzz_loader_returns_data_or_its_one_error(tmp_path, spec, task, junk):
    lines, end, bom = spec
    data = ("\ufeff" if bom else "") + end.join(lines)
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data.encode("utf-8", "surrogatepass") + junk)
    try:
        table = read_table(path)
        d = load_table(table, task=task)
    except ConfigError as e:
        assert len(e.message) <= MAX_MESSAGE and "\n" not in e.message and "\r" not in e.message
        assert e.field in ("csv_path", "csv_inputs", "csv_targets", "csv_task")
        return
    n = len(table.rows)
    assert d.X.shape == (n, len(d.input_names)) and d.T.shape[0] == n
    assert d.X.dtype == np.float64 and np.all(np.isfinite(d.X)) and np.all(np.isfinite(d.T))
    assert d.task in ("regression", "classification")
    # the fast column conversion agrees with the strict cell-by-cell reading
    cols = [table.header.index(n) for n in d.input_names]
    for i, row in enumerate(table.rows):
        for j, c in enumerate(cols):
            assert _NUMBER.fullmatch(row[c]) and float(row[c]) == d.X[i, j]


NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.from_regex(r"[+-]?(\d{1,3}\.?\d{0,3}|\.\d{1,3})([eE][+-]?\d{1,3})?", fullmatch=True),
)
ODD_TEXT = st.sampled_from(["nan", "-inf", "1_0", "١", "", "x", "1e999", "0x1", "1.2.3"])


@settings(
    max_examples=int(os.environ.get("BATCHSCOPE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.integers(2, 4).flatmap(
        lambda k: st.lists(
            st.lists(
                st.one_of(NUMBER_TEXT, NUMBER_TEXT, NUMBER_TEXT, ODD_TEXT), min_size=k, max_size=k
            ),
            min_size=8,
            max_size=20,
        )
    ),
    st.booleans(),
    st.booleans(),
)
def test_fuzz_tables_of_numbers(tmp_path, rows, quote, crlf):
    k = len(rows[0])
    cell = (lambda c: f'"{c}"') if quote else (lambda c: c)
    end = "\r\n" if crlf else "\n"
    text = ",".join(f"c{j}" for j in range(k)) + end
    text += "".join(",".join(cell(c) for c in r) + end for r in rows)
    path = write(tmp_path, text, "t.csv")
    # a row of empty cells is skipped like a blank line; rows keep their physical line
    kept = [(i, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    # the input columns are read first, then the target (the last column)
    bad = [
        (i, j)
        for cols in (range(k - 1), [k - 1])
        for i, r in kept
        for j in cols
        if not (_NUMBER.fullmatch(r[j]) and np.isfinite(float(r[j])))
    ]
    try:
        X, T = load_csv(path, task="regression")
    except ConfigError as e:
        if len(kept) < MIN_ROWS:
            assert f"at least {MIN_ROWS}" in e.message  # too few rows is said first
            return
        assert bad, e.message  # refused only for a real reason
        assert f"line {bad[0][0] + 2}:" in e.message  # the first bad row's physical line
        return
    assert not bad and len(kept) >= MIN_ROWS
    expect = np.array([[float(c) for c in r] for _, r in kept])
    np.testing.assert_array_equal(np.hstack([X, T]), expect)
