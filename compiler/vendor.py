"""Vendoring for training scripts: the helpers a generated train.py uses, copied as source.

The helpers are real, unit-tested Python in `runtime/vendored/` (support.py, data.py,
metrics.py). `vendor(names)` returns the source of a module holding the definitions named (those
of them that exist), everything they use in turn, and the module-level imports that these need,
in library order; nothing else. So a script that reads no csv file ships no csv reader.
"""

from __future__ import annotations

import ast
import symtable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

LIBRARY = ("support.py", "data.py", "metrics.py")


@dataclass(frozen=True)
class Definition:
    name: str
    order: int  # position in the library, files in LIBRARY order
    source: str
    uses: frozenset[str]  # every name it mentions


@dataclass(frozen=True)
class Import:
    order: int
    module: str | None  # `from module import ...`; None for `import x [as y]`
    names: tuple[tuple[str, str | None], ...]  # (name, asname)


@lru_cache(maxsize=1)
def library() -> tuple[dict[str, Definition], tuple[Import, ...]]:
    package = resources.files("tgc.runtime.vendored")
    definitions: dict[str, Definition] = {}
    imports: list[Import] = []
    order = 0
    for file in LIBRARY:
        text = package.joinpath(file).read_text(encoding="utf-8")
        lines = text.split("\n")
        for node in ast.parse(text).body:
            order += 1
            if isinstance(node, ast.Import):
                imports.append(Import(order, None, tuple((a.name, a.asname) for a in node.names)))
                continue
            if isinstance(node, ast.ImportFrom):
                imports.append(Import(order, node.module, tuple((a.name, a.asname) for a in node.names)))
                continue
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if len(targets) != 1 or not isinstance(targets[0], ast.Name):
                    raise RuntimeError(f"{file}: only plain `NAME = ...` assignments can be vendored")
                name = targets[0].id
            else:
                continue  # the module docstring
            if name in definitions:
                raise RuntimeError(f"{file}: `{name}` is defined twice in the training library")
            # whole lines from the first decorator (`@contextlib.contextmanager` belongs to it)
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
            source = "\n".join(lines[first - 1 : node.end_lineno])
            definitions[name] = Definition(name, order, source, frozenset(_global_uses(source)) - {name})
    return definitions, tuple(imports)


def _global_uses(source: str) -> set[str]:
    """The global names a definition's code reads (not its parameters or locals)."""
    names: set[str] = set()

    def walk(table: symtable.SymbolTable) -> None:
        for symbol in table.get_symbols():
            top = table.get_type() == "module"
            if symbol.is_referenced() and (top or symbol.is_global()):
                names.add(symbol.get_name())
        for child in table.get_children():
            walk(child)

    walk(symtable.symtable(source, "<library>", "exec"))
    return names


def closure(names: set[str]) -> list[Definition]:
    """The library definitions among `names` and everything they use, in library order."""
    definitions, _ = library()
    todo = [n for n in names if n in definitions]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(u for u in definitions[name].uses if u in definitions and u not in seen)
    return sorted((definitions[n] for n in seen), key=lambda d: d.order)


def vendor(names: set[str]) -> tuple[list[str], str]:
    """(the library names among `names`, sorted; the module's body: imports and definitions)."""
    definitions, imports = library()
    chosen = closure(names)
    used = set().union(*(d.uses for d in chosen)) if chosen else set()
    lines: list[str] = []
    for imp in imports:
        kept = [(n, a) for n, a in imp.names if (a or n.split(".")[0]) in used]
        if not kept:
            continue
        parts = ", ".join(f"{n} as {a}" if a else n for n, a in kept)
        line = f"from {imp.module} import {parts}" if imp.module else f"import {parts}"
        if line not in lines:  # the library's files import some modules alike
            lines.append(line)
    # the standard library first, then torch, each sorted (isort's order)
    def order(line: str) -> tuple[bool, str]:
        return line.startswith("from"), line

    groups = [sorted((l for l in lines if " torch" not in l), key=order),
              sorted((l for l in lines if " torch" in l), key=order)]
    head = "\n\n".join("\n".join(g) for g in groups if g)
    body = head + "\n\n\n" + "\n\n\n".join(d.source for d in chosen) + "\n"
    return sorted(n for n in names if n in definitions), body
