"""One graph's statements: scopes, values, chains, calls and `repeat`.

A `GraphResolver` resolves the body of one model, block or `repeat`: it tracks which names are
values, parameters and not-yet-assigned names, turns each chain into nodes (a call's arguments
are bound by `binding.bind`), and reports undefined, misused and unused names and the
`output`/`merge`/`load`/`repeat` rules of LANGUAGE.md section 10.
"""

from __future__ import annotations

import difflib

from dataclasses import dataclass, replace
from typing import Iterable, Protocol, Sequence

from .. import ast as A
from .. import ir
from ..diagnostics import Diagnostic, error, suggest, warning
from ..ops.paramtypes import param_type
from ..ops.registry import OpSpec, lookup
from .binding import Callee, bind, destructure_error, has_weights, op_callee
from .common import PARAM_TYPE_NAMES, expr_kind

# Spellings accepted for input dtypes, and the canonical name each stands for.
DTYPES: dict[str, str] = {
    "float": "float32",
    "float32": "float32",
    "float64": "float64",
    "double": "float64",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "long": "int64",
    "int64": "int64",
    "int": "int32",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}


class ProgramScope(Protocol):
    """What a graph needs from the program it is in (`program.ProgramResolver`)."""

    program: A.Program
    file: str
    diags: list[Diagnostic]
    libraries: frozenset[str]

    def visible_ops(self) -> dict[str, OpSpec]: ...


@dataclass
class Value:
    """A name that holds a tensor: an input, or a statement's result."""

    name: str
    span: A.Span
    kind: str  # "input" or "value"
    used: bool = False
    internal: bool = False


@dataclass
class Layer:
    """A `layer NAME = ...` definition: the call it applies, and how it has been used."""

    name: str
    span: A.Span
    element: A.OpElement
    uses: int = 0
    failed: bool = False  # its first use was reported wrong: later uses stay silent



class GraphResolver:
    """Resolves the body of one model, block or `repeat` into its graph's nodes."""

    def __init__(
        self,
        parent: ProgramScope,
        kind: str,
        name: str,
        signatures: dict[str, Callee],
        report: bool = True,
    ):
        self.parent = parent
        self.kind = kind
        self.name = name
        self.signatures = signatures
        self.report = report
        self.file = parent.file
        self.diags: list[Diagnostic] = []
        self.values: dict[str, Value] = {}
        self.params: dict[str, ir.ParamDef] = {}
        self.used_params: set[str] = set()
        self.nodes: list[ir.Node] = []
        self.inputs: list[ir.InputDef] = []
        self.implicit_inputs = False
        self.later: dict[str, A.Span] = {}  # names assigned by a later statement
        self.all_assigned: set[str] = set()
        self.block_calls: list[tuple[str, A.Span]] = []
        self.statement_nodes: dict[str, list[ir.Node]] = {}
        self.loads: list[ir.LoadDef] = []
        self.counter = 0
        # names whose definition failed with an error already reported: uses stay silent
        self.poisoned: set[str] = set()
        self.span: A.Span | None = None  # the model's, once known
        self.owner_kind = kind  # "model" or "block"; a repeat body takes its owner's
        # names used before their definition (E013 reported): not "never used" afterwards
        self.used_early: set[str] = set()
        # > 0 while resolving a value inside a call argument, arithmetic or an index: its ops get
        # derived names (`v_linear`), not the statement's
        self.nested = 0
        self.op_labels = False  # a repeat body: its ops' submodules are named after the ops
        # `layer NAME = op(...)`: defined, not applied; each `v >> NAME` shares its weights
        self.layers: dict[str, Layer] = {}

    # ---- reporting
    def err(self, span: A.Span, code: str, message: str, hint: str | None = None) -> None:
        self.diags.append(error(span, code, message, hint))

    def warn(self, span: A.Span, code: str, message: str, hint: str | None = None) -> None:
        self.diags.append(warning(span, code, message, hint))

    def _finish(self) -> None:
        # an imported block's warnings are not the importer's business, but its errors are:
        # dropping them left a failed block out of the IR while its callers still used it
        self.parent.diags.extend(d for d in self.diags if self.report or d.is_error)

    # ---- graphs
    def block(self, b: A.Block, params: tuple[ir.ParamDef, ...]) -> ir.Graph | None:
        self.params = {p.name: p for p in params}
        for n in b.inputs:
            if n.id in self.values:
                self.err(n.span, "E011", f"block input `{n.id}` is declared twice")
                continue
            if n.id in self.params:
                self.err(n.span, "E011", f"`{n.id}` is both a parameter and an input of block `{b.name}`")
            self.values[n.id] = Value(n.id, n.span, "input")
            self.inputs.append(ir.InputDef(n.span, n.id, "float32", None, True))
        outs: list[str] = []
        for n in b.outputs:
            if n.id in outs:
                self.err(n.span, "E011", f"block output `{n.id}` is declared twice")
            outs.append(n.id)
        self._statements(b.body)
        for n in b.outputs:
            v = self.values.get(n.id)
            if v is None and n.id not in self.poisoned:  # a failed assignment is reported already
                self.err(
                    n.span,
                    "E034",
                    f"block output `{n.id}` is never assigned",
                    f"assign it in the body: `{n.id} = ...`",
                )
            elif v is not None:
                v.used = True
        self._unused()
        self._finish()
        if any(d.is_error for d in self.diags):
            return None
        return ir.Graph(b.span, "block", b.name, b.doc, params, tuple(self.inputs), tuple(self.nodes), tuple(outs))

    def model_body(
        self,
        span: A.Span,
        name: str,
        doc: str | None,
        params: tuple[ir.ParamDef, ...],
        body: Sequence[A.Statement],
    ) -> ir.Graph | None:
        self.params = {p.name: p for p in params}
        self.span = span  # where "computes nothing" points when the body is empty
        self.implicit_inputs = not any(isinstance(s, A.InputDecl) for s in body)
        outputs = self._statements(body)
        self._unused(outputs)
        self._finish()
        if any(d.is_error for d in self.diags):
            return None
        return ir.Graph(
            span, "model", name, doc, params, tuple(self.inputs), tuple(self.nodes), tuple(outputs),
            tuple(self.loads),
        )

    # ---- statements
    def _statements(self, body: Sequence[A.Statement]) -> list[str]:
        for s in body:
            if isinstance(s, A.Assign):
                for t in s.targets:
                    if t.id != "_":
                        self.later.setdefault(t.id, t.span)
                        self.all_assigned.add(t.id)
        outputs: list[str] = []
        explicit: A.Statement | None = None
        last = len(body) - 1
        for i, s in enumerate(body):
            for t in getattr(s, "targets", ()):
                if self.later.get(t.id) is t.span:
                    del self.later[t.id]
            if isinstance(s, A.InputDecl):
                self._input_decl(s)
            elif isinstance(s, A.Assign):
                self._assign(s, i)
            elif isinstance(s, A.LayerDef):
                self._layer_def(s)
            elif isinstance(s, A.ExprStmt):
                if i != last:
                    self.err(
                        s.span,
                        "E031",
                        "a chain without a name is allowed only as the last statement",
                        "give it a name: `h = ...`",
                    )
                    self._chain(s.value, i, "out", ("out",))
                    continue
                if self.kind == "block":
                    self.err(s.span, "E031", "a block's last statement must assign its outputs",
                             "name the value after one of the block's outputs")
                    continue
                if explicit is not None:
                    self.err(s.span, "E030", "a model has either an `output`/`merge` or a final unnamed chain, not both")
                    continue
                name = self.fresh("out")
                res = self._chain(s.value, i, "out", (name,))
                if res:
                    outputs = [res[0]]
                    explicit = s
            elif isinstance(s, (A.Output, A.Merge)):
                word = "output" if isinstance(s, A.Output) else "merge"
                if self.kind == "block":
                    self.err(s.span, "E030", f"`{word}` is not allowed in a block",
                             "a block names its outputs in its header: `block b(...) (x) -> y { ... }`")
                    continue
                if explicit is not None:
                    other = "output" if isinstance(explicit, A.Output) else "merge"
                    self.err(s.span, "E030", "a model can have only one `output` or `merge`",
                             f"`{other}` is already on line {explicit.span.line}")
                    continue
                explicit = s
                if isinstance(s, A.Output):
                    outputs = self._output(s)
                else:
                    name = self.fresh("out")
                    res = self._call(s.call, None, i, "out", (name,), frozen=False, span=s.call.span, elem_span=s.call.span)
                    outputs = list(res[:1]) if res else []
            elif isinstance(s, A.Load):
                self._load(s)
        if explicit is None and self.kind == "model":
            for s in reversed(body):
                if isinstance(s, A.Assign):
                    outputs = [t.id for t in s.targets if t.id != "_" and t.id in self.values]
                    break
            if not outputs and not any(d.is_error for d in self.diags):
                span = body[-1].span if body else self.span or self.parent.program.span
                self.err(span, "E030", f"model `{self.name}` computes nothing to return",
                         "assign a value, or name the outputs with `output NAME`")
        return outputs

    def _input_decl(self, s: A.InputDecl) -> None:
        if self.kind == "block":
            self.err(s.span, "E033", "`input` is not allowed in a block",
                     "a block names its inputs in its header: `block b(...) (x) -> y { ... }`")
            return
        if s.name in self.values:
            self.err(s.name_span, "E011", f"input `{s.name}` is declared twice",
                     f"the first declaration is on line {self.values[s.name].span.line}")
            return
        if s.name in self.params:
            self.err(s.name_span, "E011", f"`{s.name}` is both a parameter and an input")
            return
        if s.name in self.all_assigned:
            self.err(s.name_span, "E011", f"`{s.name}` is declared as an input and also assigned")
            self.poisoned.add(s.name)
            return
        dtype = "float32"
        if s.dtype is not None:
            canon = DTYPES.get(s.dtype)
            if canon is None:
                self.err(s.dtype_span, "E018", f"unknown dtype `{s.dtype}`",
                         suggest(s.dtype, DTYPES) or "dtypes: " + ", ".join(sorted(set(DTYPES))))
            else:
                dtype = canon
        shape = None
        if s.shape is not None:
            dims: list[ir.DimDef] = []
            names: dict[str, A.Span] = {}
            if not s.shape:
                self.err(s.span, "E033", f"input `{s.name}` has no dimensions",
                         "the first dimension of an input is the batch: `[batch, feature=16]`")
            for d in s.shape:
                dim = self._dim(d)
                if dim.name is not None:
                    if dim.name in names:
                        self.err(d.span, "E033", f"dimension name `{dim.name}` is used twice in input `{s.name}`",
                                 "each dimension of a tensor needs its own name")
                    names[dim.name] = d.span
                dims.append(dim)
            shape = tuple(dims)
        self.values[s.name] = Value(s.name, s.name_span, "input")
        self.inputs.append(ir.InputDef(s.span, s.name, dtype, shape, True))

    def _dim(self, d: A.Dim) -> ir.DimDef:
        if d.name is not None:
            self.size_expr(d.size)
            return ir.DimDef(d.span, d.name, d.size)
        size = d.size
        if isinstance(size, A.Name) and size.id not in self.params:
            return ir.DimDef(d.span, size.id, None)  # a symbolic dimension name
        self.size_expr(size)
        return ir.DimDef(d.span, None, size)

    def size_expr(self, expr: A.Expr | None, what: str = "a size") -> None:
        """Check an integer expression over parameters (a size, a repeat count)."""
        if expr is None:
            return
        if isinstance(expr, A.Number):
            if not isinstance(expr.value, int):
                self.err(expr.span, "E025", f"{what} must be an integer, not `{expr.text}`")
        elif isinstance(expr, A.Name):
            self.param_ref(expr, "int")
        elif isinstance(expr, A.BinOp):
            self.size_expr(expr.left, what)
            self.size_expr(expr.right, what)
        elif isinstance(expr, A.Neg):
            self.size_expr(expr.operand, what)
        else:
            self.err(expr.span, "E025", f"{what} must be an integer expression, not {expr_kind(expr)}")

    def param_ref(self, name: A.Name, want: str) -> None:
        """Check a name standing for a scalar of the hyper-parameter type `want`."""
        t = param_type(want)
        p = self.params.get(name.id)
        if p is None:
            if name.id in self.values or name.id in self.all_assigned:
                self.err(name.span, "E019", f"`{name.id}` is a value (a tensor), not a parameter",
                         f"a hyper-parameter needs {t.describe}")
                if name.id in self.values:
                    self.values[name.id].used = True  # misused, not unused: no W001 on top
            else:
                close = difflib.get_close_matches(name.id, list(self.params), n=1)
                if close:  # the misspelling meant it: no "never used" for it on top
                    self.used_params.add(close[0])
                self.err(name.span, "E010", f"undefined parameter `{name.id}`",
                         suggest(name.id, self.params)
                         or self._declare_hint(name.id, want if want in PARAM_TYPE_NAMES else "int"))
            return
        self.used_params.add(name.id)
        if p.type not in t.accepts:
            self.err(name.span, "E025", f"`{name.id}` is a {p.type} parameter, but {t.describe} is needed")

    def _declare_hint(self, name: str, ptype: str = "int") -> str:
        where = "the model" if self.owner_kind == "model" else "the block"
        return f"declare it as a parameter of {where}: `({name}: {ptype} = ...)`"

    def _assign(self, s: A.Assign, index: int) -> None:
        targets = s.targets
        seen: set[str] = set()
        ok = True
        for t in targets:
            if t.id == "_":
                continue
            if t.id in seen:
                self.err(t.span, "E011", f"`{t.id}` is assigned twice in one statement")
                ok = False
            seen.add(t.id)
            prior = self.values.get(t.id)
            if prior is not None:
                what = "an input" if prior.kind == "input" else "a value"
                self.err(t.span, "E011", f"`{t.id}` is already defined as {what} on line {prior.span.line}",
                         "every value is assigned once; choose a new name")
                ok = False
            elif t.id in self.params:
                self.err(t.span, "E011", f"`{t.id}` is a parameter and cannot be assigned")
                ok = False
        base = next((t.id for t in targets if t.id != "_"), "discarded")
        names = tuple(t.id if t.id != "_" else self.fresh("_") for t in targets)
        produced = self._chain(s.value, index, base, names, targets=targets)
        if ok and produced is not None:
            for t in targets:
                if t.id != "_":
                    self.values[t.id] = Value(t.id, t.span, "value", used=t.id in self.used_early)
        else:
            self.poisoned.update(t.id for t in targets if t.id != "_")

    def _layer_def(self, s: A.LayerDef) -> None:
        name = s.target.id
        elements = s.value.elements
        el = elements[0]
        if len(elements) != 1 or not isinstance(el, A.OpElement) or (not el.has_parens and el.name in self.values):
            self.err(s.value.span, "E012", "a `layer` is one op or block call, not applied to anything",
                     f"define it alone, `layer {name} = linear(64)`, and apply it with `x >> {name}`")
            return
        if name in self.values or name in self.params or name in self.layers or name in self.all_assigned:
            self.err(s.target.span, "E011", f"`{name}` is already defined",
                     "a layer needs a name of its own")
            return
        if el.frozen:
            self.err(el.span, "E012", "`frozen` goes where a layer is applied, not where it is defined")
            return
        callee = self._callee(el.name, el.name_span, el.span)
        if callee is None:
            return
        self.layers[name] = Layer(name, s.target.span, el)

    def _apply_layer(self, layer: Layer, el: A.OpElement, current, index, base, out_names, targets):
        """`v >> NAME`: the layer's call applied to `v`; every use shares one submodule."""
        layer.uses += 1
        defined = layer.element
        callee = self._callee(defined.name, defined.name_span, defined.span)
        if callee is None:
            return None
        call = A.Call(defined.span, defined.name, defined.name_span, defined.args)
        before = len(self.diags)
        start = len(self.nodes)
        res = bind(self, callee, call, current, index, base, out_names, el.frozen, el.span, targets)
        if layer.failed:
            del self.diags[before:]  # reported at its first use
        if res is None:
            layer.failed = True
            return None
        node = self.nodes[start]
        self.nodes[start] = replace(node, label=layer.name, args=(*node.args, (ir.LAYER_ARG, A.Name(el.span, layer.name))))
        return res

    def _output(self, s: A.Output) -> list[str]:
        outs: list[str] = []
        for n in s.names:
            if n.id in outs:
                self.err(n.span, "E030", f"`{n.id}` is listed twice in `output`")
                continue
            if self._use(n, listed=True):
                outs.append(n.id)
        return outs

    def _load(self, s: A.Load) -> None:
        if self.kind != "model":
            self.err(s.span, "E032", "`load` is allowed only in a model")
            return
        name = s.target.id
        nodes = self.statement_nodes.get(name)
        if nodes is None:
            if name in self.values:
                self.err(s.target.span, "E032", f"`load` needs a value produced by an op or block; `{name}` is an input")
            elif name in self.poisoned:
                pass  # its definition failed, and that error is already reported
            elif name in self.later:
                self.err(s.target.span, "E013", f"`{name}` is used before it is defined",
                         f"it is assigned on line {self.later[name].line}; move the `load` below it")
                self.used_early.add(name)
            else:
                self.err(s.target.span, "E010", f"undefined name `{name}`",
                         suggest(name, [*self.values, *self.poisoned, *self.all_assigned]))
            return
        weighted = [n for n in nodes if self._node_has_weights(n)]
        if len(weighted) != 1:
            self.err(
                s.target.span,
                "E032",
                f"`load {name}` needs `{name}` to come from a chain with exactly one element that has weights; "
                f"it has {len(weighted)}",
                f"give that element its own name: `{name}_enc = ... >> encoder(...)` and load into it",
            )
            return
        self.loads.append(ir.LoadDef(s.span, name, weighted[0].label, s.path.value))

    def _node_has_weights(self, node: ir.Node) -> bool:
        if isinstance(node, ir.Repeat):
            return has_weights(node.body, self.signatures)
        if isinstance(node, ir.BlockCall):
            sig = self.signatures.get(node.op)
            return sig is None or sig.has_weights
        spec = lookup(node.op)
        return bool(spec and spec.has_weights)

    # ---- names
    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}.{self.counter}"  # `.` cannot appear in a tg name, so never collides

    def _use(self, n: A.Name, listed: bool = False) -> bool:
        """Marks value `n` used; False (after a diagnostic) when it is not a value here.
        `listed`: named by `output`, which names values the model computes, never new inputs."""
        """Resolve a value reference; True when it names a value."""
        v = self.values.get(n.id)
        if v is not None:
            v.used = True
            return True
        if n.id in self.poisoned:
            return False  # its definition failed, and that error is already reported
        if n.id in self.later:
            self.err(n.span, "E013", f"`{n.id}` is used before it is defined",
                     f"it is assigned on line {self.later[n.id].line}; move that statement up")
            self.used_early.add(n.id)
            return False
        if n.id in self.params:
            self.err(n.span, "E019", f"`{n.id}` is a parameter, not a value (a tensor)",
                     "parameters set sizes and options; values flow through ops")
            self.used_params.add(n.id)  # misused, not unused: no W003 on top
            return False
        if n.id in self.all_assigned:
            # assigned, but neither before (values, poisoned) nor after (later): by this very
            # statement, `x = x >> relu`; as a free name it would be an input assigned twice
            self.err(n.span, "E013", f"`{n.id}` is used in its own definition",
                     "a value is assigned once, from values defined before it; give the result a new name")
            return False
        if self.implicit_inputs and self.kind == "model":
            self.values[n.id] = Value(n.id, n.span, "input", used=True)
            self.inputs.append(ir.InputDef(n.span, n.id, "float32", None, False))
            close = suggest(n.id, self.all_assigned)
            if close:
                self.warn(n.span, "W002", f"`{n.id}` is not defined, so it becomes an input of the model",
                          close.replace("did you mean", "is it a typo; did you mean"))
            return True
        hint = suggest(n.id, [*self.values, *self.poisoned])
        if lookup(n.id) is not None or n.id in self.signatures:
            self.err(n.span, "E019", f"`{n.id}` is an op, not a value (a tensor)",
                     hint or f"apply it to a value: `x >> {n.id}`")
            return False
        if hint is None and listed:
            values = [v for v, val in self.values.items() if val.kind != "input"]
            hint = (f"`output` lists values the model computes: {', '.join(f'`{v}`' for v in values[:6])}"
                    if values else f"compute it first: `{n.id} = x >> ...`")
        elif hint is None and self.kind == "model":
            hint = f"declare it: `input {n.id}: [batch, feature=16]`"
        self.err(n.span, "E010", f"undefined name `{n.id}`", hint)
        return False

    # ---- chains
    def _chain(
        self,
        chain: A.Chain,
        index: int,
        base: str,
        names: tuple[str, ...],
        targets: Sequence[A.Name] = (),
    ) -> tuple[str, ...] | None:
        """Resolve a chain whose last element assigns `names`; returns them, or None on error."""
        elements = chain.elements
        start = len(self.nodes)
        current: str | None = None
        first = elements[0]
        rest = elements
        if isinstance(first, A.ExprElement):
            rest = elements[1:]
            head = self.value(first.expr, index, base, names if not rest else None, targets if not rest else ())
            if not rest:
                if head is None:
                    return None
                self._record(names, start)
                return names
            current = head if head is not None else "?"
        elif isinstance(first, A.OpElement) and not first.has_parens:
            if first.frozen:
                self.err(first.span, "E012", "`frozen` applies to an op, block call or `repeat`, not to a value")
            n = A.Name(first.name_span, first.name)
            head_ok = self._use(n)
            current = first.name if head_ok else "?"  # a placeholder: the rest is still checked
            rest = elements[1:]
            if not head_ok and not rest:
                return None
            if not rest:
                # a plain alias (`y = x`): an identity, so the value has its own producer
                result = self._apply_identity(first, current, index, base, names, targets)
                self._record(names, start)
                return result
        result: tuple[str, ...] | None = None
        failed = current == "?"
        for k, el in enumerate(rest):
            last = k == len(rest) - 1
            out_names = names if last else (self.fresh(base),)
            if isinstance(el, A.RepeatElement):
                result = self._repeat(el, current, index, base, out_names)
            elif el.has_parens:
                call = A.Call(el.span, el.name, el.name_span, el.args)
                result = self._call(call, current, index, base, out_names, frozen=el.frozen,
                                    span=el.span, elem_span=el.span, targets=targets if last else ())
            else:
                result = self._bare_op(el, current, index, base, out_names, targets if last else ())
            if result is None:
                # keep checking the rest of the chain against a placeholder value
                failed = True
                result = ("?",)
            current = result[0]
        if failed:
            return None
        self._record(names, start)
        return result

    def _record(self, names: tuple[str, ...], start: int) -> None:
        nodes = self.nodes[start:]
        for n in names:
            self.statement_nodes[n] = nodes

    def _apply_identity(self, el, value, index, base, names, targets):
        if len(names) != 1:
            destructure_error(self, targets, "identity", ("out",), el.span)
            return None
        self.nodes.append(ir.OpCall(el.span, "identity", (value,), (), names, False, base, f"{base}", index))
        return names

    def _bare_op(self, el: A.OpElement, current, index, base, out_names, targets):
        if current is None:  # unreachable: a bare head is a value
            return None
        if el.name in self.layers:
            return self._apply_layer(self.layers[el.name], el, current, index, base, out_names, targets)
        callee = self._callee(el.name, el.name_span, el.span)
        if callee is None:
            return None
        call = A.Call(el.span, el.name, el.name_span, ())
        return bind(self, callee, call, current, index, base, out_names, el.frozen, el.span, targets)

    def _callee(self, name: str, name_span: A.Span, span: A.Span) -> Callee | None:
        if name in self.signatures:
            self.block_calls.append((name, span))
            return self.signatures[name]
        spec = lookup(name)
        if spec is not None and spec.library is not None and spec.library not in self.parent.libraries:
            self.err(name_span, "E012", f"`{name}` is in the standard library, which this file does not import",
                     f"add `import {spec.library}` at the top of the file")
            return None
        if spec is not None:
            return op_callee(spec)
        known = list(self.parent.visible_ops()) + list(self.signatures)
        hint = suggest(name, known)
        if name in self.values or name in self.all_assigned:
            if name in self.values:
                self.values[name].used = True  # misused, not unused: no W001 on top
            self.err(name_span, "E019", f"`{name}` is a value (a tensor), not an op",
                     hint or f"combine values with an op such as `add({name}, ...)`")
            return None
        self.err(name_span, "E012", f"unknown op `{name}`", hint or "`tgc ops` lists every op")
        return None

    def _call(self, call: A.Call, current, index, base, out_names, *, frozen, span, elem_span, targets=()):
        callee = self._callee(call.name, call.name_span, span)
        if callee is None:
            # the arguments of an unknown op are not checked, but they are used: no W001/W003
            for a in call.args:
                if isinstance(a.value, A.Name):
                    if a.value.id in self.values:
                        self.values[a.value.id].used = True
                    elif a.value.id in self.params:
                        self.used_params.add(a.value.id)
            return None
        start = len(self.nodes)
        res = bind(self, callee, call, current, index, base, out_names, frozen, elem_span, targets)
        tie = next((a for a in call.args if a.name == "tie"), None)
        if tie is not None and isinstance(tie.value, A.Name):
            layer = self.layers.get(tie.value.id)
            if layer is None:
                self.err(tie.value.span, "E010", f"`tie` needs a layer; `{tie.value.id}` is none",
                         suggest(tie.value.id, self.layers) or
                         f"define it first: `layer {tie.value.id} = embedding(vocab, d)`")
                if len(self.nodes) > start:
                    del self.nodes[start:]
                return None
            layer.uses += 1
        return res

    def input_arg(self, expr: A.Expr, index: int, base: str) -> str | None:
        return self.nested_value(expr, index, base)

    def nested_value(self, expr: A.Expr, index: int, base: str) -> str | None:
        """A value inside another expression (an argument, an operand, what is indexed)."""
        self.nested += 1
        try:
            return self.value(expr, index, base)
        finally:
            self.nested -= 1

    # ---- values: expressions over tensors (LANGUAGE.md 13)
    def is_value_expr(self, expr: A.Expr) -> bool:
        """Whether `expr` stands for a tensor: a value's name (or a free name, which becomes an
        input), a call, a chain, an index, or arithmetic with any of these in it."""
        if isinstance(expr, A.Name):
            return expr.id not in self.params
        if isinstance(expr, (A.Call, A.ChainExpr, A.Index)):
            return True
        if isinstance(expr, A.BinOp):
            return self.is_value_expr(expr.left) or self.is_value_expr(expr.right)
        if isinstance(expr, A.Neg):
            return self.is_value_expr(expr.operand)
        return False

    def value(self, expr: A.Expr, index: int, base: str, out: tuple[str, ...] | None = None,
              targets: Sequence[A.Name] = ()) -> str | None:
        """Resolve an expression over values into nodes; the name of its value (or None after an
        error). `out` names the value (the statement's targets) instead of a fresh name."""
        names = out or (self.fresh(base),)
        if isinstance(expr, A.Name):
            if not self._use(expr):
                return None
            if out is None:
                return expr.id
            el = A.OpElement(expr.span, False, expr.id, expr.span, (), False)
            res = self._apply_identity(el, expr.id, index, base, names, targets)
            return res[0] if res else None
        if isinstance(expr, A.Call):
            res = self._call(expr, None, index, base, names, frozen=False, span=expr.span, elem_span=expr.span,
                             targets=targets)
            return res[0] if res else None
        if isinstance(expr, A.ChainExpr):
            res = self._chain(expr.chain, index, base, names, targets=targets)
            return res[0] if res else None
        if len(names) > 1:
            destructure_error(self, targets, "an expression", ("out",), expr.span)
            return None
        if isinstance(expr, A.BinOp):
            return self._arith(expr, index, base, names)
        if isinstance(expr, A.Neg):
            operand = self.nested_value(expr.operand, index, base)
            if operand is None:
                return None
            self.nodes.append(ir.OpCall(expr.span, "neg", (operand,), (), names, False, base, f"{base}_neg", index))
            return names[0]
        if isinstance(expr, A.Index):
            return self._index(expr, index, base, names)
        self.err(expr.span, "E019", f"{expr_kind(expr)} is not a value (a tensor)",
                 "a chain starts with a value: `x >> relu`, `a + b`, `x[token=-1]`")
        return None

    _ARITH = {"+": "add", "-": "sub", "*": "mul", "/": "div"}

    def _arith(self, expr: A.BinOp, index: int, base: str, names: tuple[str, ...]) -> str | None:
        op = self._ARITH.get(expr.op)
        if op is None:
            self.err(expr.span, "E019", f"`{expr.op}` is for sizes (integers), not for values (tensors)",
                     "values take `+ - * /`; use `div` with a float, or an op such as `floor`")
            return None
        left_value, right_value = self.is_value_expr(expr.left), self.is_value_expr(expr.right)
        inputs: list[str] = []
        args: list[tuple[str, A.Expr]] = []
        ok = True
        for side, is_value in ((expr.left, left_value), (expr.right, right_value)):
            if is_value:
                v = self.nested_value(side, index, base)
                ok = ok and v is not None
                inputs.append(v or "?")
            else:
                if not self._scalar(side):
                    ok = False
                args.append(("scalar", side))
                if side is expr.left:
                    args.append(("scalar_first", A.Bool(side.span, True)))
        if not ok:
            return None
        self.nodes.append(ir.OpCall(expr.span, op, tuple(inputs), tuple(args), names, False, base, f"{base}_{op}",
                                    index))
        return names[0]

    def _scalar(self, expr: A.Expr) -> bool:
        """Check a number operand of arithmetic (a literal, a parameter, arithmetic over them)."""
        from .binding import _HyperChecker

        before = len(self.diags)
        param_type("float").check(expr, _HyperChecker(self, "a number operand", None))
        return not any(d.is_error for d in self.diags[before:])

    def _index(self, expr: A.Index, index: int, base: str, names: tuple[str, ...]) -> str | None:
        """`x[token=-1]`, `x[:, 1:]`: one `select` or `slice` node per subscript that is not `:`.

        Positional subscripts count from the batch (position 0, which takes only `:`); they are
        applied from the last, so each position still means the dimension it meant in `x`."""
        current = self.nested_value(expr.value, index, base)
        if current is None:
            return None
        steps: list[tuple[str, tuple[tuple[str, A.Expr], ...], A.Span]] = []
        positional = [s for s in expr.items if s.name is None]
        named = [s for s in expr.items if s.name is not None]
        ok = True
        for k, sub in reversed(list(enumerate(positional))):
            if sub.is_slice and sub.start is None and sub.stop is None:
                continue
            if k == 0:
                self.err(sub.span, "E052", "the batch dimension (position 0) is never indexed",
                         "start with `:` for the batch: `x[:, -1]`")
                ok = False
                continue
            steps.append(self._subscript_step(sub, A.Number(sub.span, k, str(k))))
        for sub in named:
            if sub.is_slice and sub.start is None and sub.stop is None:
                continue
            steps.append(self._subscript_step(sub, A.Name(sub.name_span or sub.span, sub.name or "")))
        for _, args, _ in steps:
            for key, value in args:
                if key != "dim" and not self._index_expr(value):
                    ok = False
        if not ok:
            return None
        if not steps:
            el = A.OpElement(expr.span, False, current, expr.span, (), False)
            res = self._apply_identity(el, current, index, base, names, ())
            return res[0] if res else None
        for k, (op, args, span) in enumerate(steps):
            out = names if k == len(steps) - 1 else (self.fresh(base),)
            self.nodes.append(ir.OpCall(span, op, (current,), args, out, False, base, f"{base}_{op}", index))
            current = out[0]
        return names[0]

    @staticmethod
    def _subscript_step(sub: A.Subscript, dim: A.Expr):
        if not sub.is_slice:
            assert sub.value is not None
            return "select", (("dim", dim), ("index", sub.value)), sub.span
        args: list[tuple[str, A.Expr]] = [("dim", dim)]
        if sub.start is not None:
            args.append(("start", sub.start))
        if sub.stop is not None:
            args.append(("end", sub.stop))
        return "slice", tuple(args), sub.span

    def _index_expr(self, expr: A.Expr) -> bool:
        before = len(self.diags)
        if isinstance(expr, (A.Number, A.Name, A.BinOp, A.Neg)):
            self.size_expr(expr, "a position")
        else:
            self.err(expr.span, "E025", f"a position must be an integer expression, not {expr_kind(expr)}")
        return not any(d.is_error for d in self.diags[before:])

    def _repeat(self, el: A.RepeatElement, current, index, base, out_names) -> tuple[str, ...] | None:
        if current is None:
            self.err(el.span, "E036", "`repeat` needs a value to apply to",
                     "pipe a value into it: `x >> repeat(4) { ... }`")
            return None
        ok = True
        count = el.count
        if isinstance(count, A.Number):
            if not isinstance(count.value, int) or isinstance(count.value, bool) or count.value < 0:
                self.err(count.span, "E036", f"the count of `repeat` must be an integer of 0 or more, not "
                         f"`{count.text}`", "`repeat(0)` is the identity: its input passes through")
                ok = False
        elif isinstance(count, A.Name):
            p = self.params.get(count.id)
            if p is None or p.type != "int":
                if p is None:
                    self.param_ref(count, "int")
                else:
                    self.err(count.span, "E036", f"the count of `repeat` must be an int parameter; `{count.id}` is {p.type}")
                    self.used_params.add(count.id)  # misused, not unused: no W003 on top
                ok = False
            else:
                self.used_params.add(count.id)
        else:
            self.err(count.span, "E036", "the count of `repeat` must be an integer literal or an int parameter")
            ok = False
        if len(out_names) != 1:
            self.err(el.span, "E027", "`repeat` gives one value")
            return None
        # the body: a chain applied to the value flowing in, with its own nodes
        sub = GraphResolver(self.parent, "repeat", f"{base}_repeat", self.signatures)
        sub.params = self.params
        sub.nested = 1  # the body is a class of its own: its ops are named by what they are
        sub.op_labels = True
        sub.owner_kind = self.owner_kind
        # the body's own input and output names must not be the names of context values it uses
        # (`repeat(2) { b(x) }` passes the outer `x`, not the step's input)
        taken = {a.value.id for inner in el.body.elements if isinstance(inner, A.OpElement)
                 for a in inner.args if isinstance(a.value, A.Name)}  # the names the body's calls pass
        body_in = next(n for n in ("x", "h", "inp", *(f"x{k}" for k in range(len(taken) + 1))) if n not in taken)
        body_out = next(n for n in ("y", "out", *(f"y{k}" for k in range(len(taken) + 1))) if n not in taken)
        sub.values[body_in] = Value(body_in, el.span, "input", used=True, internal=True)
        sub.inputs.append(ir.InputDef(el.span, body_in, "float32", None, True))
        cur = body_in
        context: list[str] = []  # values of this scope the body uses: further inputs of the repeat
        for k, inner in enumerate(el.body.elements):
            name = body_out if k == len(el.body.elements) - 1 else sub.fresh(base)
            if isinstance(inner, A.RepeatElement):
                res = sub._repeat(inner, cur, index, base, (name,))
            elif isinstance(inner, A.ExprElement):  # `repeat(n) { - relu }`: no value to start from
                sub.err(inner.span, "E036", "a `repeat` body is a chain of ops applied to the value, "
                        "not an expression", "write the ops only: `repeat(n) { relu >> neg }`")
                res = None
            elif inner.has_parens:
                outer = False
                for a in inner.args:
                    if not (isinstance(a.value, A.Name) and a.value.id not in self.params):
                        continue
                    if a.value.id in self.values and a.name is None:
                        # a context value (LANGUAGE.md 13): every step receives it unchanged
                        self.values[a.value.id].used = True
                        if a.value.id not in sub.values:
                            sub.values[a.value.id] = Value(a.value.id, a.value.span, "input", used=True,
                                                           internal=True)
                            sub.inputs.append(ir.InputDef(a.value.span, a.value.id, "float32", None, True))
                            context.append(a.value.id)
                    elif a.value.id in self.values or (a.value.id in self.all_assigned and a.name is None):
                        sub.err(a.value.span, "E036",
                                "a `repeat` body takes values of the enclosing scope only as positional "
                                "inputs of a call, defined before the repeat",
                                "pass it as the call's next input: `repeat(n) { layer(mask, d) }`")
                        outer = True
                        if a.value.id in self.values:
                            self.values[a.value.id].used = True  # misused, not unused: no W001
                # with an outer value the call is not bound too: that would add E010 at the same place
                res = None if outer else sub._call(A.Call(inner.span, inner.name, inner.name_span, inner.args), cur, index, base,
                                (name,), frozen=inner.frozen, span=inner.span, elem_span=inner.span)
            else:
                res = sub._bare_op(inner, cur, index, base, (name,), ())
            if res is None:
                ok = False
                break
            cur = res[0]
        self.used_params |= sub.used_params
        self.block_calls.extend(sub.block_calls)
        self.diags.extend(d for d in sub.diags)
        if not ok or any(d.is_error for d in sub.diags):
            return None
        body = ir.Graph(el.span, "repeat", f"{base}_repeat", None, (), tuple(sub.inputs), tuple(sub.nodes), (cur,))
        self.nodes.append(
            ir.Repeat(el.span, "repeat", (current, *context), (), out_names, el.frozen, base,
                      f"{base}_repeat" if self.nested else base,
                    index, count=count, body=body)
        )
        return out_names

    # ---- hyper-parameter values
    # ---- unused names
    def _unused(self, outputs: Iterable[str] = ()) -> None:
        outs = set(outputs)
        for layer in self.layers.values():
            if not layer.uses:
                self.warn(layer.span, "W001", f"layer `{layer.name}` is never applied",
                          f"apply it: `x >> {layer.name}`, or tie to it: `linear(..., tie={layer.name})`")
        for v in self.values.values():
            if v.internal or v.used or v.name in outs:
                continue
            what = "input" if v.kind == "input" else "value"
            self.warn(v.span, "W001", f"{what} `{v.name}` is never used",
                      "remove it, or name it in `output`" if self.kind == "model" and what == "value" else None)
        for name, p in self.params.items():
            if name not in self.used_params and self.kind != "repeat":
                self.warn(p.span, "W003", f"parameter `{name}` is never used")

