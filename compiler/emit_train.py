"""Emit stage for training: a checked `train` section -> train.py, and the vendored runtime.

train.py holds only what is specific to the model (its class, the `CONFIG` dict with a comment
per setting); the generic machinery is real, tested Python in `runtime/` (data.py, metrics.py,
training.py), concatenated into one `tgc_runtime.py` that imports only the standard library and
torch (numpy, scikit-learn and tqdm only inside the functions that need them).
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Any

from tgc import __version__

from .emit import _comment_text, _doc_text, _environment, emit_views, format_code
from .shapes import Checked
from .train import TrainPlan

RUNTIME_MODULES = ("data.py", "metrics.py", "training.py")
VENDORED_IMPORT = "# tgc: vendored-import"

COMMENTS = {
    "model": "constructor arguments of the model (--model.NAME VALUE)",
    "data": "where the examples come from",
    "task": "classification or regression",
    "loss": "what training minimises",
    "optimizer": "--lr overrides optimizer.lr",
    "scheduler": "learning-rate schedule (None: constant)",
    "epochs": "passes over the training data",
    "batch_size": "examples per step",
    "valid": "held-out fraction, or a second data source",
    "test": "optional test split, reported at the end",
    "metrics": "reported per epoch, on training and validation data",
    "callbacks": "early stopping, checkpoints, unfreezing, ...",
    "seed": "seeds data order, splits and initial weights",
    "device": "auto, cpu or cuda",
    "deterministic": "torch.use_deterministic_algorithms",
    "drop_last": "drop an incomplete last batch",
    "grad_clip": "max gradient norm (None: no clipping)",
    "num_workers": "unused: data stays in memory",
    "standardize": "standardise features with training statistics",
    "out_dir": "checkpoints and history, relative to this file",
    "input_sizes": "constructor arguments filled from the data's feature count",
}


def emit_train(checked: Checked, plan: TrainPlan, source_name: str, out_dir: str,
               model_module: str = "model") -> str:
    """train.py for one `train` section; `out_dir` is the folder train.py is written to."""
    views = emit_views(checked, os.path.basename(source_name))
    models = views[len(checked.classes):]
    index = next(i for i, s in enumerate(checked.models) if s.graph.name == plan.model)
    shapes, view = checked.models[index], models[index]
    config: dict[str, Any] = {"model": {view.init_names[p.name]: shapes.param_values[p.name]
                                        for p in shapes.graph.params}}
    if shapes.required:
        config["input_sizes"] = {view.init_names[w]: "n_features" for w in shapes.required}
    for key, value in plan.config.items():
        config[key] = value
    config["data"] = _relocate(config["data"], source_name, out_dir)
    for key in ("valid", "test"):
        if isinstance(config.get(key), dict):
            config[key] = _relocate(config[key], source_name, out_dir)
    config["callbacks"] = [_unfreeze_targets(cb, shapes, view) for cb in config["callbacks"]]
    config.setdefault("out_dir", "runs")
    source = _comment_text(os.path.basename(source_name))
    text = _environment().get_template("train.py.j2").render(
        model_class=view.name,
        model_module=model_module,
        version=__version__,
        source=_doc_text(source),
        script=_doc_text(os.path.join(out_dir, "train.py")),
        out_dir=_doc_text(os.path.join(out_dir, "runs")),
        config=[(repr(k), repr(v), COMMENTS.get(k, "")) for k, v in config.items()],
    )
    return format_code(text)


def _relocate(spec: Any, source_name: str, out_dir: str) -> Any:
    """A data path written relative to the .tg file, made relative to train.py's folder."""
    if not isinstance(spec, dict) or "path" not in spec or os.path.isabs(spec["path"]):
        return spec
    absolute = os.path.join(os.path.dirname(os.path.abspath(source_name)), spec["path"])
    return {**spec, "path": os.path.relpath(absolute, os.path.abspath(out_dir)).replace(os.sep, "/")}


def _unfreeze_targets(cb: dict[str, Any], shapes, view) -> dict[str, Any]:
    """`unfreeze(enc)` names a model value; the runtime needs the frozen submodules behind it."""
    if cb.get("name") != "unfreeze":
        return cb
    value = cb["target"]
    attrs = [view.node_attrs[i] for i, node in enumerate(shapes.graph.nodes)
             if node.frozen and (node.target == value or value in node.outputs) and i in view.node_attrs]
    return {**cb, "target": attrs}


def vendor_runtime() -> str:
    """The training runtime as one standalone file (tgc_runtime.py)."""
    parts = [
        f'"""Training runtime vendored by tgc {__version__}: the fit loop, callbacks, metrics and data\n'
        "loading that train.py uses. Standalone: the standard library and torch (numpy, scikit-learn\n"
        'and tqdm are imported only where a data source or feature needs them). Do not edit."""\n'
    ]
    package = resources.files("tgc.runtime.vendored")
    for name in RUNTIME_MODULES:
        text = package.joinpath(name).read_text(encoding="utf-8")
        lines = [line for line in text.split("\n") if VENDORED_IMPORT not in line]
        parts.append(f"# ---------------------------------------------------------------- {name}\n")
        parts.append("\n".join(lines))
    return format_code("\n\n".join(parts))
