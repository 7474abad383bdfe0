"""Data loading for generated training scripts: csv, npz and scikit-learn sources, labels, splits,
standardisation.

A library the compiler copies from (see support.py): a generated `train_utils.py` holds the
functions its `train.py` uses and nothing else, so module-level imports are the standard library
and torch only (numpy and scikit-learn are imported inside the functions that need them), and it
never imports tgc.

Every problem with the user's data raises `DataError` with a one-line message; the training
script prints it and exits with status 1.
"""

import contextlib
import csv
import difflib
import math
import os
from typing import Any, Callable, Iterator

import torch


class DataError(Exception):
    """A problem with the user's data or data settings; the message is one line."""


# --------------------------------------------------------------------------- sources


# scikit-learn's bundled data sets (no download needed) and the task each one is for.
SKLEARN_SETS = {
    "digits": "classification",
    "iris": "classification",
    "breast_cancer": "classification",
    "wine": "classification",
    "diabetes": "regression",
}


def short(value: Any) -> str:
    """repr of a cell value, cut so that an error message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_finite(x: torch.Tensor, what: str) -> None:
    """NaN or inf in features or regression targets is a DataError naming the first bad row."""
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        flat = x.reshape(x.shape[0], -1)
        bad = ~torch.isfinite(flat)
        row = int(bad.any(dim=1).nonzero()[0, 0])
        value = float(flat[row][bad[row]][0])
        kind = "NaN" if math.isnan(value) else "an infinite value"
        raise DataError(f"{what} has {kind} in row {row}; fill or drop missing values first")


# --------------------------------------------------------------------------- csv

@contextlib.contextmanager
def reading(path: str, kind: str) -> Iterator[None]:
    """Turns what can go wrong opening and reading a text file into one-line DataErrors."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not {kind}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def read_csv(path: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Reads a csv file as text: (header, data rows, file line number of each row).

    Blank lines and rows whose cells are all empty (spreadsheet export debris) are skipped;
    every other row must have as many cells as the header.
    """
    try:
        # newline="" lets the csv module handle quoted newlines; utf-8-sig drops an Excel BOM.
        with reading(path, "a csv file"), open(path, newline="", encoding="utf-8-sig") as handle:
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
    except csv.Error as error:
        raise DataError(f"{path}: not a valid csv file ({error})") from None
    if header is None:
        raise DataError(f"{path}: the file is empty; a header row naming the columns is required")
    if all(parse_number(cell) is not None for cell in header):
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


def parse_number(text: str) -> float | None:
    """A cell as a float, or None when it is not a number (NaN counts as a number here)."""
    try:
        return float(text)
    except ValueError:
        return None


def is_missing(cell: str) -> bool:
    text = cell.strip()
    return not text or text.lower() in ("nan", "+nan", "-nan")


def csv_numbers(path: str, column: str, cells: list[str], lines: list[int], what: str) -> list[float]:
    """Parses one csv column of numbers; a missing, non-numeric or infinite cell is a DataError."""
    values: list[float] = []
    for cell, line in zip(cells, lines):
        if is_missing(cell):
            raise DataError(f"{path}: line {line}, column {column!r}: missing value (empty or NaN)")
        value = parse_number(cell.strip())
        if value is None:
            raise DataError(
                f"{path}: line {line}, column {column!r}: non-numeric value {short(cell)} "
                f"({what} must be numbers)"
            )
        if math.isinf(value):
            raise DataError(f"{path}: line {line}, column {column!r}: infinite value {short(cell)}")
        values.append(value)
    return values


def csv_columns(
    path: str,
    header: list[str],
    rows: list[list[str]],
    lines: list[int],
    names: list[str],
    what: str = "features",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The named columns as one float32 tensor [n, len(names)], in the order of `names`.

    A name the header lacks is a DataError. `dtype` float64 keeps integers above 2**24 exact
    (the columns of an integer input).
    """
    for name in names:
        if name not in header:
            raise missing_column(path, name, header)
    columns = [header.index(name) for name in names]
    data = [csv_numbers(path, name, [row[j] for row in rows], lines, what) for name, j in zip(names, columns)]
    # Built column by column, then transposed: one tensor of shape [n, d].
    return torch.tensor(data, dtype=torch.float64).T.contiguous().to(dtype)


def missing_column(path: str, name: str, header: list[str]) -> DataError:
    close = difflib.get_close_matches(name, header, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return DataError(f"{path}: no column {name!r} (columns: {', '.join(header)}){hint}")


def input_columns(path: str, header: list[str], targets: list[str], inputs: list[str]) -> dict[str, list[str]]:
    """Which columns feed which model input, in file order.

    With one input, every column but the targets. With several, input `x` takes the column
    named `x` and those named `x.<anything>` (`x.0`, `x.age`); a column that belongs to no
    input and is not a target is a DataError, so that none is dropped unnoticed.
    """
    for name in targets:
        if name not in header:
            raise missing_column(path, name, header)
    rest = [name for name in header if name not in targets]
    if len(inputs) == 1:
        groups = {inputs[0]: rest}
    else:
        groups = {i: [c for c in rest if c == i or c.startswith(i + ".")] for i in inputs}
        stray = [c for c in rest if not any(c in g for g in groups.values())]
        if stray:
            raise DataError(
                f"{path}: column {stray[0]!r} belongs to no input; name the columns of input `x` x or x.<name> "
                f"(inputs: {', '.join(inputs)})"
            )
    for name, columns in groups.items():
        if not columns:
            raise DataError(f"{path}: no columns for input `{name}` (columns: {', '.join(header)})")
    return groups


def csv_inputs(
    path: str, header: list[str], rows: list[list[str]], lines: list[int], groups: dict[str, list[str]], dtypes: dict
) -> list[torch.Tensor]:
    """One tensor [n, columns] per input, in the input's dtype; a column the file lacks is a DataError."""
    missing = [c for columns in groups.values() for c in columns if c not in header]
    if missing:
        raise missing_column(path, missing[0], header)
    return [
        as_input(
            csv_columns(path, header, rows, lines, columns, "features", column_dtype(dtypes[name])),
            dtypes[name],
            f"{path}: input {name}",
        )
        for name, columns in groups.items()
    ]


def column_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for a floating input; float64 for an integer one, exact up to 2**53."""
    return torch.float32 if dtype.is_floating_point else torch.float64


def as_input(x: torch.Tensor, dtype: torch.dtype, what: str) -> torch.Tensor:
    """`x` in the dtype of the model input it feeds; a fraction for an integer input is a DataError."""
    if x.dtype == dtype:
        return x
    if not dtype.is_floating_point and x.is_floating_point():
        bad = (x != x.round()).reshape(x.shape[0], -1).any(dim=1).nonzero()
        if bad.numel():
            raise DataError(f"{what}: row {int(bad[0, 0])} has a fraction, but the model takes {dtype} here")
    return x.to(dtype)


def csv_labels(
    path: str, header: list[str], rows: list[list[str]], lines: list[int], target: str, reference: dict | None
) -> tuple[torch.Tensor, list | None, int]:
    """The class labels of column `target`: (int64 class indices, label map or None, classes)."""
    if target not in header:
        raise missing_column(path, target, header)
    column = header.index(target)
    raw = []
    for row, line in zip(rows, lines):
        if is_missing(row[column]):
            raise DataError(f"{path}: line {line}, column {target!r}: missing label (empty or NaN)")
        raw.append(row[column].strip())
    return encode_labels(raw, lambda i: f"{path}: line {lines[i]}, column {target!r}", reference)


# --------------------------------------------------------------------------- labels

def numeric_labels(raw: list) -> list[float] | None:
    """The labels as floats when every one is a finite number (or numeric text), else None."""
    values: list[float] = []
    for label in raw:
        if isinstance(label, str):
            value = parse_number(label)
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


def plain_label(value: float) -> int | float:
    """1.0 -> 1 so that label maps read naturally and survive a json round trip."""
    return int(value) if value.is_integer() else value


def encode_labels(
    raw: list, where: Callable[[int], str], reference: dict | None
) -> tuple[torch.Tensor, list | None, int]:
    """Class labels -> (int64 class indices, label map or None, number of classes)."""
    numbers = numeric_labels(raw)
    if reference is None:
        if numbers is not None and all(v.is_integer() and v >= 0 for v in numbers):
            indices = [int(v) for v in numbers]
            return torch.tensor(indices, dtype=torch.int64), None, max(indices) + 1
        if numbers is not None:
            label_map: list = [plain_label(v) for v in sorted(set(numbers))]
        else:
            label_map = sorted({str(label) for label in raw})
        return apply_label_map(raw, label_map, where), label_map, len(label_map)

    label_map = reference.get("label_map")
    # read_data's info calls it "classes" (csv_labels returns it third, as here).
    n_classes = reference.get("classes", reference.get("n_classes"))
    if label_map is None:
        # The training labels were used as class indices; these must be such indices too.
        for i, label in enumerate(raw):
            # One non-numeric label makes `numbers` None: look at each label on its own to name
            # the first bad one, not the first row.
            value = numbers[i] if numbers is not None else (numeric_labels([label]) or [None])[0]
            if value is None or not value.is_integer() or value < 0:
                raise DataError(
                    f"{where(i)}: label {short(label)} is not a class index like the training labels"
                )
            if n_classes is not None and value >= n_classes:
                raise DataError(
                    f"{where(i)}: label {plain_label(value)} does not occur in the training data "
                    f"(classes 0..{n_classes - 1})"
                )
        assert numbers is not None
        return torch.tensor([int(v) for v in numbers], dtype=torch.int64), None, n_classes
    label_map = list(label_map)
    return apply_label_map(raw, label_map, where), label_map, len(label_map)


def apply_label_map(raw: list, label_map: list, where: Callable[[int], str]) -> torch.Tensor:
    numeric_map = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in label_map)
    if numeric_map:
        lookup = {float(v): i for i, v in enumerate(label_map)}
    else:
        lookup = {str(v): i for i, v in enumerate(label_map)}
    indices: list[int] = []
    for i, label in enumerate(raw):
        if numeric_map:
            key: Any = parse_number(label) if isinstance(label, str) else float(label)
        else:
            key = str(label)
        index = lookup.get(key)
        if index is None:
            shown = ", ".join(repr(v) for v in label_map[:10]) + (", ..." if len(label_map) > 10 else "")
            raise DataError(
                f"{where(i)}: label {short(label)} does not occur in the training data (labels: {shown})"
            )
        indices.append(index)
    return torch.tensor(indices, dtype=torch.int64)


# --------------------------------------------------------------------------- npz

def import_numpy(why: str) -> Any:
    try:
        import numpy
    except ImportError:
        raise DataError(f"{why} needs numpy: pip install numpy") from None
    return numpy


def open_npz(path: str) -> Any:
    """The arrays of an .npz file, as a dict; a missing or broken file is a DataError."""
    np = import_numpy("reading .npz files")
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


def npz_array(arrays: dict, path: str, name: str) -> Any:
    if name in arrays:
        return arrays[name]
    raise DataError(
        f"{path}: no array {name!r} (arrays: {', '.join(sorted(arrays)) or 'none'}); "
        "save each input under its name (or X for one input) and the targets as y: numpy.savez(path, X=..., y=...)"
    )


def array_input(array: Any, what: str) -> torch.Tensor:
    """A numeric array as a tensor: floats as float32, integers as int64, booleans as bool."""
    np = import_numpy("reading arrays")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} must be numeric, got dtype {array.dtype}")
    if array.ndim < 2:
        raise DataError(f"{what} must have shape [samples, ...], got {list(array.shape)}")
    dtype = {"b": np.bool_, "i": np.int64, "u": np.int64}.get(array.dtype.kind, np.float32)
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=dtype))
    check_finite(x, what)
    return x


def npz_inputs(arrays: dict, path: str, dtypes: dict) -> list[torch.Tensor]:
    """One tensor per model input from the arrays named after the inputs (one input: or `X`)."""
    inputs = []
    for name, dtype in dtypes.items():
        key = "X" if len(dtypes) == 1 and name not in arrays and "X" in arrays else name
        inputs.append(as_input(array_input(npz_array(arrays, path, key), f"{path}: {key}"), dtype, f"{path}: {key}"))
        if len(inputs[-1]) != len(inputs[0]):
            raise DataError(f"{path}: {key} has {len(inputs[-1])} rows, the first input has {len(inputs[0])}")
    return inputs


def array_labels(array: Any, n: int, what: str, reference: dict | None) -> tuple[torch.Tensor, list | None, int]:
    """Class labels from an array of numbers or strings, one per row."""
    np = import_numpy("reading arrays")
    if array.shape[:1] != (n,):
        raise DataError(f"{what} has {array.shape[0] if array.ndim else 0} rows, the inputs have {n}")
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
    return encode_labels(raw, lambda i: f"{what}[{i}]", reference)


def array_targets(array: Any, n: int, what: str) -> torch.Tensor:
    """Regression targets [n] or [n, k] as float32."""
    np = import_numpy("reading arrays")
    if array.shape[:1] != (n,):
        raise DataError(f"{what} has {array.shape[0] if array.ndim else 0} rows, the inputs have {n}")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} must be numeric for regression, got dtype {array.dtype}")
    if array.ndim > 2:
        raise DataError(f"{what} must have shape [samples] or [samples, outputs], got {list(array.shape)}")
    y = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    check_finite(y, what)
    return y


# --------------------------------------------------------------------------- scikit-learn


def load_sklearn(name: str, task: str) -> Any:
    """One of scikit-learn's bundled data sets (no download): its `Bunch`."""
    if name not in SKLEARN_SETS:
        raise DataError(f"unknown scikit-learn data set {name!r}; known: {', '.join(SKLEARN_SETS)}")
    if SKLEARN_SETS[name] != task:
        raise DataError(f"sklearn({name!r}) is a {SKLEARN_SETS[name]} data set; use task: {SKLEARN_SETS[name]}")
    try:
        import sklearn.datasets
    except ImportError:
        raise DataError(f"sklearn({name!r}) data needs scikit-learn: pip install scikit-learn") from None
    return getattr(sklearn.datasets, f"load_{name}")()


def sklearn_labels(bunch: Any) -> tuple[torch.Tensor, list | None, int]:
    """Class indices, with the data set's target names as the label map (iris: 'setosa', ...)."""
    y = torch.as_tensor(bunch.target.tolist(), dtype=torch.int64)
    names = getattr(bunch, "target_names", None)
    label_map = None if names is None else [v if isinstance(v, int) else str(v) for v in names.tolist()]
    return y, label_map, len(label_map) if label_map is not None else int(y.max()) + 1


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

def fit_scaling(x: torch.Tensor) -> dict:
    """Mean and standard deviation of each feature over the examples (dim 0) of the training
    part, as plain lists (json- and weights_only-safe; N-d inputs get one per element).

    Population std, in float64, like scikit-learn's StandardScaler. A constant feature gets
    std 1 and its exact value as mean, so it becomes 0 instead of amplified rounding noise.
    """
    if x.shape[0] == 0:
        raise DataError("cannot standardise the features of an empty data set")
    data = x.detach().to("cpu", torch.float64)
    std, mean = torch.std_mean(data, dim=0, correction=0)
    constant = (data == data[:1]).all(dim=0)
    mean = torch.where(constant, data[0], mean)
    std = torch.where(constant, torch.ones_like(std), std)
    return {"mean": mean.to(torch.float32).tolist(), "std": std.to(torch.float32).tolist()}


def apply_scaling(x: torch.Tensor, scaling: dict) -> torch.Tensor:
    """(x - mean) / std with statistics from `fit_scaling`."""
    mean = torch.tensor(scaling["mean"], dtype=torch.float32, device=x.device)
    std = torch.tensor(scaling["std"], dtype=torch.float32, device=x.device)
    if tuple(x.shape[1:]) != tuple(mean.shape):
        raise DataError(f"features have shape {list(x.shape[1:])}, the model was trained on {list(mean.shape)}")
    return ((x - mean) / std).to(x.dtype if x.is_floating_point() else torch.float32)


# --------------------------------------------------------------------------- text


def read_text(path: str) -> str:
    """A UTF-8 text file's contents; a missing or unreadable file is a DataError."""
    with reading(path, "a text file"), open(path, encoding="utf-8") as handle:
        return handle.read()


def text_ids(text: str, vocabulary: list | None, what: str) -> torch.Tensor:
    """Token ids of `text`: indices into `vocabulary` (characters), or its UTF-8 bytes (None)."""
    if vocabulary is None:
        return torch.tensor(list(text.encode("utf-8")), dtype=torch.int64)
    index = {c: i for i, c in enumerate(vocabulary)}
    unknown = next((c for c in text if c not in index), None)
    if unknown is not None:
        raise DataError(f"{what}: the character {unknown!r} is not in the training text's vocabulary")
    return torch.tensor([index[c] for c in text], dtype=torch.int64)


def text_windows(ids: torch.Tensor, context: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples of next-token training: windows of `context` ids, and the same shifted by one."""
    n = (len(ids) - 1) // context
    if n < 2:
        raise DataError(f"{what}: {len(ids)} tokens make fewer than two windows of {context} + 1")
    x = ids[: n * context].reshape(n, context)
    y = ids[1 : n * context + 1].reshape(n, context)
    return x, y


def text_of(ids: list, vocabulary: list | None) -> str:
    """The text of token ids (bytes that are not valid UTF-8 show as U+FFFD)."""
    if vocabulary is None:
        return bytes(ids).decode("utf-8", errors="replace")
    return "".join(vocabulary[i] for i in ids)
