"""Train checks: a `train` section against its model's checked shapes and its data files.

Mistakes that the generated train.py would otherwise find only when it runs, reported at
`tgc check` time (GitHub issue 12). Pure: reads the plans, the checked shapes and, of a csv
data source, the header line only (never the whole file). No torch.

Rules, in order (codes in `diagnostics.CODES`):
- E063 `head: NAME` names the trained output; it must be one of the model's outputs. Without
  `head` the model's first output trains (`graph.outputs[0]`).
- E060 a loss written in the section must fit the task (`TASK_LOSSES`; a default is the train
  stage's choice, not the user's mistake).
- E061 the trained output's rank must fit the task and loss: classification with
  `cross_entropy` needs `[batch, classes]` (rank 2), with `bce_with_logits` rank 1 or 2;
  next_token needs `[batch, token, vocab]` (rank 3); regression has no rank rule. The batch
  must be the first dimension.
- E062 next_token needs the model's first input to be an integer `long[batch, token]` (or int).
- Data files, for `csv(path, target=)` sources in `data`, `valid` and `test`, whatever the task
  (the path relative to the .tg file's folder, as `emit_train._relocate` resolves it):
  W020 the file does not exist (it may be made later); W021 it exists but its header cannot be
  read (a directory, not UTF-8, binary, empty, a first row of numbers, ...);
  E064 the target column is not in the header;
  E065 the number of feature columns differs from the size the model's input takes, where that
  size is known at compile time (a literal, or a model parameter: its default or `--param`);
  an input whose width is a required constructor argument (`GraphShapes.required`, filled from
  the data when train.py runs) is not checked;
  E066 there is no feature column, the columns do not fit the inputs (see below), or a
  `valid`/`test` file lacks a feature column of the training file (train.py reads the training
  file's feature columns from them; a `valid`/`test` file is counted against the model only
  when the training data is not a readable csv).
- Columns and inputs (E065, E066; for classification and regression, whose data are feature
  columns; `next_token` reads its own kind of data): with ONE model input, every column but
  the target is a feature of it (checked when it is `[batch, feature=N]`). With SEVERAL inputs,
  input NAME takes the columns named `NAME` or `NAME.<anything>`, in file order; each input's
  count is checked the same way, an input without a column is an error, and so is a column that
  is neither the target nor any input's.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from dataclasses import dataclass
from typing import Any

from . import ast as A
from . import ir
from .diagnostics import CompileError, Diagnostic, error, suggest, warning
from .shapes import Checked, GraphShapes
from .tensor_types import TType
from .train import CALLS, TrainPlan

# The losses of each task; a task not listed here (a newer one) is not checked.
TASK_LOSSES: dict[str, tuple[str, ...]] = {
    "classification": ("cross_entropy", "bce_with_logits"),
    "regression": ("mse", "l1", "huber"),
    "next_token": ("cross_entropy",),
}
LOSS_TASK = {"cross_entropy": "classification", "bce_with_logits": "classification",
             "mse": "regression", "l1": "regression", "huber": "regression"}
# integer dtypes an embedding (torch) takes as token ids: long and int
TOKEN_DTYPES = ("int64", "int32")
TABULAR_TASKS = ("classification", "regression")  # tasks that read feature columns

_UNKNOWN = object()
DEFAULT_CONTEXT = 64  # tokens per next-token example when `context` is not written (emit_train too)
HEADER_CAP = 1 << 20  # bytes of a csv file read at most to find its header row
SHOWN_COLUMNS = 8  # column names listed in a message before "and N more"


def check_train(plans: list[TrainPlan], checked: Checked, source_file: str) -> list[Diagnostic]:
    """Diagnostics of every `train` section against its model and its data files."""
    diags: list[Diagnostic] = []
    for plan in plans:
        shapes = next((s for s in checked.models if s.graph.name == plan.model), None)
        if shapes is None:
            continue  # the model did not check: its own errors are reported already
        _check_plan(plan, shapes, _train_def(checked.program, plan), source_file, diags)
        if plan.config.get("task") == "next_token":
            _check_context(plan, shapes, checked, diags)
    return diags


def _check_context(plan: TrainPlan, shapes: GraphShapes, checked: Checked, diags: list[Diagnostic]) -> None:
    """E067: the model must take windows of `context` tokens (a position table of
    `block_size` rows takes at most that many): the model checked again with that length."""
    from .shapes import check as check_shapes

    first = shapes.graph.inputs[0] if shapes.graph.inputs else None
    inp = shapes.types.get(first.name) if first is not None else None
    if inp is None or inp.rank != 2 or inp.dtype not in TOKEN_DTYPES:
        return  # E062 says what is wrong with the input
    context = plan.config.get("context") or DEFAULT_CONTEXT
    params = list(shapes.param_values.items())
    try:
        check_shapes(checked.program, params, [(first.name, (context,))])  # sizes after batch
    except CompileError as exc:
        problem = next((d for d in exc.diagnostics if d.is_error), None)
        if problem is not None:
            diags.append(error(plan.spans.get("context", plan.span), "E067",
                               f"the model does not take windows of {context} tokens: {problem.message}",
                               "lower `context`, or give the model a longer position table"))


# ------------------------------------------------------------------------------ model vs task


def _check_plan(plan: TrainPlan, shapes: GraphShapes, tdef: ir.TrainDef | None, source_file: str,
                diags: list[Diagnostic]) -> None:
    graph, config = shapes.graph, plan.config
    task = config.get("task")
    loss = config["loss"].get("name") if isinstance(config.get("loss"), dict) else None

    head = _head(plan, graph, diags)
    if "loss" in plan.spans and task in TASK_LOSSES and loss in LOSS_TASK and loss not in TASK_LOSSES[task]:
        fits = TASK_LOSSES[task]
        listed = ", ".join(f"`{n}`" for n in fits[:-1]) + (" or " if len(fits) > 1 else "") + f"`{fits[-1]}`"
        other = f" (or `task: {LOSS_TASK[loss]}`)" if LOSS_TASK[loss] != task else ""
        diags.append(error(plan.spans["loss"], "E060",
                           f"`{loss}` is a {LOSS_TASK[loss]} loss, but the task is {task}",
                           f"a {task} task trains with {listed}{other}"))
        loss = None  # the rank rules below follow the loss: no second error for one mistake
    if head is not None and head in shapes.types:
        _check_ranks(plan, shapes, head, task, loss, diags)
    _check_data(plan, shapes, tdef, source_file, diags, columns=task in TABULAR_TASKS)


def _head(plan: TrainPlan, graph: ir.Graph, diags: list[Diagnostic]) -> str | None:
    """The output that trains: `head: NAME` when given (an output of the model), else the first."""
    name = plan.config.get("head")
    if name is None:
        return graph.outputs[0] if graph.outputs else None
    if not isinstance(name, str):
        return None  # not a name: the train stage reports the value
    if name in graph.outputs:
        return name
    span = plan.spans.get("head", plan.span)
    outputs = ", ".join(f"`{o}`" for o in graph.outputs)
    if graph.producer(name) is not None or any(i.name == name for i in graph.inputs):
        diags.append(error(span, "E063", f"`head: {name}`: `{name}` is not an output of model `{graph.name}`",
                           f"list it in the model's `output` to train it (the outputs: {outputs})"))
    else:
        hint = suggest(name, graph.outputs)
        diags.append(error(span, "E063", f"`head: {name}`: model `{graph.name}` has no output `{name}`",
                           f"{hint} (the outputs: {outputs})" if hint else f"the model's outputs: {outputs}"))
    return None


def _check_ranks(plan: TrainPlan, shapes: GraphShapes, head: str, task: Any, loss: Any,
                 diags: list[Diagnostic]) -> None:
    graph = shapes.graph
    out = shapes.types[head]
    # the span of what selects the output: `head:` when written, else the task, else the loss
    where = next((plan.spans[k] for k in ("head", "task", "loss") if k in plan.spans), plan.span)
    if task == "classification":
        if loss == "cross_entropy" and out.rank != 2:
            diags.append(error(where, "E061", f"a classifier trained with cross_entropy needs the output "
                               f"[batch, classes], but `{head}` is {out.show()}", _flatten_hint(out)))
        elif loss == "bce_with_logits" and out.rank not in (1, 2):
            diags.append(error(where, "E061", f"a classifier trained with bce_with_logits needs the output "
                               f"[batch] or [batch, classes], but `{head}` is {out.show()}", _flatten_hint(out)))
        elif loss in ("cross_entropy", "bce_with_logits"):
            _check_batch_first(where, head, out, diags)
    elif task == "next_token":
        first = graph.inputs[0] if graph.inputs else None
        inp = shapes.types.get(first.name) if first is not None else None
        if first is not None and inp is not None and (inp.dtype not in TOKEN_DTYPES or inp.rank != 2):
            diags.append(error(plan.spans.get("task", where), "E062",
                               f"`task: next_token` needs the model's first input to be long[batch, token], "
                               f"but `{first.name}` is {inp.show()}",
                               f"declare the token ids as `input {first.name}: long[batch, token]`"))
        if out.rank != 3:
            diags.append(error(where, "E061", f"`task: next_token` needs the output [batch, token, vocab], "
                               f"but `{head}` is {out.show()}",
                               "end the model with a linear to the vocabulary size over every token, "
                               "e.g. `logits = h >> linear(vocab)` on h: [batch, token, feature]"))
        else:
            _check_batch_first(where, head, out, diags)


def _check_batch_first(where: A.Span, head: str, out: TType, diags: list[Diagnostic]) -> None:
    """The batch (where the checker knows which dimension it is) must come first."""
    batch = [i for i, d in enumerate(out.dims) if d.batch]
    if batch and 0 not in batch:
        diags.append(error(where, "E061", f"the trained output must have the batch first, but `{head}` is "
                           f"{out.show()} (the batch is dimension {batch[0]})",
                           "train the per-example values: take the leading dimension away first, e.g. "
                           "the last layer of an RNN's state, `h_n[layer=-1]`"))


def _flatten_hint(out: TType) -> str:
    if out.rank > 2:
        pooled = [d.name for d in out.dims[1:-1] if d.name and not d.batch]
        how = f"`>> mean(dim={pooled[0]})` or `>> flatten`" if pooled else "`>> flatten`"
        return f"flatten or pool to [batch, classes] first, e.g. {how}, then a linear to the classes"
    if out.rank == 1:
        return "cross_entropy takes one score per class: end with a linear to the number of classes; " \
               "for one score per example (two classes), use bce_with_logits"
    return "end the classifier with a linear to the number of classes: [batch, classes]"


# ------------------------------------------------------------------------------ data files


@dataclass
class _Source:
    key: str  # data, valid or test
    path: str  # as written
    target: list[str]
    path_span: A.Span
    target_span: A.Span


def _check_data(plan: TrainPlan, shapes: GraphShapes, tdef: ir.TrainDef | None, source_file: str,
                diags: list[Diagnostic], columns: bool) -> None:
    """Every csv source: the file, its target column and, where `columns`, its feature columns."""
    # the training file's feature columns; None: the training data is no csv, so a valid or
    # test file is counted against the model; UNKNOWN: a csv whose columns are not known here
    train_features: Any = None
    for key in ("data", "valid", "test"):
        src = _csv_source(plan, key, tdef)
        if src is None:
            continue
        header = _read_header(src, source_file, diags)
        if key == "data":
            train_features = _UNKNOWN
        if header is None:
            continue
        missing = [t for t in src.target if t not in header]
        for name in missing:
            hint = suggest(name, header)
            listing = f"the columns: {_names(header)}"
            diags.append(error(src.target_span, "E064", f"`{src.path}` has no column `{name}`",
                               f"{hint} ({listing})" if hint else listing))
        if missing or not columns:
            continue
        features = [c for c in header if c not in src.target]
        if key == "data":
            train_features = features
            _check_columns(src, features, shapes, diags)
        elif train_features is _UNKNOWN:
            continue  # train.py takes the training file's columns: no telling which they are
        elif train_features is not None:
            # train.py reads the training file's feature columns from a validation or test file
            lacking = [c for c in train_features if c not in header]
            if lacking:
                diags.append(error(src.path_span, "E066", f"`{src.path}` lacks feature column"
                                   f"{'s' if len(lacking) > 1 else ''} {_names(lacking, quote=True)} "
                                   "of the training data", f"`{key}` data needs the training data's columns"))
        else:
            _check_columns(src, features, shapes, diags)


def _csv_source(plan: TrainPlan, key: str, tdef: ir.TrainDef | None) -> _Source | None:
    spec = plan.config.get(key)
    if not isinstance(spec, dict) or spec.get("kind") != "csv" or not isinstance(spec.get("path"), str):
        return None
    target = spec.get("target")
    targets = [target] if isinstance(target, str) else list(target) if isinstance(target, (list, tuple)) else []
    if not all(isinstance(t, str) for t in targets):
        return None
    fallback = plan.spans.get(key, plan.span)
    path_span = target_span = fallback
    call = _value(tdef, key)
    if isinstance(call, A.Call):
        order = tuple(CALLS["data"]["csv"])  # csv's positional order: path, target
        for i, arg in enumerate(call.args):
            name = arg.name if arg.name is not None else (order[i] if i < len(order) else None)
            if name == "path":
                path_span = arg.value.span
            elif name == "target":
                target_span = arg.value.span
    return _Source(key, spec["path"], targets, path_span, target_span)


def _read_header(src: _Source, source_file: str, diags: list[Diagnostic]) -> list[str] | None:
    """The header row of a csv file (its first non-blank row), read from its first megabyte;
    None, with a warning, when the file is missing or unreadable."""
    # relative to the .tg file's folder (as train.py's path is made); shown as tgc was given the
    # .tg file: relative to the working folder, or absolute
    path = os.path.normpath(os.path.join(os.path.dirname(source_file), src.path))

    def cannot(why: str, hint: str | None = None) -> None:
        diags.append(warning(src.path_span, "W021", f"cannot check `{src.path}`: {why}",
                             hint or "train.py will fail reading it; the columns are checked once the file "
                             "is a csv with a header row"))

    if not os.path.exists(path):
        looked = "" if path == os.path.normpath(src.path) else f" (looked for {path})"
        diags.append(warning(src.path_span, "W020", f"data file `{src.path}` not found{looked}",
                             "a data path is relative to the folder of the .tg file; if the file is made "
                             "later, its columns are checked then"))
        return None
    if os.path.isdir(path):
        cannot(f"{path} is a directory, not a csv file")
        return None
    if not os.path.isfile(path):  # a pipe or a device would block or never end: not opened
        cannot(f"{path} is not a regular file")
        return None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(HEADER_CAP + 1)
    except OSError as exc:
        cannot(f"{path}: {exc.strerror or exc}")
        return None
    truncated = len(raw) > HEADER_CAP
    raw = raw[:HEADER_CAP]
    last = [""]  # the last physical line the csv reader took: a header row cut off lacks its end

    def lines():
        """The file's lines as the csv reader asks for them, decoded one by one: bytes after the
        header are never decoded (train.py reads those itself)."""
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        chunks = raw.splitlines(keepends=True)  # on b"\n", b"\r", b"\r\n": never inside a character
        for number, chunk in enumerate(chunks, start=1):
            if b"\x00" in chunk:
                raise _Unreadable("it is a binary file, not csv text")
            try:
                line = decoder.decode(chunk, final=not truncated and number == len(chunks))
            except UnicodeDecodeError as exc:
                bad = exc.object[exc.start:exc.start + 1] or chunk[:1]
                raise _Unreadable(f"it is not UTF-8 text (byte 0x{bad[0]:02x} on line {number})") from None
            last[0] = line  # a multi-byte character cut by the cap waits in the decoder
            yield line

    header = None
    try:
        for row in csv.reader(lines()):
            if row and any(cell.strip() for cell in row):  # train.py skips blank rows too
                header = [cell.strip() for cell in row]
                break
    except _Unreadable as exc:
        cannot(str(exc))
        return None
    except csv.Error as exc:
        cannot(f"it is not a valid csv file ({exc})")
        return None
    if truncated and (header is None or not last[0].endswith(("\n", "\r"))):
        cannot(f"no header row ends in its first {HEADER_CAP >> 20} MB",
               f"tgc check reads the first {HEADER_CAP >> 20} MB of a data file; its columns are not checked")
        return None
    if header is None:
        cannot("the file is empty", "a csv data file needs a header row naming the columns")
        return None
    if all(_is_number(cell) for cell in header):
        cannot("its first row looks like data, not a header",
               "train.py needs a header row naming the columns (the target column by its name)")
        return None
    empty = [i + 1 for i, name in enumerate(header) if not name]
    if empty:
        cannot(f"header column {empty[0]} has no name", "name every column in the header row")
        return None
    seen: set[str] = set()
    for name in header:
        if name in seen:
            cannot(f"column `{name}` appears twice in the header", "give every column its own name")
            return None
        seen.add(name)
    return header


class _Unreadable(Exception):
    """A data file's header that is no csv text (the message says why)."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_columns(src: _Source, features: list[str], shapes: GraphShapes, diags: list[Diagnostic]) -> None:
    """Feature columns against the model's inputs (the rules in the module's docstring)."""
    graph = shapes.graph
    if not features:
        diags.append(error(src.path_span, "E066", f"`{src.path}` has no feature column besides the target "
                           f"{_names(src.target, quote=True)}", "the model needs at least one feature column"))
        return
    if len(graph.inputs) == 1:
        _check_count(src, graph.inputs[0].name, features, shapes, diags, len(graph.inputs))
        return
    # several inputs: input NAME takes the columns `NAME` and `NAME.<anything>`, in file order
    owned: set[str] = set()
    for inp in graph.inputs:
        columns = [c for c in features if c == inp.name or c.startswith(inp.name + ".")]
        owned.update(columns)
        if not columns:
            diags.append(error(src.path_span, "E066", f"`{src.path}` has no column for input `{inp.name}`",
                               f"with several inputs, input `{inp.name}` takes the columns named "
                               f"`{inp.name}` or `{inp.name}.<anything>` ({inp.name}.0, {inp.name}.1, ...)"))
            continue
        _check_count(src, inp.name, columns, shapes, diags, len(graph.inputs))
    stray = [c for c in features if c not in owned]
    if stray:
        inputs = ", ".join(f"`{i.name}`" for i in graph.inputs)
        diags.append(error(src.path_span, "E066", f"`{src.path}` has column{'s' if len(stray) > 1 else ''} "
                           f"{_names(stray, quote=True)} of no input (the inputs: {inputs})",
                           "with several inputs, input NAME takes the columns named `NAME` or "
                           "`NAME.<anything>`; rename the columns, or drop them"))


def _check_count(src: _Source, name: str, columns: list[str], shapes: GraphShapes,
                 diags: list[Diagnostic], n_inputs: int) -> None:
    t = shapes.types.get(name)
    if t is None or t.rank != 2:
        return  # only a [batch, feature=N] input reads feature columns
    size = t.dims[1].size
    if size is None or not isinstance(size.value, int) or isinstance(size.value, bool):
        return  # sized when the model runs
    params = size.params()
    if params & set(shapes.required):
        return  # a constructor argument without default: train.py fills it from the data
    if len(columns) == size.value:
        return
    n = len(columns)
    what = f"{n} feature column{'s' if n != 1 else ''}" + (f" for `{name}`" if n_inputs > 1 else "")
    takes = t.dims[1].show()
    if not size.is_const:
        takes += f", which is {size.value}"
    message = f"`{src.path}` has {what} ({_names(columns)}), but `{name}` takes {takes}"
    model_params = {p.name for p in shapes.graph.params}
    if size.tree[0] == "p" and size.tree[1] in model_params:
        p = size.tree[1]
        hint = f"run train.py with `--model.{p} {n}`, or change the default of `{p}` to {n}"
    elif size.is_const:
        hint = f"change the input's size to {n} ({name}: [batch, feature={n}]), or the data's columns"
    else:
        hint = f"change the parameters so that {size} is {n}, or the data's columns"
    diags.append(error(src.path_span, "E065", message, hint))


def _names(names: list[str], quote: bool = False) -> str:
    shown = [f"`{n}`" if quote else n for n in names[:SHOWN_COLUMNS]]
    more = len(names) - SHOWN_COLUMNS
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


# ------------------------------------------------------------------------------ the section's AST


def _train_def(program: ir.Program, plan: TrainPlan) -> ir.TrainDef | None:
    return next((t for t in program.trains if t.span == plan.span), None)


def _value(tdef: ir.TrainDef | None, key: str) -> A.Expr | None:
    """The first value written for `key` (a one-item list counts as its item), or None."""
    if tdef is None:
        return None
    for item in tdef.items:
        if item.key == key and item.values:
            value = item.values[0]
            if isinstance(value, A.ListExpr):
                return value.items[0] if value.items else None
            return value
    return None
