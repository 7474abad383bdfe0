"""runtime/vendored/data.py: csv, npz and scikit-learn pieces, labels, splits, standardisation.

The generated `read_data` of a training script strings these pieces together per task (see
compiler/emit_train.py); `read_csv_data` and `read_npz_data` below do the same, so that the
tests read like a script's use of the library.
"""

import pathlib

import pytest
import torch

import numpy as np  # noqa: E402  (a dev dependency)

from standalone_util import run_blocked

from tgc.compiler.vendor import vendor
from tgc.runtime.vendored.data import (  # noqa: E402
    SKLEARN_SETS,
    DataError,
    apply_scaling,
    fit_scaling,
    apply_label_map,
    array_input,
    array_labels,
    array_targets,
    as_input,
    csv_columns,
    csv_inputs,
    csv_labels,
    csv_numbers,
    encode_labels,
    input_columns,
    load_sklearn,
    npz_array,
    npz_inputs,
    open_npz,
    parse_number,
    read_csv,
    sklearn_labels,
    split_indices,
)

RUNTIME = pathlib.Path(__file__).resolve().parent.parent / "runtime" / "vendored"
ONE_INPUT = {"x": torch.float32}


def write(tmp_path: pathlib.Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def read_csv_data(path, target="label", task="classification", inputs=ONE_INPUT, reference=None):
    """What a generated read_data does for a csv source."""
    targets = [target] if isinstance(target, str) else list(target)
    header, rows, lines = read_csv(path)
    columns = reference["columns"] if reference else input_columns(path, header, targets, list(inputs))
    xs = csv_inputs(path, header, rows, lines, columns, inputs)
    if task == "classification":
        y, label_map, classes = csv_labels(path, header, rows, lines, target, reference)
    else:
        y = csv_columns(path, header, rows, lines, targets, "regression targets")
        y = y[:, 0] if isinstance(target, str) else y
        label_map, classes = None, None
    return xs, y, {"columns": columns, "label_map": label_map, "classes": classes}


def read_npz_data(path, task="classification", inputs=ONE_INPUT, reference=None):
    """What a generated read_data does for an npz source."""
    arrays = open_npz(path)
    xs = npz_inputs(arrays, path, inputs)
    if task == "classification":
        y, label_map, classes = array_labels(npz_array(arrays, path, "y"), len(xs[0]), f"{path}: y", reference)
    else:
        y, label_map, classes = array_targets(npz_array(arrays, path, "y"), len(xs[0]), f"{path}: y"), None, None
    return xs, y, {"columns": None, "label_map": label_map, "classes": classes}


# ------------------------------------------------------------------ csv: reading

def test_read_csv_happy_path_skips_blank_rows(tmp_path):
    path = write(tmp_path, "\ufeffa, label ,b\n1,0,2.5\n\n,,\n3,2,-1e-3\n5,1,7\n")
    header, rows, lines = read_csv(path)
    assert header == ["a", "label", "b"]  # BOM dropped, names stripped
    assert rows == [["1", "0", "2.5"], ["3", "2", "-1e-3"], ["5", "1", "7"]]
    assert lines == [2, 5, 6]


def test_csv_classification_integer_labels(tmp_path):
    path = write(tmp_path, "a,label,b\n1,0,2.5\n3,2,-1e-3\n\n5,1,7\n")
    (x,), y, info = read_csv_data(path)
    assert x.dtype == torch.float32 and x.shape == (3, 2)
    assert torch.equal(x, torch.tensor([[1, 2.5], [3, -1e-3], [5, 7]], dtype=torch.float32))
    assert y.dtype == torch.int64 and y.tolist() == [0, 2, 1]
    assert info == {"columns": {"x": ["a", "b"]}, "label_map": None, "classes": 3}


def test_csv_string_labels_get_a_sorted_label_map(tmp_path):
    path = write(tmp_path, 'x,label\n1,"dog"\n2,cat\n3, dog \n4,bird\n')
    _, y, info = read_csv_data(path)
    assert info["label_map"] == ["bird", "cat", "dog"]
    assert y.tolist() == [2, 1, 2, 0]
    assert info["classes"] == 3


def test_csv_negative_or_fractional_labels_get_a_label_map(tmp_path):
    path = write(tmp_path, "x,label\n1,-1\n2,1\n3,-1.0\n")
    _, y, info = read_csv_data(path)
    assert info["label_map"] == [-1, 1] and y.tolist() == [0, 1, 0]
    assert isinstance(info["label_map"][0], int)  # -1.0 reads as -1: json-friendly
    path = write(tmp_path, "x,label\n1,0.5\n2,2\n", "frac.csv")
    assert read_csv_data(path)[2]["label_map"] == [0.5, 2]


def test_csv_regression_one_and_several_targets(tmp_path):
    path = write(tmp_path, "x,y1,y2\n1,0.5,3\n2,1.5,4\n")
    (x,), y, info = read_csv_data(path, "y1", "regression")
    assert y.dtype == torch.float32 and y.tolist() == [0.5, 1.5]
    assert x.shape == (2, 2) and info["columns"] == {"x": ["x", "y2"]}
    assert info["label_map"] is None and info["classes"] is None
    (x,), y, info = read_csv_data(path, ["y1", "y2"], "regression")
    assert y.shape == (2, 2) and x.shape == (2, 1) and info["columns"] == {"x": ["x"]}


def test_csv_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_csv(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="is a directory"):
        read_csv(str(tmp_path))


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,label\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_csv(str(path))


def test_csv_non_numeric_feature_names_column_and_line(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError, match=r"line 3, column 'b': non-numeric value 'oops' \(features must be numbers\)"):
        read_csv_data(path)


@pytest.mark.parametrize("cell", ["", "nan", "NaN", "  ", "-nan"])
def test_csv_missing_feature_value(tmp_path, cell):
    path = write(tmp_path, f"a,b,label\n1,2,0\n3,{cell},1\n")
    with pytest.raises(DataError, match=r"line 3, column 'b': missing value"):
        read_csv_data(path)


def test_csv_infinite_feature(tmp_path):
    path = write(tmp_path, "a,label\n1,0\ninf,1\n")
    with pytest.raises(DataError, match=r"line 3, column 'a': infinite value 'inf'"):
        read_csv_data(path)


@pytest.mark.parametrize("cell", ["", "nan"])
def test_csv_missing_label(tmp_path, cell):
    path = write(tmp_path, f"a,label\n1,0\n2,{cell}\n")
    with pytest.raises(DataError, match=r"line 3, column 'label': missing label"):
        read_csv_data(path)


def test_csv_non_numeric_regression_target(tmp_path):
    path = write(tmp_path, "a,y\n1,0.5\n2,high\n")
    with pytest.raises(DataError, match=r"line 3, column 'y': non-numeric value 'high' \(regression targets"):
        read_csv_data(path, "y", "regression")


def test_csv_long_cell_is_cut_in_the_message(tmp_path):
    path = write(tmp_path, "a,label\n" + "x" * 200 + ",0\n")
    with pytest.raises(DataError) as error:
        read_csv_data(path)
    assert "..." in str(error.value) and "x" * 60 not in str(error.value)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty; a header row"),
        ("\n\n", "empty; a header row"),
        ("1,2,0\n3,4,1\n", "header row naming the columns is required"),
        ("a,a,label\n1,2,0\n", "'a' appears twice"),
        ("a,,label\n1,2,0\n", "header column 2 has no name"),
        ("a,label\n", "no data rows"),
        ("a,label\n1,0\n2,1,5\n", "line 3 has 3 cells, the header has 2"),
        ("label\n0\n", "no columns for input `x`"),
    ],
)
def test_csv_malformed(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        read_csv_data(write(tmp_path, text))


def test_parse_number_and_csv_numbers():
    assert parse_number("1e3") == 1000.0 and parse_number(" 2 ") == 2.0 and parse_number("x") is None
    assert csv_numbers("f.csv", "a", ["1", " 2.5 ", "-3"], [2, 3, 4], "features") == [1.0, 2.5, -3.0]
    with pytest.raises(DataError, match=r"f.csv: line 7, column 'a': missing value"):
        csv_numbers("f.csv", "a", ["1", ""], [2, 7], "features")


def test_csv_columns_missing_name_is_a_data_error(tmp_path):
    path = write(tmp_path, "a,y\n1,2\n")
    header, rows, lines = read_csv(path)
    assert csv_columns(path, header, rows, lines, ["y", "a"]).tolist() == [[2.0, 1.0]]
    with pytest.raises(DataError, match=r"no column 'yy' \(columns: a, y\); did you mean 'y'\?"):
        csv_columns(path, header, rows, lines, ["yy"], "regression targets")


# ------------------------------------------------------------------ csv: which columns feed which input

def test_input_columns_one_input_takes_every_other_column():
    header = ["a", "label", "b", "c.0"]
    assert input_columns("f.csv", header, ["label"], ["x"]) == {"x": ["a", "b", "c.0"]}
    assert input_columns("f.csv", header, ["label", "a"], ["x"]) == {"x": ["b", "c.0"]}


def test_input_columns_several_inputs_by_name():
    header = ["x.1", "label", "x.0", "tokens", "x", "mask.age"]
    groups = input_columns("f.csv", header, ["label"], ["x", "tokens", "mask"])
    assert groups == {"x": ["x.1", "x.0", "x"], "tokens": ["tokens"], "mask": ["mask.age"]}  # file order
    assert list(groups) == ["x", "tokens", "mask"]  # input order
    # `xy` is not a column of `x`: only `x` and `x.<anything>` are.
    with pytest.raises(DataError, match=r"column 'xy' belongs to no input.*\(inputs: x, y\)"):
        input_columns("f.csv", ["x", "xy", "y", "label"], ["label"], ["x", "y"])


def test_input_columns_stray_column_is_an_error():
    with pytest.raises(DataError) as error:
        input_columns("f.csv", ["x.0", "y.0", "id", "label"], ["label"], ["x", "y"])
    message = str(error.value)
    assert message.startswith("f.csv: column 'id' belongs to no input") and "\n" not in message


def test_input_columns_input_without_columns():
    with pytest.raises(DataError, match=r"no columns for input `y` \(columns: x.0, label\)"):
        input_columns("f.csv", ["x.0", "label"], ["label"], ["x", "y"])


def test_input_columns_missing_target_suggests_a_name():
    with pytest.raises(DataError) as error:
        input_columns("f.csv", ["a", "b", "Label"], ["label"], ["x"])
    message = str(error.value)
    assert message == "f.csv: no column 'label' (columns: a, b, Label); did you mean 'Label'?"
    with pytest.raises(DataError) as error:
        input_columns("f.csv", ["a", "b"], ["zzz"], ["x"])
    assert "did you mean" not in str(error.value)


# ------------------------------------------------------------------ csv: inputs in their dtypes

def test_csv_inputs_several_inputs_and_dtypes(tmp_path):
    path = write(tmp_path, "x.0,label,ids,x.1\n0.5,1,3,1.5\n2.5,0,7,-1\n")
    header, rows, lines = read_csv(path)
    groups = input_columns(path, header, ["label"], ["x", "ids"])
    x, ids = csv_inputs(path, header, rows, lines, groups, {"x": torch.float32, "ids": torch.int64})
    assert x.dtype == torch.float32 and x.tolist() == [[0.5, 1.5], [2.5, -1.0]]
    assert ids.dtype == torch.int64 and ids.tolist() == [[3], [7]]


def test_csv_inputs_large_integers_stay_exact(tmp_path):
    big = 2**24 + 1  # float32 would round it to 2**24
    path = write(tmp_path, f"ids,label\n{big},0\n{2**40 + 3},1\n")
    header, rows, lines = read_csv(path)
    (ids,) = csv_inputs(path, header, rows, lines, {"ids": ["ids"]}, {"ids": torch.int64})
    assert ids[:, 0].tolist() == [big, 2**40 + 3]


def test_csv_inputs_fraction_in_an_integer_input(tmp_path):
    path = write(tmp_path, "ids,label\n1,0\n2,1\n2.5,0\n")
    header, rows, lines = read_csv(path)
    with pytest.raises(DataError) as error:
        csv_inputs(path, header, rows, lines, {"ids": ["ids"]}, {"ids": torch.int64})
    assert str(error.value) == f"{path}: input ids: row 2 has a fraction, but the model takes torch.int64 here"


def test_csv_inputs_missing_columns(tmp_path):
    path = write(tmp_path, "a,label\n1,0\n")
    header, rows, lines = read_csv(path)
    with pytest.raises(DataError, match=r"no column 'b' \(columns: a, label\)"):
        csv_inputs(path, header, rows, lines, {"x": ["a", "b"]}, ONE_INPUT)
    with pytest.raises(DataError, match=r"no column 'lable' .*; did you mean 'label'"):
        csv_inputs(path, header, rows, lines, {"x": ["lable", "c"]}, ONE_INPUT)


def test_as_input():
    x = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    assert as_input(x, torch.float32, "x") is x
    assert as_input(x, torch.int64, "x").tolist() == [[1, 2], [3, -4]]
    assert as_input(x, torch.float16, "x").dtype == torch.float16
    assert as_input(torch.tensor([[1], [2]]), torch.float32, "x").dtype == torch.float32
    assert as_input(torch.tensor([[1], [2]]), torch.int32, "x").dtype == torch.int32
    images = torch.zeros(3, 2, 2)
    images[1, 1, 0] = 0.25
    with pytest.raises(DataError, match="^x: row 1 has a fraction, but the model takes torch.int64 here$"):
        as_input(images, torch.int64, "x")


# ------------------------------------------------------------------ validation file (reference)

def test_validation_file_reuses_label_map_and_column_order(tmp_path):
    train = write(tmp_path, "a,b,label\n1,2,cat\n3,4,dog\n5,6,emu\n", "train.csv")
    valid = write(tmp_path, "label,b,a,extra\ndog,20,10,x\nemu,40,30,y\n", "valid.csv")
    _, _, info = read_csv_data(train)
    (x,), y, valid_info = read_csv_data(valid, reference=info)
    assert torch.equal(x, torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
    assert y.tolist() == [1, 2]  # dog, emu in the training map, not re-sorted
    assert valid_info == info


def test_validation_label_unseen_in_training(tmp_path):
    train = write(tmp_path, "a,label\n1,cat\n2,dog\n", "train.csv")
    valid = write(tmp_path, "a,label\n1,cat\n2,cow\n", "valid.csv")
    _, _, info = read_csv_data(train)
    with pytest.raises(
        DataError, match=r"line 3, column 'label': label 'cow' does not occur in the training data \(labels: 'cat', 'dog'\)"
    ):
        read_csv_data(valid, reference=info)


def test_validation_integer_label_out_of_range(tmp_path):
    train = write(tmp_path, "a,label\n1,0\n2,1\n", "train.csv")
    _, _, info = read_csv_data(train)
    valid = write(tmp_path, "a,label\n1,0\n2,5\n", "valid.csv")
    with pytest.raises(DataError, match=r"line 3, column 'label': label 5 does not occur in the training data \(classes 0..1\)"):
        read_csv_data(valid, reference=info)
    valid = write(tmp_path, "a,label\n1,0\n2,cat\n", "valid2.csv")
    with pytest.raises(DataError, match="label 'cat' is not a class index like the training labels"):
        read_csv_data(valid, reference=info)
    # In range: the training data's class count, even when the file has fewer classes.
    valid = write(tmp_path, "a,label\n1,0\n2,0\n", "valid3.csv")
    _, y, valid_info = read_csv_data(valid, reference=info)
    assert y.tolist() == [0, 0] and valid_info["classes"] == 2


def test_validation_missing_feature_or_target_column(tmp_path):
    train = write(tmp_path, "a,b,label\n1,2,0\n", "train.csv")
    _, _, info = read_csv_data(train)
    with pytest.raises(DataError, match="no column 'b'"):
        read_csv_data(write(tmp_path, "a,label\n1,0\n", "valid.csv"), reference=info)
    with pytest.raises(DataError, match=r"no column 'label' \(columns: a, b, Label\); did you mean 'Label'"):
        read_csv_data(write(tmp_path, "a,b,Label\n1,2,0\n", "valid2.csv"), reference=info)


def test_prediction_file_reorders_and_ignores_other_columns(tmp_path):
    # What a generated read_inputs does: the training data's columns, in its order.
    train = write(tmp_path, "a,b,label\n1,2,0\n3,4,1\n", "train.csv")
    _, _, info = read_csv_data(train)

    def read_inputs(path):
        header, rows, lines = read_csv(path)
        return csv_inputs(path, header, rows, lines, info["columns"], ONE_INPUT)

    new = write(tmp_path, "id,b,a\n7,20,10\n8,40,30\n", "new.csv")
    assert torch.equal(read_inputs(new)[0], torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
    assert read_inputs(train)[0].shape == (2, 2)  # target column present: ignored
    with pytest.raises(DataError, match="no column 'a'"):
        read_inputs(write(tmp_path, "b\n1\n", "bad.csv"))
    with pytest.raises(DataError, match="non-numeric"):
        read_inputs(write(tmp_path, "a,b\n1,x\n", "bad2.csv"))


# ------------------------------------------------------------------ labels

def test_encode_labels_without_reference():
    where = lambda i: f"row {i}"  # noqa: E731
    y, label_map, classes = encode_labels(["2", "0", "2"], where, None)
    assert y.tolist() == [2, 0, 2] and label_map is None and classes == 3
    y, label_map, classes = encode_labels(["b", "a", "1"], where, None)
    assert label_map == ["1", "a", "b"] and y.tolist() == [2, 1, 0] and classes == 3
    y, label_map, _ = encode_labels([3, -2, 3], where, None)  # numbers from an array
    assert label_map == [-2, 3] and y.tolist() == [1, 0, 1]


def test_encode_labels_with_reference():
    where = lambda i: f"row {i}"  # noqa: E731
    y, label_map, classes = encode_labels(["dog"], where, {"label_map": ["cat", "dog"], "classes": 2})
    assert y.tolist() == [1] and label_map == ["cat", "dog"] and classes == 2
    # A numeric map matches numbers however they are written.
    y, _, _ = encode_labels(["1.0", "-1"], where, {"label_map": [-1, 1], "classes": 2})
    assert y.tolist() == [1, 0]
    with pytest.raises(DataError, match=r"^row 1: label 7 does not occur in the training data \(classes 0..2\)$"):
        encode_labels(["0", "7"], where, {"label_map": None, "classes": 3})
    with pytest.raises(DataError, match="^row 0: label '-1' is not a class index"):
        encode_labels(["-1"], where, {"label_map": None, "classes": 3})


def test_apply_label_map_lists_at_most_ten_labels():
    label_map = [f"c{i}" for i in range(12)]
    with pytest.raises(DataError) as error:
        apply_label_map(["c3", "zz"], label_map, lambda i: f"row {i}")
    message = str(error.value)
    assert message.startswith("row 1: label 'zz' does not occur") and "'c9', ..." in message and "c10" not in message
    assert apply_label_map(["c11", "c0"], label_map, str).tolist() == [11, 0]


# ------------------------------------------------------------------ npz

def test_npz_happy_path(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, X=np.arange(12, dtype=np.float64).reshape(4, 3), y=np.array([1, 0, 1, 2]))
    (x,), y, info = read_npz_data(path)
    assert x.dtype == torch.float32 and x.shape == (4, 3)
    assert y.tolist() == [1, 0, 1, 2] and info["label_map"] is None and info["classes"] == 3
    assert npz_inputs(open_npz(path), path, ONE_INPUT)[0].shape == (4, 3)  # prediction input


def test_npz_string_labels_and_regression(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, X=np.ones((3, 2)), y=np.array(["b", "a", "b"]))
    _, y, info = read_npz_data(path)
    assert info["label_map"] == ["a", "b"] and y.tolist() == [1, 0, 1]
    np.savez(path, X=np.ones((3, 2)), y=np.ones((3, 2)))
    _, y, _ = read_npz_data(path, "regression")
    assert y.dtype == torch.float32 and y.shape == (3, 2)


def test_npz_validation_file_reuses_label_map(tmp_path):
    train, valid = str(tmp_path / "t.npz"), str(tmp_path / "v.npz")
    np.savez(train, X=np.ones((3, 2)), y=np.array(["b", "a", "c"]))
    np.savez(valid, X=np.ones((2, 2)), y=np.array(["c", "b"]))
    _, _, info = read_npz_data(train)
    _, y, _ = read_npz_data(valid, reference=info)
    assert y.tolist() == [2, 1]
    np.savez(valid, X=np.ones((2, 2)), y=np.array(["c", "d"]))
    with pytest.raises(DataError, match=r"v.npz: y\[1\]: label 'd' does not occur in the training data"):
        read_npz_data(valid, reference=info)


def test_npz_nd_features(tmp_path):
    path = str(tmp_path / "img.npz")
    np.savez(path, X=np.zeros((5, 1, 4, 4), dtype=np.uint8), y=np.arange(5) % 2)
    (x,), _, _ = read_npz_data(path)
    assert x.shape == (5, 1, 4, 4) and x.dtype == torch.float32


def test_npz_inputs_named_arrays(tmp_path):
    arrays = {"tokens": np.array([[1, 2], [3, 4], [5, 6]]), "mask": np.ones((3, 2), bool),
              "X": np.zeros((3, 1)), "y": np.zeros(3)}
    tokens, mask = npz_inputs(arrays, "d.npz", {"tokens": torch.int64, "mask": torch.float32})
    assert tokens.dtype == torch.int64 and tokens.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert mask.dtype == torch.float32 and mask.sum() == 6
    # One input: its own name first, else X.
    (x,) = npz_inputs(arrays, "d.npz", {"tokens": torch.float32})
    assert x.dtype == torch.float32 and x[0].tolist() == [1.0, 2.0]
    (x,) = npz_inputs(arrays, "d.npz", {"image": torch.float32})
    assert x.shape == (3, 1)
    # Several inputs never fall back to X.
    with pytest.raises(DataError, match=r"no array 'image' \(arrays: X, mask, tokens, y\)"):
        npz_inputs(arrays, "d.npz", {"tokens": torch.int64, "image": torch.float32})


def test_npz_inputs_row_count_mismatch():
    arrays = {"a": np.zeros((4, 2)), "b": np.zeros((3, 2))}
    with pytest.raises(DataError, match="^d.npz: b has 3 rows, the first input has 4$"):
        npz_inputs(arrays, "d.npz", {"a": torch.float32, "b": torch.float32})


def test_npz_inputs_fraction_in_an_integer_input():
    with pytest.raises(DataError, match="^d.npz: X: row 1 has a fraction, but the model takes torch.int64 here$"):
        npz_inputs({"X": np.array([[1.0], [1.5]])}, "d.npz", {"ids": torch.int64})


def test_array_input_dtypes_and_errors():
    assert array_input(np.zeros((2, 3), np.float64), "X").dtype == torch.float32
    assert array_input(np.zeros((2, 3), np.uint8), "X").dtype == torch.int64
    assert array_input(np.zeros((2, 3), np.int32), "X").dtype == torch.int64
    assert array_input(np.zeros((2, 3), bool), "X").dtype == torch.bool
    assert array_input(np.asfortranarray(np.arange(6.0).reshape(2, 3)), "X").tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(DataError, match=r"^X must have shape \[samples, ...\], got \[3\]$"):
        array_input(np.ones(3), "X")
    with pytest.raises(DataError, match="X must be numeric, got dtype <U1"):
        array_input(np.array([["a"]]), "X")


def test_array_labels():
    y, label_map, classes = array_labels(np.array([[2], [0], [1]]), 3, "y", None)  # [n, 1] is fine
    assert y.tolist() == [2, 0, 1] and label_map is None and classes == 3
    y, label_map, _ = array_labels(np.array([b"no", b"yes", b"no"]), 3, "y", None)
    assert label_map == ["no", "yes"] and y.tolist() == [0, 1, 0]
    y, label_map, _ = array_labels(np.array([0.5, 1.5, 0.5]), 3, "y", None)
    assert label_map == [0.5, 1.5] and y.tolist() == [0, 1, 0]
    y, label_map, classes = array_labels(np.array([True, False]), 2, "y", None)
    assert y.tolist() == [1, 0] and label_map is None and classes == 2
    assert array_labels(np.array([1, 0]), 2, "y", {"label_map": None, "classes": 4})[2] == 4
    with pytest.raises(DataError, match=r"^y must be one label per row for classification, got shape \[2, 2\]$"):
        array_labels(np.ones((2, 2)), 2, "y", None)
    with pytest.raises(DataError, match="^y has 3 rows, the inputs have 2$"):
        array_labels(np.ones(3), 2, "y", None)
    with pytest.raises(DataError, match="^y has 0 rows"):
        array_labels(np.array(1.0), 2, "y", None)
    with pytest.raises(DataError, match="must hold numbers or strings"):
        array_labels(np.array([1 + 2j, 3j]), 2, "y", None)


def test_array_targets():
    y = array_targets(np.array([1, 2, 3]), 3, "y")
    assert y.dtype == torch.float32 and y.tolist() == [1.0, 2.0, 3.0]
    assert array_targets(np.ones((3, 2)), 3, "y").shape == (3, 2)
    with pytest.raises(DataError, match="^y has 2 rows, the inputs have 3$"):
        array_targets(np.ones(2), 3, "y")
    with pytest.raises(DataError, match="^y must be numeric for regression, got dtype <U1$"):
        array_targets(np.array(["a", "b", "c"]), 3, "y")
    with pytest.raises(DataError, match=r"^y must have shape \[samples\] or \[samples, outputs\], got \[3, 1, 1\]$"):
        array_targets(np.ones((3, 1, 1)), 3, "y")
    with pytest.raises(DataError, match="^y has NaN in row 1; fill or drop missing values first$"):
        array_targets(np.array([1.0, np.nan, 2.0]), 3, "y")


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"X": np.ones((3, 2))}, r"no array 'y' \(arrays: X\)"),
        ({"features": np.ones((3, 2)), "y": np.ones(3)}, r"no array 'x' \(arrays: features, y\); save each input"),
        ({"X": np.array([[1.0, np.nan], [1, 2]]), "y": np.ones(2)}, "X has NaN in row 0"),
        ({"X": np.array([[1.0, 2], [np.inf, 2]]), "y": np.ones(2)}, "X has an infinite value in row 1"),
        ({"X": np.ones((3, 2)), "y": np.array([0, 1, np.nan])}, r"y\[2\] is nan; every row needs a label"),
        ({"X": np.ones((3, 2)), "y": np.ones(4)}, "y has 4 rows, the inputs have 3"),
        ({"X": np.ones(3), "y": np.ones(3)}, r"shape \[samples, ...\]"),
        ({"X": np.array([["a", "b"]]), "y": np.ones(1)}, "must be numeric"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = str(tmp_path / "d.npz")
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match):
        read_npz_data(path)


def test_npz_missing_broken_and_object_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        open_npz(str(tmp_path / "none.npz"))
    with pytest.raises(DataError, match="is a directory"):
        open_npz(str(tmp_path))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        open_npz(str(broken))
    text = tmp_path / "text.npz"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a readable .npz"):
        open_npz(str(text))
    path = str(tmp_path / "obj.npz")
    np.savez(path, X=np.array([{"a": 1}], dtype=object), y=np.ones(1))
    with pytest.raises(DataError, match="not a readable .npz"):  # never unpickled
        open_npz(path)


# ------------------------------------------------------------------ scikit-learn data sets

def test_sklearn_digits_iris_and_diabetes():
    bunch = load_sklearn("digits", "classification")
    x = as_input(array_input(bunch.data, "sklearn('digits')"), torch.float32, "x")
    y, label_map, classes = sklearn_labels(bunch)
    assert x.shape == (1797, 64) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64 and int(y.max()) == 9
    assert classes == 10 and label_map == list(range(10)) and len(bunch.feature_names) == 64
    y, label_map, classes = sklearn_labels(load_sklearn("iris", "classification"))
    assert label_map == ["setosa", "versicolor", "virginica"] and classes == 3
    assert all(type(v) is str for v in label_map)  # plain str: json- and weights_only-friendly
    bunch = load_sklearn("diabetes", "regression")
    y = array_targets(bunch.target, len(bunch.target), "sklearn('diabetes')")
    assert array_input(bunch.data, "x").shape == (442, 10) and y.shape == (442,) and y.dtype == torch.float32


@pytest.mark.parametrize("name", sorted(SKLEARN_SETS))
def test_every_sklearn_set_loads_for_its_task(name):
    bunch = load_sklearn(name, SKLEARN_SETS[name])
    assert array_input(bunch.data, name).shape[0] == len(bunch.target)


def test_sklearn_errors():
    with pytest.raises(DataError, match="unknown scikit-learn data set 'mnist'; known: digits"):
        load_sklearn("mnist", "classification")
    with pytest.raises(DataError, match=r"sklearn\('diabetes'\) is a regression data set; use task: regression"):
        load_sklearn("diabetes", "classification")
    with pytest.raises(DataError, match="classification data set; use task: classification"):
        load_sklearn("iris", "regression")


# ------------------------------------------------------------------ splitting

def test_split_is_deterministic_disjoint_and_complete():
    train, valid = split_indices(103, 0.2, seed=7)
    again = split_indices(103, 0.2, seed=7)
    assert torch.equal(train, again[0]) and torch.equal(valid, again[1])
    assert len(valid) == 21 and len(train) == 82
    assert sorted(train.tolist() + valid.tolist()) == list(range(103))
    assert train.tolist() == sorted(train.tolist()) and valid.tolist() == sorted(valid.tolist())
    torch.manual_seed(123)  # the global RNG does not matter
    assert torch.equal(split_indices(103, 0.2, seed=7)[1], valid)
    assert not torch.equal(split_indices(103, 0.2, seed=8)[1], valid)


def test_split_bounds():
    assert [len(part) for part in split_indices(3, 0.01, 0)] == [2, 1]
    assert [len(part) for part in split_indices(3, 0.99, 0)] == [1, 2]
    for fraction in (0.0, 1.0, -0.5, 2):
        with pytest.raises(DataError, match="between 0 and 1"):
            split_indices(10, fraction, 0)
    with pytest.raises(DataError, match="1 sample$"):
        split_indices(1, 0.5, 0)
    with pytest.raises(DataError, match="0 samples$"):
        split_indices(0, 0.5, 0)


# ------------------------------------------------------------------ standardisation

def test_scaling_uses_training_statistics_only():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=generator) * torch.tensor([1.0, 10.0, 0.1]) + 5
    train, valid = split_indices(50, 0.3, seed=0)
    scaling = fit_scaling(x[train])
    out = apply_scaling(x[train], scaling)
    assert torch.allclose(out.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(0, correction=0), torch.ones(3), atol=1e-5)
    # The validation rows are scaled with the training statistics, not their own.
    expected = (x[valid] - x[train].mean(0)) / x[train].std(0, correction=0)
    assert torch.allclose(apply_scaling(x[valid], scaling), expected, atol=1e-5)
    assert not torch.allclose(torch.tensor(scaling["mean"]), x.mean(0))


def test_scaling_matches_sklearn():
    from sklearn import preprocessing
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64).float()
    ours = apply_scaling(x, fit_scaling(x))
    theirs = preprocessing.StandardScaler().fit_transform(x.double().numpy())
    assert np.allclose(ours.numpy(), theirs, atol=1e-5)


def test_scaling_constant_feature_and_checkpoint_round_trip(tmp_path):
    x = torch.tensor([[0.1, 1.0], [0.1, 3.0], [0.1, 5.0]])
    scaling = fit_scaling(x)
    out = apply_scaling(x, scaling)
    assert torch.equal(out[:, 0], torch.zeros(3)) and scaling["std"][0] == 1
    assert isinstance(scaling["mean"], list) and isinstance(scaling["std"], list)
    torch.save({"scaling": scaling}, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)["scaling"]
    assert torch.equal(apply_scaling(x, loaded), out)
    with pytest.raises(DataError, match="trained on"):
        apply_scaling(torch.ones(2, 3), scaling)


def test_scaling_nd_integer_and_empty():
    images = torch.arange(24.0).reshape(4, 2, 3)
    scaling = fit_scaling(images)
    assert torch.tensor(scaling["mean"]).shape == (2, 3)  # one statistic per element
    assert apply_scaling(torch.arange(24).reshape(4, 2, 3), scaling).dtype == torch.float32
    with pytest.raises(DataError, match="empty data set"):
        fit_scaling(torch.zeros(0, 3))


# ------------------------------------------------------------------ standalone (vendoring) rules

CSV_FLOW = """
header, rows, lines = data.read_csv({path!r})
columns = data.input_columns({path!r}, header, ["label"], ["x"])
(x,) = data.csv_inputs({path!r}, header, rows, lines, columns, {{"x": torch.float32}})
y, label_map, classes = data.csv_labels({path!r}, header, rows, lines, "label", None)
train, valid = data.split_indices(len(y), 0.5, 0)
x = data.apply_scaling(x, data.fit_scaling(x[train]))
print(tuple(x.shape), label_map, classes, len(train) + len(valid))
"""


def test_data_module_works_without_numpy_and_sklearn(tmp_path):
    csv_path = write(tmp_path, "a,label\n1,x\n2,y\n")
    code = f"""
import torch
spec = importlib.util.spec_from_file_location("data", {str(RUNTIME / "data.py")!r})
data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(data)
{CSV_FLOW.format(path=csv_path)}
for load in (lambda: data.open_npz("d.npz"), lambda: data.load_sklearn("digits", "classification"),
             lambda: data.array_input(None, "X")):
    try:
        load()
    except data.DataError as error:
        print(error)
"""
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "(2, 1) ['x', 'y'] 2 2",
        "reading .npz files needs numpy: pip install numpy",
        "sklearn('digits') data needs scikit-learn: pip install scikit-learn",
        "reading arrays needs numpy: pip install numpy",
    ]


CSV_CLASSIFICATION = {"read_csv", "input_columns", "csv_inputs", "csv_labels", "fit_scaling", "apply_scaling", "split_indices", "accuracy"}


def test_vendored_csv_classification_module_works_without_numpy(tmp_path):
    names, body = vendor(CSV_CLASSIFICATION | {"not_a_library_name"})
    assert names == sorted(CSV_CLASSIFICATION)
    module = tmp_path / "train_utils.py"
    module.write_text(body)
    csv_path = write(tmp_path, "a,b,label\n1,5,x\n2,6,y\n3,7,x\n4,8,y\n")
    code = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
import torch
import train_utils as data
{CSV_FLOW.format(path=csv_path)}
print(data.accuracy(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])))
try:
    data.read_csv({str(tmp_path / "missing.csv")!r})
except data.DataError as error:
    print("DataError", "no such file" in str(error))
"""
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["(4, 2) ['x', 'y'] 2 4", "0.5", "DataError True"]


def defined_names(body: str) -> set[str]:
    import ast
    names = set()
    for node in ast.parse(body).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


NUMPY_OR_SKLEARN = {"import_numpy", "open_npz", "npz_array", "npz_inputs", "array_input", "array_labels",
                    "array_targets", "load_sklearn", "sklearn_labels", "SKLEARN_SETS"}


def test_vendored_csv_module_has_no_numpy_or_sklearn_code():
    _, body = vendor(CSV_CLASSIFICATION)
    defined = defined_names(body)
    assert CSV_CLASSIFICATION <= defined
    assert not defined & NUMPY_OR_SKLEARN
    assert "numpy" not in body and "sklearn" not in body
    assert "def auroc" not in body and "def mse" not in body and "METRICS" not in defined  # unasked metrics


def test_vendored_npz_and_sklearn_pieces_bring_what_they_need():
    defined = defined_names(vendor({"npz_inputs"})[1])
    assert {"npz_inputs", "npz_array", "array_input", "as_input", "import_numpy", "check_finite", "DataError"} <= defined
    assert "read_csv" not in defined and "load_sklearn" not in defined
    defined = defined_names(vendor({"load_sklearn"})[1])
    assert {"load_sklearn", "SKLEARN_SETS", "DataError"} <= defined and "open_npz" not in defined
