"""The pipeline: runs the stages in order for one file and collects every diagnostic.

read -> parse -> (imports, the std library) -> resolve. Later stages (shapes, emission) hang
off the same `Options` and `Result`. Nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from . import ast as A
from . import ir
from .diagnostics import CompileError, Diagnostic, error
from .parse import decode_source, parse, read_source
from .resolve import resolve


@dataclass(frozen=True)
class Options:
    """What the command line adds to a source file: sizes of inputs and parameter values."""

    inputs: tuple[tuple[str, tuple[int, ...]], ...] = ()
    params: tuple[tuple[str, int | float | bool | str], ...] = ()


@dataclass
class Result:
    path: str
    program: ir.Program | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    checked: Any = None  # shapes.Checked once the shape stage has run
    plans: list = field(default_factory=list)  # train.TrainPlan per `train` section
    sources: dict[str, str] = field(default_factory=dict)
    partial: ir.Program | None = None  # what resolve built although it found errors

    @property
    def ok(self) -> bool:
        return self.program is not None and not any(d.is_error for d in self.diagnostics)


def front_end(path: str, options: Options = Options(), text: str | None = None) -> Result:
    """Read, parse, import and resolve one file."""
    result = Result(path, None)
    try:
        if text is None:
            text = read_source(path)
        result.sources[path] = text
        program = parse(text, path)
        libraries: set[str] = set()
        library = _imported_blocks(program, path, result.sources, (os.path.abspath(path),), libraries)
        std = None
        if _imports_std(program) or "std" in libraries:
            std_files = std_library()
            result.sources.update((f.name, f.text) for f in std_files)
            std = [b for f in std_files for b in f.blocks]
        resolved, warnings = resolve(program, library, std)
        result.diagnostics.extend(warnings)
        result.program = resolved
    except CompileError as exc:
        result.diagnostics.extend(exc.diagnostics)
        result.partial = exc.partial
    return result


def _train_settings_too(result: Result) -> None:
    """Errors that are only unknown `train` keys (E040) must not hide the section's other
    mistakes: the known settings are checked as well (LANGUAGE.md 11, several errors a run)."""
    from dataclasses import replace

    from .resolve.program import TRAIN_KEYS
    from .train import plan

    errors = [d for d in result.diagnostics if d.is_error]
    if result.partial is None or not errors or any(d.code != "E040" or "setting" not in d.message for d in errors):
        return
    trains = tuple(replace(t, items=tuple(i for i in t.items if i.key in TRAIN_KEYS)) for t in result.partial.trains)
    try:
        plan(replace(result.partial, trains=trains))
    except CompileError as exc:
        result.diagnostics.extend(d for d in exc.diagnostics if d.is_error)


def check(path: str, options: Options = Options(), text: str | None = None) -> Result:
    """Everything `tgc check` does: the front end, then shapes (no torch, no emission)."""
    result = front_end(path, options, text)
    if result.program is None or not result.ok:
        _train_settings_too(result)
        return result
    from .shapes import check as check_shapes
    from .train import plan

    try:
        result.plans, warnings = plan(result.program)
        result.diagnostics.extend(warnings)
    except CompileError as exc:
        result.diagnostics.extend(exc.diagnostics)

    try:
        result.checked, warnings = check_shapes(result.program, options.params, options.inputs)
        result.diagnostics.extend(warnings)
    except CompileError as exc:
        result.diagnostics.extend(exc.diagnostics)
    if result.plans and result.checked is not None:  # both stages passed: the sections vs the model
        from .train_checks import check_train

        result.diagnostics.extend(check_train(result.plans, result.checked, path))
    return result


def _imports_std(program: A.Program) -> bool:
    return any(isinstance(i, A.Import) and not i.is_path and i.target == "std" for i in program.items)


# Span file names of std sources: `<std>/` marks a file of the compiler, not the user's.
STD_PREFIX = "<std>/"


@dataclass(frozen=True)
class StdFile:
    name: str  # `<std>/nn.tg`
    text: str
    blocks: tuple[A.Block, ...]


@lru_cache(maxsize=1)
def std_library() -> tuple[StdFile, ...]:
    """The standard library's `.tg` files (package data `tgc/compiler/std/*.tg`), parsed once.

    A std file that does not parse is a bug of tgc, not of the user's program: it raises
    RuntimeError (an internal error), never a diagnostic in the user's file.
    """
    folder = resources.files("tgc.compiler").joinpath("std")
    files = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".tg"):
            continue
        name = STD_PREFIX + entry.name
        try:
            text = decode_source(entry.read_bytes(), name)
            program = parse(text, name)
        except CompileError as exc:
            raise RuntimeError(f"the std library does not parse: {exc.diagnostics[0].message} "
                               f"({name}:{exc.diagnostics[0].span.line})") from None
        others = [i for i in program.items if not isinstance(i, A.Block)]
        if others:
            raise RuntimeError(f"{name}:{others[0].span.line}: a std file holds only blocks")
        files.append(StdFile(name, text, tuple(i for i in program.items if isinstance(i, A.Block))))
    if not files:
        raise RuntimeError(f"the std library is missing: no .tg file in {folder}")
    return tuple(files)


def _imported_blocks(
    program: A.Program,
    path: str,
    sources: dict[str, str],
    stack: tuple[str, ...],
    libraries: set[str] | None = None,
) -> list[A.Block]:
    """Blocks made available by `import "file.tg"`, followed transitively; cycles are errors.

    `libraries` collects `std` when an imported file has `import std`: its blocks may use std.
    """
    blocks: list[A.Block] = []
    diags: list[Diagnostic] = []
    for item in program.items:
        if not isinstance(item, A.Import) or not item.is_path:
            continue
        target = os.path.join(os.path.dirname(path), item.target)
        key = os.path.abspath(target)
        if key in stack:
            chain = " -> ".join(os.path.basename(s) for s in (*stack[stack.index(key):], key))
            diags.append(error(item.span, "E037", f"import cycle: {chain}",
                               "move the shared blocks into a file that imports neither"))
            continue
        if not os.path.isfile(target):
            diags.append(error(item.span, "E037", f"cannot import `{item.target}`: no such file",
                               f"imports are resolved relative to the importing file: {target}"))
            continue
        text = read_source(target)
        sources[target] = text
        sub = parse(text, target)
        if libraries is not None and _imports_std(sub):
            libraries.add("std")
        blocks.extend(_imported_blocks(sub, target, sources, (*stack, key), libraries))
        blocks.extend(i for i in sub.items if isinstance(i, A.Block))
    if diags:
        raise CompileError(diags)
    return blocks
