"""Verification harness: runs the emitted PyTorch source and compares it with the shape checker.

`verify(checked, source_name, source)` executes the very source that is written (emitted here
when not given) in a fresh module, instantiates each model (input widths not given =
`PLACEHOLDER_WIDTH`, parameters = the checked values), traces it with torch.fx (the
`Tracer().trace` that `symbolic_trace` runs), and runs it on zero inputs built from the checked
input types. While it runs, the values of the model's `forward` are observed by name, with the
naming pass's names: every local `forward` binds (read from its frame when it returns, through
`sys.settrace`), the output of every submodule (forward hooks on the attributes the naming pass
gave), and the returned outputs. Each observed value's shape and dtype is compared with the
checker's `TType`, and the submodules the traced forward calls, in order, with the IR nodes
that own one. Each difference is one message.

Nothing big is allocated. A model whose weights or values are big (`choose_device`: more than
`REAL_LIMIT` elements, or more than `REAL_MACS` multiply-accumulates) is constructed under
`torch.device("meta")` and runs on meta zero inputs: tensors with a shape and a dtype but no
storage, so `linear(100000) >> linear(100000)` (10^10 weights) verifies in a fraction of a
second and a few hundred MB, and the shapes and dtypes compared are still those PyTorch's
kernels compute. A small model runs with real CPU tensors, as it always did: PyTorch's meta
kernels are mostly Python, about 100 times slower per op than a CPU kernel on a tiny tensor, so
a chain of 10,000 small ops verifies in 27 s on meta and in 3 s for real. The fx trace and the observation by name
(forward hooks, `sys.settrace`) are the same on both devices.

What meta cannot run (a kernel without a meta implementation, `.item()` or another read of a
value, a forward that makes a CPU tensor of its own) falls back: when constructing or running a
model on meta fails, that model alone is verified again with real CPU tensors, and the CPU
run's result is the one reported (its error text is the one a user sees running the module).
Only a model of more than `REAL_FALLBACK_LIMIT` weight elements is not rerun: its meta error is
reported as it is, saying so. In torch 2.13 every op of the registry and every std block runs
on meta (linear, conv1d/2d, the pools, batchnorm, layernorm, embedding, lstm, gru, attention
through `nn.MultiheadAttention` with masks, the reshapes and merges), so no model of tgc's own
ops falls back; a plugin op may.

Dimensions sized when the model runs (`batch`, `token`, `height`) get sizes chosen once per
model by `dim_sizes`: the batch 2, every other such dimension a size that satisfies the
checker's `runtime_requires` (`height >= 2` before a 2x2 pool); a checked type's run-time size
(`(height + 1) // 2`) is its expression evaluated with those sizes.

The work is linear in the size of the program: a value's producer and position come from maps
built once per model, and the call order is compared as lists, with `difflib` only over the
part that differs.

This module imports torch; `tgc check` never imports it.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import io
import itertools
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx

from tgc.compiler.naming import attr_expr
from tgc.compiler.sizes import (  # noqa: F401  (the run-time sizes verification uses, and re-exports)
    BATCH_CANDIDATES,
    BATCH_SIZE,
    CANDIDATE_SIZES,
    MAX_SIZE_TRIALS,
    SYMBOLIC_SIZE,
    SizeError,
    _known_values,
    _value,
    dim_sizes,
)

# A model whose meta run fails is rerun with real tensors only up to this many weight and buffer
# elements (400 MB of float32): beyond it the rerun would cost more memory than a check may take.
REAL_FALLBACK_LIMIT = 100_000_000
# `verify` runs a model with real CPU tensors when its weights and values hold at most this many
# elements (40 MB of float32) and its matrix products at most `REAL_MACS` multiply-accumulates:
# PyTorch's meta kernels are Python (0.3-1.5 ms an op in torch 2.13, against 3-15 us for a CPU
# kernel on a tiny tensor), so a long chain of small ops runs 100 times faster for real.
REAL_LIMIT = 10_000_000
REAL_MACS = 1_000_000_000


# ------------------------------------------------------------------------------ verification


@dataclass
class Run:
    """One model of a program, instantiated, traced and run on zero inputs."""

    name: str
    module: torch.nn.Module | None = None
    graph: torch.fx.Graph | None = None  # the fx trace of its forward
    inputs: tuple[torch.Tensor, ...] = ()
    outputs: Any = None
    observed: dict[str, Any] = field(default_factory=dict)  # IR value -> the tensor it was
    error: str | None = None
    device: str = "cpu"  # where it ran: "meta", or "cpu" (asked for, or meta's fallback)
    sizes: dict[str, int] = field(default_factory=dict)  # the run-time dimensions' sizes
    meta_error: str | None = None  # why the meta run failed, when it fell back to CPU


def verify(checked, source_name: str, source: str | None = None, names=None,
           device: str = "auto") -> list[str]:
    """Differences between the checker's shapes and PyTorch's for every model; [] when none.

    `source` is the emitted model file to verify (emitted from `checked` when None), `names`
    the naming pass's result it was emitted with. `device` is where the models run: "auto"
    (`choose_device`: real CPU tensors for a small model, meta for a big one), "meta" or "cpu".
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
    # The cyclic collector is off while the models are built, traced and run: each of those
    # makes tens of thousands of objects (modules, fx nodes, tensors) for a long program, and
    # every full collection walks all of them again, a third of the time at 20,000 ops.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _verify_models(checked, namespace, names, device)
    finally:
        if collecting:
            gc.enable()


def _verify_models(checked, namespace: types.ModuleType, names, device: str) -> list[str]:
    messages: list[str] = []
    for shapes, graph_names in zip(checked.models, names.models):
        try:
            sizes = dim_sizes(shapes)
        except SizeError as exc:
            messages.append(f"{shapes.graph.name}: {exc}")
            continue
        where, weights = (device, None) if device != "auto" else choose_device(checked, shapes, sizes, names)
        run = run_model(namespace, graph_names.cls, shapes, graph_names, where, sizes, weights)
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


def construct(cls: type, args: list[Any], device: str = "cpu") -> torch.nn.Module:
    """`cls(*args)` in eval mode, its weights made on `device` (on meta: shapes, no storage),
    with the global RNG left as it was."""
    # the device context is a torch-function mode: on CPU, the default, it would only slow down
    # every call that makes a weight
    place = torch.device(device) if device != "cpu" else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[]), place:
        torch.manual_seed(0)
        return cls(*args).eval()


def expected_shape(t, sizes: dict[str, int], params: dict[str, Any] | None = None) -> list[int | None]:
    """The concrete shape a checked type stands for; None where nothing is known (a wildcard).

    A size known at construction is its checked value; a run-time one (`token`, a pooled
    `(height + 1) // 2`) is its expression evaluated with the chosen `sizes` (and `params`, the
    parameter values, should it read one); a dimension over a name without a size is a wildcard."""
    out: list[int | None] = []
    for d in t.dims:
        if d.size is not None and d.size.value is not None:
            out.append(d.size.value)
            continue
        extent = d.extent
        value = None if extent is None else _value(extent, params or {}, sizes)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out.append(value if isinstance(value, int) and not isinstance(value, bool) else None)
    return out


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def zero_inputs(shapes, device: str = "cpu", sizes: dict[str, int] | None = None) -> tuple[torch.Tensor, ...]:
    """Zero tensors for every graph input (ids 0, masks all False), in the forward's order, on
    `device`, with the run-time sizes `sizes` (`dim_sizes(shapes)` when None)."""
    sizes = dim_sizes(shapes) if sizes is None else sizes
    params = _known_values(shapes)
    tensors = []
    for inp in shapes.graph.inputs:
        t = shapes.types[inp.name]
        shape = []
        for k, size in enumerate(expected_shape(t, sizes, params)):
            shape.append(size if size is not None else (BATCH_SIZE if k == 0 else SYMBOLIC_SIZE))
        tensors.append(torch.zeros(shape, dtype=torch_dtype(t.dtype), device=device))
    return tuple(tensors)


def run_model(namespace: types.ModuleType, class_name: str, shapes, names=None, device: str = "cpu",
              sizes: dict[str, int] | None = None, weights: int | None = None) -> Run:
    """Instantiate, trace and run one emitted model (in eval mode, deterministically); with the
    naming pass's `names` of the model, observe its values by name while it runs.

    `sizes` are the run-time dimensions' (`dim_sizes(shapes)` when None). On `device="meta"`
    nothing is allocated; should constructing or running fail there, the model runs again on
    CPU, unless it holds more than `REAL_FALLBACK_LIMIT` weight elements (counted on the meta
    module, or `weights`, the checker's count, where it could not be built)."""
    run = Run(shapes.graph.name, device=device)
    cls = getattr(namespace, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        run.error = f"{run.name}: the emitted source defines no module class `{class_name}`"
        return run
    try:
        run.sizes = dim_sizes(shapes) if sizes is None else sizes
    except SizeError as exc:
        run.error = f"{run.name}: {exc}"
        return run
    args = constructor_args(shapes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only cost time (and thrash on a busy machine)
    try:
        _run(run, cls, class_name, args, shapes, names)
        if device != "meta" or run.error is None:
            return run
        if run.module is not None and run.graph is None:
            return run  # fx cannot trace it: the same on every device
        elements = _elements(run.module) if run.module is not None else weights
        if elements is not None and elements > REAL_FALLBACK_LIMIT:
            run.error += (f" (on the meta device; not rerun with real tensors: the model has "
                          f"{elements:,} weight elements)")
            return run
        retry = Run(run.name, device="cpu", sizes=run.sizes, meta_error=run.error)
        return _run(retry, cls, class_name, args, shapes, names)
    finally:
        torch.set_num_threads(threads)


def choose_device(checked, shapes, sizes: dict[str, int], names=None) -> tuple[str, int | None]:
    """Where `verify` runs a model, and the checker's count of its weights (None: unknown).

    Real CPU tensors when the model is small: its weights (the summary's count) and every value
    it computes (the checked types at `sizes`) at most `REAL_LIMIT` elements, its matrix
    products at most `REAL_MACS` multiply-accumulates. Everything else, and a model whose
    weights the summary cannot count, runs on meta."""
    elements = 0
    for t in shapes.types.values():
        n = 1
        for k, size in enumerate(expected_shape(t, sizes, _known_values(shapes))):
            n *= size if size is not None else (BATCH_SIZE if k == 0 else SYMBOLIC_SIZE)
        elements += n
        if elements > REAL_LIMIT:
            return "meta", None
    try:
        from tgc.compiler.summary import summarize

        summary = summarize(checked, shapes, names=names)
    except Exception:  # a cost rule that fails is the summary's problem: meta needs no count
        return "meta", None
    weights = None if summary.problems else summary.total
    if weights is None or weights + elements > REAL_LIMIT:
        return "meta", weights
    if summary.macs is not None and summary.macs * BATCH_SIZE > REAL_MACS:
        return "meta", weights
    return "cpu", weights


class _ChildTracer(torch.fx.Tracer):
    """A tracer that keeps every direct child of the traced model a leaf: the call order compared
    is the model's own, and a block class without submodules of its own (`relu` only) or an
    empty `nn.Sequential` (`repeat(0)`) is one call, not nothing. Nested classes are run (and
    observed) by the real forward; tracing them too would only recurse (deep nesting)."""

    def __init__(self, members: frozenset[str] = frozenset()):
        super().__init__()
        self.members = members  # `v.0`, `v.1`: a statement's ops in its nn.Sequential are children too

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        name = module_qualified_name
        if "." not in name or name in self.members:
            return True
        # a step of a repeat with context values: the loop over an nn.ModuleList calls each step
        parent = name.rsplit(".", 1)[0]
        if ("." not in parent or parent in self.members) and isinstance(
                self.root.get_submodule(parent), torch.nn.ModuleList):
            return True
        return super().is_leaf_module(m, name)


def _elements(module: torch.nn.Module | None) -> int | None:
    """Elements of the module's weights and buffers (None: it was never constructed)."""
    if module is None:
        return None
    return sum(t.numel() for t in itertools.chain(module.parameters(), module.buffers()))


def _run(run: Run, cls: type, class_name: str, args: list[Any], shapes, names) -> Run:
    try:
        run.module = construct(cls, args, run.device)
    except Exception as exc:
        call = f"{class_name}({', '.join(repr(a) for a in args)})"
        run.error = f"{run.name}: constructing the emitted module `{call}` failed: {_exc_text(exc)}"
        return run
    try:
        # the trace alone, which is what is compared: `symbolic_trace` would also generate and
        # compile the Python of a GraphModule, a third of its time on a long chain
        members = frozenset(a for a in (names.attrs.values() if names is not None else ()) if "." in a)
        run.graph = _ChildTracer(members).trace(run.module)
    except Exception as exc:
        run.error = f"{run.name}: torch.fx cannot trace the emitted forward: {_exc_text(exc)}"
        return run
    run.inputs = zero_inputs(shapes, run.device, run.sizes)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            torch.manual_seed(0)
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
        if frame.f_code is not code:
            return None
        frame.f_trace_lines = False  # only its return matters: no call per line of `forward`
        return local_tracer

    hooked: dict[int, Any] = {}
    handles = []
    for index, attr in _submodule_attrs(module, names).items():
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
    sizes = run.sizes
    params = _known_values(shapes)
    messages: list[str] = []
    producers = _producers(shapes.graph)
    position = {v: i for i, v in enumerate(producers)}  # values in the order the nodes give them
    for value in sorted(run.observed, key=lambda v: position.get(v, -1)):
        real = run.observed[value]
        t = shapes.types.get(value)
        if t is None:
            continue  # an input of the graph, or a value the checker does not type (`_`)
        node = producers.get(value)
        where = _node_where(node) if node is not None else "input"
        if not isinstance(real, torch.Tensor):
            messages.append(f"{run.name}: `{value}` ({where}): checker says {t.show()}, "
                            f"torch gives a {type(real).__name__}")
            continue
        want = expected_shape(t, sizes, params)
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


def _submodule_attrs(module: torch.nn.Module, names) -> dict[int, str]:
    """The node attributes that hold submodules: all but those holding an `nn.Parameter` (a
    learned tensor); an attribute the module lacks stays, so its absence is reported."""
    return {i: a for i, a in names.attrs.items()
            if not isinstance(getattr(module, a.split(".")[0], None), torch.nn.Parameter)}


def _producers(graph) -> dict[str, Any]:
    """Each value -> the first node that gives it, in node order (`graph.producer`, in one pass)."""
    out: dict[str, Any] = {}
    for node in graph.nodes:
        for v in node.outputs:
            out.setdefault(v, node)
    return out


def _compare_modules(run: Run, shapes, names) -> list[str]:
    """The submodules the traced forward calls, in order, against the IR nodes that own one.

    The constructor assigns one submodule per owning node, in node order, so the module's
    children name the owners. Every child is a leaf of the trace (`_ChildTracer`), so each call
    is one `call_module` node, an empty `nn.Sequential` (`repeat(0)`) or a block class without
    submodules of its own included; consecutive calls of one child count once.
    """
    assert run.graph is not None and run.module is not None
    attrs = _submodule_attrs(run.module, names)
    owners = [shapes.graph.nodes[i] for i in attrs]
    # a statement's ops with weights share one nn.Sequential child (`v.0`, `v.1`)
    tops = [a.split(".")[0] for a in attrs.values()]
    distinct = list(dict.fromkeys(tops))
    children = list(run.module._modules)
    if children != distinct:
        listed = ", ".join(f"`{n.target}` ({n.op})" for n in owners) or "none"
        return [f"{run.name}: the emitted module has {len(children)} submodules "
                f"({', '.join(children) or 'none'}), but the IR nodes that own one ({listed}) name "
                f"{len(distinct)}: {', '.join(distinct) or 'none'}"]
    full = list(attrs.values())
    by_attr = dict(zip(full, owners))
    members: dict[str, list[str]] = {}
    for attr in full:
        if "." in attr:
            members.setdefault(attr.split(".")[0], []).append(attr)
    # every child is a leaf of the trace (`_ChildTracer`), an empty one too; a statement's
    # nn.Sequential is called whole (`self.v(x)`: each member in turn) or member by member
    called = []
    for target in (n.target for n in run.graph.nodes if n.op == "call_module"):
        parts = target.split(".")
        if parts[0] in members:
            # a member, or a step of a member that loops (`u.0.1`: step 1 of the ModuleList `u.0`)
            owner = next((m for m in members[parts[0]] if target == m or target.startswith(m + ".")), None)
            called.extend([owner] if owner is not None else members[parts[0]])
        else:
            called.append(parts[0])
    called = [k for k, _ in itertools.groupby(called)]
    # a repeat with context values that runs 0 times is an empty nn.ModuleList: nothing is called
    looped_empty = {a for a in full if isinstance(run.module.get_submodule(a), torch.nn.ModuleList)
                    and len(run.module.get_submodule(a)) == 0}
    expected = [k for k, _ in itertools.groupby(a for a in full if a not in looped_empty)]  # a layer applied twice in a row: one run
    if called == expected:
        return []
    # difflib is quadratic in the worst case: only the part between the common prefix and the
    # common suffix is compared (a single wrong call in 40,000 stays quick)
    start = 0
    while start < min(len(expected), len(called)) and expected[start] == called[start]:
        start += 1
    end_a, end_b = len(expected), len(called)
    while end_a > start and end_b > start and expected[end_a - 1] == called[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = expected[start:end_a], called[start:end_b]
    messages = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for attr in a[i1:i2]:
            node = by_attr[attr]
            messages.append(f"{run.name}: `{node.target}` ({_node_where(node)}): the IR expects a call of "
                            f"submodule `{attr_expr(attr)}` here, torch calls "
                            + (", ".join(f"`{attr_expr(c)}`" for c in b[j1:j2]) or "none"))
        if i1 == i2:
            messages.append(f"{run.name}: the traced forward calls "
                            + ", ".join(f"`{attr_expr(c)}`" for c in b[j1:j2])
                            + ", which no IR node owns at that point")
    return messages


# ------------------------------------------------------------------------------ helpers


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


SHOWN_KEYS = 5  # keys named in one E039 before "and N more"


def _some(keys: list[str]) -> str:
    """`a`, `b` and 3 more keys: a message names a few, never hundreds."""
    shown = ", ".join(f"`{k}`" for k in keys[:SHOWN_KEYS])
    more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return f"the weight{'s' if len(keys) > 1 else ''} {shown}{more}"


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
        cls, args = getattr(namespace, names.cls), constructor_args(shapes)
        try:  # the shapes of its state dict, without allocating them
            model = construct(cls, args, "meta")
        except Exception:  # something meta cannot build: real weights, as in `verify`
            model = construct(cls, args, "cpu")
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
        # one diagnostic per kind of mismatch, with a few keys shown: a torchvision state dict
        # loaded into the wrong module has hundreds of them
        if missing:
            diags.append(error(ld.span, "E039", f"`{ld.path}` lacks {_some(missing)} of `{ld.target}`",
                               f"`{ld.target}` expects {len(expected)} keys: {_some(sorted(expected))}"))
        if unexpected:
            diags.append(error(ld.span, "E039", f"`{ld.path}` has {_some(unexpected)} that `{ld.target}` "
                               "does not have", "a state dict of the same module is loaded with its own keys"))
        if shaped:
            shown = ", ".join(f"`{k}` {list(got[k])} (needs {list(expected[k])})" for k in shaped[:SHOWN_KEYS])
            more = f" and {len(shaped) - SHOWN_KEYS} more" if len(shaped) > SHOWN_KEYS else ""
            diags.append(error(ld.span, "E039", f"`{ld.path}` has weights of other shapes: {shown}{more}"))
    return diags
