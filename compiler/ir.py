"""The graph IR: what `resolve` makes of the AST, and what the shape checker and emitter read.

Plain frozen dataclasses. Every tensor value has one producer (an input or a node), names are
unique within a graph, and nodes are in topological (= source) order; `lint` checks this and runs
after every pass, as torch.fx's `Graph.lint()` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ast as A
from .ast import Span


def display_name(value: str) -> str:
    """The source name of a value: `h` for the internal `h.2` of a chain inside statement `h`."""
    return value.split(".")[0] if "." in value else value


# The key of a node's args that names the `layer` it applies (`@` is no tg identifier, so it never
# meets a hyper-parameter's name): every node that applies one layer shares its submodule.
LAYER_ARG = "@layer"


@dataclass(frozen=True, slots=True)
class ParamDef:
    span: Span
    name: str
    type: str  # int, float, bool or str
    default: int | float | bool | str | None  # None: a block parameter without default


@dataclass(frozen=True, slots=True)
class DimDef:
    span: Span
    name: str | None  # a dimension name (`feature` in `feature=d_in`, or `batch`)
    size: A.Expr | None  # a size expression over parameters, or None when only named


@dataclass(frozen=True, slots=True)
class InputDef:
    span: Span
    name: str
    dtype: str  # canonical: float32, float64, float16, bfloat16, int64, int32, bool, ...
    shape: tuple[DimDef, ...] | None  # None: undeclared, `[batch, feature=<name>_features]`
    declared: bool  # an `input` line, rather than a free name


@dataclass(frozen=True, slots=True)
class Node:
    """What every node is: something applied to values (an op, a block call or a repeat).

    `args` holds the hyper-parameters given in the source, by canonical name, as AST expressions
    (sizes stay symbolic). `target` is the source name this node's statement assigns; `label`
    is a readable, not yet Python-safe, name for the node (`a_linear`).
    """

    span: Span
    op: str
    inputs: tuple[str, ...]
    args: tuple[tuple[str, A.Expr], ...]
    outputs: tuple[str, ...]
    frozen: bool
    target: str
    label: str
    statement: int

    def arg(self, name: str) -> A.Expr | None:
        for key, value in self.args:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class OpCall(Node):
    """An op of the registry (`op` its name) applied to values."""


@dataclass(frozen=True, slots=True)
class BlockCall(Node):
    """A block of the program (`op` its name) called on values."""


@dataclass(frozen=True, slots=True)
class Repeat(Node):
    """`repeat(count) { body }`: the one-output body applied `count` times. Its first input is the
    value flowing through; any further ones are values of the enclosing scope (context, LANGUAGE.md
    13) that every step receives unchanged: the repeat node's further inputs, in the same order."""

    count: A.Expr
    body: "Graph"


@dataclass(frozen=True, slots=True)
class LoadDef:
    span: Span
    target: str  # the value whose producing node gets the weights
    node_label: str
    path: str


@dataclass(frozen=True, slots=True)
class Graph:
    span: Span
    kind: str  # "model", "block" or "repeat"
    name: str
    doc: str | None
    params: tuple[ParamDef, ...]
    inputs: tuple[InputDef, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    loads: tuple[LoadDef, ...] = ()

    def producer(self, value: str) -> Node | None:
        for node in self.nodes:
            if value in node.outputs:
                return node
        return None


@dataclass(frozen=True, slots=True)
class TrainDef:
    span: Span
    model: str
    items: tuple[A.TrainItem, ...]


@dataclass(frozen=True, slots=True)
class Program:
    file: str
    blocks: tuple[Graph, ...]  # callees before callers
    models: tuple[Graph, ...]
    trains: tuple[TrainDef, ...]
    imports: tuple[A.Import, ...]

    def block(self, name: str) -> Graph | None:
        for b in self.blocks:
            if b.name == name:
                return b
        return None


class IRError(Exception):
    """A broken invariant of the IR: a bug of the compiler, never of the user."""


def lint(program: Program) -> None:
    """Check the IR's invariants (run after resolve); raises `IRError`, a compiler bug."""
    from .ops.registry import lookup

    block_names: set[str] = set()
    for graph in (*program.blocks, *program.models):
        _lint_graph(graph, block_names, lookup)
        if graph.kind == "block":
            block_names.add(graph.name)


def _lint_graph(graph: Graph, known_blocks: set[str], lookup) -> None:
    def check(ok: bool, message: str) -> None:
        if not ok:
            raise IRError(f"{graph.name}: {message}")

    defined: set[str] = set()
    for inp in graph.inputs:
        check(inp.name not in defined, f"input {inp.name} defined twice")
        defined.add(inp.name)
    for node in graph.nodes:
        for value in node.inputs:
            check(value in defined, f"{node.label} uses {value} before it exists")
        for value in node.outputs:
            check(value not in defined, f"{value} is produced twice")
            defined.add(value)
        if isinstance(node, OpCall):
            check(lookup(node.op) is not None, f"unknown op {node.op}")
        elif isinstance(node, BlockCall):
            check(node.op in known_blocks, f"block {node.op} not defined before use")
        elif isinstance(node, Repeat):
            check(len(node.body.inputs) == len(node.inputs) >= 1 and len(node.body.outputs) == 1,
                  f"the body of {node.label} must have the repeat's inputs and one output")
            _lint_graph(node.body, known_blocks, lookup)
        else:
            check(False, f"{node.label} is a {type(node).__name__}, not an op call, block call or repeat")
    for value in graph.outputs:
        check(value in defined, f"output {value} is never produced")
