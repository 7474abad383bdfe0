"""Data-driven diagnostic tests of the front end (parse, imports, resolve), mypy-style.

Each `tests/cases/frontend/*.tg` file is one case. The diagnostics it must produce are written
inline, as a comment on the line a diagnostic points at:

    a = x >> lineer(3)   # E@10 E012: unknown op `lineer`
    # H: did you mean `linear`?

`# E@COL CODE: MESSAGE` is an error and `# W@COL CODE: MESSAGE` a warning, at that line and
(1-based) column; the message is the full message. Several may share a line. A comment line
`# H: HINT` right after an expectation asserts that expectation's `help:` text (the hint is not
checked where no `# H:` is given). The set of diagnostics must equal the expected set exactly.

A case may `import "imports/file.tg"`: files under `imports/` are not cases themselves, and the
expectations written in them (for diagnostics that point into them) are collected by following
the case's `import "..."` lines. Diagnostics whose line cannot carry a comment (end of file,
unterminated strings, bytes that are not UTF-8, a lone CR) are in `TABLE` below.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tgc.compiler.diagnostics import CODES, Diagnostic, render
from tgc.compiler.pipeline import front_end

CASES_DIR = Path(__file__).parent / "cases" / "frontend"
CASE_FILES = sorted(CASES_DIR.glob("*.tg"))

_EXPECT = re.compile(r"#\s*([EW])@(\d+)\s+([EW]\d{3}):\s?(.*?)\s*(?=#\s*[EW]@|$)")
_HINT = re.compile(r"^\s*#\s*H:\s?(.*?)\s*$")
_IMPORT = re.compile(r'^\s*import\s+"([^"]+)"', re.MULTILINE)
_SEVERITY = {"E": "error", "W": "warning"}


@dataclass(frozen=True)
class Expected:
    file: str  # relative to CASES_DIR
    line: int
    column: int
    severity: str
    code: str
    message: str
    hint: str | None = None  # None: not checked

    @property
    def key(self) -> tuple:
        return (self.file, self.line, self.column, self.severity, self.code, self.message)

    def show(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity} {self.code}: {self.message}"


def _rel(path: str) -> str:
    return os.path.relpath(os.path.normpath(os.path.abspath(path)), CASES_DIR).replace(os.sep, "/")


def parse_expectations(text: str, file: str) -> list[Expected]:
    """The `# E@`/`# W@` annotations of one source text, with the `# H:` lines that follow them."""
    out: list[Expected] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        hint = _HINT.match(line)
        if hint:
            assert out, f"{file}:{lineno}: `# H:` with no expectation before it"
            last = out[-1]
            assert last.hint is None, f"{file}:{lineno}: two `# H:` lines for one expectation"
            out[-1] = Expected(*last.key, hint=hint.group(1))
            continue
        for m in _EXPECT.finditer(line):
            sev, col, code, message = m.groups()
            assert code[0] == sev, f"{file}:{lineno}: severity {sev} with code {code}"
            out.append(Expected(file, lineno, int(col), _SEVERITY[sev], code, message))
    return out


def case_expectations(case: Path) -> list[Expected]:
    """Expectations of a case file and of every file it imports, transitively."""
    out: list[Expected] = []
    seen: set[Path] = set()
    todo = [case.resolve()]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        text = path.read_text(encoding="utf-8", errors="replace")
        out.extend(parse_expectations(text, _rel(str(path))))
        todo.extend((path.parent / m).resolve() for m in _IMPORT.findall(text))
    return out


def _got(diags: list[Diagnostic]) -> list[Expected]:
    return [
        Expected(_rel(d.span.file), d.span.line, d.span.column, d.severity, d.code, d.message, d.hint)
        for d in diags
    ]


def assert_diagnostics(expected: list[Expected], got: list[Expected]) -> None:
    exp_keys = sorted(e.key for e in expected)
    got_keys = sorted(g.key for g in got)
    if exp_keys != got_keys:
        exp_lines = [Expected(*k).show() for k in exp_keys]
        got_lines = [Expected(*k).show() for k in got_keys]
        diff = "\n".join(difflib.unified_diff(exp_lines, got_lines, "expected", "got", lineterm=""))
        pytest.fail(
            "diagnostics differ\n--- expected:\n  "
            + ("\n  ".join(exp_lines) or "(none)")
            + "\n--- got:\n  "
            + ("\n  ".join(got_lines) or "(none)")
            + f"\n--- diff:\n{diff}",
            pytrace=False,
        )
    got_hints = {g.key: g.hint for g in got}
    for e in expected:
        if e.hint is not None and got_hints[e.key] != e.hint:
            pytest.fail(
                f"hint of {e.show()}\n  expected: {e.hint!r}\n  got:      {got_hints[e.key]!r}",
                pytrace=False,
            )


@pytest.mark.parametrize("case", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case(case: Path) -> None:
    expected = case_expectations(case)
    result = front_end(str(case))
    assert_diagnostics(expected, _got(result.diagnostics))


# ------------------------------------------------------------------------------ the table

# (name, source, code, line, column, message, hint or None). A `bytes` source is written to a file
# and read from disk (so decoding is tested); a `str` source is passed as text.
TABLE: list[tuple[str, str | bytes, str, int, int, str, str | None]] = [
    (
        "invalid_utf8_byte",
        b"y = x >> relu\nz = y >> lin\xffear\n",
        "E001", 2, 13,
        "the file is not valid UTF-8 text (byte 0xff)",
        "tg source files must be UTF-8 encoded",
    ),
    (
        # the column counts characters, not bytes: each `\xc3\xa9` is one character
        "invalid_utf8_after_multibyte",
        b'a = x >> gelu(approximate="\xc3\xa9\xc3\xa9") \xe9\n',
        "E001", 1, 33,
        "the file is not valid UTF-8 text (byte 0xe9)",
        None,
    ),
    (
        "control_character",
        "y = x >> relu\x01\n",
        "E002", 1, 14,
        "unexpected character U+0001",
        None,
    ),
    (
        "unterminated_string",
        'y = x >> gelu(approximate="tanh)\nz = y\n',
        "E003", 1, 27,
        "unterminated string",
        'close the string with `"` on the same line; strings never span lines',
    ),
    (
        "unterminated_string_at_eof",
        'y = x >> gelu(approximate="tanh',
        "E003", 1, 27,
        "unterminated string",
        None,
    ),
    (
        "unclosed_paren_at_eof",
        "y = x >> linear(3,\n    4",
        "E005", 2, 6,
        "unexpected end of the file; expected `)` or `,`",
        "`(` opened on line 1 is never closed with `)`",
    ),
    (
        "chain_ends_in_pipe_at_eof",
        "y = x >> relu\nz = y >> relu >>",
        "E005", 2, 17,
        "unexpected end of the file; expected a name, `frozen` or `repeat`",
        None,
    ),
    (
        "unclosed_brace_at_eof",
        "model M {\n    input x: [batch, 3]\n    y = x >> relu",
        "E005", 3, 18,
        "unexpected end of the file; expected a line break, `;` or `}`",
        "`{` opened on line 1 is never closed with `}`",
    ),
    (
        "nested_too_deeply",
        "y = x >> linear(" + "-" * 3000 + "1)\n",
        "E007", 1, 1,
        "the program is nested too deeply to compile",
        "split deeply nested expressions into named steps",
    ),
    (
        # a lone CR inside a comment is not a line break: `oops(` stays in the comment, and the
        # error on the next line is on line 2
        "lone_cr_in_comment",
        "a = x >> relu  # note\rb = a >> oops(\nc = a >> lineer\n",
        "E012", 2, 10,
        "unknown op `lineer`",
        "did you mean `linear`?",
    ),
    (
        # a lone CR between statements is not a line break either
        "lone_cr_is_not_a_line_break",
        "y = x >> relu\rz = y >> relu\n",
        "E004", 1, 15,
        "unexpected `z`; expected a line break, `(`, `;`, `>>` or the end of the file",
        "write `>>` between the elements of a chain, or put statements on separate lines",
    ),
]


@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_table(row, tmp_path: Path) -> None:
    name, source, code, line, column, message, hint = row
    path = tmp_path / f"{name}.tg"
    if isinstance(source, bytes):
        path.write_bytes(source)
        result = front_end(str(path))
    else:
        result = front_end(str(path), text=source)
    got = [
        Expected(name, d.span.line, d.span.column, d.severity, d.code, d.message, d.hint)
        for d in result.diagnostics
    ]
    sev = "warning" if code.startswith("W") else "error"
    assert_diagnostics([Expected(name, line, column, sev, code, message, hint)], got)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.tg"
    result = front_end(str(path))
    [d] = result.diagnostics
    # no position in a file that cannot be read: line 0, and no `:1:1` in the rendered location
    assert (d.code, d.span.line, d.span.column) == ("E001", 0, 0)
    assert d.message == f"cannot read `{path}`: no such file or directory"
    from tgc.compiler.diagnostics import render

    assert render(d, None).splitlines()[1] == f" --> {path}"


# ------------------------------------------------------------------------------ meta tests


def _all_expectations() -> list[Expected]:
    out: list[Expected] = []
    for case in CASE_FILES:
        out.extend(case_expectations(case))
    return out


COMPILER_DIR = Path(front_end.__code__.co_filename).parent
FRONT_END_MODULES = tuple(
    sorted({COMPILER_DIR / "parse.py", COMPILER_DIR / "pipeline.py", *(COMPILER_DIR / "resolve").glob("*.py"),
            COMPILER_DIR / "ops" / "paramtypes.py"})
)


def _codes_in(path: Path) -> set[str]:
    return set(re.findall(r"[\"']([EW]\d{3})[\"']", path.read_text(encoding="utf-8")))


def front_end_codes() -> set[str]:
    """Every code in CODES, except those only a later stage (shapes, emission) reports.

    A code the front-end modules mention must have a case here; so must a code no module
    mentions yet (a code nobody reports is a bug of its own).
    """
    front = set().union(*(_codes_in(m) for m in FRONT_END_MODULES))
    later = set().union(
        *(
            _codes_in(p)
            for p in (*COMPILER_DIR.rglob("*.py"), *(COMPILER_DIR.parent / "runtime").rglob("*.py"))
            if p not in FRONT_END_MODULES and p.name != "diagnostics.py"
        )
    )
    return {c for c in CODES if c in front or c not in later}


def test_every_code_has_a_case() -> None:
    used = {e.code for e in _all_expectations()} | {row[2] for row in TABLE}
    missing = sorted(front_end_codes() - used)
    assert not missing, f"front-end codes without a case: {', '.join(missing)}"
    unknown = sorted(used - set(CODES))
    assert not unknown, f"cases use codes not in CODES: {', '.join(unknown)}"
    # the codes of the first version of CODES are all the front end's
    assert {f"E0{n:02d}" for n in (*range(1, 8), *range(10, 28), 30, 31, 32, 33, 34, 36, 37, 40)} <= used
    assert {"W001", "W002", "W003"} <= used


def test_enough_cases_and_hints() -> None:
    assert len(CASE_FILES) + len(TABLE) >= 45
    hints = [e for e in _all_expectations() if e.hint is not None] + [r for r in TABLE if r[6]]
    assert len(hints) >= 8


def test_annotation_syntax() -> None:
    text = "a = x >> lineer(3)  # E@10 E012: unknown op `lineer` # W@1 W001: value `a` is never used\n# H: h\n"
    got = parse_expectations(text, "f.tg")
    assert [e.key for e in got] == [
        ("f.tg", 1, 10, "error", "E012", "unknown op `lineer`"),
        ("f.tg", 1, 1, "warning", "W001", "value `a` is never used"),
    ]
    assert [e.hint for e in got] == [None, "h"]


def test_a_case_without_annotations_must_be_clean() -> None:
    # the harness compares sets exactly: an unexpected diagnostic fails the case
    with pytest.raises(pytest.fail.Exception, match="diagnostics differ"):
        assert_diagnostics([], [Expected("f.tg", 1, 1, "warning", "W001", "value `a` is never used")])


# ------------------------------------------------------------------------------ rendering


def _render_one(source: str, name: str = "bad.tg") -> str:
    result = front_end(name, text=source)
    assert len(result.diagnostics) == 1, result.diagnostics
    return render(result.diagnostics[0], source)


def test_render_unknown_op() -> None:
    assert _render_one("a = x >> lineer(3)\n") == (
        "error[E012]: unknown op `lineer`\n"
        " --> bad.tg:1:10\n"
        "  |\n"
        "1 | a = x >> lineer(3)\n"
        "  |          ^^^^^^\n"
        "help: did you mean `linear`?"
    )


def test_render_unknown_keyword_on_line_ten() -> None:
    source = "".join(f"a{i} = x >> relu\n" for i in range(1, 10)) + (
        "y = add(a1, a2, a3, a4, a5, a6, a7, a8, a9) >> linear(outt=4)\n"
    )
    assert _render_one(source) == (
        "error[E020]: `linear` has no parameter `outt`\n"
        " --> bad.tg:10:55\n"
        "   |\n"
        "10 | y = add(a1, a2, a3, a4, a5, a6, a7, a8, a9) >> linear(outt=4)\n"
        "   |                                                       ^^^^\n"
        "help: did you mean `out`?"
    )


def test_render_destructuring_span_and_warning() -> None:
    assert _render_one("a, b = x >> lstm(hidden=4)\n") == (
        "error[E027]: `lstm` gives 3 values (seq, h_n, c_n), but 2 names are assigned\n"
        " --> bad.tg:1:1\n"
        "  |\n"
        "1 | a, b = x >> lstm(hidden=4)\n"
        "  | ^^^^\n"
        "help: assign one name per output; use `_` for an output you do not need"
    )
    # a warning without a hint: no `help:` line
    assert _render_one("model M(p: float = 0.5) {\n    y = x >> relu\n}\n", "w.tg") == (
        "warning[W003]: parameter `p` is never used\n"
        " --> w.tg:1:9\n"
        "  |\n"
        "1 | model M(p: float = 0.5) {\n"
        "  |         ^^^^^^^^^^^^^^"
    )
