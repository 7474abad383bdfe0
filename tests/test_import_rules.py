"""The import rules of the code base, read from the source with `ast` (lazy imports included).

- no import cycles among tgc's modules;
- the pipeline's stages import one way: a module never imports one of a later stage (`LAYERS`);
- the checker's path never imports torch: only `runtime/compile_time/` does, and the compiler
  reaches it only from the command line, inside functions;
- the code vendored into users' output (`runtime/vendored/`) never imports tgc;
- ops never import the runtime.
The rules are checked on the real tree, and on a copy with planted violations (each must be found).
"""

from __future__ import annotations

import ast
import fnmatch
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = {"compiler": "tgc.compiler", "runtime": "tgc.runtime", "tgc": "tgc", "grammar": "tgc.grammar"}

# The stages in order; a module may import its own stage's modules and earlier stages' only.
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", ["tgc", "tgc.compiler", "tgc.compiler.ast", "tgc.compiler.diagnostics",
                    "tgc.compiler.tensor_types", "tgc.grammar"]),
    ("parse", ["tgc.compiler.parse"]),
    ("ops", ["tgc.compiler.ops", "tgc.compiler.ops.*"]),
    ("ir", ["tgc.compiler.ir"]),
    ("resolve", ["tgc.compiler.resolve", "tgc.compiler.resolve.*"]),
    ("shapes", ["tgc.compiler.shapes", "tgc.compiler.sizes", "tgc.compiler.train", "tgc.compiler.train_checks"]),
    ("naming", ["tgc.compiler.naming"]),
    ("emit", ["tgc.compiler.emit", "tgc.compiler.emit_train", "tgc.compiler.vendor", "tgc.compiler.summary", "tgc.compiler.graph"]),
    ("driver", ["tgc.compiler.pipeline", "tgc.compiler.help"]),
    ("compile_time", ["tgc.runtime", "tgc.runtime.compile_time", "tgc.runtime.compile_time.*"]),
    ("cli", ["tgc.compiler.cli", "tgc.compiler.cli.*"]),
]
VENDORED = "tgc.runtime.vendored"
TORCH_ALLOWED = ["tgc.runtime.compile_time.*", "tgc.runtime.vendored.*"]


def _modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
    mods = {}
    for folder, package in PACKAGES.items():
        for path in (root / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(root / folder).with_suffix("").parts if p != "__init__"]
            mods[".".join([package, *parts])] = path
    return mods


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import statement of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lazy: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lazy.update(id(n) for n in ast.walk(fn))
    out = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in lazy) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            out += [(stem, id(node) in lazy)]
            out += [(f"{stem}.{a.name}", id(node) in lazy) for a in node.names]
    return out


def _layer(module: str) -> int | None:
    for i, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return i
    return None


def violations(root: pathlib.Path) -> list[str]:
    mods = _modules(root)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    found: list[str] = []
    for module, path in sorted(mods.items()):
        for target, lazy in _imports(module, path):
            top = target.split(".")[0]
            if module.startswith(VENDORED) and top == "tgc" and not target.startswith(VENDORED + "."):
                found.append(f"{module}: vendored code imports tgc ({target})")
            if top == "torch" and not any(fnmatch.fnmatchcase(module, p) for p in TORCH_ALLOWED):
                found.append(f"{module}: imports torch, which only runtime/compile_time may")
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if not target or target == module or module.startswith(target + "."):
                continue
            edges[module].add(target)
            if target.startswith(VENDORED) and not module.startswith(VENDORED):
                found.append(f"{module}: imports the vendored runtime {target} (it is copied as text)")
            if module.startswith("tgc.compiler.ops") and target.startswith("tgc.runtime"):
                found.append(f"{module}: an op imports the runtime ({target})")
            mine, theirs = _layer(module), _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{module} (stage {LAYERS[mine][0]}) imports {target} "
                             f"of the later stage {LAYERS[theirs][0]}")
            if (target.startswith("tgc.runtime.compile_time") and module.startswith("tgc.compiler")
                    and not lazy):
                found.append(f"{module}: imports {target} at module level (torch on every start)")
    found += [f"import cycle: {' -> '.join(c)}" for c in _cycles(edges)]
    unplaced = [m for m in mods if _layer(m) is None and not m.startswith(VENDORED)]
    found += [f"{m}: in no stage of LAYERS" for m in unplaced]
    return found


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_tree_follows_the_import_rules():
    assert violations(ROOT) == []


def _copy(tmp_path: pathlib.Path) -> pathlib.Path:
    for folder in PACKAGES:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _plant(root: pathlib.Path, relative: str, line: str) -> None:
    path = root / relative
    path.write_text(path.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")


def test_a_planted_cycle_is_found(tmp_path):
    root = _copy(tmp_path)
    _plant(root, "compiler/ops/registry.py", "from ..shapes import check  # planted")
    found = violations(root)
    assert any(v.startswith("import cycle:") and "tgc.compiler.ops.registry" in v and "tgc.compiler.shapes" in v
               for v in found), found
    assert ("tgc.compiler.ops.registry (stage ops) imports tgc.compiler.shapes of the later stage shapes"
            in found)


def test_planted_violations_of_each_rule_are_found(tmp_path):
    root = _copy(tmp_path)
    _plant(root, "runtime/vendored/metrics.py", "import tgc.compiler.ast  # planted")
    _plant(root, "compiler/shapes.py", "import torch  # planted")
    _plant(root, "compiler/ops/linear.py", "from tgc.runtime.compile_time import verify  # planted")
    _plant(root, "compiler/cli/common.py", "from tgc.runtime.compile_time import verify  # planted")
    found = violations(root)
    assert "tgc.runtime.vendored.metrics: vendored code imports tgc (tgc.compiler.ast)" in found
    assert "tgc.compiler.shapes: imports torch, which only runtime/compile_time may" in found
    assert any(v.startswith("tgc.compiler.ops.linear: an op imports the runtime") for v in found)
    assert any(v.startswith("tgc.compiler.cli.common: imports tgc.runtime.compile_time") and
               "module level" in v for v in found), found
