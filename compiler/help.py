"""`tgc ops`: the list of ops and std blocks, and one help page per name, from the registry.

Everything shown comes from the op's registry entry (or, for a std block, from its `.tg` source
and doc comment), so help pages cannot drift from what the compiler does: the signature,
every hyper-parameter with its type, default, doc, aliases and dependencies, the inputs and
outputs, the shape rule in words, and the PyTorch the op emits, found by compiling the op's
`example` (or its static `emits` text where the example needs more context). Never imports torch.
"""

from __future__ import annotations

import difflib
import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache

from . import ast as A
from .graph import expr_text
from .ops.registry import PARAM_TYPES, REQUIRED, HyperParam, OpSpec, all_ops

WIDTH = 96

# Input shapes tried, in order, for the free names of an op's example until it checks.
EXAMPLE_INPUTS = (
    "[batch, feature=16]",
    "[batch, token=8, feature=16]",
    "[batch, channels=3, height=32, width=32]",
    "[batch, channels=3, length=32]",
    "long[batch, token=8]",
    "[batch, feature=24]",
    "[batch, token=8, feature=24]",
    "[batch, channels=3, depth=8, height=16, width=16]",
)


def _example_inputs(spec: OpSpec) -> list[str]:
    """EXAMPLE_INPUTS, those whose dimension names the op's shape rule mentions first."""
    first = re.match(r"[^\]]*\]", spec.shape_doc)  # the first input's shape
    taken = first.group(0) if first else ""

    def mentioned(shape: str) -> bool:
        names = re.findall(r"([a-z]+)=", shape)
        return any(re.search(rf"\b{n}\b", taken) for n in names if n not in ("feature", "channels"))

    return sorted(EXAMPLE_INPUTS, key=lambda shape: not mentioned(shape))


class UnknownName(Exception):
    """`tgc ops NAME` for a name that is neither an op nor a std block."""

    def __init__(self, name: str, close: list[str]):
        super().__init__(name)
        self.name, self.close = name, close


@dataclass(frozen=True)
class StdBlock:
    name: str
    file: str  # `<std>/transformer.tg`
    block: A.Block
    source: str  # the block's definition, as written


@lru_cache(maxsize=1)
def std_blocks() -> dict[str, StdBlock]:
    """The std library's blocks by name (from `compiler/std/*.tg`)."""
    from .pipeline import std_library

    out: dict[str, StdBlock] = {}
    for f in std_library():
        lines = f.text.split("\n")
        for b in f.blocks:
            source = "\n".join(lines[b.span.line - 1 : b.span.end_line])
            out[b.name] = StdBlock(b.name, f.name, b, source)
    return dict(sorted(out.items()))


def first_sentence(doc: str) -> str:
    """The first sentence of a doc comment, on one line."""
    text = " ".join(doc.split())
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z`(\[])", text)
    return text[: match.start()] if match else text


# ------------------------------------------------------------------------------ the list


def list_text() -> str:
    """`tgc ops`: every op by family, then the std blocks, each with its one-line doc."""
    from .ops.builtin import FAMILIES

    ops = all_ops()
    std = std_blocks()
    names = [*ops, *std]
    width = max(len(n) for n in names) + 2
    out = [f"{len(ops)} ops and {len(std)} std blocks; `tgc ops NAME` shows one in full.", ""]
    families = [f for f in FAMILIES if f != "mlp"]
    extra = sorted({s.family or "plugin" for s in ops.values()} - set(FAMILIES))
    for family in (*families, *extra):
        members = [s for s in ops.values() if (s.family or "plugin") == family and s.library is None]
        if not members:
            continue
        out.append(f"{family}:")
        out.extend(_entry(s.name, first_sentence(s.doc), width) for s in members)
        out.append("")
    out.append("std library (`import std`):")
    library_ops = [s for s in ops.values() if s.library == "std"]
    entries = [(s.name, first_sentence(s.doc) + " (built-in)") for s in library_ops]
    entries += [(b.name, first_sentence(split_doc(b.block.doc or "")[0])) for b in std.values()]
    out.extend(_entry(n, d, width) for n, d in sorted(entries))
    return "\n".join(out) + "\n"


def _entry(name: str, doc: str, width: int) -> str:
    lines = textwrap.wrap(doc, WIDTH - width - 2) or [""]
    first = f"  {name.ljust(width)}{lines[0]}"
    return "\n".join([first, *(" " * (width + 2) + line for line in lines[1:])])


# ------------------------------------------------------------------------------ one page


def help_text(name: str) -> str:
    """`tgc ops NAME`: the help page of an op or std block; raises `UnknownName`."""
    spec = all_ops().get(name)
    if spec is not None:
        return op_page(spec)
    std = std_blocks().get(name)
    if std is not None:
        return block_page(std)
    known = [*all_ops(), *std_blocks()]
    raise UnknownName(name, difflib.get_close_matches(name, known, n=3, cutoff=0.6))


def _value(value) -> str:
    if value is REQUIRED:
        return ""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def signature(spec: OpSpec) -> str:
    if spec.variadic:
        inputs = ", ".join(f"x{i + 1}" for i in range(spec.min_inputs)) + ", ..."
    else:
        required = spec.inputs[: spec.required_inputs]
        optional = spec.inputs[spec.required_inputs :]
        inputs = ", ".join([*required, *(f"[{o}]" for o in optional)])
    params = []
    for p in spec.params:
        if p.name == spec.varargs:
            params.append(f"{p.name}...")
        elif p.required:
            params.append(p.name)
        else:
            params.append(f"{p.name}={_value(p.default)}")
    if spec.variadic and params:
        params = ["*", *params]
    outputs = spec.outputs if spec.outputs_from is None else (f"{spec.outputs_from} outputs",)
    out = outputs[0] if len(outputs) == 1 else "(" + ", ".join(outputs) + ")"
    return f"{spec.name}({', '.join([inputs, *params] if inputs else params)}) -> {out}"


def op_page(spec: OpSpec) -> str:
    out = [signature(spec), ""]
    out += _wrap(spec.doc)
    if spec.library:
        out += ["", f"Part of the `{spec.library}` library: needs `import {spec.library}`."]
    if spec.shape_doc:
        out += ["", "Shape:"] + _wrap(spec.shape_doc, "  ")
    out += ["", "Inputs:"]
    if spec.variadic:
        out.append(f"  {spec.min_inputs} or more tensors (any number: the op is variadic)")
    else:
        for i, name in enumerate(spec.inputs):
            optional = " (optional)" if i >= spec.required_inputs else ""
            out.append(f"  {name}{optional}")
    out += ["", "Outputs:"]
    if spec.outputs_from is not None:
        out.append(f"  as many as `{spec.outputs_from}` gives (destructure them: `a, b = ...`)")
    else:
        out += [f"  {name}" for name in spec.outputs]
        if len(spec.outputs) > 1:
            out.append(f"  (in a chain, `{spec.outputs[0]}` flows on; destructure to get the others)")
    out += ["", "Parameters:"]
    if not spec.params:
        out.append("  none")
    for p in spec.params:
        out += _param(spec, p)
    emitted = emitted_code(spec)
    if emitted:
        out += ["", f"PyTorch (the example compiled, with {emitted[0]}):"]
        out += ["  " + line for line in emitted[1]]
    elif spec.emits:
        out += ["", "PyTorch:"] + _wrap(spec.emits, "  ")
    if spec.example:
        out += ["", "Example:", f"  {spec.example}"]
    notes = []
    if spec.torch_module:
        notes.append(f"Wraps {spec.torch_module}.")
    for key, reason in spec.omitted.items():
        notes.append(f"`{key}` is not a parameter: {reason}.")
    for theirs, ours in spec.renamed.items():
        notes.append(f"torch's `{theirs}` is `{ours}` here: {ours} reads better in tg.")
    if spec.support:
        notes.append("Its PyTorch support code is written into each generated module that uses it.")
    if notes:
        out += ["", "Notes:"]
        for n in notes:
            out += _wrap(n, "  ", "    ")
    return "\n".join(out) + "\n"


def _param(spec: OpSpec, p: HyperParam) -> list[str]:
    head = f"  {p.name}: {p.type}"
    head += " (required)" if p.required else f" = {_value(p.default)}"
    if p.name == spec.varargs:
        head += ", given positionally"
    lines = [head]
    lines += _wrap(p.doc, "      ")
    lines += _wrap(f"type: {PARAM_TYPES[p.type].describe}", "      ")
    if p.choices:
        lines += _wrap("one of " + ", ".join(_value(c) for c in p.choices), "      ")
    if p.aliases:
        lines += _wrap("aliases: " + ", ".join(p.aliases), "      ")
    if p.depends:
        lines += _wrap(f"depends: {p.depends}", "      ", "        ")
    return lines


def _wrap(text: str, indent: str = "", rest: str | None = None) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WIDTH, initial_indent=indent,
                         subsequent_indent=indent if rest is None else rest) or [indent.rstrip()]


def emitted_code(spec: OpSpec) -> tuple[str, tuple[str, ...]] | None:
    """(the inputs used, the emitted lines) of the op's example compiled, or None if it does not."""
    from .diagnostics import CompileError
    from .pipeline import front_end
    from .shapes import check as check_shapes

    if not spec.example or "\n" in spec.example:
        return None
    header = f"import {spec.library}\n" if spec.library else ""
    try:
        result = front_end("example.tg", text=header + spec.example + "\n")
    except Exception:
        return None
    if not result.ok or result.program is None or len(result.program.models) != 1:
        return None
    free = [i.name for i in result.program.models[0].inputs]
    for shape in _example_inputs(spec):
        # a free name `mask` is a bool tensor of the shape (where, masked_fill)
        typed = {name: ("bool" if name == "mask" and shape.startswith("[") else "") + shape for name in free}
        decls = "".join(f"    input {name}: {typed[name]}\n" for name in free)
        text = f"{header}model Example {{\n{decls}    {spec.example}\n}}\n"
        try:
            attempt = front_end("example.tg", text=text)
            if not attempt.ok or attempt.program is None:
                continue
            checked, _ = check_shapes(attempt.program)
        except CompileError:
            continue
        except Exception:
            return None
        lines = _example_lines(checked)
        if lines is None:
            return None
        used = ", ".join(f"{name}: {typed[name]}" for name in free)
        return used, tuple(lines)
    return None


def _example_lines(checked) -> list[str] | None:
    """The submodules and forward lines of the emitted example model, without file comments."""
    from .emit import emit

    try:
        import black

        # one line per statement, however long: black at a wide line length joins them again
        mode = black.Mode(line_length=1000, magic_trailing_comma=False)
        code = black.format_str(emit(checked, "example.tg"), mode=mode)
    except Exception:
        return None
    lines: list[str] = []
    support = [line for line in code.split("\n") if line.startswith("class ") and "Example" not in line]
    lines += [f"{line.rstrip(':')}  (support code)" for line in support]
    section = None
    model = False
    for line in code.split("\n"):
        stripped = line.strip()
        if line.startswith("class Example("):
            model = True
            continue
        if not model:
            continue
        if stripped.startswith("def __init__"):
            section = "init"
            continue
        if stripped.startswith("def forward"):
            section = "forward"
            continue
        if not stripped or stripped.startswith(("super().__init__", "#", "return", '"""')) or section is None:
            continue
        if stripped.startswith("def "):
            break
        lines.append(re.sub(r"  # example\.tg:\d+$", "", stripped))
    return lines


# ------------------------------------------------------------------------------ std blocks


def block_page(std: StdBlock) -> str:
    b = std.block
    params = []
    for p in b.params:
        text = p.name + (f": {p.type.id}" if p.type else "")
        if p.default is not None:
            text += f" = {expr_text(p.default)}"
        params.append(text)
    ins = ", ".join(n.id for n in b.inputs)
    outs = ", ".join(n.id for n in b.outputs)
    outs = outs if len(b.outputs) == 1 else f"({outs})"
    out = [f"{b.name}({', '.join(params)}) ({ins}) -> {outs}", ""]
    prose, docs = split_doc(b.doc or "")
    out += _wrap(prose)
    out += ["", f"A std block (`import std`), defined in {std.file}; emitted as its own nn.Module class."]
    out += ["", "Parameters:"]
    if not b.params:
        out.append("  none")
    for p in b.params:
        head = f"  {p.name}" + (f": {p.type.id}" if p.type else "")
        head += " (required)" if p.default is None else f" = {expr_text(p.default)}"
        out.append(head)
        out += _wrap(docs.get(p.name, "(not documented)"), "      ")
    out += ["", "Inputs:"] + [f"  {n.id}" for n in b.inputs]
    out += ["", "Outputs:"] + [f"  {n.id}" for n in b.outputs]
    out += ["", "Definition:"] + ["  " + line for line in std.source.split("\n")]
    return "\n".join(out) + "\n"


def split_doc(doc: str) -> tuple[str, dict[str, str]]:
    """A block's doc comment as its prose and the docs of its parameters.

    Parameters are documented in a section at the end of the comment: a line `Parameters:`,
    then one `name: text` line per parameter, continued on more deeply indented lines.
    """
    lines = doc.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == "Parameters:"), None)
    if start is None:
        return doc.strip(), {}
    params: dict[str, str] = {}
    current = None
    for line in lines[start + 1 :]:
        match = re.match(r"^\s{0,3}([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$", line)
        if match:
            current = match.group(1)
            params[current] = match.group(2).strip()
        elif current is not None and line.strip():
            params[current] += " " + line.strip()
    return "\n".join(lines[:start]).strip(), params


# ------------------------------------------------------------------------------ completeness


def missing_docs(spec: OpSpec) -> list[str]:
    """What an op's registry entry lacks for a complete help page (and `tgc summary`)."""
    problems = []
    if not spec.doc.strip() or "\n" in spec.doc:
        problems.append("`doc` must be one non-empty line")
    if not spec.example.strip() or "\n" in spec.example or spec.name not in spec.example:
        problems.append(f"`example` must be one line that uses `{spec.name}`")
    if not spec.shape_doc.strip():
        problems.append("`shape_doc` (the shape rule in words) is empty")
    for p in spec.params:
        if not p.doc.strip() or "\n" in p.doc:
            problems.append(f"parameter `{p.name}` has no one-line `doc`")
    for key, reason in {**spec.omitted, **spec.renamed}.items():
        if not reason.strip():
            problems.append(f"omitted/renamed `{key}` needs a reason")
    if spec.has_weights and spec.params_count is None:
        problems.append("the op has weights but no `params_count` rule (`tgc summary` cannot count them)")
    return problems


def missing_block_docs(std: StdBlock) -> list[str]:
    """What a std block's doc comment lacks: prose, and a `Parameters:` entry per parameter."""
    prose, docs = split_doc(std.block.doc or "")
    problems = []
    if len(prose.split()) < 8:
        problems.append("the doc comment above the block says too little (8 words at least)")
    names = [p.name for p in std.block.params]
    for name in names:
        if not docs.get(name, "").strip():
            problems.append(f"parameter `{name}` has no entry under `Parameters:` in the doc comment")
    for name in docs:
        if name not in names:
            problems.append(f"`Parameters:` documents `{name}`, which is not a parameter")
    return problems
