"""runtime/vendored/data.py: sources (csv, npz, sklearn), splits, standardisation, batching, sharding."""

import pathlib

import pytest
import torch

import numpy as np  # noqa: E402  (a dev dependency)

from standalone_util import run_blocked

from tgc.runtime.vendored.data import (  # noqa: E402
    DataError,
    Standardizer,
    batches,
    count_batches,
    load_predict_source,
    load_source,
    shard,
    split_indices,
)

RUNTIME = pathlib.Path(__file__).resolve().parent.parent / "runtime" / "vendored"


def write(tmp_path: pathlib.Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def csv_spec(path: str, target="label") -> dict:
    return {"kind": "csv", "path": path, "target": target}


# ------------------------------------------------------------------ csv

def test_csv_happy_path_integer_labels(tmp_path):
    path = write(tmp_path, "a,label,b\n1,0,2.5\n3,2,-1e-3\n\n5,1,7\n")
    x, y, info = load_source(csv_spec(path), "classification")
    assert x.dtype == torch.float32 and x.shape == (3, 2)
    assert torch.equal(x, torch.tensor([[1, 2.5], [3, -1e-3], [5, 7]], dtype=torch.float32))
    assert y.dtype == torch.int64 and y.tolist() == [0, 2, 1]
    assert info["feature_names"] == ["a", "b"]
    assert info["label_map"] is None and info["n_classes"] == 3 and info["target"] == "label"


def test_csv_string_labels_get_a_sorted_label_map(tmp_path):
    path = write(tmp_path, 'x,label\n1,"dog"\n2,cat\n3, dog \n4,bird\n')
    _, y, info = load_source(csv_spec(path), "classification")
    assert info["label_map"] == ["bird", "cat", "dog"]
    assert y.tolist() == [2, 1, 2, 0]
    assert info["n_classes"] == 3


def test_csv_negative_or_fractional_labels_get_a_label_map(tmp_path):
    path = write(tmp_path, "x,label\n1,-1\n2,1\n3,-1.0\n")
    _, y, info = load_source(csv_spec(path), "classification")
    assert info["label_map"] == [-1, 1] and y.tolist() == [0, 1, 0]


def test_csv_regression_one_and_several_targets(tmp_path):
    path = write(tmp_path, "x,y1,y2\n1,0.5,3\n2,1.5,4\n")
    x, y, info = load_source(csv_spec(path, "y1"), "regression")
    assert y.dtype == torch.float32 and y.tolist() == [0.5, 1.5]
    assert x.shape == (2, 2) and info["feature_names"] == ["x", "y2"]
    assert info["label_map"] is None and info["n_classes"] is None
    x, y, info = load_source(csv_spec(path, ["y1", "y2"]), "regression")
    assert y.shape == (2, 2) and x.shape == (2, 1) and info["feature_names"] == ["x"]


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_source(csv_spec(str(tmp_path / "nope.csv")), "classification")


def test_csv_missing_target_column_names_available_columns(tmp_path):
    path = write(tmp_path, "a,b,Label\n1,2,0\n")
    with pytest.raises(DataError) as error:
        load_source(csv_spec(path), "classification")
    message = str(error.value)
    assert "no column 'label'" in message and "a, b, Label" in message and "'Label'" in message
    assert "\n" not in message


def test_csv_non_numeric_feature_names_column_and_line(tmp_path):
    path = write(tmp_path, "a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError, match=r"line 3, column 'b': non-numeric value 'oops'"):
        load_source(csv_spec(path), "classification")


@pytest.mark.parametrize("cell", ["", "nan", "NaN", "  "])
def test_csv_missing_feature_value(tmp_path, cell):
    path = write(tmp_path, f"a,b,label\n1,2,0\n3,{cell},1\n")
    with pytest.raises(DataError, match=r"line 3, column 'b': missing value"):
        load_source(csv_spec(path), "classification")


def test_csv_infinite_feature(tmp_path):
    path = write(tmp_path, "a,label\n1,0\ninf,1\n")
    with pytest.raises(DataError, match=r"line 3, column 'a': infinite value"):
        load_source(csv_spec(path), "classification")


@pytest.mark.parametrize("cell", ["", "nan"])
def test_csv_missing_label(tmp_path, cell):
    path = write(tmp_path, f"a,label\n1,0\n2,{cell}\n")
    with pytest.raises(DataError, match=r"line 3, column 'label': missing label"):
        load_source(csv_spec(path), "classification")


def test_csv_non_numeric_regression_target(tmp_path):
    path = write(tmp_path, "a,y\n1,0.5\n2,high\n")
    with pytest.raises(DataError, match=r"line 3, column 'y': non-numeric value 'high'"):
        load_source(csv_spec(path, "y"), "regression")


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty; a header row"),
        ("1,2,0\n3,4,1\n", "header row naming the columns is required"),
        ("a,a,label\n1,2,0\n", "'a' appears twice"),
        ("a,label\n", "no data rows"),
        ("a,label\n1,0\n2,1,5\n", "line 3 has 3 cells, the header has 2"),
        ("label\n0\n", "no feature columns"),
    ],
)
def test_csv_malformed(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load_source(csv_spec(write(tmp_path, text)), "classification")


def test_csv_spec_errors(tmp_path):
    with pytest.raises(DataError, match="needs a target column"):
        load_source({"kind": "csv", "path": "x.csv"}, "classification")
    with pytest.raises(DataError, match="unknown data source kind"):
        load_source({"kind": "parquet", "path": "x"}, "classification")
    with pytest.raises(DataError, match="exactly one target"):
        load_source(csv_spec(write(tmp_path, "a,b,c\n1,2,3\n"), ["b", "c"]), "classification")


# ------------------------------------------------------------------ validation source (reference)

def test_validation_source_reuses_label_map_and_column_order(tmp_path):
    train = write(tmp_path, "a,b,label\n1,2,cat\n3,4,dog\n5,6,emu\n", "train.csv")
    valid = write(tmp_path, "label,b,a,extra\ndog,20,10,x\nemu,40,30,y\n", "valid.csv")
    _, _, info = load_source(csv_spec(train), "classification")
    x, y, valid_info = load_source(csv_spec(valid), "classification", reference=info)
    assert torch.equal(x, torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
    assert y.tolist() == [1, 2]  # dog, emu in the training map, not re-sorted
    assert valid_info["label_map"] == info["label_map"] and valid_info["feature_names"] == ["a", "b"]


def test_validation_label_unseen_in_training(tmp_path):
    train = write(tmp_path, "a,label\n1,cat\n2,dog\n", "train.csv")
    valid = write(tmp_path, "a,label\n1,cat\n2,cow\n", "valid.csv")
    _, _, info = load_source(csv_spec(train), "classification")
    with pytest.raises(DataError, match=r"line 3, column 'label': label 'cow' does not occur in the training"):
        load_source(csv_spec(valid), "classification", reference=info)


def test_validation_integer_label_out_of_range(tmp_path):
    train = write(tmp_path, "a,label\n1,0\n2,1\n", "train.csv")
    valid = write(tmp_path, "a,label\n1,0\n2,5\n", "valid.csv")
    _, _, info = load_source(csv_spec(train), "classification")
    with pytest.raises(DataError, match="label 5 does not occur in the training data"):
        load_source(csv_spec(valid), "classification", reference=info)
    valid = write(tmp_path, "a,label\n1,0\n2,cat\n", "valid2.csv")
    with pytest.raises(DataError, match="not a class index"):
        load_source(csv_spec(valid), "classification", reference=info)


def test_validation_missing_feature_column(tmp_path):
    train = write(tmp_path, "a,b,label\n1,2,0\n", "train.csv")
    valid = write(tmp_path, "a,label\n1,0\n", "valid.csv")
    _, _, info = load_source(csv_spec(train), "classification")
    with pytest.raises(DataError, match="missing feature column 'b'"):
        load_source(csv_spec(valid), "classification", reference=info)


# ------------------------------------------------------------------ prediction input

def test_load_predict_source_reorders_and_ignores_target(tmp_path):
    train = write(tmp_path, "a,b,label\n1,2,0\n3,4,1\n", "train.csv")
    _, _, info = load_source(csv_spec(train), "classification")
    new = write(tmp_path, "id,b,a\n7,20,10\n8,40,30\n", "new.csv")
    assert torch.equal(load_predict_source(new, info), torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
    assert load_predict_source(train, info).shape == (2, 2)  # target column present: ignored
    with pytest.raises(DataError, match="missing feature column 'a'"):
        load_predict_source(write(tmp_path, "b\n1\n", "bad.csv"), info)
    with pytest.raises(DataError, match="non-numeric"):
        load_predict_source(write(tmp_path, "a,b\n1,x\n", "bad2.csv"), info)


# ------------------------------------------------------------------ npz

def test_npz_happy_path(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, X=np.arange(12, dtype=np.float64).reshape(4, 3), y=np.array([1, 0, 1, 2]))
    x, y, info = load_source({"kind": "npz", "path": path}, "classification")
    assert x.dtype == torch.float32 and x.shape == (4, 3)
    assert y.tolist() == [1, 0, 1, 2] and info["label_map"] is None and info["n_classes"] == 3
    assert info["feature_names"] == ["x0", "x1", "x2"]
    assert load_predict_source(path, info).shape == (4, 3)


def test_npz_string_labels_and_regression(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, X=np.ones((3, 2)), y=np.array(["b", "a", "b"]))
    _, y, info = load_source({"kind": "npz", "path": path}, "classification")
    assert info["label_map"] == ["a", "b"] and y.tolist() == [1, 0, 1]
    np.savez(path, X=np.ones((3, 2)), y=np.ones((3, 2)))
    _, y, _ = load_source({"kind": "npz", "path": path}, "regression")
    assert y.dtype == torch.float32 and y.shape == (3, 2)


def test_npz_nd_features(tmp_path):
    path = str(tmp_path / "img.npz")
    np.savez(path, X=np.zeros((5, 1, 4, 4), dtype=np.uint8), y=np.arange(5) % 2)
    x, _, info = load_source({"kind": "npz", "path": path}, "classification")
    assert x.shape == (5, 1, 4, 4) and x.dtype == torch.float32 and info["feature_names"] is None


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"X": np.ones((3, 2))}, r"no array 'y' \(arrays: X\)"),
        ({"features": np.ones((3, 2)), "y": np.ones(3)}, "no array 'X'"),
        ({"X": np.array([[1.0, np.nan], [1, 2]]), "y": np.ones(2)}, "X has NaN in row 0"),
        ({"X": np.array([[1.0, 2], [np.inf, 2]]), "y": np.ones(2)}, "X has an infinite value in row 1"),
        ({"X": np.ones((3, 2)), "y": np.array([0, 1, np.nan])}, r"y\[2\] is nan"),
        ({"X": np.ones((3, 2)), "y": np.ones(4)}, "y has 4 rows, the features have 3"),
        ({"X": np.ones(3), "y": np.ones(3)}, r"shape \[samples, features\]"),
        ({"X": np.array([["a", "b"]]), "y": np.ones(1)}, "must be numeric"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = str(tmp_path / "d.npz")
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match):
        load_source({"kind": "npz", "path": path}, "classification")


def test_npz_missing_broken_and_object_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_source({"kind": "npz", "path": str(tmp_path / "none.npz")}, "classification")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_source({"kind": "npz", "path": str(broken)}, "classification")
    path = str(tmp_path / "obj.npz")
    np.savez(path, X=np.array([{"a": 1}], dtype=object), y=np.ones(1))
    with pytest.raises(DataError, match="not a readable .npz"):  # never unpickled
        load_source({"kind": "npz", "path": path}, "classification")


# ------------------------------------------------------------------ scikit-learn data sets

def test_sklearn_digits_and_diabetes_shapes():
    x, y, info = load_source({"kind": "sklearn", "name": "digits"}, "classification")
    assert x.shape == (1797, 64) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64 and int(y.max()) == 9
    assert info["n_classes"] == 10 and len(info["feature_names"]) == 64
    x, y, info = load_source({"kind": "sklearn", "name": "diabetes"}, "regression")
    assert x.shape == (442, 10) and y.shape == (442,) and y.dtype == torch.float32
    assert info["label_map"] is None
    _, _, info = load_source({"kind": "sklearn", "name": "iris"}, "classification")
    assert info["label_map"] == ["setosa", "versicolor", "virginica"]


def test_sklearn_errors():
    with pytest.raises(DataError, match="unknown scikit-learn data set 'mnist'; known: digits"):
        load_source({"kind": "sklearn", "name": "mnist"}, "classification")
    with pytest.raises(DataError, match="regression data set; use task: regression"):
        load_source({"kind": "sklearn", "name": "diabetes"}, "classification")


# ------------------------------------------------------------------ splitting

def test_split_is_deterministic_disjoint_and_complete():
    train, valid = split_indices(103, 0.2, seed=7)
    again = split_indices(103, 0.2, seed=7)
    assert torch.equal(train, again[0]) and torch.equal(valid, again[1])
    assert len(valid) == 21 and len(train) == 82
    assert sorted(train.tolist() + valid.tolist()) == list(range(103))
    torch.manual_seed(123)  # the global RNG does not matter
    assert torch.equal(split_indices(103, 0.2, seed=7)[1], valid)
    assert not torch.equal(split_indices(103, 0.2, seed=8)[1], valid)


def test_split_bounds():
    assert [len(part) for part in split_indices(3, 0.01, 0)] == [2, 1]
    assert [len(part) for part in split_indices(3, 0.99, 0)] == [1, 2]
    for fraction in (0.0, 1.0, -0.5, 2):
        with pytest.raises(DataError, match="between 0 and 1"):
            split_indices(10, fraction, 0)
    with pytest.raises(DataError, match="1 sample"):
        split_indices(1, 0.5, 0)


# ------------------------------------------------------------------ standardisation

def test_standardizer_uses_training_statistics_only():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=generator) * torch.tensor([1.0, 10.0, 0.1]) + 5
    train, valid = split_indices(50, 0.3, seed=0)
    scaler = Standardizer().fit(x[train])
    out = scaler.transform(x[train])
    assert torch.allclose(out.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(0, correction=0), torch.ones(3), atol=1e-5)
    # The validation rows are scaled with the training statistics, not their own.
    expected = (x[valid] - x[train].mean(0)) / x[train].std(0, correction=0)
    assert torch.allclose(scaler.transform(x[valid]), expected, atol=1e-5)
    assert not torch.allclose(scaler.mean, x.mean(0))


def test_standardizer_matches_sklearn():
    from sklearn import preprocessing
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64).float()
    ours = Standardizer().fit(x).transform(x)
    theirs = preprocessing.StandardScaler().fit_transform(x.double().numpy())
    assert np.allclose(ours.numpy(), theirs, atol=1e-5)


def test_standardizer_constant_feature_and_state_dict(tmp_path):
    x = torch.tensor([[0.1, 1.0], [0.1, 3.0], [0.1, 5.0]])
    scaler = Standardizer().fit(x)
    out = scaler.transform(x)
    assert torch.equal(out[:, 0], torch.zeros(3)) and scaler.std[0] == 1
    state = scaler.state_dict()
    assert isinstance(state["mean"], list) and isinstance(state["std"], list)
    torch.save({"standardizer": state}, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)["standardizer"]
    assert torch.equal(Standardizer.from_state_dict(loaded).transform(x), out)
    with pytest.raises(DataError, match="trained on"):
        scaler.transform(torch.ones(2, 3))


# ------------------------------------------------------------------ batching

class CountingTensor:
    """Stands in for a feature tensor and counts indexing calls (no sample-by-sample access)."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor, self.calls = tensor, 0
        self.shape, self.device = tensor.shape, tensor.device

    def __getitem__(self, index):
        self.calls += 1
        assert isinstance(index, torch.Tensor) and index.dim() == 1
        return self.tensor[index]


def sizes(n, batch_size, **options):
    x = torch.arange(n).float()[:, None]
    return [len(xb) for xb, _ in batches(x, torch.arange(n), batch_size, False, **options)]


def test_batch_sizes_and_singleton_rule():
    assert sizes(10, 4) == [4, 4, 2]
    assert sizes(9, 4) == [4, 4]  # a last batch of one is dropped by default
    assert sizes(9, 4, drop_last_singleton=False) == [4, 4, 1]
    assert sizes(10, 4, drop_last=True) == [4, 4]
    assert sizes(3, 1) == [1, 1, 1]  # batch_size 1 still yields every sample
    assert sizes(8, 4) == [4, 4] and sizes(3, 64) == [3]
    for n in range(0, 12):
        for batch_size in (1, 2, 3, 4, 5):
            for drop_last in (False, True):
                for singleton in (False, True):
                    options = {"drop_last": drop_last, "drop_last_singleton": singleton}
                    assert len(sizes(n, batch_size, **options)) == count_batches(n, batch_size, singleton, drop_last)
    with pytest.raises(DataError, match="batch_size"):
        list(batches(torch.ones(3, 1), None, 0, False))


def test_batches_index_whole_batches_and_cover_a_permutation():
    x = CountingTensor(torch.arange(100).float()[:, None])
    y = CountingTensor(torch.arange(100))
    generator = torch.Generator().manual_seed(0)
    seen = []
    for xb, yb in batches(x, y, 32, True, generator):
        assert torch.equal(xb[:, 0].long(), yb)
        seen += yb.tolist()
    assert x.calls == y.calls == 4  # one gather per batch, never one per sample
    assert sorted(seen) == list(range(100)) and seen != list(range(100))
    replay = [yb.tolist() for _, yb in batches(x.tensor, y.tensor, 32, True, torch.Generator().manual_seed(0))]
    assert sum(replay, []) == seen


def test_batches_without_targets_and_with_indices():
    x = torch.arange(10).float()[:, None]
    out = [(xb[:, 0].tolist(), yb) for xb, yb in batches(x, None, 4, False)]
    assert out == [([0, 1, 2, 3], None), ([4, 5, 6, 7], None), ([8, 9], None)]
    picked = [xb[:, 0].tolist() for xb, _ in batches(x, None, 2, False, indices=torch.tensor([9, 3, 5]))]
    assert picked == [[9, 3]]  # the singleton last batch is dropped here too
    assert [xb[:, 0].tolist() for xb, _ in batches(x, None, 2, False, drop_last_singleton=False,
                                                   indices=torch.tensor([9, 3, 5]))] == [[9, 3], [5]]
    shuffled = sum((xb[:, 0].tolist() for xb, _ in
                    batches(x, None, 2, True, torch.Generator().manual_seed(1), indices=torch.tensor([9, 3, 5, 1]))), [])
    assert sorted(shuffled) == [1, 3, 5, 9]


def test_shard_matches_distributed_sampler():
    from torch.utils.data.distributed import DistributedSampler

    for n in (1, 5, 10, 13):
        for world_size in (1, 2, 3, 4, 7):
            parts = [shard(torch.arange(n), rank, world_size) for rank in range(world_size)]
            assert len({len(part) for part in parts}) == 1
            for rank, part in enumerate(parts):
                sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False)
                assert part.tolist() == list(sampler), (n, world_size, rank)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    assert sorted(torch.cat([shard(perm, r, 2) for r in range(2)]).tolist()) == list(range(10))
    with pytest.raises(ValueError):
        shard(perm, 2, 2)


# ------------------------------------------------------------------ standalone (vendoring) rules

def test_data_module_works_without_numpy_and_sklearn(tmp_path):
    csv_path = write(tmp_path, "a,label\n1,x\n2,y\n")
    code = f"""
spec = importlib.util.spec_from_file_location("data", {str(RUNTIME / "data.py")!r})
data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(data)
x, y, info = data.load_source({{"kind": "csv", "path": {csv_path!r}, "target": "label"}}, "classification")
print(x.shape[0], info["label_map"])
for spec in ({{"kind": "npz", "path": "d.npz"}}, {{"kind": "sklearn", "name": "digits"}}):
    try:
        data.load_source(spec, "classification")
    except data.DataError as error:
        print(error)
"""
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2 ['x', 'y']",
        "reading .npz files needs numpy: pip install numpy",
        "sklearn('digits') data needs scikit-learn: pip install scikit-learn",
    ]


def test_concatenated_runtime_imports_without_numpy():
    # What the emitter does for out/tgc_runtime.py: concatenate, dropping marked imports.
    parts = []
    for name in ("data.py", "metrics.py"):
        lines = (RUNTIME / name).read_text().splitlines()
        parts.append("\n".join(line for line in lines if "# tgc: vendored-import" not in line))
    source = "\n\n".join(parts)
    code = f"""
namespace = {{}}
exec(compile({source!r}, "tgc_runtime.py", "exec"), namespace)
import torch
print(sorted(namespace["METRICS"]), namespace["Standardizer"].__name__)
"""
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr
    assert "'accuracy'" in result.stdout and "Standardizer" in result.stdout
