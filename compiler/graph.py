"""`tgc graph`: a checked program as a diagram, in Graphviz DOT or Mermaid text.

Pure: `Checked` -> text, without torch or Graphviz (`tgc graph -o model.svg` runs Graphviz's
`dot` on the DOT text). One node per op application, block calls and repeats as clusters
(`depth` collapses deeper ones into one node each), and every edge labelled with the shape of
the tensor it carries, in the user's dimension names (`[batch, token=16, feature=d_model]`). An
op with several inputs or outputs shows its ports (attention's q, k, v, mask and out, weights):
DOT as cells of an HTML-like label, Mermaid in the edge label (`q: [...]`). A repeat shows its
body once (the first step). Node ids are numbered in program order, so the output is
deterministic; every name and string is escaped for the target language.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field

from . import ast as A
from . import ir
from .ops.registry import OpSpec, lookup
from .shapes import Checked, GraphShapes, TType, instantiate, model_syms
from .tensor_types import Sym

FORMATS = ("dot", "mermaid")


# ------------------------------------------------------------------------------ the scene


@dataclass
class Node:
    id: str
    kind: str  # "input", "output", "op", "block" (a collapsed block call) or "repeat" (collapsed)
    title: str  # the op, block or value name
    detail: str = ""  # the arguments, or an input's dtype
    ins: list[str] = field(default_factory=list)  # port names, when there are several
    outs: list[str] = field(default_factory=list)
    frozen: bool = False
    where: str = ""  # `file.tg:LINE` and the emitted attribute, for tooltips
    value: str = ""  # the program's name for what it computes (`h = ...`), on its last node


@dataclass
class Cluster:
    id: str
    title: str
    detail: str = ""
    kind: str = "block"  # "model", "block" or "repeat"
    items: list["Node | Cluster"] = field(default_factory=list)
    frozen: bool = False


@dataclass
class Edge:
    src: str
    src_port: int | None  # index into the source's `outs`, when it shows ports
    dst: str
    dst_port: int | None
    shape: str
    src_name: str = ""  # port names, for formats without ports
    dst_name: str = ""


@dataclass
class Scene:
    title: str
    clusters: list[Cluster]
    edges: list[Edge]
    rankdir: str = "TB"  # Graphviz's direction: top to bottom, or LR: left to right


class _Builder:
    def __init__(self, checked: Checked, depth: int | None):
        self.checked = checked
        self.depth = depth
        self.count = 0
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def node(self, container: Cluster, node: Node) -> Node:
        self.nodes[node.id] = node
        container.items.append(node)
        return node

    def connect(self, source: tuple[str, int], dst: Node, port: int, t: TType) -> None:
        src = self.nodes[source[0]]
        src_port = source[1] if len(src.outs) > 1 else None
        dst_port = port if len(dst.ins) > 1 else None
        self.edges.append(Edge(src.id, src_port, dst.id, dst_port, t.show(),
                               src.outs[source[1]] if src_port is not None else "",
                               dst.ins[port] if dst_port is not None else ""))

    def model(self, shapes: GraphShapes, source: str) -> Cluster:
        graph = shapes.graph
        cluster = Cluster(self.fresh("cluster_"), f"model {graph.name}", source, kind="model")
        env: dict[str, tuple[str, int]] = {}
        for inp in graph.inputs:
            node = self.node(cluster, Node(self.fresh("n"), "input", inp.name, "input", where=_where(inp.span)))
            node.outs = ["out"]
            env[inp.name] = (node.id, 0)
        self.walk(shapes, model_syms(shapes), env, cluster, 0, False)
        for value in graph.outputs:
            name = _value_name(graph, value)
            node = self.node(cluster, Node(self.fresh("n"), "output", name, "output"))
            node.ins = ["in"]
            self.connect(env[value], node, 0, shapes.types[value])
        return cluster

    def walk(self, shapes: GraphShapes, syms: dict[str, Sym], env: dict[str, tuple[str, int]],
             container: Cluster, level: int, frozen: bool) -> None:
        program = self.checked.program
        for index, node in enumerate(shapes.graph.nodes):
            args = shapes.args.get(index, {})
            in_types = [shapes.types[v] for v in node.inputs]
            is_frozen = frozen or node.frozen
            expand = not isinstance(node, ir.OpCall) and (self.depth is None or level < self.depth)
            if isinstance(node, ir.BlockCall) and expand:
                block = program.block(node.op)
                assert block is not None
                cluster = Cluster(self.fresh("cluster_"), node.op, _call_text(node, None), "block",
                                  frozen=is_frozen)
                container.items.append(cluster)
                inner = instantiate(self.checked, block, args["params"], in_types)
                inner_env = {inp.name: env[v] for inp, v in zip(block.inputs, node.inputs)}
                self.walk(inner, args["params"], inner_env, cluster, level + 1, is_frozen)
                for value, out in zip(node.outputs, block.outputs):
                    env[value] = inner_env[out]
            elif isinstance(node, ir.Repeat) and expand:
                count: Sym = args["count"]
                steps = f"{count.value} step{'s' if count.value != 1 else ''}"
                detail = (f"{steps}, each with its own weights; the first shown" if count.value > 1
                          else steps)
                cluster = Cluster(self.fresh("cluster_"), f"repeat({count.render()})", detail, "repeat",
                                  frozen=is_frozen)
                container.items.append(cluster)
                body = instantiate(self.checked, node.body, syms, in_types)
                inner_env = {inp.name: env[v] for inp, v in zip(node.body.inputs, node.inputs)}
                self.walk(body, syms, inner_env, cluster, level + 1, is_frozen)
                env[node.outputs[0]] = inner_env[node.body.outputs[0]]
            else:
                made = self.node(container, self.op_node(node, is_frozen, args))
                for port, (value, t) in enumerate(zip(node.inputs, in_types)):
                    self.connect(env[value], made, port, t)
                for port, value in enumerate(node.outputs):
                    env[value] = (made.id, port)

    def op_node(self, node: ir.Node, frozen: bool, args: dict) -> Node:
        where = f"{node.label} ({_where(node.span)})"
        made = self._op_node(node, frozen, args, where)
        # the statement's name where this node makes it (`a = x >> linear >> relu`: on relu)
        made.value = ", ".join(v for v in node.outputs if "." not in v and not v.startswith("_"))
        return made

    def _op_node(self, node: ir.Node, frozen: bool, args: dict, where: str) -> Node:
        if isinstance(node, ir.OpCall):
            spec = lookup(node.op)
            assert spec is not None
            # "frozen" where there are weights to freeze (a frozen block's relu has none)
            made = Node(self.fresh("n"), "op", node.op, _call_text(node, spec, args),
                        frozen=frozen and spec.has_weights, where=where)
            made.ins = _in_ports(spec, len(node.inputs))
            made.outs = _out_ports(spec, len(node.outputs))
        elif isinstance(node, ir.BlockCall):
            block = self.checked.program.block(node.op)
            assert block is not None
            made = Node(self.fresh("n"), "block", node.op, _call_text(node, None), frozen=frozen, where=where)
            made.ins = [inp.name for inp in block.inputs]
            made.outs = list(block.outputs)
        else:
            count: Sym = args["count"]
            title = f"repeat({count.render()})"
            inner = ", ".join(_element_text(n) for n in node.body.nodes) if node.body else ""
            made = Node(self.fresh("n"), "repeat", title, inner, frozen=frozen, where=where)
            made.ins, made.outs = ["x"], ["out"]
        return made


def build(checked: Checked, source: str, depth: int | None = None) -> Scene:
    """The diagram of every model of a checked program; blocks deeper than `depth` collapse."""
    builder = _Builder(checked, depth)
    clusters = [builder.model(shapes, os.path.basename(source)) for shapes in checked.models]
    title = ", ".join(s.graph.name for s in checked.models)
    return Scene(title, clusters, builder.edges)


def _in_ports(spec: OpSpec, n: int) -> list[str]:
    if spec.variadic:
        return [str(i + 1) for i in range(n)]
    return list(spec.inputs[:n])


def _out_ports(spec: OpSpec, n: int) -> list[str]:
    if spec.outputs_from is None and len(spec.outputs) >= n:
        return list(spec.outputs)
    return [str(i) for i in range(n)]


def _value_name(graph: ir.Graph, value: str) -> str:
    if "." in value:
        node = graph.producer(value)
        return node.target if node else value.split(".")[0]
    return value


def _where(span: A.Span) -> str:
    return f"{os.path.basename(span.file)}:{span.line}"


def _element_text(node: ir.Node) -> str:
    if isinstance(node, ir.Repeat):
        return "repeat"
    spec = lookup(node.op) if isinstance(node, ir.OpCall) else None
    args = _call_text(node, spec)
    return f"{node.op}({args})" if args else node.op


# ------------------------------------------------------------------------------ arguments as tg text

def expr_text(expr: A.Expr) -> str:
    """tg source of an argument expression."""
    return A.unparse(expr)


def _call_text(node: ir.Node, spec: OpSpec | None, values: dict | None = None) -> str:
    """The arguments of a call, short: `channels, kernel=3, padding=1` (an op's first size or count
    positional, the shortest alias of each keyword); a block's `d_model=d_model` as `d_model`.
    With the checker's `values`, a size or number shows as its value (`128`, `p=0.1`)."""
    parts = []
    for i, (key, expr) in enumerate(node.args):
        text = _value_text((values or {}).get(key)) or expr_text(expr)
        if spec is None:
            parts.append(text if isinstance(expr, A.Name) and expr.id == key else f"{key}={text}")
            continue
        if key == spec.varargs and isinstance(expr, A.ListExpr):
            parts.append(", ".join(expr_text(e) for e in expr.items))
        elif (i == 0 and key == spec.params[0].name and spec.params[0].type not in ("dim", "bool", "str")
              and not (spec.variadic or spec.optional_inputs)):
            parts.append(text)
        else:
            param = spec.param(key)
            names = (key, *param.aliases) if param else (key,)
            parts.append(f"{min(names, key=len)}={text}")
    return ", ".join(parts)


def _value_text(value) -> str | None:
    """A checked argument's value as text (`128`, `0.1`, `true`), or None: show the expression."""
    if isinstance(value, Sym):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, Sym)) for v in value):
        return "[" + ", ".join(str(v.value if isinstance(v, Sym) else v) for v in value) + "]"
    return None


# ------------------------------------------------------------------------------ DOT

_FONT = "Helvetica"


def dot_string(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as `\\n`."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", '<br align="center"/>')


def to_dot(scene: Scene) -> str:
    lines = [
        f"digraph {dot_string(scene.title)} {{",
        f'  graph [rankdir={scene.rankdir}, fontname="{_FONT}", fontsize=12, nodesep=0.3, ranksep=0.35, '
        'newrank=true, labelloc=t];',
        f'  node [fontname="{_FONT}", fontsize=11, shape=plain];',
        f'  edge [fontname="{_FONT}", fontsize=9, color="#555555", fontcolor="#333333", arrowsize=0.7];',
    ]
    for cluster in scene.clusters:
        _dot_cluster(cluster, lines, "  ")
    for e in scene.edges:
        src = dot_string(e.src) + (f":{dot_string(f'o{e.src_port}')}:s" if e.src_port is not None else "")
        dst = dot_string(e.dst) + (f":{dot_string(f'i{e.dst_port}')}:n" if e.dst_port is not None else "")
        lines.append(f"  {src} -> {dst} [label={dot_string(e.shape)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


_CLUSTER_STYLE = {
    "model": 'style="rounded", color="#999999", bgcolor="#ffffff"',
    "block": 'style="rounded,filled", color="#7a9cc6", fillcolor="#f2f6fb"',
    "repeat": 'style="rounded,filled,dashed", color="#9a7ac6", fillcolor="#f7f3fb"',
}


def _dot_cluster(cluster: Cluster, lines: list[str], indent: str) -> None:
    title = f"<b>{_html(cluster.title)}</b>"
    if cluster.detail:
        title += f'<br/><font point-size="9">{_html(cluster.detail)}</font>'
    if cluster.frozen:
        title += '<br/><font point-size="9">frozen</font>'
    lines.append(f"{indent}subgraph {dot_string(cluster.id)} {{")
    lines.append(f"{indent}  graph [{_CLUSTER_STYLE[cluster.kind]}];")
    lines.append(f"{indent}  label=<{title}>;")
    for item in cluster.items:
        if isinstance(item, Cluster):
            _dot_cluster(item, lines, indent + "  ")
        else:
            lines.append(f"{indent}  {dot_string(item.id)} [{_dot_node(item)}];")
    lines.append(f"{indent}}}")


_PORT_WIDTH = 14  # points per column of a node with ports, so ports share its width evenly
_FILL = {"op": "#ffffff", "block": "#e3ecf7", "repeat": "#eee6f7", "input": "#e8f4e8", "output": "#fbeee0"}


def _dot_node(node: Node) -> str:
    if node.kind in ("input", "output"):
        label = f"<b>{_html(node.title)}</b><br/><font point-size=\"9\">{_html(node.detail)}</font>"
        attrs = (f'label=<{label}>, shape=box, style="rounded,filled", fillcolor="{_FILL[node.kind]}", '
                 f'color="#888888", margin="0.12,0.04"')
        return attrs + (f", tooltip={dot_string(node.where)}" if node.where else "")
    ins = node.ins if len(node.ins) > 1 else []
    outs = node.outs if len(node.outs) > 1 else []
    span = math.lcm(max(len(ins), 1), max(len(outs), 1))
    fill = "#dde9f5" if node.frozen else _FILL[node.kind]
    body = f"<b>{_html(node.title)}</b>"
    if node.detail:
        body += f'<br/><font point-size="9">{_html(node.detail)}</font>'
    if node.value:
        body += f'<br/><font point-size="9" color="#6a3d9a">= {_html(node.value)}</font>'
    if node.frozen:
        body += '<br/><font point-size="9" color="#2a5a8a">frozen</font>'
    border = "1" if node.kind in ("block", "repeat") else "0"
    rows = []
    if ins:
        rows.append("<tr>" + "".join(f'<td port="i{i}" colspan="{span // len(ins)}" width="{_PORT_WIDTH * span // len(ins)}" bgcolor="#f4f4f4">'
                                     f'<font point-size="8">{_html(p)}</font></td>' for i, p in enumerate(ins))
                    + "</tr>")
    rows.append(f'<tr><td colspan="{span}" cellpadding="5" bgcolor="{fill}">{body}</td></tr>')
    if outs:
        rows.append("<tr>" + "".join(f'<td port="o{i}" colspan="{span // len(outs)}" width="{_PORT_WIDTH * span // len(outs)}" bgcolor="#f4f4f4">'
                                     f'<font point-size="8">{_html(p)}</font></td>' for i, p in enumerate(outs))
                    + "</tr>")
    table = (f'<table border="{border}" cellborder="1" cellspacing="0" cellpadding="2" color="#666666">'
             + "".join(rows) + "</table>")
    return f"label=<{table}>" + (f", tooltip={dot_string(node.where)}" if node.where else "")


# ------------------------------------------------------------------------------ Mermaid

# Characters with a meaning in Mermaid labels, as its entity codes (`#quot;`, `#35;`).
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "|": "#124;",
                    "`": "#96;", "{": "#123;", "}": "#125;"}


def mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: its special characters as entity codes, lines joined by <br/>."""
    escaped = "".join(_MERMAID_ESCAPES.get(c, c) for c in text)
    return "<br/>".join(escaped.replace("\r", "").split("\n"))


def to_mermaid(scene: Scene) -> str:
    lines = [f"flowchart {scene.rankdir}"]
    for cluster in scene.clusters:
        _mermaid_cluster(cluster, lines, "  ")
    for e in scene.edges:
        label = e.shape
        ports = " → ".join(p for p in (e.src_name, e.dst_name) if p)
        if ports:
            label = f"{ports}: {label}"
        lines.append(f'  {e.src} -->|"{mermaid_text(label)}"| {e.dst}')
    lines.append("  classDef input fill:#e8f4e8,stroke:#888888")
    lines.append("  classDef output fill:#fbeee0,stroke:#888888")
    lines.append("  classDef block fill:#e3ecf7,stroke:#7a9cc6")
    lines.append("  classDef frozen fill:#dde9f5,stroke:#2a5a8a,stroke-dasharray:4 2")
    return "\n".join(lines) + "\n"


def _mermaid_cluster(cluster: Cluster, lines: list[str], indent: str) -> None:
    title = cluster.title + (f": {cluster.detail}" if cluster.detail else "") + (" (frozen)" if cluster.frozen else "")
    lines.append(f'{indent}subgraph {cluster.id}["{mermaid_text(title)}"]')
    lines.append(f"{indent}  direction TB")
    for item in cluster.items:
        if isinstance(item, Cluster):
            _mermaid_cluster(item, lines, indent + "  ")
            continue
        text = (item.title + (f"\n{item.detail}" if item.detail else "") + ("\nfrozen" if item.frozen else "")
                + (f"\n= {item.value}" if getattr(item, "value", "") else ""))
        label = f'"{mermaid_text(text)}"'
        if item.kind in ("input", "output"):
            shape = f"([{label}])"
        elif item.kind in ("block", "repeat"):
            shape = f"[[{label}]]"
        else:
            shape = f"[{label}]"
        cls = "frozen" if item.frozen else {"input": "input", "output": "output", "block": "block",
                                            "repeat": "block"}.get(item.kind)
        lines.append(f"{indent}  {item.id}{shape}" + (f":::{cls}" if cls else ""))
    lines.append(f"{indent}end")


def render(checked: Checked, source: str, fmt: str = "dot", depth: int | None = None,
           rankdir: str = "TB") -> str:
    """The diagram as DOT (`fmt="dot"`) or Mermaid (`fmt="mermaid"`) text."""
    scene = build(checked, source, depth)
    scene.rankdir = rankdir
    return to_dot(scene) if fmt == "dot" else to_mermaid(scene)
