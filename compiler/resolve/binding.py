"""Binding a call to a signature: which argument is which input or hyper-parameter.

A callee (`Callee`) is what a call needs to know of an op or a block, whichever it is. `bind`
sorts a call's arguments into tensor inputs and hyper-parameters by the callee's signature,
reports arity, keyword and type mistakes (E020-E027), checks each hyper-parameter's value by
its type (`ops/paramtypes.py`) and adds the call's node to the graph being resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Protocol, Sequence

from .. import ast as A
from .. import ir
from ..diagnostics import Diagnostic, suggest
from ..ops.paramtypes import param_type
from ..ops.registry import REQUIRED, OpSpec, lookup
from .common import expr_kind

# ------------------------------------------------------------------------------ callees


@dataclass(frozen=True)
class CalleeParam:
    """A hyper-parameter of a callee: an op's `HyperParam`, or a block's parameter."""

    name: str
    aliases: tuple[str, ...]
    type: str
    required: bool
    choices: tuple | None = None
    keyword_only: bool = False


@dataclass(frozen=True)
class Callee:
    """What a call needs to know about an op or a block, whichever it is."""

    name: str
    kind: str  # "op" or "block"
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: tuple[CalleeParam, ...]
    variadic: bool = False
    min_inputs: int = 1
    optional_inputs: int = 0
    outputs_from: str | None = None
    has_weights: bool = True
    varargs: str | None = None  # the hyper-parameter that collects the remaining positional ones
    max_operands: int | None = None  # a variadic op that takes at most this many (sub, div)
    varkw: str | None = None  # the hyper-parameter that collects the keywords it has no parameter for

    def param(self, name: str) -> CalleeParam | None:
        for p in self.params:
            if p.name == name or name in p.aliases:
                return p
        return None

    @property
    def required_inputs(self) -> int:
        return self.min_inputs if self.variadic else len(self.inputs) - self.optional_inputs


def op_callee(spec: OpSpec) -> Callee:
    return Callee(
        name=spec.name,
        kind="op",
        inputs=spec.inputs,
        outputs=spec.outputs,
        params=tuple(
            CalleeParam(p.name, p.aliases, p.type, p.default is REQUIRED, p.choices, p.keyword_only)
            for p in spec.params
        ),
        variadic=spec.variadic,
        min_inputs=spec.min_inputs,
        optional_inputs=spec.optional_inputs,
        outputs_from=spec.outputs_from,
        has_weights=spec.has_weights,
        varargs=spec.varargs,
        max_operands=spec.max_operands,
        varkw=spec.varkw,
    )


def block_callee(block: A.Block, params: Sequence[ir.ParamDef]) -> Callee:
    return Callee(
        name=block.name,
        kind="block",
        inputs=tuple(n.id for n in block.inputs),
        outputs=tuple(n.id for n in block.outputs),
        params=tuple(CalleeParam(p.name, (), p.type, p.default is None) for p in params),
        min_inputs=len(block.inputs),
    )


def with_weights(callee: Callee, has: bool) -> Callee:
    return replace(callee, has_weights=has)


def has_weights(graph: ir.Graph, signatures: Mapping[str, Callee]) -> bool:
    """Whether anything in `graph` has weights (a block without a known signature counts)."""
    for node in graph.nodes:
        if isinstance(node, ir.Repeat):
            if has_weights(node.body, signatures):
                return True
        elif isinstance(node, ir.BlockCall):
            sig = signatures.get(node.op)
            if sig is None or sig.has_weights:
                return True
        else:
            spec = lookup(node.op)
            if spec is not None and spec.has_weights:
                return True
    return False


# ------------------------------------------------------------------------------ binding


class Scope(Protocol):
    """What binding needs from the graph the call is in (`statements.GraphResolver`)."""

    diags: list[Diagnostic]
    params: Mapping[str, ir.ParamDef]
    values: Mapping[str, Any]
    nodes: list[ir.Node]

    def err(self, span: A.Span, code: str, message: str, hint: str | None = None) -> None: ...

    def fresh(self, base: str) -> str:
        """A new internal value name."""
        ...

    def input_arg(self, expr: A.Expr, index: int, base: str) -> str | None:
        """Resolve an argument that is a tensor input (a name, a call, a chain, arithmetic)."""
        ...

    def is_value_expr(self, expr: A.Expr) -> bool:
        """Whether an argument stands for a tensor (rather than a number or a hyper-parameter)."""
        ...

    def param_ref(self, name: A.Name, want: str) -> None: ...

    def size_expr(self, expr: A.Expr) -> None: ...


def bind(
    scope: Scope,
    callee: Callee,
    call: A.Call,
    current: str | None,
    index: int,
    base: str,
    out_names: tuple[str, ...],
    frozen: bool,
    span: A.Span,
    targets: Sequence[A.Name],
) -> tuple[str, ...] | None:
    """Bind `call` (applied to the value `current`, if any) to `callee` and add its node.

    Returns the names of the node's outputs, or None after an error.
    """
    b = _Binding(scope, callee, call, current, index, base, span)
    b.split_arguments()
    if callee.variadic:
        b.bind_variadic_inputs()
    else:
        rest = b.bind_inputs()
        b.check_missing_inputs()
        b.bind_positional_hypers(rest)
    b.bind_keywords()
    b.check_required()
    b.check_values()
    return b.add_node(out_names, frozen, targets)


class _Binding:
    """One call's arguments while they are bound: inputs, hyper-parameters, and whether all is well."""

    def __init__(
        self, scope: Scope, callee: Callee, call: A.Call, current: str | None, index: int, base: str, span: A.Span
    ):
        self.scope = scope
        self.callee = callee
        self.call = call
        self.current = current
        self.index = index
        self.base = base
        self.span = span
        self.ok = True
        self.inputs: list[str] = [current] if current is not None else []
        self.positional: list[A.Arg] = []
        self.keywords: list[A.Arg] = []
        self.bound: dict[str, A.Expr] = {}
        self.bound_span: dict[str, A.Span] = {}
        self.misspelt: list[str] = []  # unknown keywords
        # a hyper-parameter was given where an input goes: those after it are shifted, no E023
        self.positional_hyper = False

    def fail(self, span: A.Span, code: str, message: str, hint: str | None = None) -> None:
        self.scope.err(span, code, message, hint)
        self.ok = False

    def at_call(self, part: A.Span) -> A.Span:
        """Where a wrong number of inputs is reported: `part` of the call when nothing is piped
        in, else the whole chain element."""
        return part if self.current is None else self.span

    def split_arguments(self) -> None:
        for a in self.call.args:
            if a.name is None:
                if self.keywords:
                    self.fail(a.span, "E022", "a positional argument cannot follow a keyword argument",
                              "put positional arguments first")
                    continue  # not bound as well: that would add "given twice" or type errors
                self.positional.append(a)
            else:
                self.keywords.append(a)

    def add_input(self, expr: A.Expr) -> None:
        v = self.scope.input_arg(expr, self.index, self.base)
        if v is None:
            self.ok = False
        self.inputs.append("?" if v is None else v)

    # ---- inputs
    def bind_variadic_inputs(self) -> None:
        """Every positional argument of a variadic op is an input."""
        callee = self.callee
        for a in self.positional:
            if self.scope.is_value_expr(a.value):
                self.add_input(a.value)
            elif callee.param("scalar") is not None and "scalar" not in self.bound:
                # a number operand of arithmetic: `div(y, 4.0)`, `sub(1, g)`
                self.bind_param("scalar", a.value, a.span)
                if len(self.inputs) == 0:
                    self.bind_param("scalar_first", A.Bool(a.span, True), a.span)
            elif callee.param("scalar") is not None:
                self.fail(a.span, "E026", f"`{callee.name}` takes at most one number operand",
                          "combine the numbers first: `x * (2 * k)` rather than `mul(x, 2, k)`")
            else:
                self.fail(a.span, "E026",
                          f"`{callee.name}` takes every positional argument as an input; "
                          f"its hyper-parameters are keyword-only",
                          _variadic_hint(callee, a))
                self.positional_hyper = True
        operands = len(self.inputs) + ("scalar" in self.bound or any(a.name == "scalar" for a in self.keywords))
        if self.ok and callee.max_operands is not None and operands > callee.max_operands:
            self.fail(self.at_call(self.call.name_span), "E021",
                      f"`{callee.name}` takes {callee.max_operands} operands, got {operands}",
                      f"for example `{callee.name}(a, b)`")
        if self.ok and operands < callee.min_inputs:
            self.fail(self.at_call(self.call.name_span), "E021",
                      f"`{callee.name}` needs at least {callee.min_inputs} input{'s' if callee.min_inputs != 1 else ''}, "
                      f"got {len(self.inputs)}",
                      f"for example `{callee.name}({', '.join('abcdefgh'[: max(2, callee.min_inputs)])})`")

    def bind_inputs(self) -> list[A.Arg]:
        """Fill the input slots from the positional arguments; returns those left over."""
        callee = self.callee
        n_in = len(callee.inputs)
        pos = list(self.positional)
        while len(self.inputs) < n_in and pos:
            a = pos[0]
            required = len(self.inputs) < callee.required_inputs
            slot = callee.inputs[len(self.inputs)]
            if self.scope.is_value_expr(a.value) and not (
                isinstance(a.value, A.Name) and not required and a.value.id in self.scope.params
            ):
                pos.pop(0)
                self.add_input(a.value)
            elif required:
                pos.pop(0)
                where = f"its input `{slot}`" if n_in > 1 else "its input"
                example = (
                    f"pipe a value into it: `x >> {callee.name}({_src_args(pos, a)})`"
                    if len(self.inputs) == 0
                    else f"pass hyper-parameters after the inputs ({', '.join(callee.inputs[: callee.required_inputs])})"
                )
                self.fail(a.span, "E021",
                          f"the argument in this position is {where}, but {expr_kind(a.value)} was given",
                          example)
                self.positional_hyper = True
                self.inputs.append("?")
            else:
                self.fail(a.span, "E021",
                          f"the argument in this position is the optional input `{slot}` of `{callee.name}`, "
                          f"but {expr_kind(a.value)} was given",
                          "pass hyper-parameters by name here, for example "
                          + ", ".join(f"`{p.name}=...`" for p in callee.params[:1]))
                pos.pop(0)
                self.positional_hyper = True
                break
        return pos

    def check_missing_inputs(self) -> None:
        callee = self.callee
        missing = callee.inputs[len(self.inputs) : callee.required_inputs]
        if self.ok and missing and not any(a.name in missing for a in self.keywords):  # else E020 says it
            noun = "input" if callee.required_inputs == 1 else "inputs"
            self.fail(self.at_call(self.call.span), "E021",
                      f"`{callee.name}` takes {callee.required_inputs} {noun} "
                      f"({', '.join(callee.inputs[: callee.required_inputs])}), got {len(self.inputs)}",
                      f"missing {', '.join(f'`{m}`' for m in missing)}")

    # ---- hyper-parameters
    def bind_param(self, name: str, value: A.Expr, span: A.Span) -> None:
        self.bound[name] = value
        self.bound_span[name] = span

    def bind_positional_hypers(self, hyper: list[A.Arg]) -> None:
        """The positional arguments after the inputs are hyper-parameters, in signature order."""
        callee = self.callee
        if callee.varargs is not None:  # `mlp(128, 64)`: the rest is one list, `widths=[128, 64]`
            k = [p.name for p in callee.params].index(callee.varargs)
            hyper, rest = hyper[:k], hyper[k:]
            if rest:
                single = len(rest) == 1 and isinstance(rest[0].value, A.ListExpr)
                span_all = rest[0].span.to(rest[-1].span)
                value = rest[0].value if single else A.ListExpr(span_all, tuple(a.value for a in rest))
                self.bind_param(callee.varargs, value, span_all)
        n_in = len(callee.inputs)
        positional = [p for p in callee.params if not p.keyword_only]
        for i, a in enumerate(hyper):
            if i >= len(positional):
                self.fail(a.span, "E022",
                          f"`{callee.name}` takes at most {len(positional)} positional hyper-parameter"
                          f"{'s' if len(positional) != 1 else ''} after its input"
                          f"{'s' if n_in != 1 else ''}",
                          _signature_hint(callee))
                break
            self.bind_param(positional[i].name, a.value, a.span)

    def bind_keywords(self) -> None:
        callee = self.callee
        for a in self.keywords:
            assert a.name is not None and a.name_span is not None
            p = callee.param(a.name)
            if p is None and a.name in callee.inputs and callee.inputs.index(a.name) == len(self.inputs):
                self.add_input(a.value)  # an input by its name, in its place: `expand(p, like=x)`
                continue
            if p is None and callee.varkw is not None:  # `rename(feature=channel)`
                pairs = self.bound.get(callee.varkw)
                items = (*pairs.items, ) if isinstance(pairs, A.ListExpr) else ()
                item = A.NamedItem(a.span, a.name, a.name_span, a.value)
                span = a.span if not items else items[0].span.to(a.span)
                self.bind_param(callee.varkw, A.ListExpr(span, (*items, item)), span)
                continue
            if p is None:
                if a.name in callee.inputs:
                    hint = f"`{a.name}` is an input of `{callee.name}`; pass inputs positionally"
                else:
                    names = [n for q in callee.params for n in (q.name, *q.aliases)]
                    hint = suggest(a.name, names) or _signature_hint(callee)
                self.fail(a.name_span, "E020", f"`{callee.name}` has no parameter `{a.name}`", hint)
                self.misspelt.append(a.name)
                continue
            if p.name in self.bound:
                first = self.bound_span[p.name]
                self.fail(a.name_span, "E024", f"`{p.name}` of `{callee.name}` is given twice",
                          f"first on line {first.line}, column {first.column}")
                continue
            self.bind_param(p.name, a.value, a.span)

    def check_required(self) -> None:
        callee = self.callee
        for p in callee.params:
            if any(suggest(m, (p.name, *p.aliases)) for m in self.misspelt):
                continue  # E020 already suggests this parameter for a misspelt keyword
            if p.required and p.name not in self.bound and not self.positional_hyper:
                example = "128, 64" if p.name == callee.varargs else f"..., {p.name}=..."
                self.fail(self.call.name_span, "E023", f"`{callee.name}` needs the hyper-parameter `{p.name}`",
                          f"for example `{callee.name}({example})`")

    def check_values(self) -> None:
        for p in self.callee.params:
            if p.name in self.bound and not check_hyper(self.scope, self.callee, p, self.bound[p.name]):
                self.ok = False

    # ---- the node
    def add_node(self, out_names: tuple[str, ...], frozen: bool, targets: Sequence[A.Name]) -> tuple[str, ...] | None:
        scope, callee = self.scope, self.callee
        n_out = output_count(scope, callee, self.bound)
        if n_out is None:
            self.ok = False
        if not self.ok:
            return None
        assert n_out is not None
        out_list = callee.outputs if not callee.outputs_from else tuple(f"out{i}" for i in range(n_out))
        if len(out_names) > 1 and len(out_names) != n_out:
            destructure_error(scope, targets, callee.name, out_list, self.span)
            return None
        outputs = list(out_names)
        while len(outputs) < n_out:
            outputs.append(scope.fresh(self.base))
        args = tuple((p.name, self.bound[p.name]) for p in callee.params if p.name in self.bound)
        # an op of the statement's own chain is named after the statement (LANGUAGE.md 13: `self.v`);
        # one inside a call argument or arithmetic gets a derived name (`v_linear`)
        label = f"{self.base}_{callee.name}" if getattr(scope, "nested", 0) else self.base
        if getattr(scope, "op_labels", False):  # a repeat body, a class of its own: `self.linear`
            label = callee.name
        scope.nodes.append(
            (ir.OpCall if callee.kind == "op" else ir.BlockCall)(
                self.span, callee.name, tuple(self.inputs), args, tuple(outputs), frozen, self.base, label,
                self.index)
        )
        return tuple(outputs)


def output_count(scope: Scope, callee: Callee, bound: Mapping[str, A.Expr]) -> int | None:
    """How many outputs the call gives; None (reported) when it cannot be known."""
    if not callee.outputs_from:
        return len(callee.outputs)
    value = bound.get(callee.outputs_from)
    count = None
    if isinstance(value, A.Number) and isinstance(value.value, int) and value.value >= 1:
        count = value.value
    if isinstance(value, A.ListExpr) and value.items:
        count = len(value.items)
    if count is not None and count > MAX_OUTPUTS:
        scope.err(value.span, "E057", f"`{callee.name}` into {count} pieces gives more values than tgc "
                  f"handles ({MAX_OUTPUTS})", "every piece is a value of its own; cut into fewer pieces")
        return None
    if count is not None:
        return count
    if value is not None and not any(d.is_error and d.span == value.span for d in scope.diags):
        scope.err(value.span, "E025",
                  f"the number of pieces of `{callee.name}` must be a positive integer literal or a list of sizes",
                  "the count of outputs must be known when the file is compiled")
    return None


# The most values one op may give (`chunk(x, n)` makes n): each is a name of its own.
MAX_OUTPUTS = 4096


def destructure_error(scope: Scope, targets: Sequence[A.Name], name: str, outs: Sequence[str], span: A.Span) -> None:
    got = len(targets)
    count = len(outs)
    if count > 6:  # a long list of generated names helps no one
        outs = [*outs[:3], "...", outs[-1]]
    scope.err(
        targets[0].span.to(targets[-1].span) if targets else span,
        "E027",
        f"`{name}` gives {count} value{'s' if count != 1 else ''} "
        f"({', '.join(outs)}), but {got} name{'s are' if got != 1 else ' is'} assigned",
        "assign one name per output; use `_` for an output you do not need",
    )


# ------------------------------------------------------------------------------ hyper-parameter values


def check_hyper(scope: Scope, callee: Callee, p: CalleeParam, value: A.Expr) -> bool:
    """Check the value bound to a hyper-parameter by its type; False after an error."""
    before = len(scope.diags)
    param_type(p.type).check(value, _HyperChecker(scope, f"`{p.name}` of `{callee.name}`", p.choices))
    return not any(d.is_error for d in scope.diags[before:])


class _HyperChecker:
    """The resolver's side of `ParamType.check` (the `paramtypes.Checker` protocol)."""

    def __init__(self, scope: Scope, where: str, choices: tuple | None):
        self.scope = scope
        self.where = where
        self.choices = choices

    def error(self, span: A.Span, code: str, message: str, hint: str | None = None) -> None:
        self.scope.err(span, code, message, hint)

    def mismatch(self, expr: A.Expr, what: str) -> None:
        self.scope.err(expr.span, "E025", f"{self.where} must be {what}, not {expr_kind(expr)}")

    def suggest(self, word: str, known: Sequence[str]) -> str | None:
        return suggest(word, known)

    def is_param(self, name: str) -> bool:
        return name in self.scope.params

    def is_value(self, name: str) -> bool:
        return name in self.scope.values

    def param_ref(self, name: A.Name, want: str) -> None:
        self.scope.param_ref(name, want)

    def size_expr(self, expr: A.Expr) -> None:
        self.scope.size_expr(expr)


# ------------------------------------------------------------------------------ hints


def _variadic_hint(callee: Callee, a: A.Arg) -> str:
    names = [p.name for p in callee.params]
    if "dim" in names:
        return f"pass it by name: `dim={A.unparse(a.value)}`"
    return "pass hyper-parameters by name" + (f": {', '.join(names)}" if names else "; this op has none")


def _signature_hint(callee: Callee) -> str:
    params = ", ".join(p.name + ("= (by name)" if p.keyword_only else "") for p in callee.params) or "none"
    return f"`{callee.name}` takes inputs ({', '.join(callee.inputs) or '...'}) and hyper-parameters: {params}"


def _src_args(rest: list[A.Arg], first: A.Arg) -> str:
    return ", ".join(A.unparse(a.value) for a in [first, *rest])
