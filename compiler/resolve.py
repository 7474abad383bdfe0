"""Resolve stage: AST -> graph IR, with every check that needs names but no shapes.

Finds each name's meaning (value, parameter, op, block), turns chains into nodes, binds call
arguments to an op's inputs and hyper-parameters by its registry signature, and reports
undefined, duplicate, misused and unused names, arity and destructuring mistakes, block
recursion and the `merge`/`output`/`load`/`repeat` rules of LANGUAGE.md section 10.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from . import ast as A
from . import ir
from .diagnostics import CompileError, Diagnostic, error, suggest, warning
from .ops.registry import PARAM_TYPES, REQUIRED, OpSpec, all_ops, lookup

PARAM_TYPE_NAMES = ("int", "float", "bool", "str")

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

# Keys a `train` section may hold (their value schemas are checked by the training stage).
TRAIN_KEYS = (
    "data",
    "task",
    "loss",
    "optimizer",
    "scheduler",
    "epochs",
    "batch_size",
    "valid",
    "test",
    "metrics",
    "callbacks",
    "seed",
    "device",
    "deterministic",
    "drop_last",
    "grad_clip",
    "num_workers",
    "standardize",
)

IMPLICIT_MODEL = "Model"


# ------------------------------------------------------------------------------ callees


@dataclass(frozen=True)
class _Param:
    name: str
    aliases: tuple[str, ...]
    type: str
    required: bool
    choices: tuple | None = None


@dataclass(frozen=True)
class _Callee:
    """What a call needs to know about an op or a block, whichever it is."""

    name: str
    kind: str  # "op" or "block"
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: tuple[_Param, ...]
    variadic: bool = False
    min_inputs: int = 1
    optional_inputs: int = 0
    outputs_from: str | None = None
    has_weights: bool = True
    varargs: str | None = None  # the hyper-parameter that collects the remaining positional ones

    def param(self, name: str) -> _Param | None:
        for p in self.params:
            if p.name == name or name in p.aliases:
                return p
        return None

    @property
    def required_inputs(self) -> int:
        return self.min_inputs if self.variadic else len(self.inputs) - self.optional_inputs


def _op_callee(spec: OpSpec) -> _Callee:
    return _Callee(
        name=spec.name,
        kind="op",
        inputs=spec.inputs,
        outputs=spec.outputs,
        params=tuple(
            _Param(p.name, p.aliases, p.type, p.default is REQUIRED, p.choices) for p in spec.params
        ),
        variadic=spec.variadic,
        min_inputs=spec.min_inputs,
        optional_inputs=spec.optional_inputs,
        outputs_from=spec.outputs_from,
        has_weights=spec.has_weights,
        varargs=spec.varargs,
    )


def _block_callee(block: A.Block, params: Sequence[ir.ParamDef]) -> _Callee:
    return _Callee(
        name=block.name,
        kind="block",
        inputs=tuple(n.id for n in block.inputs),
        outputs=tuple(n.id for n in block.outputs),
        params=tuple(_Param(p.name, (), p.type, p.default is None) for p in params),
        min_inputs=len(block.inputs),
    )


# ------------------------------------------------------------------------------ entry point


def resolve(
    program: A.Program,
    library_blocks: Sequence[A.Block] = (),
    std: Sequence[A.Block] | None = None,
) -> tuple[ir.Program, list[Diagnostic]]:
    """Resolve a parsed program; `library_blocks` are blocks made available by `import "file"`.

    `std` holds the standard library's blocks when `import std` is in effect (in the file or a
    file it imports), None when it is not: ops of the std library (`mlp`) need it too. A block of
    the file, or of an imported file, with the name of a std block is an error, as one with the
    name of a built-in op is: std blocks call each other, and must mean the same in every file.
    Returns the IR and the warnings; raises `CompileError` with every diagnostic when there is
    any error.
    """
    r = _ProgramResolver(program, library_blocks, std)
    result = r.run()
    diags = sorted(r.diags, key=lambda d: (d.span.file, d.span.line, d.span.column, d.code))
    if any(d.is_error for d in diags):
        raise CompileError(diags)
    assert result is not None
    ir.lint(result)
    return result, diags


class _ProgramResolver:
    def __init__(
        self, program: A.Program, library_blocks: Sequence[A.Block], std: Sequence[A.Block] | None = None
    ):
        self.program = program
        self.std_blocks = tuple(std or ())
        self.libraries = frozenset() if std is None else frozenset({"std"})
        std_names = {b.name for b in self.std_blocks}
        # a clash with a std block is reported where the other block is defined (see `run`)
        self.clashing = tuple(b for b in library_blocks if b.name in std_names)
        self.library_blocks = self.std_blocks + tuple(b for b in library_blocks if b.name not in std_names)
        self.diags: list[Diagnostic] = []
        self.file = program.span.file

    def run(self) -> ir.Program | None:
        items = self.program.items
        models = [i for i in items if isinstance(i, A.Model)]
        blocks = [i for i in items if isinstance(i, A.Block)]
        trains = [i for i in items if isinstance(i, A.Train)]
        imports = [i for i in items if isinstance(i, A.Import)]
        bare = [i for i in items if not isinstance(i, (A.Model, A.Block, A.Train, A.Import))]

        for imp in imports:
            if not imp.is_path and imp.target != "std":
                self.diags.append(
                    error(
                        imp.span,
                        "E037",
                        f"unknown library `{imp.target}`",
                        'the standard library is `import std`; import a file with `import "path/file.tg"`',
                    )
                )

        if bare and models:
            self.diags.append(
                error(
                    bare[0].span,
                    "E015",
                    "a file with `model` definitions cannot also have top-level statements",
                    "move the statements into a `model`, or remove the `model` definitions",
                )
            )

        # ---- top-level names: models and blocks share the namespace of ops
        ops = self.visible_ops()
        std_names = {b.name for b in self.std_blocks}
        for b in self.clashing:
            self.diags.append(
                error(
                    b.name_span,
                    "E011",
                    f"imported block `{b.name}` has the name of a std block",
                    f"`import std` provides `{b.name}`; rename this block",
                )
            )
        seen: dict[str, A.Span] = {}
        for defn in (*blocks, *models):
            kind = "block" if isinstance(defn, A.Block) else "model"
            if defn.name in seen:
                self.diags.append(
                    error(
                        defn.name_span,
                        "E011",
                        f"`{defn.name}` is defined twice",
                        f"the first definition is on line {seen[defn.name].line}",
                    )
                )
                continue
            if kind == "block" and defn.name in ops:
                self.diags.append(
                    error(
                        defn.name_span,
                        "E011",
                        f"block `{defn.name}` has the name of a built-in op",
                        "choose another name for the block",
                    )
                )
                continue
            if kind == "block" and defn.name in std_names:
                self.diags.append(
                    error(
                        defn.name_span,
                        "E011",
                        f"block `{defn.name}` has the name of a std block",
                        f"`import std` provides `{defn.name}`; rename this block, or use the std one",
                    )
                )
                continue
            seen[defn.name] = defn.name_span

        # ---- blocks: signatures first, so bodies may call blocks defined later in the file
        all_blocks = {b.name: b for b in self.library_blocks}
        for b in blocks:
            if b.name not in ops and b.name not in std_names:
                all_blocks.setdefault(b.name, b) if b.name not in all_blocks else None
                all_blocks[b.name] = b
        signatures: dict[str, _Callee] = {}
        block_params: dict[str, tuple[ir.ParamDef, ...]] = {}
        for name, b in all_blocks.items():
            params = self._params(b.params, is_model=False, report=b in blocks)
            block_params[name] = params
            signatures[name] = _block_callee(b, params)

        graphs: dict[str, ir.Graph] = {}
        calls: dict[str, list[tuple[str, A.Span]]] = {}
        for name, b in all_blocks.items():
            gr = _GraphResolver(self, "block", name, signatures, report=b in blocks)
            graph = gr.block(b, block_params[name])
            calls[name] = gr.block_calls
            if graph is not None:
                graphs[name] = graph
        order = self._block_order(calls, all_blocks)
        # block weights: a block has weights when anything inside has
        for name in order:
            if name in graphs and name in signatures:
                signatures[name] = _replace_weights(signatures[name], _has_weights(graphs[name], signatures))

        # ---- models
        model_graphs: list[ir.Graph] = []
        if bare and not models:
            gr = _GraphResolver(self, "model", IMPLICIT_MODEL, signatures)
            g = gr.model_body(self.program.span, IMPLICIT_MODEL, None, (), tuple(bare))
            if g is not None:
                model_graphs.append(g)
        for m in models:
            params = self._params(m.params, is_model=True, report=True)
            gr = _GraphResolver(self, "model", m.name, signatures)
            g = gr.model_body(m.span, m.name, m.doc, params, m.body)
            if g is not None:
                model_graphs.append(g)

        # ---- train sections
        model_names = [g.name for g in model_graphs] or [m.name for m in models]
        if bare and not models:
            model_names = [IMPLICIT_MODEL]
        train_defs = self._trains(trains, model_names)

        return ir.Program(
            file=self.file,
            blocks=tuple(graphs[n] for n in order if n in graphs),
            models=tuple(model_graphs),
            trains=tuple(train_defs),
            imports=tuple(imports),
        )

    def visible_ops(self) -> dict[str, OpSpec]:
        """The ops this file can call: built-ins, and library ops (`mlp`) once imported."""
        return {n: s for n, s in all_ops().items() if s.library is None or s.library in self.libraries}

    # ---- parameters of a model or block
    def _params(
        self, params: Sequence[A.Param], *, is_model: bool, report: bool
    ) -> tuple[ir.ParamDef, ...]:
        out: list[ir.ParamDef] = []
        seen: set[str] = set()
        diags: list[Diagnostic] = []
        for p in params:
            if p.name in seen:
                diags.append(error(p.span, "E011", f"parameter `{p.name}` is declared twice"))
                continue
            seen.add(p.name)
            default = None
            if p.default is not None:
                default = _literal(p.default)
                if default is _NOT_LITERAL:
                    diags.append(
                        error(
                            p.default.span,
                            "E017",
                            f"the default of `{p.name}` must be a literal (a number, string, `true` or `false`)",
                        )
                    )
                    default = None
            ptype: str | None = None
            if p.type is not None:
                if p.type.id not in PARAM_TYPE_NAMES:
                    hint = suggest(p.type.id, PARAM_TYPE_NAMES) or "parameter types are int, float, bool and str"
                    diags.append(error(p.type.span, "E016", f"unknown parameter type `{p.type.id}`", hint))
                else:
                    ptype = p.type.id
            if ptype is None and default is not None:
                ptype = _type_of(default)
            if p.type is None and p.default is None:
                diags.append(
                    error(
                        p.span,
                        "E016",
                        f"parameter `{p.name}` needs a type or a default",
                        f"for example `{p.name}: int` or `{p.name}: int = 64`",
                    )
                )
                ptype = "int"
            if is_model and p.default is None and ptype is not None:
                diags.append(
                    error(
                        p.span,
                        "E016",
                        f"model parameter `{p.name}` needs a default",
                        f"every model parameter has a default, for example `{p.name}: {ptype} = ...`",
                    )
                )
            if ptype is not None and p.default is not None and default is not None and not _fits(default, ptype):
                diags.append(
                    error(
                        p.default.span,
                        "E025",
                        f"the default of `{p.name}` is {_describe(default)}, not {PARAM_TYPES[ptype]}",
                    )
                )
            if ptype == "float" and isinstance(default, int) and not isinstance(default, bool):
                default = float(default)
            out.append(ir.ParamDef(p.span, p.name, ptype or "int", default))
        self.diags.extend(d for d in diags if report or d.is_error)  # see _GraphResolver._finish
        return tuple(out)

    def _block_order(
        self, calls: dict[str, list[tuple[str, A.Span]]], blocks: dict[str, A.Block]
    ) -> list[str]:
        """Blocks with callees first; a cycle is reported once, at a call that closes it."""
        order: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done
        reported: set[frozenset[str]] = set()

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for callee, span in calls.get(name, []):
                if callee not in blocks:
                    continue
                if state.get(callee) == 1:
                    cycle = path[path.index(callee) :] + [callee] if callee in path else [name, callee]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        desc = " -> ".join(f"`{c}`" for c in cycle)
                        self.diags.append(
                            error(
                                span,
                                "E014",
                                f"block `{callee}` is recursive: {desc}"
                                if len(cycle) > 2
                                else f"block `{name}` calls itself",
                                "blocks cannot be recursive; use `repeat(n) { ... }` to apply a block several times",
                            )
                        )
                elif state.get(callee) is None:
                    visit(callee, path + [callee])
            state[name] = 2
            order.append(name)

        for name in blocks:
            if state.get(name) is None:
                visit(name, [name])
        # `visit` refers to itself, a reference cycle that would keep `self`, and with it the whole
        # program, alive until the cyclic GC runs (at exit, in `tgc check`): break it now
        del visit
        return order

    def _trains(self, trains: Sequence[A.Train], model_names: list[str]) -> list[ir.TrainDef]:
        out: list[ir.TrainDef] = []
        seen_models: dict[str, A.Span] = {}
        for t in trains:
            if t.model is None:
                if len(model_names) != 1:
                    self.diags.append(
                        error(
                            t.span,
                            "E040",
                            "`train` needs the name of the model it trains",
                            "write `train NAME { ... }`" + (f" with one of {', '.join(f'`{n}`' for n in model_names)}" if model_names else ""),
                        )
                    )
                    continue
                model, span = model_names[0], t.span
            else:
                model, span = t.model.id, t.model.span
                if model not in model_names:
                    hint = suggest(model, model_names)
                    if hint is None and model_names == [IMPLICIT_MODEL]:
                        hint = f"a program without `model` definitions is the model `{IMPLICIT_MODEL}`"
                    self.diags.append(error(span, "E040", f"`train` names an unknown model `{model}`", hint))
                    continue
            if model in seen_models:
                self.diags.append(
                    error(span, "E040", f"model `{model}` has two `train` sections",
                          f"the first is on line {seen_models[model].line}")
                )
                continue
            seen_models[model] = span
            keys: dict[str, A.Span] = {}
            for item in t.items:
                if item.key not in TRAIN_KEYS:
                    self.diags.append(
                        error(item.key_span, "E040", f"unknown `train` setting `{item.key}`",
                              suggest(item.key, TRAIN_KEYS))
                    )
                elif item.key in keys:
                    self.diags.append(
                        error(item.key_span, "E040", f"`{item.key}` is set twice in `train`",
                              f"the first is on line {keys[item.key].line}")
                    )
                else:
                    keys[item.key] = item.key_span
            out.append(ir.TrainDef(t.span, model, t.items))
        return out


def _replace_weights(c: _Callee, has: bool) -> _Callee:
    from dataclasses import replace

    return replace(c, has_weights=has)


def _has_weights(graph: ir.Graph, signatures: dict[str, _Callee]) -> bool:
    for node in graph.nodes:
        if node.kind == "repeat" and node.body is not None:
            if _has_weights(node.body, signatures):
                return True
        elif node.kind == "block":
            sig = signatures.get(node.op)
            if sig is None or sig.has_weights:
                return True
        else:
            spec = lookup(node.op)
            if spec is not None and spec.has_weights:
                return True
    return False


# ------------------------------------------------------------------------------ literals

_NOT_LITERAL = object()


def _literal(expr: A.Expr):
    if isinstance(expr, (A.Number, A.String, A.Bool)):
        return expr.value
    return _NOT_LITERAL


def _type_of(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _fits(value, ptype: str) -> bool:
    if ptype == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return _type_of(value) == ptype


def _describe(value) -> str:
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return f"the integer `{value}`"
    return f"the number `{value}`"


def _expr_kind(expr: A.Expr) -> str:
    return {
        A.Number: "a number",
        A.String: "a string",
        A.Bool: "a boolean",
        A.ListExpr: "a list",
        A.BinOp: "an expression",
        A.Neg: "an expression",
        A.Call: "a call",
        A.Name: "a name",
    }[type(expr)]


# ------------------------------------------------------------------------------ one graph


@dataclass
class _Value:
    name: str
    span: A.Span
    kind: str  # "input" or "value"
    used: bool = False
    internal: bool = False


@dataclass
class _Stmt:
    """What a `load` needs to know about the statement that assigned a name."""

    nodes: list[ir.Node] = field(default_factory=list)


class _GraphResolver:
    def __init__(
        self,
        parent: _ProgramResolver,
        kind: str,
        name: str,
        signatures: dict[str, _Callee],
        report: bool = True,
    ):
        self.parent = parent
        self.kind = kind
        self.name = name
        self.signatures = signatures
        self.report = report
        self.file = parent.file
        self.diags: list[Diagnostic] = []
        self.values: dict[str, _Value] = {}
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
            self.values[n.id] = _Value(n.id, n.span, "input")
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
                name = self._fresh("out")
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
                    name = self._fresh("out")
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
        self.values[s.name] = _Value(s.name, s.name_span, "input")
        self.inputs.append(ir.InputDef(s.span, s.name, dtype, shape, True))

    def _dim(self, d: A.Dim) -> ir.DimDef:
        if d.name is not None:
            self._size_expr(d.size)
            return ir.DimDef(d.span, d.name, d.size)
        size = d.size
        if isinstance(size, A.Name) and size.id not in self.params:
            return ir.DimDef(d.span, size.id, None)  # a symbolic dimension name
        self._size_expr(size)
        return ir.DimDef(d.span, None, size)

    def _size_expr(self, expr: A.Expr | None, what: str = "a size") -> None:
        """Check an integer expression over parameters (a size, a repeat count)."""
        if expr is None:
            return
        if isinstance(expr, A.Number):
            if not isinstance(expr.value, int):
                self.err(expr.span, "E025", f"{what} must be an integer, not `{expr.text}`")
        elif isinstance(expr, A.Name):
            self._param_ref(expr, "int")
        elif isinstance(expr, A.BinOp):
            self._size_expr(expr.left, what)
            self._size_expr(expr.right, what)
        elif isinstance(expr, A.Neg):
            self._size_expr(expr.operand, what)
        else:
            self.err(expr.span, "E025", f"{what} must be an integer expression, not {_expr_kind(expr)}")

    def _param_ref(self, name: A.Name, want: str) -> None:
        p = self.params.get(name.id)
        if p is None:
            if name.id in self.values or name.id in self.all_assigned:
                self.err(name.span, "E019", f"`{name.id}` is a value (a tensor), not a parameter",
                         f"a hyper-parameter needs {PARAM_TYPES.get(want, want)}")
                if name.id in self.values:
                    self.values[name.id].used = True  # misused, not unused: no W001 on top
            else:
                self.err(name.span, "E010", f"undefined parameter `{name.id}`",
                         suggest(name.id, self.params)
                         or self._declare_hint(name.id, want if want in PARAM_TYPE_NAMES else "int"))
            return
        self.used_params.add(name.id)
        if want in ("int", "dim", "ints", "sections", "shape", "padding") and p.type not in ("int",):
            self.err(name.span, "E025", f"`{name.id}` is a {p.type} parameter, but {PARAM_TYPES[want]} is needed")
        elif want == "float" and p.type not in ("int", "float"):
            self.err(name.span, "E025", f"`{name.id}` is a {p.type} parameter, but a number is needed")
        elif want in ("bool", "str") and p.type != want:
            self.err(name.span, "E025", f"`{name.id}` is a {p.type} parameter, but {PARAM_TYPES[want]} is needed")

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
        names = tuple(t.id if t.id != "_" else self._fresh("_") for t in targets)
        produced = self._chain(s.value, index, base, names, targets=targets)
        if ok and produced is not None:
            for t in targets:
                if t.id != "_":
                    self.values[t.id] = _Value(t.id, t.span, "value", used=t.id in self.used_early)
        else:
            self.poisoned.update(t.id for t in targets if t.id != "_")

    def _output(self, s: A.Output) -> list[str]:
        outs: list[str] = []
        for n in s.names:
            if n.id in outs:
                self.err(n.span, "E030", f"`{n.id}` is listed twice in `output`")
                continue
            if self._use(n):
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
        if node.kind == "repeat":
            return node.body is not None and _has_weights(node.body, self.signatures)
        if node.kind == "block":
            sig = self.signatures.get(node.op)
            return sig is None or sig.has_weights
        spec = lookup(node.op)
        return bool(spec and spec.has_weights)

    # ---- names
    def _fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}.{self.counter}"  # `.` cannot appear in a tg name, so never collides

    def _use(self, n: A.Name) -> bool:
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
            self.values[n.id] = _Value(n.id, n.span, "input", used=True)
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
        if hint is None and self.kind == "model":
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
        if isinstance(first, A.OpElement) and not first.has_parens:
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
            out_names = names if last else (self._fresh(base),)
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
            self._destructure_error(targets, "identity", ("out",), el.span)
            return None
        self.nodes.append(ir.Node(el.span, "op", "identity", (value,), (), names, False, base, f"{base}", index))
        return names

    def _bare_op(self, el: A.OpElement, current, index, base, out_names, targets):
        if current is None:  # unreachable: a bare head is a value
            return None
        callee = self._callee(el.name, el.name_span, el.span)
        if callee is None:
            return None
        call = A.Call(el.span, el.name, el.name_span, ())
        return self._bind(callee, call, current, index, base, out_names, el.frozen, el.span, targets)

    def _callee(self, name: str, name_span: A.Span, span: A.Span) -> _Callee | None:
        if name in self.signatures:
            self.block_calls.append((name, span))
            return self.signatures[name]
        spec = lookup(name)
        if spec is not None and spec.library is not None and spec.library not in self.parent.libraries:
            self.err(name_span, "E012", f"`{name}` is in the standard library, which this file does not import",
                     f"add `import {spec.library}` at the top of the file")
            return None
        if spec is not None:
            return _op_callee(spec)
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
        return self._bind(callee, call, current, index, base, out_names, frozen, elem_span, targets)

    def _bind(
        self,
        callee: _Callee,
        call: A.Call,
        current: str | None,
        index: int,
        base: str,
        out_names: tuple[str, ...],
        frozen: bool,
        span: A.Span,
        targets: Sequence[A.Name],
    ) -> tuple[str, ...] | None:
        ok = True
        inputs: list[str] = [current] if current is not None else []
        positional: list[A.Arg] = []
        keywords: list[A.Arg] = []
        for a in call.args:
            if a.name is None:
                if keywords:
                    self.err(a.span, "E022", "a positional argument cannot follow a keyword argument",
                             "put positional arguments first")
                    ok = False
                    continue  # not bound as well: that would add "given twice" or type errors
                positional.append(a)
            else:
                keywords.append(a)

        bound: dict[str, A.Expr] = {}
        bound_span: dict[str, A.Span] = {}
        misspelt: list[str] = []  # unknown keywords
        positional_hyper = False
        if callee.variadic:
            for a in positional:
                if isinstance(a.value, (A.Name, A.Call)):
                    v = self._input_arg(a.value, index, base)
                    if v is None:
                        ok = False
                    else:
                        inputs.append(v)
                else:
                    self.err(a.span, "E026",
                             f"`{callee.name}` takes every positional argument as an input; "
                             f"its hyper-parameters are keyword-only",
                             _variadic_hint(callee, a))
                    ok = False
                    positional_hyper = True
            if ok and len(inputs) < callee.min_inputs:
                self.err(call.name_span if current is None else span, "E021",
                         f"`{callee.name}` needs at least {callee.min_inputs} input{'s' if callee.min_inputs != 1 else ''}, "
                         f"got {len(inputs)}",
                         f"for example `{callee.name}({', '.join('abcdefgh'[: max(2, callee.min_inputs)])})`")
                ok = False
            hyper = []
        else:
            n_in = len(callee.inputs)
            pos = list(positional)
            while len(inputs) < n_in and pos:
                a = pos[0]
                required = len(inputs) < callee.required_inputs
                slot = callee.inputs[len(inputs)]
                if isinstance(a.value, (A.Name, A.Call)) and not (
                    isinstance(a.value, A.Name) and not required and a.value.id in self.params
                ):
                    pos.pop(0)
                    v = self._input_arg(a.value, index, base)
                    if v is None:
                        ok = False
                        inputs.append("?")
                    else:
                        inputs.append(v)
                elif required:
                    pos.pop(0)
                    where = f"its input `{slot}`" if n_in > 1 else "its input"
                    example = (
                        f"pipe a value into it: `x >> {callee.name}({_src_args(pos, a)})`"
                        if len(inputs) == 0
                        else f"pass hyper-parameters after the inputs ({', '.join(callee.inputs[: callee.required_inputs])})"
                    )
                    self.err(a.span, "E021",
                             f"the argument in this position is {where}, but {_expr_kind(a.value)} was given",
                             example)
                    ok = False
                    positional_hyper = True  # the hyper-parameters after it are shifted: no E023
                    inputs.append("?")
                else:
                    self.err(a.span, "E021",
                             f"the argument in this position is the optional input `{slot}` of `{callee.name}`, "
                             f"but {_expr_kind(a.value)} was given",
                             "pass hyper-parameters by name here, for example "
                             + ", ".join(f"`{p.name}=...`" for p in callee.params[:1]))
                    pos.pop(0)
                    ok = False
                    positional_hyper = True  # a hyper-parameter given here: no E023 for it
                    break
            missing = callee.inputs[len(inputs) : callee.required_inputs]
            if ok and missing and not any(a.name in missing for a in keywords):  # else E020 says it
                noun = "input" if callee.required_inputs == 1 else "inputs"
                self.err(call.span if current is None else span, "E021",
                         f"`{callee.name}` takes {callee.required_inputs} {noun} "
                         f"({', '.join(callee.inputs[: callee.required_inputs])}), got {len(inputs)}",
                         f"missing {', '.join(f'`{m}`' for m in missing)}")
                ok = False
            hyper = pos
            if callee.varargs is not None:  # `mlp(128, 64)`: the rest is one list, `widths=[128, 64]`
                k = [p.name for p in callee.params].index(callee.varargs)
                hyper, rest = hyper[:k], hyper[k:]
                if rest:
                    single = len(rest) == 1 and isinstance(rest[0].value, A.ListExpr)
                    span_all = rest[0].span.to(rest[-1].span)
                    bound[callee.varargs] = rest[0].value if single else A.ListExpr(
                        span_all, tuple(a.value for a in rest))
                    bound_span[callee.varargs] = span_all
            for i, a in enumerate(hyper):
                if i >= len(callee.params):
                    self.err(a.span, "E022",
                             f"`{callee.name}` takes at most {len(callee.params)} positional hyper-parameter"
                             f"{'s' if len(callee.params) != 1 else ''} after its input"
                             f"{'s' if n_in != 1 else ''}",
                             _signature_hint(callee))
                    ok = False
                    break
                p = callee.params[i]
                bound[p.name] = a.value
                bound_span[p.name] = a.span
        for a in keywords:
            assert a.name is not None and a.name_span is not None
            p = callee.param(a.name)
            if p is None:
                if a.name in callee.inputs:
                    hint = f"`{a.name}` is an input of `{callee.name}`; pass inputs positionally"
                else:
                    names = [n for q in callee.params for n in (q.name, *q.aliases)]
                    hint = suggest(a.name, names) or _signature_hint(callee)
                self.err(a.name_span, "E020", f"`{callee.name}` has no parameter `{a.name}`", hint)
                ok = False
                misspelt.append(a.name)
                continue
            if p.name in bound:
                self.err(a.name_span, "E024", f"`{p.name}` of `{callee.name}` is given twice",
                         f"first on line {bound_span[p.name].line}, column {bound_span[p.name].column}")
                ok = False
                continue
            bound[p.name] = a.value
            bound_span[p.name] = a.span
        for p in callee.params:
            if any(suggest(m, (p.name, *p.aliases)) for m in misspelt):
                continue  # E020 already suggests this parameter for a misspelt keyword
            if p.required and p.name not in bound and not positional_hyper:
                example = "128, 64" if p.name == callee.varargs else f"..., {p.name}=..."
                self.err(call.name_span, "E023", f"`{callee.name}` needs the hyper-parameter `{p.name}`",
                         f"for example `{callee.name}({example})`")
                ok = False
        for p in callee.params:
            if p.name in bound:
                if not self._check_hyper(callee, p, bound[p.name]):
                    ok = False

        n_out = self._output_count(callee, bound)
        if n_out is None:
            ok = False
        if not ok:
            return None
        out_list = callee.outputs if not callee.outputs_from else tuple(f"out{i}" for i in range(n_out))
        if len(out_names) > 1 and len(out_names) != n_out:
            self._destructure_error(targets, callee.name, out_list, span)
            return None
        outputs = list(out_names)
        while len(outputs) < n_out:
            outputs.append(self._fresh(base))
        args = tuple((p.name, bound[p.name]) for p in callee.params if p.name in bound)
        label = f"{base}_{callee.name}"
        self.nodes.append(
            ir.Node(span, callee.kind, callee.name, tuple(inputs), args, tuple(outputs), frozen, base, label, index)
        )
        return tuple(outputs)

    def _destructure_error(self, targets, name, outs, span) -> None:
        got = len(targets)
        self.err(
            targets[0].span.to(targets[-1].span) if targets else span,
            "E027",
            f"`{name}` gives {len(outs)} value{'s' if len(outs) != 1 else ''} "
            f"({', '.join(outs)}), but {got} name{'s are' if got != 1 else ' is'} assigned",
            "assign one name per output; use `_` for an output you do not need",
        )

    def _output_count(self, callee: _Callee, bound: dict[str, A.Expr]) -> int | None:
        if not callee.outputs_from:
            return len(callee.outputs)
        value = bound.get(callee.outputs_from)
        if isinstance(value, A.Number) and isinstance(value.value, int) and value.value >= 1:
            return value.value
        if isinstance(value, A.ListExpr) and value.items:
            return len(value.items)
        if value is not None and not any(d.is_error and d.span == value.span for d in self.diags):
            self.err(value.span, "E025",
                     f"the number of pieces of `{callee.name}` must be a positive integer literal or a list of sizes",
                     "the count of outputs must be known when the file is compiled")
        return None

    def _input_arg(self, expr: A.Expr, index: int, base: str) -> str | None:
        if isinstance(expr, A.Name):
            return expr.id if self._use(expr) else None
        assert isinstance(expr, A.Call)
        name = self._fresh(base)
        res = self._call(expr, None, index, base, (name,), frozen=False, span=expr.span, elem_span=expr.span)
        return res[0] if res else None

    def _repeat(self, el: A.RepeatElement, current, index, base, out_names) -> tuple[str, ...] | None:
        if current is None:
            self.err(el.span, "E036", "`repeat` needs a value to apply to",
                     "pipe a value into it: `x >> repeat(4) { ... }`")
            return None
        ok = True
        count = el.count
        if isinstance(count, A.Number):
            if not isinstance(count.value, int) or count.value < 1:
                self.err(count.span, "E036", f"the count of `repeat` must be a positive integer, not `{count.text}`")
                ok = False
        elif isinstance(count, A.Name):
            p = self.params.get(count.id)
            if p is None or p.type != "int":
                if p is None:
                    self._param_ref(count, "int")
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
        sub = _GraphResolver(self.parent, "repeat", f"{base}_repeat", self.signatures)
        sub.params = self.params
        sub.owner_kind = self.owner_kind
        body_in = "x"
        sub.values[body_in] = _Value(body_in, el.span, "input", used=True, internal=True)
        sub.inputs.append(ir.InputDef(el.span, body_in, "float32", None, True))
        cur = body_in
        for k, inner in enumerate(el.body.elements):
            name = "y" if k == len(el.body.elements) - 1 else sub._fresh(base)
            if isinstance(inner, A.RepeatElement):
                res = sub._repeat(inner, cur, index, base, (name,))
            elif inner.has_parens:
                outer = False
                for a in inner.args:
                    if a.name is None and isinstance(a.value, A.Name) and (
                        a.value.id in self.values or a.value.id in self.all_assigned
                    ):
                        sub.err(a.value.span, "E036",
                                "a `repeat` body can only use the value flowing through it",
                                "compute the other value inside a block and repeat the block")
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
            ir.Node(el.span, "repeat", "repeat", (current,), (), out_names, el.frozen, base, f"{base}_repeat",
                    index, count=count, body=body)
        )
        return out_names

    # ---- hyper-parameter values
    def _check_hyper(self, callee: _Callee, p: _Param, value: A.Expr) -> bool:
        before = len(self.diags)
        t = p.type
        where = f"`{p.name}` of `{callee.name}`"

        def bad(expr: A.Expr, what: str | None = None) -> None:
            self.err(expr.span, "E025", f"{where} must be {what or PARAM_TYPES[t]}, not {_expr_kind(expr)}")

        def scalar(expr: A.Expr, want: str) -> None:
            if isinstance(expr, A.Name):
                if want == "dim" and expr.id not in self.params:
                    if expr.id in self.values:
                        self.err(expr.span, "E019", f"`{expr.id}` is a value (a tensor), not a dimension",
                                 f"{where} takes a dimension name or an index")
                    return  # a dimension name; the shape checker knows the dimensions
                self._param_ref(expr, want)
            elif isinstance(expr, (A.BinOp, A.Neg)) and want in ("int", "float", "dim"):
                self._size_expr(expr)
            elif want in ("int", "dim") and isinstance(expr, A.Number):
                if not isinstance(expr.value, int):
                    bad(expr, PARAM_TYPES[want] if want == "int" else "an integer index or a dimension name")
            elif want == "float" and isinstance(expr, A.Number):
                pass
            elif want == "bool" and isinstance(expr, A.Bool):
                pass
            elif want == "str" and isinstance(expr, A.String):
                if p.choices and expr.value not in p.choices:
                    self.err(expr.span, "E025", f"{where} must be one of {', '.join(repr(c) for c in p.choices)}",
                             suggest(expr.value, [str(c) for c in p.choices]))
            else:
                bad(expr, PARAM_TYPES[want])

        if t in ("int", "float", "bool", "str", "dim"):
            if isinstance(value, A.ListExpr):
                bad(value)
            else:
                scalar(value, t)
        elif t in ("ints", "sections"):
            if isinstance(value, A.ListExpr):
                if not value.items:
                    bad(value, "a non-empty list")
                for item in value.items:
                    scalar(item, "int")
            else:
                scalar(value, "int")
        elif t == "padding":
            if isinstance(value, A.String):
                if value.value not in ("same", "valid"):
                    self.err(value.span, "E025", f'{where} must be an integer, "same" or "valid"',
                             suggest(value.value, ["same", "valid"]))
            elif isinstance(value, A.ListExpr):
                for item in value.items:
                    scalar(item, "int")
            else:
                scalar(value, "int")
        elif t in ("dims", "shape"):
            if not isinstance(value, A.ListExpr):
                bad(value)
            else:
                for item in value.items:
                    scalar(item, "dim")
        return len(self.diags) == before or not any(d.is_error for d in self.diags[before:])

    # ---- unused names
    def _unused(self, outputs: Iterable[str] = ()) -> None:
        outs = set(outputs)
        for v in self.values.values():
            if v.internal or v.used or v.name in outs:
                continue
            what = "input" if v.kind == "input" else "value"
            self.warn(v.span, "W001", f"{what} `{v.name}` is never used",
                      "remove it, or name it in `output`" if self.kind == "model" and what == "value" else None)
        for name, p in self.params.items():
            if name not in self.used_params and self.kind != "repeat":
                self.warn(p.span, "W003", f"parameter `{name}` is never used")


def _variadic_hint(callee: _Callee, a: A.Arg) -> str:
    names = [p.name for p in callee.params]
    if "dim" in names:
        return f"pass it by name: `dim={A.unparse(a.value)}`"
    return "pass hyper-parameters by name" + (f": {', '.join(names)}" if names else "; this op has none")


def _signature_hint(callee: _Callee) -> str:
    params = ", ".join(p.name for p in callee.params) or "none"
    return f"`{callee.name}` takes inputs ({', '.join(callee.inputs) or '...'}) and hyper-parameters: {params}"


def _src_args(rest: list[A.Arg], first: A.Arg) -> str:
    return ", ".join(A.unparse(a.value) for a in [first, *rest])

