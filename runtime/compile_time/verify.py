"""Verification harness: runs the emitted PyTorch source and compares it with the shape checker.

`verify(checked, source_name)` emits the program with probes (`_tgc_probe('<ir value>', var)`
after every materialised value), executes the source in a fresh module, instantiates each model
(input widths not given = `PLACEHOLDER_WIDTH`, parameters = the checked values), traces it with
`torch.fx.symbolic_trace`, runs `ShapeProp` on zero inputs built from the checked input types, and
compares every probed value's real shape and dtype with the checker's `TType`, and the submodules
the traced forward calls with the IR nodes that own one. Each difference is one message.

This module imports torch; `tgc check` never imports it.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import itertools
import os
import types
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch.fx.passes.shape_prop import ShapeProp

BATCH_SIZE = 2  # size of every input's first (batch) dimension
SYMBOLIC_SIZE = 3  # size of any other unsized named dimension (`token`), the same for each name


def _tgc_probe(name: str, value: Any) -> Any:
    """Marks IR value `name` in an emitted forward; returns `value` unchanged.

    Registered with `torch.fx.wrap`, so a traced graph keeps it as a `call_function` node whose
    second argument is the probed value. The emitted module imports it by name, so the patch that
    `torch.fx.wrap` installs in this module's globals does not reach it; it therefore also records
    itself when it receives a proxy.
    """
    if isinstance(value, torch.fx.Proxy):
        return value.tracer.create_proxy("call_function", _PROBE, (name, value), {})
    return value


_PROBE = _tgc_probe
torch.fx.wrap("_tgc_probe")


# ------------------------------------------------------------------------------ verification


@dataclass
class Run:
    """One model of a program, instantiated, traced and run on zero inputs."""

    name: str
    module: torch.nn.Module | None = None
    graph_module: torch.fx.GraphModule | None = None
    inputs: tuple[torch.Tensor, ...] = ()
    outputs: Any = None
    error: str | None = None


def verify(checked, source_name: str) -> list[str]:
    """Differences between the checker's shapes and PyTorch's for every model; [] when none."""
    from tgc.compiler.emit import emit

    try:
        source = emit(checked, source_name, probes=True)
    except Exception as exc:  # a compiler bug, reported like any other difference
        return [f"{os.path.basename(source_name)}: emission with probes fails: {_exc_text(exc)}"]
    namespace, error = load_source(source, source_name, "probed")
    if error is not None:
        return [error]
    if hasattr(namespace, "_load_weights"):  # shapes are verified on fresh weights
        namespace._load_weights = lambda module, path, weights_dir: None
    messages: list[str] = []
    for shapes, class_name in zip(checked.models, class_names(checked)):
        run = run_model(namespace, class_name, shapes)
        if run.error is not None:
            messages.append(run.error)
            continue
        messages.extend(_compare_probes(run, shapes))
        messages.extend(_compare_modules(run, shapes))
    return messages


def load_source(source: str, source_name: str, what: str = "") -> tuple[types.ModuleType | None, str | None]:
    """Execute emitted source in a fresh module; (module, None) or (None, error message)."""
    base = os.path.basename(source_name)
    module = types.ModuleType(f"tgc_verify_{_safe(base)}")
    module.__file__ = f"<tgc {what} {base}>"
    try:
        code = compile(source, module.__file__, "exec")
        exec(code, module.__dict__)
    except Exception as exc:  # the emitted file itself is broken
        return None, f"{base}: the emitted source does not run: {_exc_text(exc)}"
    return module, None


def class_names(checked) -> list[str]:
    """The emitted class name of each checked model, named as the emitter names them."""
    from tgc.compiler.emit import emitted_class_names

    return emitted_class_names(checked)[1]


def constructor_args(shapes) -> list[Any]:
    """Positional constructor arguments: required input widths, then the checked parameter values."""
    from tgc.compiler.shapes import PLACEHOLDER_WIDTH

    args: list[Any] = [shapes.required_values.get(w, PLACEHOLDER_WIDTH) for w in shapes.required]
    args.extend(shapes.param_values[p.name] for p in shapes.graph.params)
    return args


def dim_sizes(shapes) -> dict[str, int]:
    """The size chosen for each unsized dimension name: the batch 2, any other name 3."""
    sizes: dict[str, int] = {}
    for inp in shapes.graph.inputs:
        t = shapes.types[inp.name]
        if t.dims and t.dims[0].size is None and t.dims[0].name:
            sizes[t.dims[0].name] = BATCH_SIZE
    for inp in shapes.graph.inputs:
        for d in shapes.types[inp.name].dims[1:]:
            if d.size is None and d.name and d.name not in sizes:
                sizes[d.name] = SYMBOLIC_SIZE
    return sizes


def expected_shape(t, sizes: dict[str, int]) -> list[int | None]:
    """The concrete shape a checked type stands for; None where nothing is known (a wildcard)."""
    out: list[int | None] = []
    for d in t.dims:
        if d.size is not None:
            out.append(d.size.value)
        else:
            out.append(sizes.get(d.name) if d.name else None)
    return out


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def zero_inputs(shapes) -> tuple[torch.Tensor, ...]:
    """Zero tensors for every graph input (ids 0, masks all False), in the forward's order."""
    sizes = dim_sizes(shapes)
    tensors = []
    for index, inp in enumerate(shapes.graph.inputs):
        t = shapes.types[inp.name]
        shape = []
        for k, size in enumerate(expected_shape(t, sizes)):
            shape.append(size if size is not None else (BATCH_SIZE if k == 0 else SYMBOLIC_SIZE))
        tensors.append(torch.zeros(shape, dtype=torch_dtype(t.dtype)))
    return tuple(tensors)


def run_model(namespace: types.ModuleType, class_name: str, shapes) -> Run:
    """Instantiate, trace and shape-propagate one emitted model (in eval mode, deterministically)."""
    run = Run(shapes.graph.name)
    cls = getattr(namespace, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        run.error = f"{run.name}: the emitted source defines no module class `{class_name}`"
        return run
    args = constructor_args(shapes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only cost time (and thrash on a busy machine)
    try:
        return _run(run, cls, class_name, args, shapes)
    finally:
        torch.set_num_threads(threads)


def _run(run: Run, cls: type, class_name: str, args: list[Any], shapes) -> Run:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            run.module = cls(*args).eval()
        except Exception as exc:
            call = f"{class_name}({', '.join(repr(a) for a in args)})"
            run.error = f"{run.name}: constructing the emitted module `{call}` failed: {_exc_text(exc)}"
            return run
        try:
            run.graph_module = torch.fx.symbolic_trace(run.module)
            run.graph_module.eval()
        except Exception as exc:
            run.error = f"{run.name}: torch.fx cannot trace the emitted forward: {_exc_text(exc)}"
            return run
        run.inputs = zero_inputs(shapes)
        try:
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                run.outputs = ShapeProp(run.graph_module).propagate(*run.inputs)
        except Exception as exc:
            given = ", ".join(f"{i.name}: {_show(list(t.shape))}" + ("" if t.dtype == torch.float32 else
                                                                     f" {_dtype_name(t.dtype)}")
                              for i, t in zip(shapes.graph.inputs, run.inputs))
            run.error = (f"{run.name}: the emitted forward fails on zero inputs ({given}): "
                         f"{_exc_text(_root_cause(exc))}")
            return run
    return run


# ------------------------------------------------------------------------------ comparisons


def _compare_probes(run: Run, shapes) -> list[str]:
    sizes = dim_sizes(shapes)
    messages: list[str] = []
    assert run.graph_module is not None
    probed: set[str] = set()
    for node in run.graph_module.graph.nodes:
        if node.op != "call_function" or node.target is not _PROBE:
            continue
        value, arg = node.args[0], node.args[1]
        probed.add(value)
        where = _where(shapes, value)
        t = shapes.types.get(value)
        if t is None:
            messages.append(f"{run.name}: the emitted forward probes `{value}`, "
                            "which the checker does not know")
            continue
        meta = arg.meta.get("tensor_meta") if isinstance(arg, torch.fx.Node) else None
        if meta is None or not hasattr(meta, "shape"):
            messages.append(f"{run.name}: `{value}` ({where}): checker says {t.show()}, "
                            f"torch gives a {getattr(arg, 'meta', {}).get('type', type(arg)).__name__}")
            continue
        want = expected_shape(t, sizes)
        real = list(meta.shape)
        if len(want) != len(real) or any(w is not None and w != r for w, r in zip(want, real)):
            messages.append(f"{run.name}: `{value}` ({where}): checker says {_show(want)}, "
                            f"torch gives {_show(real)}")
        if torch_dtype(t.dtype) != meta.dtype:
            messages.append(f"{run.name}: `{value}` ({where}): checker says {t.dtype}, "
                            f"torch gives {_dtype_name(meta.dtype)}")
    for value in shapes.graph.outputs:
        if value not in probed and shapes.graph.producer(value) is not None:
            messages.append(f"{run.name}: output `{value}` ({_where(shapes, value)}): the traced forward "
                            "has no probe for it, so its shape is not verified")
    return messages


def module_owners(shapes) -> list[Any]:
    """The IR nodes whose emission owns a submodule, in emission (= node) order."""
    from tgc.compiler.emit import EmitCtx
    from tgc.compiler.ops.registry import lookup
    from tgc.compiler.shapes import OpCtx

    owners = []
    for index, node in enumerate(shapes.graph.nodes):
        if node.kind != "op":  # a block call or repeat is always a submodule of its own class
            owners.append(node)
            continue
        spec = lookup(node.op)
        if spec is None or spec.emit is None or index not in shapes.args:
            continue
        in_types = [shapes.types[v] for v in node.inputs]
        out_types = [shapes.types[v] for v in node.outputs]
        op_ctx = OpCtx(spec, node, in_types, shapes.args[index], [], [])
        names = [f"_in{i}" for i in range(len(node.inputs))]
        em = spec.emit(EmitCtx(op_ctx, names, out_types, "self._m", lambda n: n))
        if em.module is not None:
            owners.append(node)
    return owners


def _compare_modules(run: Run, shapes) -> list[str]:
    """The submodules the traced forward calls, in order, against the IR nodes that own one.

    The constructor assigns one submodule per owning node, in node order, so the module's
    children name the owners; a traced call of a non-leaf child (`nn.Sequential`) shows its
    children (`seq.0`, `seq.1`), counted as one call of `seq`.
    """
    assert run.graph_module is not None and run.module is not None
    owners = module_owners(shapes)
    children = list(run.module._modules)
    if len(children) != len(owners):
        listed = ", ".join(f"`{n.target}` ({n.op})" for n in owners) or "none"
        return [f"{run.name}: the emitted module has {len(children)} submodules "
                f"({', '.join(children) or 'none'}), but {len(owners)} IR nodes own one: {listed}"]
    by_attr = dict(zip(children, owners))
    called = [target.split(".")[0] for target in (
        n.target for n in run.graph_module.graph.nodes if n.op == "call_module")]
    called = [k for k, _ in itertools.groupby(called)]
    if called == children:
        return []
    messages = []
    matcher = difflib.SequenceMatcher(a=children, b=called, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for attr in children[i1:i2]:
            node = by_attr[attr]
            messages.append(f"{run.name}: `{node.target}` ({_node_where(node)}): the IR expects a call of "
                            f"submodule `self.{attr}` here, torch calls "
                            + (", ".join(f"`self.{c}`" for c in called[j1:j2]) or "none"))
        if i1 == i2:
            messages.append(f"{run.name}: the traced forward calls "
                            + ", ".join(f"`self.{c}`" for c in called[j1:j2])
                            + ", which no IR node owns at that point")
    return messages


# ------------------------------------------------------------------------------ helpers


def _where(shapes, value: str) -> str:
    node = shapes.graph.producer(value)
    return _node_where(node) if node is not None else "input"


def _node_where(node) -> str:
    return f"{node.op}, {os.path.basename(node.span.file)}:{node.span.line}"


def _show(shape: list[int | None]) -> str:
    return "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _exc_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


# ------------------------------------------------------------------------------ `load` files


def check_weights(checked, source_path: str) -> list:
    """Compile-time check of every `load NAME from "file.pt"` whose file exists (relative to the
    `.tg` file): the file must hold a plain state dict (`weights_only`) whose keys and shapes are
    exactly those of the sub-module. Returns diagnostics (E039) at the `load` statement."""
    from tgc.compiler.diagnostics import error
    from tgc.compiler.emit import emit

    wanted = [(shapes, ld) for shapes in checked.models for ld in shapes.graph.loads]
    folder = os.path.dirname(os.path.abspath(source_path))
    present = [(s, ld, os.path.join(folder, ld.path)) for s, ld in wanted
               if os.path.isfile(os.path.join(folder, ld.path))]
    if not present:
        return []
    namespace, problem = load_source(emit(checked, source_path), source_path, "weights")
    if namespace is None:
        raise RuntimeError(problem)
    namespace._load_weights = lambda module, path, weights_dir: None
    diags = []
    names = dict(zip((id(s) for s in checked.models), class_names(checked)))
    for shapes, ld, path in present:
        with torch.random.fork_rng(devices=[]):
            model = getattr(namespace, names[id(shapes)])(*constructor_args(shapes))
        owners = module_owners(shapes)
        attr = next(a for a, node in zip(model._modules, owners) if node.label == ld.node_label)
        expected = {k: tuple(v.shape) for k, v in getattr(model, attr).state_dict().items()}
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickled objects other than tensors are refused here
            import pickle

            if isinstance(exc, pickle.UnpicklingError):
                why = "it holds pickled objects other than tensors, which are refused (`weights_only=True`)"
            else:
                why = f"{type(exc).__name__}: {_exc_text(exc)[:200]}"
            diags.append(error(ld.span, "E039", f"`{ld.path}` cannot be loaded as plain weights: {why}",
                               "save it with `torch.save(module.state_dict(), path)`; files holding other "
                               "pickled objects are refused"))
            continue
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            diags.append(error(ld.span, "E039", f"`{ld.path}` does not hold a state dict of tensors",
                               "save it with `torch.save(module.state_dict(), path)`"))
            continue
        got = {k: tuple(v.shape) for k, v in state.items()}
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        shaped = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        for key in missing:
            diags.append(error(ld.span, "E039", f"`{ld.path}` has no weight `{key}` for `{ld.target}`",
                               f"`{ld.target}` expects the keys: {', '.join(sorted(expected))}"))
        for key in unexpected:
            diags.append(error(ld.span, "E039", f"`{ld.path}` has an unexpected weight `{key}`",
                               f"`{ld.target}` expects the keys: {', '.join(sorted(expected))}"))
        for key in shaped:
            diags.append(error(ld.span, "E039", f"weight `{key}` in `{ld.path}` has shape "
                               f"{list(got[key])}, but `{ld.target}` needs {list(expected[key])}"))
    return diags
