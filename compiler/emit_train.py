"""Emit stage for training: checked `train` sections -> train.py (one per section) and train_utils.py.

train.py is the training loop itself, written for its section: the data source, loss,
optimizer, scheduler, metrics and callbacks the section names, and nothing it cannot reach
(no other data reader, metric or callback). Settings are a table of flags with their help.
train_utils.py holds the helpers the scripts use, copied from the tested library in
`runtime/vendored/` by `vendor.py` (only the definitions used, and what they use).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from typing import Any

from .emit import ClassView, _doc_text, _environment, emit_views, format_code, header_line
from .shapes import Checked, GraphShapes
from .train import TrainPlan
from .train_checks import DEFAULT_CONTEXT
from .vendor import vendor

UTILS = "train_utils.py"
# metrics where a lower figure is better; the rest (accuracy, f1, r2, ...) are better higher
LOWER_IS_BETTER = {"loss", "mse", "rmse", "mae"}
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}


def emit_training(checked: Checked, plans: list[TrainPlan], source_name: str, out_dir: str) -> dict[str, str]:
    """{file name: text}: train.py (train_<Model>.py for further sections) and train_utils.py."""
    views = emit_views(checked, os.path.basename(source_name))[len(checked.classes):]
    files: dict[str, str] = {}
    used: set[str] = set()
    for plan in plans:
        index = next(i for i, s in enumerate(checked.models) if s.graph.name == plan.model)
        name = "train.py" if plan is plans[0] else f"train_{plan.model}.py"
        text, names = _script(checked.program, checked.models[index], views[index], plan, source_name, out_dir)
        files[name] = text
        used |= names
    imported, body = vendor(used)
    for name, text in files.items():
        files[name] = format_code(text.replace("__UTILS__", ", ".join(_imported(text, imported))))
    doc = (f'"""Helpers of the training script{"s" if len(plans) > 1 else ""} beside this file: '
           "only what they use.\n\nThe standard library and torch; numpy and scikit-learn only "
           'inside the functions of\nthe data sources that need them.\n"""')
    files[UTILS] = format_code(f"{header_line(os.path.basename(source_name))}\n{doc}\n\n{body}")
    return files


def _imported(text: str, library: list[str]) -> list[str]:
    tree = ast.parse(text.replace("__UTILS__", "_"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return [n for n in library if n in names]


@dataclass
class _Settings:
    rows: list[tuple[str, str, str, str]]

    def add(self, name: str, kind: str, default: Any, help_: str) -> str:
        self.rows.append((repr(name), kind, repr(default), repr(help_)))
        return f'cfg["{name}"]'


def _script(program, shapes: GraphShapes, view: ClassView, plan: TrainPlan, source_name: str, out_dir: str) -> tuple[str, set[str]]:
    c = plan.config
    graph = shapes.graph
    task = c["task"]
    source = os.path.basename(source_name)
    s = _Settings([])
    model_args = []
    data_sizes = False
    for name in shapes.required:  # an input width the program leaves to the data (`x_features`)
        arg = view.init_names[name]
        ref = s.add(f"model.{name}", "positive", None, f"{view.name}({arg}=...); None: from the data")
        model_args.append(f"{arg}={ref} or {_data_size(_sized_by(shapes, name))}")
        data_sizes = True
    for p in graph.params:
        value = shapes.param_values.get(p.name)
        arg = view.init_names[p.name]
        kind = {bool: "flag", int: "positive", float: "number"}.get(type(value), "str")
        sized = _sized_by(shapes, p.name)
        if p.name in shapes.required or (task == "next_token" and sized == "vocab"):
            data_sizes = True
            what = "the data's vocabulary" if sized == "vocab" else "the data"
            ref = s.add(f"model.{p.name}", kind, None, f"{view.name}({arg}=...); None: from {what}")
            model_args.append(f"{arg}={ref} or {_data_size(sized)}")
            continue
        if kind == "positive" and not _must_be_positive(program, p.name):
            kind = "natural"
        model_args.append(f"{arg}={s.add(f'model.{p.name}', kind, value, f'{view.name}({arg}=...)')}")
    data = c["data"]
    data_key = "data"
    if task == "next_token":
        s.add("context", "positive", c.get("context") or DEFAULT_CONTEXT, "tokens per training example")
    if data["kind"] == "sklearn":
        s.add("data", "str", data["name"], "scikit-learn data set")
        paths = []
    else:
        s.add("data", "str", _relocate(data["path"], source_name, out_dir), f"the {data['kind']} file to train on")
        paths = ["data"]
    fraction_parts, source_parts = [], []
    for part, offset in (("test", 1), ("valid", 0)):
        spec = c.get(part)
        if isinstance(spec, float):
            s.add(part, "fraction", spec, f"share of the data held out for {'testing' if part == 'test' else 'validation'}")
            fraction_parts.append((part, offset))
        elif isinstance(spec, dict):
            s.add(part, "str", _relocate(spec.get("path", ""), source_name, out_dir), f"the {part} file")
            paths.append(part)
            source_parts.append(part)
    s.add("epochs", "positive", c["epochs"], "passes over the training data")
    s.add("batch_size", "positive", c["batch_size"], "examples per batch")
    s.add("accumulate", "positive", c.get("accumulate", 1), "batches per optimizer step")
    optimizer_settings: list[tuple[str, str]] = []
    optimizer = _optimizer(c["optimizer"], s, optimizer_settings)
    scheduler, per_batch, on_monitor = _scheduler(c["scheduler"], s)
    loss = _loss(c["loss"], s)
    monitor = "valid_loss"
    early = next((cb for cb in c["callbacks"] if cb["name"] == "early_stopping"), None)
    checkpoint = next((cb for cb in c["callbacks"] if cb["name"] == "checkpoint"), None)
    if early is not None:
        monitor = early.get("monitor", monitor)
        s.add("early_stopping.patience", "positive", early["patience"], f"epochs without a better {monitor}")
    elif checkpoint is not None:
        monitor = checkpoint.get("monitor", monitor)
    s.add("checkpoint.every", "positive", checkpoint["every"] if checkpoint else 1, "write last.pt every N epochs")
    unfreeze = []
    for cb in c["callbacks"]:
        if cb["name"] == "unfreeze":
            attrs = _unfreeze_targets(cb, shapes, view)
            setting = f"unfreeze.{cb['target']}.epoch"
            s.add(setting, "positive", cb["epoch"], f"the epoch from which {cb['target']} trains")
            unfreeze.append((attrs, setting))
    s.add("grad_clip", "optional_number", c["grad_clip"], "max gradient norm, or none")
    s.add("precision", repr(("fp32", "bf16", "fp16")), c.get("precision", "fp32"), "autocast precision")
    s.add("compile", "flag", c.get("compile", False), "torch.compile the model")
    floating = [shapes.types[i.name].dtype.startswith("float") for i in graph.inputs]
    if any(floating):
        s.add("standardize", "flag", c["standardize"], "standardise float inputs")
    s.add("drop_last", "flag", c["drop_last"], "drop an incomplete last batch")
    s.add("deterministic", "flag", c["deterministic"], "deterministic algorithms only")
    s.add("seed", "natural", c["seed"], "seeds split, order and weights")
    s.add("device", "str", c["device"], "auto (CUDA, MPS, CPU), cpu, cuda:N, mps")
    s.add("out_dir", "str", "runs", "folder of the run folders")
    paths.append("out_dir")
    metrics = list(c["metrics"])
    head = ""
    if len(graph.outputs) > 1:
        name = c.get("head") or graph.outputs[0]
        head = f"[{graph.outputs.index(name)}]  # {name}, one of the outputs"
    inputs = "{" + ", ".join(f"{i.name!r}: torch.{_torch_dtype(shapes.types[i.name].dtype)}" for i in graph.inputs) + "}"
    figure = monitor.split("_", 1)[1] if "_" in monitor else monitor
    context = {
        "header": header_line(source),
        "model_class": view.name,
        "source": _doc_text(source),  # in the docstring
        "out_dir": "runs",
        "task": task,
        "predict_example": "new.csv" if data["kind"] != "npz" else "new.npz",
        "uses_functional": c["loss"]["name"] == "bce_with_logits",
        "utils_imports": "__UTILS__",
        "settings": s.rows,
        "paths": repr(tuple(paths)),
        "inputs": inputs,
        "monitor": repr(monitor),
        "higher": figure not in LOWER_IS_BETTER,
        "commands": repr(("train", "evaluate", "predict" if task != "next_token" else "sample", "lr_find")),
        "read_data": _read_data(data, task, graph),
        "read_inputs": _read_inputs(data["kind"]),
        "fraction_parts": repr(tuple(fraction_parts)),
        "source_parts": source_parts,
        "floating_inputs": [f and task != "next_token" for f in floating],
        "data_sizes": data_sizes,
        "model_args": ", ".join(model_args),
        "optimizer": optimizer,
        "optimizer_settings": repr(tuple(optimizer_settings)),
        "head": head,
        "loss_of": _loss_of(c["loss"]["name"], task),
        "metrics": metrics,
        "scheduler": scheduler,
        "scheduler_per_batch": per_batch,
        "scheduler_on_monitor": on_monitor,
        # a resumed run's schedule spans this run's epochs, not the checkpoint's
        "scheduler_length": {"onecycle": ("total_steps", "_schedule_phases"), "cosine": ("T_max",)}.get(
            (c["scheduler"] or {}).get("name"), ()),
        "loss": loss,
        "early_stopping": early is not None,
        "unfreeze": unfreeze,
        "batchnorm": any(n.op.startswith("batchnorm") for n in _all_nodes(graph)),
        "checkpoint_every": "checkpoint.every",
        "test_part": bool(c.get("test")),
        "predict_doc": _predict_doc(task, c["loss"]["name"]),
        "predict_needs": "a csv file with the training data's columns" if data["kind"] != "npz"
        else "an npz file with the training data's arrays",
        "prediction_rows": _prediction_rows(task, c["loss"]["name"]),
        "last_command": '"sample": sample' if task == "next_token" else '"predict": predict',
        "sample": SAMPLE,
    }
    text = _environment().get_template("train.py.j2").render(**context)
    tree = ast.parse(text.replace("__UTILS__", "_"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {row[1] for row in s.rows if row[1].isidentifier()} | set(metrics) | {"SettingError"}
    return text, names


def _all_nodes(graph):
    for node in graph.nodes:
        yield node
        body = getattr(node, "body", None)
        if body is not None:
            yield from _all_nodes(body)


def _torch_dtype(dtype: str) -> str:
    return dtype if dtype in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool") else "float32"


def _sized_by(shapes: GraphShapes, param: str) -> str | None:
    """How the data sizes model parameter `param`: "vocab" (the trained output's last dimension,
    for next-token training), "input:I:D" (dimension D of input I), or None."""
    out = shapes.types.get(shapes.graph.outputs[0])
    if out is not None and out.dims and _is_param(out.dims[-1].size, param):
        return "vocab"
    for i, inp in enumerate(shapes.graph.inputs):
        for d, dim in enumerate(shapes.types[inp.name].dims[1:]):
            if _is_param(dim.size, param):
                return f"input:{i}:{d}"
    return None


def _is_param(size: Any, param: str) -> bool:
    return size is not None and getattr(size, "tree", None) == ("p", param)


def _data_size(sized: str | None) -> str:
    if sized == "vocab":
        return 'len(info["vocabulary"])'
    if sized and sized.startswith("input:"):
        _, i, d = sized.split(":")
        return f'info["sizes"][{i}][{d}]'
    return "None"


def _must_be_positive(program, param: str) -> bool:
    """Whether the checker refuses 0 for this integer parameter (a width; a repeat count may be 0)."""
    from .diagnostics import CompileError
    from .shapes import check as check_shapes

    try:
        check_shapes(program, [(param, 0)])
    except CompileError:
        return True
    return False


def _relocate(path: str, source_name: str, out_dir: str) -> str:
    """A data path written relative to the .tg file, made relative to train.py's folder."""
    if not path or os.path.isabs(path):
        return path
    absolute = os.path.join(os.path.dirname(os.path.abspath(source_name)), path)
    return os.path.relpath(absolute, os.path.abspath(out_dir)).replace(os.sep, "/")


def _unfreeze_targets(cb: dict[str, Any], shapes: GraphShapes, view: ClassView) -> list[str]:
    """`unfreeze(enc)` names a model value; the loop needs the frozen submodules behind it."""
    value = cb["target"]
    return [view.node_attrs[i] for i, node in enumerate(shapes.graph.nodes)
            if node.frozen and (node.target == value or value in node.outputs) and i in view.node_attrs]


def _optimizer(spec: dict, s: _Settings, pairs: list[tuple[str, str]]) -> str:
    """The optimizer's construction; `pairs` gets (setting, param-group key) of its flags."""
    name = spec["name"]
    args = [f'lr={s.add("lr", "positive_number", spec["lr"], f"learning rate of {OPTIMIZERS[name]}")}']
    pairs.append(("lr", "lr"))
    for key in ("momentum", "weight_decay", "alpha"):
        if key in spec:
            args.append(f'{key}={s.add(f"optimizer.{key}", "number", spec[key], f"{OPTIMIZERS[name]} {key}")}')
            pairs.append((f"optimizer.{key}", key))
    if spec.get("betas") is not None:
        args.append(f"betas={tuple(spec['betas'])!r}")
    if spec.get("nesterov"):
        args.append("nesterov=True")
    return f"torch.optim.{OPTIMIZERS[name]}(\n        model.parameters(), {', '.join(args)}\n    )"


def _scheduler(spec: dict | None, s: _Settings) -> tuple[str, bool, str]:
    """(code, steps per batch, the figure it steps on: plateau's monitor, else "")."""
    if spec is None:
        return "", False, ""
    name, sched = spec["name"], "torch.optim.lr_scheduler"
    if name == "onecycle":
        max_lr = s.add("scheduler.max_lr", "positive_number", spec["max_lr"], "OneCycleLR's peak learning rate")
        pct = s.add("scheduler.pct_start", "fraction", spec["pct_start"], "OneCycleLR's share of steps warming up")
        return (f"{sched}.OneCycleLR(\n        optimizer, max_lr={max_lr}, total_steps=steps, pct_start={pct}\n    )",
                True, "")
    if name == "step":
        size = s.add("scheduler.step_size", "positive", spec["step_size"], "StepLR: epochs between decays")
        gamma = s.add("scheduler.gamma", "positive_number", spec["gamma"], "StepLR: factor of each decay")
        return f"{sched}.StepLR(optimizer, step_size={size}, gamma={gamma})", False, ""
    if name == "cosine":
        t_max = spec.get("T_max")
        t = s.add("scheduler.T_max", "positive", t_max, "CosineAnnealingLR's period in epochs (None: the epochs)")
        eta = s.add("scheduler.eta_min", "number", spec["eta_min"], "CosineAnnealingLR's lowest learning rate")
        return f'{sched}.CosineAnnealingLR(optimizer, T_max={t} or cfg["epochs"], eta_min={eta})', False, ""
    factor = s.add("scheduler.factor", "positive_number", spec["factor"], "ReduceLROnPlateau's factor")
    patience = s.add("scheduler.patience", "natural", spec["patience"], "ReduceLROnPlateau's patience in epochs")
    monitor = spec.get("monitor", "valid_loss")
    mode = "max" if monitor.split("_", 1)[-1] not in LOWER_IS_BETTER else "min"
    return (f'{sched}.ReduceLROnPlateau(\n        optimizer, mode="{mode}", factor={factor}, patience={patience}\n    )',
            False, monitor)


def _loss(spec: dict, s: _Settings) -> str:
    name = spec["name"]
    if name == "cross_entropy":
        args = [f'label_smoothing={s.add("loss.label_smoothing", "number", spec.get("label_smoothing", 0.0), "CrossEntropyLoss label smoothing")}']
        if spec.get("weight") is not None:
            args.append(f"weight=torch.tensor({list(spec['weight'])!r}, device=device)")
        return f"nn.CrossEntropyLoss({', '.join(args)})"
    if name == "bce_with_logits":
        pw = spec.get("pos_weight")
        return f"nn.BCEWithLogitsLoss(pos_weight={'None' if pw is None else f'torch.tensor({pw!r}, device=device)'})"
    if name == "huber":
        return f'nn.HuberLoss(delta={s.add("loss.delta", "positive_number", spec["delta"], "HuberLoss delta")})'
    return {"mse": "nn.MSELoss()", "l1": "nn.L1Loss()"}[name]


def _loss_of(name: str, task: str) -> str:
    doc = "def loss_of(loss_fn: nn.Module, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:\n"
    if task == "next_token":
        return doc + '    """Next-token cross entropy: every position predicts the token after it."""\n' \
                     "    return loss_fn(out.float().flatten(0, 1), targets.flatten())"
    if name == "cross_entropy":
        return doc + '    """Cross entropy of class scores [n, classes] against class indices [n]."""\n' \
                     "    return loss_fn(out.float(), targets)"
    if name == "bce_with_logits":
        return doc + ('    """One logit per example (two classes) or one per class (one-vs-rest)."""\n'
                      "    out = out.float()\n"
                      "    if out.dim() == targets.dim() + 1 and out.shape[-1] == 1:\n"
                      "        out = out.squeeze(-1)\n"
                      "    if out.dim() == targets.dim() + 1:\n"
                      "        targets = F.one_hot(targets, out.shape[-1])\n"
                      "    return loss_fn(out, targets.to(out.dtype))")
    return doc + '    """The regression loss, the output shaped like the targets ([n, 1] against [n])."""\n' \
                 "    return loss_fn(out.float().reshape(targets.shape), targets)"


def _read_data(data: dict, task: str, graph) -> str:
    kind = data["kind"]
    sig = "def read_data(source: str, reference: dict | None, cfg: dict) -> tuple:\n"
    if kind == "text":
        vocabulary = "None  # UTF-8 bytes" if data.get("vocab") == "byte" else "sorted(set(text))"
        return (sig + '    """A text file as windows of `context` token ids and the same shifted by one, and its\n'
                '    vocabulary (`reference`: the training text\'s)."""\n'
                "    text = read_text(source)\n"
                f'    vocabulary = reference["vocabulary"] if reference else {vocabulary}\n'
                '    x, y = text_windows(text_ids(text, vocabulary, source), cfg[\"context\"], source)\n'
                '    return [x], y, {"vocabulary": vocabulary}')
    if kind == "sklearn":
        labels = ("    targets, label_map, classes = sklearn_labels(bunch)\n" if task == "classification" else
                  '    targets, label_map, classes = array_targets(bunch.target, len(bunch.target), f"sklearn({source!r})"), None, None\n')
        return (sig + '    """scikit-learn\'s data set `source`: inputs, targets, feature and class names."""\n'
                f'    bunch = load_sklearn(source, "{task}")\n'
                f'    x = array_input(bunch.data, f"sklearn({{source!r}})")\n'
                f'    inputs = [as_input(x, INPUTS["{graph.inputs[0].name}"], "{graph.inputs[0].name}")]\n'
                + labels +
                f'    columns = {{"{graph.inputs[0].name}": [str(c) for c in bunch.feature_names]}}\n'
                '    return inputs, targets, dict(columns=columns, label_map=label_map, classes=classes)')
    if kind == "csv":
        target = data["target"]
        targets = [target] if isinstance(target, str) else list(target)
        if task == "classification":
            labels = f"    targets, label_map, classes = csv_labels(source, header, rows, lines, {target!r}, reference)\n"
        else:
            squeeze = "[:, 0]" if isinstance(target, str) else ""
            labels = (f'    targets = csv_columns(source, header, rows, lines, {targets!r}, "regression targets"){squeeze}\n'
                      "    label_map, classes = None, None\n")
        return (sig + '    """A csv file\'s inputs and targets, its columns and labels (`reference`: the training\n'
                '    file\'s, which a validation file must match)."""\n'
                "    header, rows, lines = read_csv(source)\n"
                f"    columns = reference[\"columns\"] if reference else input_columns(source, header, {targets!r}, list(INPUTS))\n"
                "    inputs = csv_inputs(source, header, rows, lines, columns, INPUTS)\n"
                + labels +
                '    return inputs, targets, dict(columns=columns, label_map=label_map, classes=classes)')
    labels = ('    targets, label_map, classes = array_labels(npz_array(arrays, source, "y"), len(inputs[0]), f"{source}: y", reference)\n'
              if task == "classification" else
              '    targets, label_map, classes = array_targets(npz_array(arrays, source, "y"), len(inputs[0]), f"{source}: y"), None, None\n')
    return (sig + '    """An npz file\'s inputs (arrays named after the inputs; one input: or X) and targets (y)."""\n'
            "    arrays = open_npz(source)\n"
            "    inputs = npz_inputs(arrays, source, INPUTS)\n"
            + labels +
            '    return inputs, targets, dict(columns=None, label_map=label_map, classes=classes)')


def _read_inputs(kind: str) -> str:
    sig = "def read_inputs(path: str, info: dict) -> list:\n"
    if kind == "npz":
        return sig + '    """The inputs in an npz file, arrays named like the training data\'s."""\n' \
                     "    return npz_inputs(open_npz(path), path, INPUTS)"
    return sig + ('    """The inputs in a csv file with the training data\'s columns (and others)."""\n'
                  "    header, rows, lines = read_csv(path)\n"
                  '    return csv_inputs(path, header, rows, lines, info["columns"], INPUTS)')


def _predict_doc(task: str, loss: str) -> str:
    if task == "regression":
        return "predictions.csv: the model's values for each row of --data."
    return "predictions.csv: each row's likeliest label and all labels' probabilities."


def _prediction_rows(task: str, loss: str) -> str:
    if task == "regression":
        return ('values = out.reshape(len(out), -1).double()\n'
                'header = ["prediction"] if values.shape[1] == 1 else [f"prediction_{i}" for i in range(values.shape[1])]\n'
                "rows = [[repr(v) for v in row] for row in values.tolist()]")
    probs = ("torch.softmax(out.double(), dim=1)" if loss == "cross_entropy" else
             "torch.sigmoid(out.double()).reshape(len(out), -1)")
    lines = [f"probs = {probs}"]
    if loss == "bce_with_logits":
        lines.append("probs = torch.cat([1 - probs, probs], dim=1) if probs.shape[1] == 1 else probs")
    lines += ['labels = info["label_map"] or list(range(probs.shape[1]))',
              'header = ["prediction"] + [f"prob_{label}" for label in labels]',
              "best = probs.argmax(dim=1).tolist()",
              'rows = [[labels[b]] + [f"{v:.6g}" for v in p] for b, p in zip(best, probs.tolist())]']
    return "\n".join(lines)


SAMPLE = '''@torch.no_grad()
def sample(options: dict, cfg: dict, given: dict) -> int:
    """Prints --prompt continued by --tokens tokens drawn from the model (newest best.pt)."""
    state = load_checkpoint(options["checkpoint"] or latest_checkpoint(cfg["out_dir"]))
    cfg, vocabulary = state["cfg"], state["data"]["vocabulary"]
    device = pick_device(cfg["device"])
    model, _ = build(cfg, state["data"], device)
    model.load_state_dict(state["model"])
    model.eval()
    ids = text_ids(options["prompt"], vocabulary, "--prompt")[None].to(device)
    for _ in range(options["tokens"]):
        logits = outputs(model, [ids[:, -cfg["context"] :]], cfg, device)[:, -1].float()
        logits = logits / options["temperature"]
        if options["top_k"]:
            kth = torch.topk(logits, min(options["top_k"], logits.shape[-1])).values[:, -1:]
            logits[logits < kth] = -math.inf
        ids = torch.cat([ids, torch.multinomial(torch.softmax(logits, dim=-1), 1)], dim=1)
    print(text_of(ids[0].tolist(), vocabulary))
    return 0'''
