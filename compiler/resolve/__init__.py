"""Resolve stage: AST -> graph IR, with every check that needs names but no shapes.

Finds each name's meaning (value, parameter, op, block), turns chains into nodes, binds call
arguments to an op's inputs and hyper-parameters by its registry signature, and reports
undefined, duplicate, misused and unused names, arity and destructuring mistakes, block
recursion and the `merge`/`output`/`load`/`repeat` rules of LANGUAGE.md section 10.

The modules, each importing only those before it:
`common` (shared helpers), `params` (a model's or block's declared parameters), `binding`
(a call against an op's or block's signature), `statements` (one graph's statements, scopes,
values, chains and `repeat`), `program` (top-level names, block order, imports, `train`).
"""

from __future__ import annotations

from typing import Sequence

from .. import ast as A
from .. import ir
from ..diagnostics import CompileError, Diagnostic
from .program import ProgramResolver

__all__ = ["resolve"]


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
    r = ProgramResolver(program, library_blocks, std)
    result = r.run()
    diags = sorted(r.diags, key=lambda d: (d.span.file, d.span.line, d.span.column, d.code))
    if any(d.is_error for d in diags):
        # with what was built regardless: `train` sections are still worth checking (their
        # other settings) when the errors are their unknown keys
        raise CompileError(diags, partial=result)
    assert result is not None
    ir.lint(result)
    return result, diags
