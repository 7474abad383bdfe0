"""Per-op property test: random valid programs for one op, compiled and checked against PyTorch.

`autotest_op(name)` uses hypothesis to draw hyper-parameters and input shapes for op `name` from
its registry entry, writes a one-statement `.tg` model for each draw, compiles it in-process
(front end -> shape check -> emission) and checks with `verify` that every value's shape and dtype
in the real module equal the checker's, that the emitted source traces under `torch.fx`, and
that the module's outputs have the checked shapes. A new op is tested
without writing a test.

How values are drawn. Each hyper-parameter gets a value by its registry type (`generic_value`:
small positive ints, floats in [0, 0.5], bools, one of `choices` for strings, a valid index or
name of the first input for `dim`, ...), or is left out when it has a default. Ops whose valid
values depend on each other or on the input (a kernel no larger than the padded input, an embed
width divisible by the heads, split sections that add up to the size) declare an `autotest`
strategy in their registry entry: a function `(draw, spec) -> Case` (the kit is
`tgc.compiler.ops.drawing`) that draws the inputs and the arguments it knows about (and may call
`generic_args` for the rest). After either, `_finish`
draws the spelling of each keyword (its name or an alias) and which scalar arguments and input
sizes become model parameters (`model Autotest(n4: int = 4)`), so symbolic emission is exercised.

Every drawn case must be valid: a diagnostic from the front end or the checker is a failure (of
the op or of its strategy). One exception: an op may refuse a model parameter where it needs a
literal (E056, "not supported", e.g. a bool that changes the emitted forward); the arguments the
error names are then written as literals and the case is compiled again. Every hyper-parameter
must take at least two different values over the examples (from `MIN_VARIED` examples on), so a
strategy cannot silently pin one.

Imports torch and hypothesis; `tgc check` never imports it.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from tgc.compiler.ops.drawing import Case, Draw, Name, Tensor, generic, strategies  # noqa: F401  (Tensor: the kit's name tests import from here)

MAX_REPORTED = 3  # failing examples reported per op (the rest are counted)
MIN_VARIED = 10  # from this many examples on, every hyper-parameter must have taken two values


# ------------------------------------------------------------------------------ cases


# ------------------------------------------------------------------------------ rendering


def literal(value: Any) -> str:
    """tg source of an argument value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Name):
        return value.id
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a tg literal")


_PY_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def output_names(spec, case: Case) -> list[str]:
    if case.chain or case.outputs == 1:
        return ["out"]
    base = list(spec.outputs) if spec.outputs_from is None and len(spec.outputs) == case.outputs else [
        f"o{i}" for i in range(case.outputs)]
    return ["_" if i in case.discard else f"res_{n}" for i, n in enumerate(base)]


def render(spec, case: Case) -> str:
    """The `.tg` program for one case: one model, declared inputs, one statement, the outputs."""
    params: dict[str, str] = {}

    def size(value: int) -> str:
        if not case.hoist_sizes:
            return str(value)
        params[f"n{value}"] = f"n{value}: int = {value}"
        return f"n{value}"

    lines = []
    for t in case.inputs:
        dims = []
        for name, s in t.dims:
            if s is None:
                dims.append(name or "?")
            else:
                dims.append(f"{name}={size(s)}" if name else size(s))
        prefix = {"float32": "", "int64": "long"}.get(t.dtype, t.dtype)
        lines.append(f"    input {t.name}: {prefix}[{', '.join(dims)}]")

    keywords = []
    for p in spec.params:
        if p.name not in case.args:
            continue
        value = case.args[p.name]
        text = literal(value)
        if p.name in case.hoist:
            pname = f"p_{p.name}"
            params[pname] = f"{pname}: {_PY_TYPES[type(value)]} = {text}"
            text = pname
        keywords.append(f"{case.spell.get(p.name, p.name)}={text}")

    tensors = case.call or [t.name for t in case.inputs]
    outs = output_names(spec, case)
    if case.chain:
        args = ", ".join([*tensors[1:], *keywords])
        lines.append(f"    out = {tensors[0]} >> {spec.name}({args}) >> identity")
    else:
        lines.append(f"    {', '.join(outs)} = {spec.name}({', '.join([*tensors, *keywords])})")
    lines.append(f"    output {', '.join(o for o in outs if o != '_')}")
    header = "model Autotest" + (f"({', '.join(params[k] for k in sorted(params))})" if params else "")
    if getattr(spec, "library", None):  # a library op (`mlp`) needs its `import std`
        header = f"import {spec.library}\n{header}"
    return header + " {\n" + "\n".join(lines) + "\n}\n"


# ------------------------------------------------------------------------------ generic drawing


# ------------------------------------------------------------------------------ drawing


def _finish(draw: Draw, spec, case: Case) -> Case:
    """Draw keyword spellings (aliases) and which scalars become model parameters."""
    st = strategies()
    for name, value in case.args.items():
        p = spec.param(name)
        if p.aliases:
            case.spell[name] = draw(st.sampled_from([p.name, *p.aliases]))
        scalar = type(value) in _PY_TYPES and not isinstance(value, Name)
        hoistable = scalar and p.type in ("int", "float", "bool", "str") and name != spec.outputs_from
        if hoistable and draw(st.booleans()):
            case.hoist.add(name)
    case.hoist_sizes = draw(st.booleans())
    return case


def draw_case(draw: Draw, spec) -> Case:
    strategy = spec.autotest or generic
    return _finish(draw, spec, strategy(draw, spec))


# ------------------------------------------------------------------------------ running


def check_case(spec, case: Case, compile: bool = False) -> list[str]:
    """Compile one case and compare it with PyTorch; the differences (empty when none).

    With `compile`, the module must also run under `torch.compile(fullgraph=True,
    backend="eager")` (TorchDynamo's capture with no code generation: a graph break or an
    unsupported construct in the emitted forward fails) and give the outputs' shapes again.
    """
    from tgc.compiler.diagnostics import CompileError
    from tgc.compiler.emit import emit
    from tgc.compiler.naming import name_program
    from tgc.compiler.pipeline import front_end
    from tgc.compiler.shapes import check

    from .verify import load_source, run_model, verify

    path = f"autotest_{spec.name}.tg"
    while True:
        text = render(spec, case)
        try:
            result = front_end(path, text=text)
            errors = [d for d in result.diagnostics if d.is_error]
            if errors or result.program is None:
                return [f"the front end rejects it: {_diags(errors)}"]
            try:
                checked, _ = check(result.program)
                break
            except CompileError as exc:
                errors = [d for d in exc.diagnostics if d.is_error]
                if _literal_only(spec, case, errors):
                    continue  # retry with those arguments written as literals
                return [f"the checker rejects it: {_diags(errors)}"]
        except Exception as exc:
            return [f"internal error in the compiler: {type(exc).__name__}: {exc}"]
    try:
        names = name_program(checked)
        source = emit(checked, path, names)
        messages = verify(checked, path, source, names)  # the very source, outputs included
    except Exception as exc:
        return [f"internal error in emission or verification: {type(exc).__name__}: {exc}"]
    if compile and not messages:
        namespace, error = load_source(source, path)
        assert namespace is not None, error  # verify ran this very source
        for shapes, graph_names in zip(checked.models, names.models):
            run = run_model(namespace, graph_names.cls, shapes)
            outs = run.outputs if isinstance(run.outputs, tuple) else (run.outputs,)
            messages.extend(compile_check(run.module, run.inputs, outs))
    return messages


def compile_check(module, inputs, expected) -> list[str]:
    """`module` under `torch.compile(fullgraph=True, backend="eager")`: [] when it captures whole
    and gives outputs of the shapes of `expected` (the eager outputs)."""
    import torch

    torch._dynamo.reset()  # every example is a new class: keep dynamo's caches small
    try:
        # Dynamo refuses nn.LSTM/nn.GRU unless its `allow_rnn` flag is set (off by default: a
        # model with lstm compiles with a graph break there, and fails only with fullgraph=True).
        # The check is about the code tgc emits around such modules, so the flag is set here.
        with torch._dynamo.config.patch(allow_rnn=True):
            compiled = torch.compile(module, fullgraph=True, backend="eager")
            with torch.no_grad():
                got = compiled(*inputs)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return [f"torch.compile(fullgraph=True, backend=\"eager\") fails: {type(exc).__name__}: {first}"]
    finally:
        torch._dynamo.reset()
    got = got if isinstance(got, tuple) else (got,)
    shapes = [list(getattr(t, "shape", [])) for t in got]
    want = [list(getattr(t, "shape", [])) for t in expected]
    if shapes != want:
        return [f"torch.compile: outputs have shapes {shapes}, eager gives {want}"]
    return []


def _literal_only(spec, case: Case, errors) -> bool:
    """An op may refuse a model parameter where it needs a literal (E056, "not supported"): the
    arguments such errors name stop being parameters. False when nothing is left to change."""
    unsupported = [d.message for d in errors if d.code == "E056"]
    if not unsupported or len(unsupported) != len(errors) or not (case.hoist or case.hoist_sizes):
        return False
    named = {n for n in case.hoist for m in unsupported
             if any(f"`{w}`" in m for w in (f"p_{n}", n, case.spell.get(n, n)))}
    if named:
        case.hoist -= named
    else:
        case.hoist.clear()
        case.hoist_sizes = False
    return True


def _diags(diags) -> str:
    return "; ".join(f"{d.code} line {d.span.line}: {d.message}" for d in diags)


def autotest_op(name: str, max_examples: int = 10, compile_examples: int = 0) -> list[str]:
    """Failures of op `name` over `max_examples` random valid programs; [] when it passes.

    The first `compile_examples` examples are also run under `torch.compile` (`check_case`).
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import strategies as st

    from tgc.compiler.ops.registry import lookup

    spec = lookup(name)
    if spec is None:
        return [f"`{name}` is not a registered op"]
    if spec.shape is None or spec.emit is None:
        parts = (("shape rule", spec.shape), ("emission", spec.emit))
        missing = " and ".join(what for what, f in parts if f is None)
        return [f"`{name}` has no {missing} yet"]

    failures: list[str] = []
    failing = 0
    seen: dict[str, set[str]] = {p.name: set() for p in spec.params}
    examples = 0

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate),
              verbosity=Verbosity.quiet)
    @given(st.data())
    def run(data) -> None:
        nonlocal examples, failing
        examples += 1
        try:
            case = draw_case(data.draw, spec)
        except Exception as exc:
            failures.append(f"example {examples}: the strategy fails: {type(exc).__name__}: {exc}")
            failing += 1
            return
        for p in spec.params:
            value = case.args.get(p.name, None if p.required else p.default)
            seen[p.name].add(repr(value))
        messages = check_case(spec, case, compile=examples <= compile_examples)
        if messages:
            failing += 1
            if failing <= MAX_REPORTED:
                program = "\n".join("    " + line for line in render(spec, case).splitlines())
                failures.append(f"{name} example {examples}:\n" + "\n".join("  " + m for m in messages)
                                + "\n  program:\n" + program)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run()
        except Exception as exc:  # hypothesis itself gave up; the examples so far still count
            failures.append(f"{name}: hypothesis stopped: {type(exc).__name__}: {exc}")
    if failing > MAX_REPORTED:
        failures.append(f"{name}: {failing - MAX_REPORTED} more failing examples of {examples}")
    for p in spec.params:
        if p.type == "dimname" and p.keyword_only:
            continue  # `tie=NAME` needs a second op, a layer: tested in tests/test_v04_values.py
        if examples >= MIN_VARIED and len(seen[p.name]) < 2:
            failures.append(f"{name}: hyper-parameter `{p.name}` took only {sorted(seen[p.name])} in "
                            f"{examples} examples; its strategy must draw at least two values")
    return failures


def autotest_all(max_examples: int = 10) -> dict[str, list[str]]:
    """`autotest_op` for every registered op, by name."""
    from tgc.compiler.ops.registry import all_ops

    return {name: autotest_op(name, max_examples) for name in all_ops()}
