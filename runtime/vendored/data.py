"""Data loading for generated training scripts: sources, splits, standardisation, batching.

This file is vendored into `out/tgc_runtime.py` (concatenated with metrics.py and training.py), so
it imports only the standard library and torch at module level; numpy and scikit-learn are imported
inside the functions that need them. It never imports tgc, and it defines no `from __future__`
import or `__all__` (both would break or clash in the concatenated file). Private helpers carry
the `_data_` prefix for the same reason.

Every problem with the user's data raises `DataError` with a one-line message; the training
script prints it and exits with status 1.

The public surface:
    load_source(spec, task, reference=None) -> (x, y, info)
    load_predict_source(path, info) -> x
    split_indices(n, fraction, seed) -> (train_idx, valid_idx)
    Standardizer().fit(x).transform(x); state_dict(); Standardizer.from_state_dict(state)
    batches(x, y, batch_size, shuffle, generator, drop_last_singleton=True, drop_last=False)
    count_batches(n, batch_size, drop_last_singleton=True, drop_last=False) -> int
    shard(indices, rank, world_size) -> indices
"""

import csv
import difflib
import math
import os
from typing import Any, Callable, Iterator, Sequence

import torch


class DataError(Exception):
    """A problem with the user's data or data settings; the message is one line."""


# --------------------------------------------------------------------------- sources

_DATA_TASKS = ("classification", "regression")

# scikit-learn's bundled data sets (no download needed) and the task each one is for.
_DATA_SKLEARN_SETS = {
    "digits": "classification",
    "iris": "classification",
    "breast_cancer": "classification",
    "wine": "classification",
    "diabetes": "regression",
}


def load_source(
    spec: dict, task: str = "classification", reference: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Loads one data source; returns (features, targets, info).

    `spec` is `{"kind": "csv", "path": P, "target": "label"}` (target may be a list of columns
    for multi-output regression), `{"kind": "npz", "path": P}` (arrays `X` and `y`) or
    `{"kind": "sklearn", "name": "digits"}`. Relative paths are taken as they are (relative to
    the working directory); the caller resolves them if it wants another base.

    features: float32 [n, d] (an npz `X` with more dimensions keeps them: [n, ...]).
    targets: classification -> int64 [n] class indices; regression -> float32 [n] or [n, k].
    info: {"feature_names": [d names] or None for N-d features,
           "label_map": [original label of class 0, of class 1, ...] or None,
           "n_classes": int (classification) or None, "target": target column name(s) or None}.

    Class labels: non-negative integers are used as class indices as they are (label_map None,
    n_classes = largest + 1); any other labels (strings, negative or fractional numbers) get a
    label map, sorted so that the same data always gives the same classes.

    `reference` is the info of the training source when loading a second (validation) source:
    its label map and feature columns are reused, and a label the training data did not have
    is a DataError.
    """
    if task not in _DATA_TASKS:
        raise DataError(f"unknown task {task!r}; expected classification or regression")
    if not isinstance(spec, dict) or "kind" not in spec:
        raise DataError(f"a data source needs a kind (csv, npz or sklearn), got {spec!r}")
    kind = spec["kind"]
    if kind == "csv":
        if "target" not in spec or spec["target"] in (None, "", []):
            raise DataError('a csv data source needs a target column: csv("file.csv", target="label")')
        return _data_load_csv(_data_spec_path(spec), spec["target"], task, reference)
    if kind == "npz":
        return _data_load_npz(_data_spec_path(spec), task, reference)
    if kind == "sklearn":
        return _data_load_sklearn(spec.get("name"), task, reference)
    raise DataError(f"unknown data source kind {kind!r}; expected csv, npz or sklearn")


def load_predict_source(path: str, info: dict) -> torch.Tensor:
    """Features for prediction from a csv (or npz) file, in the training data's feature order.

    The csv needs a header naming every training feature column; the target column and any
    other extra columns are ignored, so the training file itself can be passed. An npz needs an
    array `X` shaped like the training features.
    """
    path = os.fspath(path)
    names = info.get("feature_names")
    if path.lower().endswith(".npz"):
        x = _data_npz_features(path)
        if names is not None and (x.dim() != 2 or x.shape[1] != len(names)):
            raise DataError(
                f"{path}: X has shape {list(x.shape)}, but the model was trained on "
                f"{len(names)} features"
            )
        return x
    if names is None:
        raise DataError(f"{path}: the model was trained on N-d features from an npz file; pass an .npz file")
    header, rows, lines = _data_read_csv(path)
    missing = [name for name in names if name not in header]
    if missing:
        raise DataError(
            f"{path}: missing feature column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (columns: {', '.join(header)})"
        )
    return _data_csv_features(path, header, rows, lines, list(names))


def _data_spec_path(spec: dict) -> str:
    path = spec.get("path")
    if not path:
        raise DataError(f"a {spec['kind']} data source needs a file path")
    return os.fspath(path)


def _data_short(value: Any) -> str:
    """repr of a cell value, cut so that an error message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _data_check_finite(x: torch.Tensor, what: str) -> None:
    """NaN or inf in features or regression targets is a DataError naming the first bad row."""
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        flat = x.reshape(x.shape[0], -1)
        bad = ~torch.isfinite(flat)
        row = int(bad.any(dim=1).nonzero()[0, 0])
        value = float(flat[row][bad[row]][0])
        kind = "NaN" if math.isnan(value) else "an infinite value"
        raise DataError(f"{what} has {kind} in row {row}; fill or drop missing values first")


# --------------------------------------------------------------------------- csv

def _data_read_csv(path: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Reads a csv file as text: (header, data rows, file line number of each row).

    Blank lines and rows whose cells are all empty (spreadsheet export debris) are skipped;
    every other row must have as many cells as the header.
    """
    try:
        # newline="" lets the csv module handle quoted newlines; utf-8-sig drops an Excel BOM.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header: list[str] | None = None
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue
                if header is None:
                    header = [cell.strip() for cell in row]
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{path}: line {reader.line_num} has {len(row)} cells, "
                        f"the header has {len(header)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a csv file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except csv.Error as error:
        raise DataError(f"{path}: not a valid csv file ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    if header is None:
        raise DataError(f"{path}: the file is empty; a header row naming the columns is required")
    if all(_data_parse_number(cell) is not None for cell in header):
        raise DataError(f"{path}: the first row looks like data; a header row naming the columns is required")
    empty = [i + 1 for i, name in enumerate(header) if not name]
    if empty:
        raise DataError(f"{path}: header column {empty[0]} has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    return header, rows, lines


def _data_parse_number(text: str) -> float | None:
    """A cell as a float, or None when it is not a number (NaN counts as a number here)."""
    try:
        return float(text)
    except ValueError:
        return None


def _data_is_missing(cell: str) -> bool:
    text = cell.strip()
    return not text or text.lower() in ("nan", "+nan", "-nan")


def _data_csv_numbers(path: str, column: str, cells: list[str], lines: list[int], what: str) -> list[float]:
    """Parses one csv column of numbers; a missing, non-numeric or infinite cell is a DataError."""
    values: list[float] = []
    for cell, line in zip(cells, lines):
        if _data_is_missing(cell):
            raise DataError(f"{path}: line {line}, column {column!r}: missing value (empty or NaN)")
        value = _data_parse_number(cell.strip())
        if value is None:
            raise DataError(
                f"{path}: line {line}, column {column!r}: non-numeric value {_data_short(cell)} "
                f"({what} must be numbers)"
            )
        if math.isinf(value):
            raise DataError(f"{path}: line {line}, column {column!r}: infinite value {_data_short(cell)}")
        values.append(value)
    return values


def _data_csv_features(
    path: str, header: list[str], rows: list[list[str]], lines: list[int], names: list[str]
) -> torch.Tensor:
    columns = [header.index(name) for name in names]
    data = [
        _data_csv_numbers(path, name, [row[j] for row in rows], lines, "features")
        for name, j in zip(names, columns)
    ]
    # Built column by column, then transposed: one float32 tensor of shape [n, d].
    return torch.tensor(data, dtype=torch.float64).T.contiguous().to(torch.float32)


def _data_missing_column(path: str, name: str, header: list[str]) -> DataError:
    close = difflib.get_close_matches(name, header, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return DataError(f"{path}: no column {name!r} (columns: {', '.join(header)}){hint}")


def _data_load_csv(
    path: str, target: str | Sequence[str], task: str, reference: dict | None
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    header, rows, lines = _data_read_csv(path)
    targets = [target] if isinstance(target, str) else list(target)
    for name in targets:
        if name not in header:
            raise _data_missing_column(path, name, header)
    if task == "classification" and len(targets) != 1:
        raise DataError(f"{path}: classification needs exactly one target column, got {len(targets)}")
    if reference is not None and reference.get("feature_names") is not None:
        # A validation file: the training file's feature columns, in the training order.
        names = list(reference["feature_names"])
        missing = [name for name in names if name not in header]
        if missing:
            raise DataError(
                f"{path}: missing feature column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)} that the training data has"
            )
    else:
        names = [name for name in header if name not in targets]
        if not names:
            raise DataError(f"{path}: no feature columns besides the target")
    x = _data_csv_features(path, header, rows, lines, names)

    if task == "classification":
        column = header.index(targets[0])
        raw = []
        for row, line in zip(rows, lines):
            if _data_is_missing(row[column]):
                raise DataError(f"{path}: line {line}, column {targets[0]!r}: missing label (empty or NaN)")
            raw.append(row[column].strip())
        y, label_map, n_classes = _data_encode_labels(
            raw, lambda i: f"{path}: line {lines[i]}, column {targets[0]!r}", reference
        )
    else:
        columns = [
            _data_csv_numbers(path, name, [row[header.index(name)] for row in rows], lines, "regression targets")
            for name in targets
        ]
        y = torch.tensor(columns, dtype=torch.float64).T.contiguous().to(torch.float32)
        if isinstance(target, str):
            y = y[:, 0].contiguous()
        label_map, n_classes = None, None
    info = {
        "feature_names": names,
        "label_map": label_map,
        "n_classes": n_classes,
        "target": target if isinstance(target, str) else list(targets),
    }
    return x, y, info


# --------------------------------------------------------------------------- labels

def _data_numeric_labels(raw: list) -> list[float] | None:
    """The labels as floats when every one is a finite number (or numeric text), else None."""
    values: list[float] = []
    for label in raw:
        if isinstance(label, str):
            value = _data_parse_number(label)
            if value is None:
                return None
        elif isinstance(label, (int, float)):
            value = float(label)
        else:
            return None
        if not math.isfinite(value):
            return None
        values.append(value)
    return values


def _data_plain_label(value: float) -> int | float:
    """1.0 -> 1 so that label maps read naturally and survive a json round trip."""
    return int(value) if value.is_integer() else value


def _data_encode_labels(
    raw: list, where: Callable[[int], str], reference: dict | None
) -> tuple[torch.Tensor, list | None, int]:
    """Class labels -> (int64 class indices, label map or None, number of classes)."""
    numbers = _data_numeric_labels(raw)
    if reference is None:
        if numbers is not None and all(v.is_integer() and v >= 0 for v in numbers):
            indices = [int(v) for v in numbers]
            return torch.tensor(indices, dtype=torch.int64), None, max(indices) + 1
        if numbers is not None:
            label_map: list = [_data_plain_label(v) for v in sorted(set(numbers))]
        else:
            label_map = sorted({str(label) for label in raw})
        return _data_apply_label_map(raw, label_map, where), label_map, len(label_map)

    label_map = reference.get("label_map")
    n_classes = reference.get("n_classes")
    if label_map is None:
        # The training labels were used as class indices; these must be such indices too.
        for i, label in enumerate(raw):
            value = numbers[i] if numbers is not None else None
            if value is None or not value.is_integer() or value < 0:
                raise DataError(
                    f"{where(i)}: label {_data_short(label)} is not a class index like the training labels"
                )
            if n_classes is not None and value >= n_classes:
                raise DataError(
                    f"{where(i)}: label {_data_plain_label(value)} does not occur in the training data "
                    f"(classes 0..{n_classes - 1})"
                )
        assert numbers is not None
        return torch.tensor([int(v) for v in numbers], dtype=torch.int64), None, n_classes
    label_map = list(label_map)
    return _data_apply_label_map(raw, label_map, where), label_map, len(label_map)


def _data_apply_label_map(raw: list, label_map: list, where: Callable[[int], str]) -> torch.Tensor:
    numeric_map = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in label_map)
    if numeric_map:
        lookup = {float(v): i for i, v in enumerate(label_map)}
    else:
        lookup = {str(v): i for i, v in enumerate(label_map)}
    indices: list[int] = []
    for i, label in enumerate(raw):
        if numeric_map:
            key: Any = _data_parse_number(label) if isinstance(label, str) else float(label)
        else:
            key = str(label)
        index = lookup.get(key)
        if index is None:
            shown = ", ".join(repr(v) for v in label_map[:10]) + (", ..." if len(label_map) > 10 else "")
            raise DataError(
                f"{where(i)}: label {_data_short(label)} does not occur in the training data (labels: {shown})"
            )
        indices.append(index)
    return torch.tensor(indices, dtype=torch.int64)


# --------------------------------------------------------------------------- npz

def _data_import_numpy(why: str) -> Any:
    try:
        import numpy
    except ImportError:
        raise DataError(f"{why} needs numpy: pip install numpy") from None
    return numpy


def _data_open_npz(path: str) -> Any:
    """The arrays of an .npz file, as a dict; a missing or broken file is a DataError."""
    np = _data_import_numpy("reading .npz files")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not an .npz file") from None
    except ValueError as error:
        # allow_pickle=False: object arrays (and non-npz files) end up here; never unpickle.
        raise DataError(f"{path}: not a readable .npz file of numeric arrays ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    except Exception as error:  # zipfile.BadZipFile and friends from a corrupt archive
        raise DataError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from None


def _data_npz_array(arrays: dict, path: str, name: str) -> Any:
    if name in arrays:
        return arrays[name]
    raise DataError(
        f"{path}: no array {name!r} (arrays: {', '.join(sorted(arrays)) or 'none'}); "
        "save features as X and targets as y: numpy.savez(path, X=..., y=...)"
    )


def _data_features_from_array(array: Any, what: str) -> torch.Tensor:
    np = _data_import_numpy("reading .npz files")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} must be numeric, got dtype {array.dtype}")
    if array.ndim < 2:
        raise DataError(f"{what} must have shape [samples, features], got {list(array.shape)}")
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    _data_check_finite(x, what)
    return x


def _data_npz_features(path: str) -> torch.Tensor:
    arrays = _data_open_npz(path)
    return _data_features_from_array(_data_npz_array(arrays, path, "X"), f"{path}: X")


def _data_targets_from_array(
    array: Any, n: int, task: str, what: str, reference: dict | None
) -> tuple[torch.Tensor, list | None, int | None]:
    np = _data_import_numpy("reading .npz files")
    if array.shape[:1] != (n,):
        raise DataError(f"{what} has {array.shape[0] if array.ndim else 0} rows, the features have {n}")
    if task == "classification":
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise DataError(f"{what} must be one label per row for classification, got shape {list(array.shape)}")
        if array.dtype.kind not in "biufUS":
            raise DataError(f"{what} must hold numbers or strings, got dtype {array.dtype}")
        if array.dtype.kind == "f" and not bool(np.isfinite(array).all()):
            row = int(np.flatnonzero(~np.isfinite(array))[0])
            raise DataError(f"{what}[{row}] is {array[row]}; every row needs a label")
        raw = array.astype(str).tolist() if array.dtype.kind == "S" else array.tolist()
        return _data_encode_labels(raw, lambda i: f"{what}[{i}]", reference)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} must be numeric for regression, got dtype {array.dtype}")
    if array.ndim > 2:
        raise DataError(f"{what} must have shape [samples] or [samples, outputs], got {list(array.shape)}")
    y = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    _data_check_finite(y, what)
    return y, None, None


def _data_load_npz(path: str, task: str, reference: dict | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    arrays = _data_open_npz(path)
    x = _data_features_from_array(_data_npz_array(arrays, path, "X"), f"{path}: X")
    names = [f"x{i}" for i in range(x.shape[1])] if x.dim() == 2 else None
    if reference is not None:
        _data_check_width(x, reference, path)
        names = reference.get("feature_names", names)
    y, label_map, n_classes = _data_targets_from_array(
        _data_npz_array(arrays, path, "y"), x.shape[0], task, f"{path}: y", reference
    )
    info = {"feature_names": names, "label_map": label_map, "n_classes": n_classes, "target": None}
    return x, y, info


def _data_check_width(x: torch.Tensor, reference: dict, what: str) -> None:
    names = reference.get("feature_names")
    if names is not None and (x.dim() != 2 or x.shape[1] != len(names)):
        raise DataError(
            f"{what}: features have shape {list(x.shape[1:])}, the training data has {len(names)} features"
        )


# --------------------------------------------------------------------------- scikit-learn

def _data_load_sklearn(name: Any, task: str, reference: dict | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    if name not in _DATA_SKLEARN_SETS:
        known = ", ".join(_DATA_SKLEARN_SETS)
        raise DataError(f"unknown scikit-learn data set {name!r}; known: {known}")
    if _DATA_SKLEARN_SETS[name] != task:
        raise DataError(
            f"sklearn({name!r}) is a {_DATA_SKLEARN_SETS[name]} data set; use task: {_DATA_SKLEARN_SETS[name]}"
        )
    try:
        import sklearn.datasets
    except ImportError:
        raise DataError(f"sklearn({name!r}) data needs scikit-learn: pip install scikit-learn") from None
    bunch = getattr(sklearn.datasets, f"load_{name}")()
    what = f"sklearn({name!r})"
    x = _data_features_from_array(bunch.data, f"{what} features")
    names = getattr(bunch, "feature_names", None)
    names = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(x.shape[1])]
    if task == "classification":
        y = torch.as_tensor(bunch.target.tolist(), dtype=torch.int64)
        # target_names (e.g. iris's 'setosa', ...) make predictions readable; digits has 0..9.
        target_names = getattr(bunch, "target_names", None)
        label_map = None
        if target_names is not None:
            label_map = [v if isinstance(v, int) else str(v) for v in target_names.tolist()]
        n_classes = len(label_map) if label_map is not None else int(y.max()) + 1
    else:
        y, label_map, n_classes = _data_targets_from_array(bunch.target, x.shape[0], task, what, None)
    if reference is not None:
        _data_check_width(x, reference, what)
    info = {"feature_names": names, "label_map": label_map, "n_classes": n_classes, "target": None}
    return x, y, info


# --------------------------------------------------------------------------- splitting

def split_indices(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random split of range(n): (train indices, validation indices), each sorted.

    round(n * fraction) samples (at least 1, at most n - 1) go to validation. The permutation
    comes from its own torch.Generator, so the split depends on (n, fraction, seed) only, not on
    the global random state or the device.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"valid fraction must be between 0 and 1, got {fraction}")
    if n < 2:
        raise DataError(f"cannot hold out a validation part of {n} sample{'s' if n != 1 else ''}")
    n_valid = min(max(int(round(n * fraction)), 1), n - 1)
    generator = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=generator)
    return perm[n_valid:].sort().values, perm[:n_valid].sort().values


# --------------------------------------------------------------------------- standardisation

class Standardizer:
    """Per-feature (x - mean) / std, fitted on the training part only.

    Statistics are over the sample dimension (dim 0), so N-d features get one mean and std per
    element. A constant feature gets std 1 (and its mean is its exact value, so it becomes 0):
    dividing by ~0 would turn rounding noise into huge values.
    """

    def __init__(self) -> None:
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def fit(self, x: torch.Tensor) -> "Standardizer":
        if x.shape[0] == 0:
            raise DataError("cannot standardise features of an empty data set")
        data = x.detach().to("cpu", torch.float64)
        # Population std (like scikit-learn's StandardScaler), in float64 for accuracy.
        std, mean = torch.std_mean(data, dim=0, correction=0)
        constant = (data == data[:1]).all(dim=0)
        mean = torch.where(constant, data[0], mean)
        std = torch.where(constant, torch.ones_like(std), std)
        self.mean = mean.to(torch.float32)
        self.std = std.to(torch.float32)
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None or self.std is None:
            raise RuntimeError("Standardizer.transform called before fit")
        if tuple(x.shape[1:]) != tuple(self.mean.shape):
            raise DataError(
                f"features have shape {list(x.shape[1:])}, the model was trained on {list(self.mean.shape)}"
            )
        mean = self.mean.to(x.device)
        std = self.std.to(x.device)
        return ((x - mean) / std).to(x.dtype if x.is_floating_point() else torch.float32)

    def state_dict(self) -> dict:
        """Plain (nested) lists of floats: loadable with torch.load(weights_only=True) and json."""
        if self.mean is None or self.std is None:
            raise RuntimeError("Standardizer.state_dict called before fit")
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Standardizer":
        standardizer = cls()
        standardizer.mean = torch.as_tensor(state["mean"], dtype=torch.float32)
        standardizer.std = torch.as_tensor(state["std"], dtype=torch.float32)
        return standardizer


# --------------------------------------------------------------------------- batching

def count_batches(n: int, batch_size: int, drop_last_singleton: bool = True, drop_last: bool = False) -> int:
    """How many batches `batches` yields for n samples (e.g. steps per epoch for OneCycleLR)."""
    _data_check_batch_size(batch_size)
    if drop_last:
        return n // batch_size
    if drop_last_singleton and batch_size > 1 and n % batch_size == 1:
        n -= 1
    return -(-n // batch_size)


def _data_check_batch_size(batch_size: int) -> None:
    if int(batch_size) != batch_size or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size}")


def batches(
    x: torch.Tensor,
    y: torch.Tensor | None,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last_singleton: bool = True,
    drop_last: bool = False,
    indices: torch.Tensor | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yields (x_batch, y_batch) pairs, each gathered in one indexing op (x[idx]).

    The order is a permutation from `generator` when `shuffle`, else the data order. `indices`
    restricts the epoch to those rows (e.g. this rank's `shard`), shuffled among themselves when
    `shuffle`. A final batch of exactly one sample is dropped when `drop_last_singleton` and
    batch_size > 1, because batch norm cannot train on a batch of one; `drop_last` drops any
    incomplete final batch. `y` may be None (prediction); then y_batch is None.
    """
    _data_check_batch_size(batch_size)
    batch_size = int(batch_size)
    order = indices.to(torch.int64) if indices is not None else None
    n = order.shape[0] if order is not None else x.shape[0]
    if shuffle:
        device = generator.device if generator is not None else torch.device("cpu")
        perm = torch.randperm(n, generator=generator, device=device).cpu()
        order = perm if order is None else order.cpu()[perm]
    elif order is None:
        order = torch.arange(n)
    order = order.to(x.device)
    stop = count_batches(n, batch_size, drop_last_singleton, drop_last) * batch_size
    for start in range(0, min(stop, n), batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], (y[idx] if y is not None else None)


def shard(indices: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's part of an epoch's (shared-seed) permutation, like DistributedSampler.

    The permutation is padded by repeating its start until its length divides by world_size,
    then rank r takes positions r, r + world_size, ...; every rank gets the same number of
    samples, so all ranks run the same number of steps (a rank with fewer would hang the
    others in all-reduce).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    n = indices.shape[0]
    if n == 0:
        return indices
    total = -(-n // world_size) * world_size
    padding = total - n
    if padding:
        repeats = -(-padding // n)
        indices = torch.cat([indices, indices.repeat(repeats)[:padding]])
    return indices[rank:total:world_size]
