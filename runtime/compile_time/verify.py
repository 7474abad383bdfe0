"""Verification harness: runs the emitted PyTorch source and compares it with the shape checker.

`verify(checked, source_name, source)` executes the very source that is written (emitted here
when not given) in a fresh module, instantiates each model (input widths not given =
`PLACEHOLDER_WIDTH`, parameters = the checked values), traces it with `torch.fx.symbolic_trace`,
and runs it on zero inputs built from the checked input types. While it runs, the values of the
model's `forward` are observed by name, with the naming pass's names: every local `forward`
binds (read from its frame when it returns, through `sys.settrace`), the output of every
submodule (forward hooks on the attributes the naming pass gave), and the returned outputs. Each
observed value's shape and dtype is compared with the checker's `TType`, and the submodules the
traced forward calls, in order, with the IR nodes that own one. Each difference is one message.

This module imports torch; `tgc check` never imports it.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import itertools
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx

BATCH_SIZE = 2  # size of every input's first (batch) dimension
SYMBOLIC_SIZE = 3  # size of any other unsized named dimension (`token`), the same for each name


# ------------------------------------------------------------------------------ verification


@dataclass
class Run:
    """One model of a program, instantiated, traced and run on zero inputs."""

    name: str
    module: torch.nn.Module | None = None
    graph_module: torch.fx.GraphModule | None = None
    inputs: tuple[torch.Tensor, ...] = ()
    outputs: Any = None
    observed: dict[str, Any] = field(default_factory=dict)  # IR value -> the tensor it was
    error: str | None = None


def verify(checked, source_name: str, source: str | None = None, names=None) -> list[str]:
    """Differences between the checker's shapes and PyTorch's for every model; [] when none.

    `source` is the emitted model file to verify (emitted from `checked` when None), `names`
    the naming pass's result it was emitted with.
    """
    from tgc.compiler.emit import emit
    from tgc.compiler.naming import name_program

    names = names or name_program(checked)
    try:
        source = source if source is not None else emit(checked, source_name, names)
    except Exception as exc:  # a compiler bug, reported like any other difference
        return [f"{os.path.basename(source_name)}: emission fails: {_exc_text(exc)}"]
    namespace, error = load_source(source, source_name, "emitted")
    if error is not None:
        return [error]
    if hasattr(namespace, "_load_weights"):  # shapes are verified on fresh weights
        namespace._load_weights = lambda module, path, weights_dir: None
    messages: list[str] = []
    for shapes, graph_names in zip(checked.models, names.models):
        run = run_model(namespace, graph_names.cls, shapes, graph_names)
        if run.error is not None:
            messages.append(run.error)
            continue
        messages.extend(_compare_values(run, shapes))
        messages.extend(_compare_modules(run, shapes, graph_names))
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
    """The emitted class name of each checked model, from the naming pass."""
    from tgc.compiler.naming import name_program

    return [n.cls for n in name_program(checked).models]


def constructor_args(shapes) -> list[Any]:
    """Positional constructor arguments: required input widths, then the checked parameter values."""
    from tgc.compiler.tensor_types import PLACEHOLDER_WIDTH

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


def run_model(namespace: types.ModuleType, class_name: str, shapes, names=None) -> Run:
    """Instantiate, trace and run one emitted model (in eval mode, deterministically); with the
    naming pass's `names` of the model, observe its values by name while it runs."""
    run = Run(shapes.graph.name)
    cls = getattr(namespace, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        run.error = f"{run.name}: the emitted source defines no module class `{class_name}`"
        return run
    args = constructor_args(shapes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only cost time (and thrash on a busy machine)
    try:
        return _run(run, cls, class_name, args, shapes, names)
    finally:
        torch.set_num_threads(threads)


def _run(run: Run, cls: type, class_name: str, args: list[Any], shapes, names) -> Run:
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
        except Exception as exc:
            run.error = f"{run.name}: torch.fx cannot trace the emitted forward: {_exc_text(exc)}"
            return run
        run.inputs = zero_inputs(shapes)
        try:
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                run.outputs = _observed_call(run, shapes, names)
        except Exception as exc:
            given = ", ".join(f"{i.name}: {_show(list(t.shape))}" + ("" if t.dtype == torch.float32 else
                                                                     f" {_dtype_name(t.dtype)}")
                              for i, t in zip(shapes.graph.inputs, run.inputs))
            run.error = (f"{run.name}: the emitted forward fails on zero inputs ({given}): "
                         f"{_exc_text(_root_cause(exc))}")
            return run
    return run


def _observed_call(run: Run, shapes, names) -> Any:
    """`run.module(*run.inputs)`, recording in `run.observed` the value of every IR value that
    `forward` binds to a local, that a submodule returns, or that `forward` returns."""
    module = run.module
    graph = shapes.graph
    if names is None:
        return module(*run.inputs)
    by_local = {local: value for value, local in names.locals.items() if local != "_"}
    frame_locals: dict[str, Any] = {}
    code = type(module).forward.__code__

    def local_tracer(frame, event, arg):
        if event == "return":
            frame_locals.update(frame.f_locals)
        return local_tracer

    def tracer(frame, event, arg):
        return local_tracer if frame.f_code is code else None

    hooked: dict[int, Any] = {}
    handles = []
    for index, attr in names.attrs.items():
        def hook(_module, _args, output, index=index):
            hooked.setdefault(index, output)

        handles.append(module.get_submodule(attr).register_forward_hook(hook))
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        outputs = module(*run.inputs)
    finally:
        sys.settrace(previous)
        for handle in handles:
            handle.remove()
    returned = outputs if isinstance(outputs, tuple) else (outputs,)
    for value, real in zip(graph.outputs, returned):
        run.observed.setdefault(value, real)
    for local, real in frame_locals.items():
        if local in by_local:
            run.observed.setdefault(by_local[local], real)
    for index, output in hooked.items():
        for value, real in zip(graph.nodes[index].outputs, _flat(output)):
            if real is not None:
                run.observed.setdefault(value, real)
    return outputs


def _flat(output: Any) -> list[Any]:
    """A submodule's output as a flat list (an LSTM's `(seq, (h_n, c_n))` -> seq, h_n, c_n)."""
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _flat(item)]
    return [output]


# ------------------------------------------------------------------------------ comparisons


def _compare_values(run: Run, shapes) -> list[str]:
    """Every observed value against its checked type, in the order the graph produces them."""
    sizes = dim_sizes(shapes)
    messages: list[str] = []
    order = [v for node in shapes.graph.nodes for v in node.outputs]
    for value in sorted(run.observed, key=lambda v: order.index(v) if v in order else -1):
        real = run.observed[value]
        t = shapes.types.get(value)
        if t is None:
            continue  # an input of the graph, or a value the checker does not type (`_`)
        where = _where(shapes, value)
        if not isinstance(real, torch.Tensor):
            messages.append(f"{run.name}: `{value}` ({where}): checker says {t.show()}, "
                            f"torch gives a {type(real).__name__}")
            continue
        want = expected_shape(t, sizes)
        got = list(real.shape)
        if len(want) != len(got) or any(w is not None and w != r for w, r in zip(want, got)):
            messages.append(f"{run.name}: `{value}` ({where}): checker says {_show(want)}, "
                            f"torch gives {_show(got)}")
        if torch_dtype(t.dtype) != real.dtype:
            messages.append(f"{run.name}: `{value}` ({where}): checker says {t.dtype}, "
                            f"torch gives {_dtype_name(real.dtype)}")
    returned = run.outputs if isinstance(run.outputs, tuple) else (run.outputs,)
    if len(returned) != len(shapes.graph.outputs):
        messages.append(f"{run.name}: forward returns {len(returned)} values, "
                        f"the model has {len(shapes.graph.outputs)} outputs")
    return messages


def _compare_modules(run: Run, shapes, names) -> list[str]:
    """The submodules the traced forward calls, in order, against the IR nodes that own one.

    The constructor assigns one submodule per owning node, in node order, so the module's
    children name the owners; a traced call of a non-leaf child (`nn.Sequential`) shows its
    children (`seq.0`, `seq.1`), counted as one call of `seq`.
    """
    assert run.graph_module is not None and run.module is not None
    owners = [shapes.graph.nodes[i] for i in names.attrs]
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
    from tgc.compiler.naming import name_program

    wanted = [(shapes, ld) for shapes in checked.models for ld in shapes.graph.loads]
    folder = os.path.dirname(os.path.abspath(source_path))
    present = [(s, ld, os.path.join(folder, ld.path)) for s, ld in wanted
               if os.path.isfile(os.path.join(folder, ld.path))]
    if not present:
        return []
    program_names = name_program(checked)
    namespace, problem = load_source(emit(checked, source_path, program_names), source_path, "weights")
    if namespace is None:
        raise RuntimeError(problem)
    namespace._load_weights = lambda module, path, weights_dir: None
    diags = []
    for shapes, ld, path in present:
        names = program_names.of(checked, shapes)
        with torch.random.fork_rng(devices=[]):
            model = getattr(namespace, names.cls)(*constructor_args(shapes))
        attr = next(a for i, a in names.attrs.items() if shapes.graph.nodes[i].label == ld.node_label)
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
