"""The pipeline: runs the stages in order for one file and collects every diagnostic.

read -> parse -> (imports) -> resolve. Later stages (shapes, emission) hang off the same
`Options` and `Result`. Nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import ast as A
from . import ir
from .diagnostics import CompileError, Diagnostic, error
from .parse import parse, read_source
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
    sources: dict[str, str] = field(default_factory=dict)

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
        library = _imported_blocks(program, path, result.sources, (os.path.abspath(path),))
        resolved, warnings = resolve(program, library)
        result.diagnostics.extend(warnings)
        result.program = resolved
    except CompileError as exc:
        result.diagnostics.extend(exc.diagnostics)
    return result


def check(path: str, options: Options = Options(), text: str | None = None) -> Result:
    """Everything `tgc check` does: the front end, then shapes (no torch, no emission)."""
    result = front_end(path, options, text)
    if result.program is None or not result.ok:
        return result
    from .shapes import check as check_shapes

    try:
        result.checked, warnings = check_shapes(result.program, options.params, options.inputs)
        result.diagnostics.extend(warnings)
    except CompileError as exc:
        result.diagnostics.extend(exc.diagnostics)
    return result


def _imported_blocks(
    program: A.Program, path: str, sources: dict[str, str], stack: tuple[str, ...]
) -> list[A.Block]:
    """Blocks made available by `import "file.tg"`, followed transitively; cycles are errors."""
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
        blocks.extend(_imported_blocks(sub, target, sources, (*stack, key)))
        blocks.extend(i for i in sub.items if isinstance(i, A.Block))
    if diags:
        raise CompileError(diags)
    return blocks
