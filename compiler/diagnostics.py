"""Diagnostics: the one error/warning type every stage reports, its stable codes, and rendering.

A stage collects `Diagnostic`s and, when any is an error that stops it, raises `CompileError`
carrying all of them, so one run reports several independent problems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .ast import Span

# Every kind of diagnostic, by stable code. Tests assert each code has at least one case.
CODES: dict[str, str] = {
    # reading and syntax
    "E001": "the file cannot be read or is not valid UTF-8 text",
    "E002": "unexpected character",
    "E003": "unterminated string or invalid escape",
    "E004": "syntax error: unexpected token",
    "E005": "syntax error: unexpected end of file",
    "E006": "a reserved word is used as a name",
    "E007": "the program is nested too deeply",
    # definitions and names
    "E010": "undefined name",
    "E011": "duplicate definition",
    "E012": "unknown op or block",
    "E013": "a value is used before it is defined",
    "E014": "a block calls itself, directly or through other blocks",
    "E015": "bare top-level statements mixed with `model` definitions",
    "E016": "invalid parameter declaration",
    "E017": "an invalid literal value",
    "E018": "unknown dtype",
    "E019": "a value name used as an op, or an op used as a value",
    # calls
    "E020": "unknown keyword argument",
    "E021": "wrong number of inputs",
    "E022": "too many positional arguments",
    "E023": "missing required hyper-parameter",
    "E024": "an argument is given twice",
    "E025": "a hyper-parameter has the wrong type",
    "E026": "variadic op given a positional hyper-parameter",
    "E027": "wrong number of names in a destructuring assignment",
    # statements
    "E030": "invalid `merge` or `output`",
    "E031": "a bare chain that is not the last statement",
    "E032": "invalid `load`",
    "E033": "invalid `input` declaration",
    "E034": "a block output is never assigned",
    "E036": "invalid `repeat`",
    "E037": "invalid `import`",
    "E039": "a weights file does not match the sub-module it is loaded into",
    # train section
    "E040": "invalid `train` section",
    "E041": "an invalid `train` setting value",
    # shapes and dtypes
    "E050": "sizes of a dimension do not match",
    "E051": "a tensor has the wrong number of dimensions",
    "E052": "unknown dimension name, or a dimension index out of range",
    "E053": "a constraint an op needs does not hold",
    "E054": "a tensor has the wrong dtype",
    "E055": "an invalid hyper-parameter value",
    "E056": "not supported by the compiler",
    "E057": "beyond a limit of the compiler or of torch (nesting, repeat steps, pieces, sizes)",
    # a train section against its model and its data (compiler/train_checks.py)
    "E060": "a loss that does not fit the task",
    "E061": "the trained output's shape does not fit the task and loss",
    "E062": "the model's input does not fit the task (next_token needs integer token ids)",
    "E063": "`head` names no output of the model",
    "E064": "a data file has no column of the target's name",
    "E065": "a data file's number of feature columns differs from the model input's size",
    "E066": "a data file's columns do not fit the model's inputs or the training data",
    "E067": "next-token windows of `context` tokens do not fit the model (its position table)",
    # warnings
    "W001": "a value is computed but never used",
    "W002": "a free name looks like a typo of a defined name",
    "W003": "a parameter is declared but never used",
    "W010": "two sizes agree only for the current parameter values",
    "W011": "an input's undeclared width is taken from a use that needs a particular size",
    "W020": "a data file does not exist (yet): its columns are not checked",
    "W021": "a data file cannot be read as csv with a header row: its columns are not checked",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    span: Span
    code: str
    severity: str  # "error" or "warning"
    message: str
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def error(span: Span, code: str, message: str, hint: str | None = None) -> Diagnostic:
    assert code in CODES and code.startswith("E"), code
    return Diagnostic(span, code, "error", message, hint)


def warning(span: Span, code: str, message: str, hint: str | None = None) -> Diagnostic:
    assert code in CODES and code.startswith("W"), code
    return Diagnostic(span, code, "warning", message, hint)


class CompileError(Exception):
    """Raised by a stage that cannot go on; carries every diagnostic collected so far."""

    def __init__(self, diagnostics: Sequence[Diagnostic], partial: Any = None):
        self.diagnostics = tuple(diagnostics)
        self.partial = partial  # what the stage built regardless, where later checks can use it
        super().__init__("; ".join(d.message for d in self.diagnostics))


def suggest(name: str, known: Iterable[str]) -> str | None:
    """A "did you mean" hint for an unknown name, by edit distance (as Elm and rustc do)."""
    import difflib

    close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    if not close:
        return None
    if len(close) == 1:
        return f"did you mean `{close[0]}`?"
    return "did you mean " + ", ".join(f"`{c}`" for c in close[:-1]) + f" or `{close[-1]}`?"


def sort_key(d: Diagnostic) -> tuple:
    return (d.span.file, d.span.line, d.span.column, d.code, d.message)


MAX_SHOWN = 120  # columns of a source line shown around a diagnostic's span


# ANSI styles of `render(..., color=True)`: bold red errors, bold yellow warnings, blue frame
_STYLE = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "frame": "\x1b[34m", "help": "\x1b[36m",
          "bold": "\x1b[1m", "reset": "\x1b[0m"}


def render(d: Diagnostic, source: str | None, color: bool = False) -> str:
    """rustc-style text: header, location, the source line, a caret underline, a help line."""
    st = _STYLE if color else dict.fromkeys(_STYLE, "")
    sev, frame, reset = st[d.severity], st["frame"], st["reset"]
    s = d.span
    where = f"{s.file}:{s.line}:{s.column}" if s.line else s.file  # line 0: about the file as a whole
    lines = [f"{sev}{d.severity}[{d.code}]{reset}{st['bold']}: {d.message}{reset}", f"{frame} -->{reset} {where}"]
    src_lines = source.split("\n") if source is not None else []
    if 1 <= s.line <= len(src_lines):
        text = src_lines[s.line - 1].rstrip("\r")
        display = text.expandtabs(1)  # one column per tab keeps the caret aligned
        gutter = " " * len(str(s.line))
        end = s.end_column if s.end_line == s.line else len(display) + 1
        width = max(1, min(end, len(display) + 1) - s.column)
        start = s.column - 1
        if len(display) > MAX_SHOWN:  # a huge line: show a window around the span
            first = max(0, start - MAX_SHOWN // 3)
            last = min(len(display), first + MAX_SHOWN)
            prefix = "..." if first else ""
            display = prefix + display[first:last] + ("..." if last < len(display) else "")
            start = start - first + len(prefix)
            width = max(1, min(width, last - (s.column - 1)))
        lines.append(f"{frame}{gutter} |{reset}")
        lines.append(f"{frame}{s.line} |{reset} {_printable(display)}")
        lines.append(f"{frame}{gutter} |{reset} " + " " * start + sev + "^" * width + reset)
    if d.hint:
        lines.append(f"{st['help']}help{reset}: {d.hint}")
    return "\n".join(lines)


def _printable(text: str) -> str:
    # control characters would garble a terminal; show them as U+FFFD, keeping one column each
    return "".join(c if c.isprintable() or c == " " else "\ufffd" for c in text)


def to_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps(
        [
            {
                "file": d.span.file,
                "line": d.span.line,
                "column": d.span.column,
                "end_line": d.span.end_line,
                "end_column": d.span.end_column,
                "severity": d.severity,
                "code": d.code,
                "message": d.message,
                "hint": d.hint,
            }
            for d in diagnostics
        ],
        indent=2,
    )


def summary(diagnostics: Sequence[Diagnostic]) -> str:
    n_err = sum(d.is_error for d in diagnostics)
    n_warn = len(diagnostics) - n_err
    parts = []
    if n_err:
        parts.append(f"{n_err} error{'s' if n_err != 1 else ''}")
    if n_warn:
        parts.append(f"{n_warn} warning{'s' if n_warn != 1 else ''}")
    return ", ".join(parts)
