"""Train stage: a `train` section's settings -> a checked training configuration (no torch).

Every key has a schema (LANGUAGE.md sections 8 and 10): a bare name is a call without
arguments, lists are `a, b` or `[...]`, one value is a one-item list. The result is the plain
`config` dict that the generated train.py holds (`CONFIG = {...}`), plus the model values named
by `unfreeze(...)`, which emission maps to submodule names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import ast as A
from . import ir
from .diagnostics import CompileError, Diagnostic, error, suggest

REQ = object()  # marks a required argument

# call-valued settings: option -> argument -> (type, default); positional order is the order here
CALLS: dict[str, dict[str, dict[str, tuple[str, Any]]]] = {
    "data": {
        "csv": {"path": ("str", REQ), "target": ("str", REQ)},
        "npz": {"path": ("str", REQ)},
        "sklearn": {"name": ("str", REQ)},
        "text": {"path": ("str", REQ), "vocab": ("choice:char,byte", "char")},
    },
    "loss": {
        "cross_entropy": {"weight": ("floats", None), "label_smoothing": ("float", 0.0)},
        "bce_with_logits": {"pos_weight": ("floats", None)},
        "mse": {},
        "l1": {},
        "huber": {"delta": ("float", 1.0)},
    },
    "optimizer": {
        "sgd": {"lr": ("float", 0.01), "momentum": ("float", 0.0), "weight_decay": ("float", 0.0),
                "nesterov": ("bool", False)},
        "adam": {"lr": ("float", 1e-3), "weight_decay": ("float", 0.0), "betas": ("floats", None)},
        "adamw": {"lr": ("float", 1e-3), "weight_decay": ("float", 0.01), "betas": ("floats", None)},
        "rmsprop": {"lr": ("float", 0.01), "momentum": ("float", 0.0), "weight_decay": ("float", 0.0),
                    "alpha": ("float", 0.99)},
    },
    "scheduler": {
        "step": {"step_size": ("int", REQ), "gamma": ("float", 0.1)},
        "cosine": {"T_max": ("int", None), "eta_min": ("float", 0.0)},
        "onecycle": {"max_lr": ("float", REQ), "pct_start": ("float", 0.3)},
        "plateau": {"factor": ("float", 0.1), "patience": ("natural", 10), "monitor": ("str", "valid_loss")},
    },
    "callbacks": {
        "early_stopping": {"monitor": ("str", "valid_loss"), "patience": ("int", 5), "mode": ("str", "auto"),
                           "restore_best": ("bool", True)},
        "checkpoint": {"every": ("int", 1), "monitor": ("str", "valid_loss")},
        "unfreeze": {"target": ("value", REQ), "epoch": ("int", REQ)},
        "history": {},
        "progress": {},
    },
}
# data sources may also stand where a validation or test split goes
CALLS["valid"] = CALLS["test"] = CALLS["data"]

METRICS = {
    "accuracy": "classification",
    "balanced_accuracy": "classification",
    "f1": "classification",
    "auroc": "classification",
    "mse": "regression",
    "rmse": "regression",
    "mae": "regression",
    "r2": "regression",
}

# scalar settings: key -> (type, default)
SCALARS: dict[str, tuple[str, Any]] = {
    "task": ("choice:classification,regression,next_token", "classification"),
    "epochs": ("int", 10),
    "batch_size": ("int", 32),
    "seed": ("int", 0),
    "device": ("choice:auto,cpu,cuda,mps", "auto"),
    "precision": ("choice:fp32,bf16,fp16", "fp32"),  # autocast; fp16 scales gradients on CUDA
    "accumulate": ("int", 1),  # batches per optimizer step
    "compile": ("bool", False),  # torch.compile
    "head": ("value", None),  # the output that trains, of a model with several (default: the first)
    "context": ("int", None),  # next_token: tokens per training example
    "deterministic": ("bool", False),
    "drop_last": ("bool", False),
    "grad_clip": ("float", None),
    "num_workers": ("int", 0),
    "standardize": ("bool", True),
}
LISTS = ("metrics", "callbacks")


@dataclass
class TrainPlan:
    span: A.Span
    model: str
    config: dict[str, Any]  # `unfreeze` targets are model value names until emission maps them
    # where each key was written: the span of its first value (for diagnostics that check the
    # section against the model or the data); keys left to their defaults are absent
    spans: dict[str, A.Span] = field(default_factory=dict)


def plan(program: ir.Program) -> tuple[list[TrainPlan], list[Diagnostic]]:
    """Check every `train` section; raises `CompileError` on errors."""
    diags: list[Diagnostic] = []
    plans = [_plan(t, program, diags) for t in program.trains]
    if any(d.is_error for d in diags):
        raise CompileError(diags)
    return plans, diags


def _err(diags: list[Diagnostic], span: A.Span, message: str, hint: str | None = None) -> None:
    diags.append(error(span, "E041", message, hint))


def _plan(t: ir.TrainDef, program: ir.Program, diags: list[Diagnostic]) -> TrainPlan:
    model = next(g for g in program.models if g.name == t.model)
    items = {item.key: item for item in t.items}
    task_item = items.get("task")
    task = "classification"
    if task_item is not None and len(task_item.values) == 1 and isinstance(task_item.values[0], A.Name):
        task = task_item.values[0].id
    config: dict[str, Any] = {
        "data": None,
        "task": task,
        "loss": {"name": "mse" if task == "regression" else "cross_entropy"},
        "optimizer": {"name": "adam", "lr": 1e-3},
        "scheduler": None,
        "epochs": 10,
        "batch_size": 32,
        "valid": 0.2,
        "test": None,
        "metrics": {"classification": ["accuracy"], "regression": ["r2"]}.get(task, []),
        "callbacks": [],
    }
    for key, (_, default) in SCALARS.items():
        config.setdefault(key, default)
    result = TrainPlan(t.span, t.model, config)
    for item in t.items:
        values = _flatten(item.values)
        key = item.key
        result.spans[key] = values[0].span if values else item.span
        if key in LISTS:
            config[key] = [v for v in (_list_item(key, v, model, diags, task) for v in values) if v is not None]
            continue
        if len(values) != 1:
            _err(diags, item.span, f"`{key}` takes one value, not {len(values)}",
                 "only `metrics` and `callbacks` take lists")
            continue
        value = values[0]
        if key in ("valid", "test") and isinstance(value, A.Number):
            if not 0 < value.value < 1:
                _err(diags, value.span, f"`{key}` as a fraction must be between 0 and 1, not {value.text}")
            config[key] = float(value.value)
        elif key in CALLS:
            config[key] = _call(key, value, diags)
        else:
            config[key] = _scalar(key, SCALARS[key][0], value, diags)
    if config["data"] is None:
        _err(diags, t.span, "`train` needs a `data` source",
             'for example `data: csv("train.csv", target="label")` or `data: sklearn("digits")`')
    return result


def _flatten(values: tuple[A.Expr, ...]) -> list[A.Expr]:
    if len(values) == 1 and isinstance(values[0], A.ListExpr):
        return list(values[0].items)
    return list(values)


def _list_item(key: str, value: A.Expr, model: ir.Graph, diags: list[Diagnostic], task: str) -> Any:
    if key == "metrics":
        if not isinstance(value, A.Name):
            _err(diags, value.span, "a metric is a name such as `accuracy`")
            return None
        if value.id not in METRICS:
            _err(diags, value.span, f"unknown metric `{value.id}`",
                 suggest(value.id, METRICS) or f"metrics: {', '.join(METRICS)}")
            return None
        if task in ("classification", "regression") and METRICS[value.id] != task:
            _err(diags, value.span, f"`{value.id}` is a {METRICS[value.id]} metric, but the task is {task}")
            return None
        return value.id
    cb = _call("callbacks", value, diags)
    # without a target (`unfreeze(epoch=1)`, reported already) there is nothing to look up
    if cb is not None and cb["name"] == "unfreeze" and cb.get("target") is not None:
        target = cb["target"]
        producers = [n for n in model.nodes if target in n.outputs or n.target == target]
        if not any(n.frozen for n in producers):
            where = "is not a value of" if not producers else "is not frozen in"
            _err(diags, value.span, f"`unfreeze({target})`: `{target}` {where} model `{model.name}`",
                 "unfreeze names a value made by a `frozen` op or block, e.g. `enc = x >> frozen encoder(64)`")
            return None
    return cb


def _call(key: str, value: A.Expr, diags: list[Diagnostic]) -> dict[str, Any] | None:
    options = CALLS[key]
    if isinstance(value, A.Name):
        name, args = value.id, ()
    elif isinstance(value, A.Call):
        name, args = value.name, value.args
    else:
        _err(diags, value.span, f"`{key}` takes one of {', '.join(f'`{o}`' for o in options)}")
        return None
    span = value.span if isinstance(value, A.Name) else value.name_span
    if name not in options:
        _err(diags, span, f"unknown `{key}` option `{name}`",
             suggest(name, options) or f"choose one of {', '.join(f'`{o}`' for o in options)}")
        return None
    schema = options[name]
    out: dict[str, Any] = {"kind" if key in ("data", "valid", "test") else "name": name}
    order = list(schema)
    given: set[str] = set()
    for i, arg in enumerate(args):
        pname = arg.name if arg.name is not None else (order[i] if i < len(order) else None)
        if pname is None:
            _err(diags, arg.span, f"`{name}` takes at most {len(order)} argument{'s' if len(order) != 1 else ''}")
            continue
        if pname not in schema:
            _err(diags, arg.name_span or arg.span, f"`{name}` has no argument `{pname}`",
                 suggest(pname, schema) or (f"its arguments: {', '.join(order)}" if order else "it takes none"))
            continue
        if pname in given:
            _err(diags, arg.span, f"`{pname}` of `{name}` is given twice")
            continue
        given.add(pname)
        out[pname] = _scalar(pname, schema[pname][0], arg.value, diags)
    for pname, (_, default) in schema.items():
        if pname in given:
            continue
        if default is REQ:
            _err(diags, span, f"`{name}` needs `{pname}`", f"for example `{name}({pname}=...)`")
        elif default is not None:
            out[pname] = default
    return out


def _scalar(key: str, kind: str, value: A.Expr, diags: list[Diagnostic]) -> Any:
    if kind == "value":
        if isinstance(value, A.Name):
            return value.id
        _err(diags, value.span, f"`{key}` names a value of the model")
        return None
    if kind.startswith("choice:"):
        choices = kind[len("choice:"):].split(",")
        text = value.id if isinstance(value, A.Name) else value.value if isinstance(value, A.String) else None
        if text not in choices:
            _err(diags, value.span, f"`{key}` must be one of {', '.join(f'`{c}`' for c in choices)}",
                 suggest(str(text), choices) if text is not None else None)
            return None
        return text
    if kind == "floats":
        items = value.items if isinstance(value, A.ListExpr) else (value,)
        out = [_scalar(key, "float", i, diags) for i in items]
        return out if len(out) != 1 or isinstance(value, A.ListExpr) else out[0]
    if kind == "bool":
        if isinstance(value, A.Bool):
            return value.value
    elif kind == "str":
        if isinstance(value, A.String):
            return value.value
    elif kind in ("int", "natural"):
        if isinstance(value, A.Number) and isinstance(value.value, int):
            if value.value < (0 if key == "seed" or kind == "natural" else 1) and key not in ("num_workers",):
                _err(diags, value.span, f"`{key}` must be positive, not {value.text}")
            return value.value
    elif kind == "float":
        if isinstance(value, A.Number):
            return float(value.value)
    want = {"bool": "`true` or `false`", "str": "a string", "int": "an integer", "natural": "an integer",
            "float": "a number"}[kind]
    _err(diags, value.span, f"`{key}` must be {want}")
    return None
