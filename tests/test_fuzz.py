"""Property tests: whatever the input, the checker answers with diagnostics, never a crash.

The front end (`front_end`, and the whole of `tgc check`: `pipeline.check`) and `parse` are fed
random text, soups of tg tokens, generated statements and mutations of the example files. Only
a normal return or a `CompileError` may come out, and every diagnostic must have a known code,
a position inside the text and a message. Bytes go through `decode_source`: invalid UTF-8 is
diagnostic E001 at the line and column (in characters) of the first bad byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.generate import TG_TOKENS
from fuzz.generate import TOKEN as _TOKEN  # the token lists and tokenizer tests/fuzz mutates with

from tgc.compiler import pipeline
from tgc.compiler.diagnostics import CODES, CompileError, Diagnostic
from tgc.compiler.parse import decode_source, parse
from tgc.compiler.ops.registry import all_ops

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.tg"))]
FILE = "fuzz.tg"

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------------------ the oracle


def _valid(d: Diagnostic, text: str) -> None:
    assert isinstance(d, Diagnostic), d
    assert d.code in CODES, d
    assert d.severity == ("error" if d.code.startswith("E") else "warning"), d
    assert isinstance(d.message, str) and d.message.strip(), d
    s = d.span
    assert s.file == FILE, d
    lines = text.split("\n")  # only LF ends a line: a lone CR does not (LANGUAGE.md section 10)
    assert 1 <= s.line <= len(lines), (d, len(lines))
    assert 1 <= s.column <= len(lines[s.line - 1]) + 1, (d, lines[s.line - 1])
    assert (s.end_line, s.end_column) >= (s.line, s.column), d


def _run_all(text: str) -> None:
    """Every entry point on one text; only diagnostics may come out."""
    # `check` is everything `tgc check` does: front_end (read, parse, imports, resolve), then shapes
    for stage in (pipeline.front_end, pipeline.check):
        try:
            result = stage(FILE, text=text)
        except CompileError as exc:  # allowed, though the pipeline collects them itself
            diags = list(exc.diagnostics)
        else:
            diags = list(result.diagnostics)
            if result.program is None:
                assert any(d.is_error for d in diags), "no program and no error"
        for d in diags:
            _valid(d, text)
    try:
        parse(text, FILE)
    except CompileError as exc:
        assert exc.diagnostics, "a CompileError without diagnostics"
        for d in exc.diagnostics:
            _valid(d, text)
            assert d.is_error


# ------------------------------------------------------------------------------ strategies

# Everything but surrogates (not encodable): control characters, NUL, CR, non-BMP, ...
_any_char = st.characters(exclude_categories=("Cs",))
_special = st.sampled_from(
    ["\r", "\n", "\r\n", "\x00", "\t", "\x0b", "\x0c", "\x1b", "\x7f", "\u2028", "\ufeff",
     "\U0001f600", "\U00010348", '"', "\\", "#", ">>", "é", "ẞ"]
)
random_text = st.lists(st.one_of(_any_char, _special), max_size=120).map("".join)

_ops = sorted(all_ops())
_seps = st.sampled_from(["", " ", " ", "\n", "\t"])
token_soup = st.lists(st.tuples(st.sampled_from(TG_TOKENS), _seps), max_size=60).map(
    lambda pairs: "".join(t + s for t, s in pairs)
)


@st.composite
def _arg(draw):
    value = draw(st.one_of(
        st.sampled_from(["x", "h", "a", "hidden", "width", "p", "feature", "token", "batch", "-1"]),
        st.integers(-3, 300).map(str),
        st.sampled_from(["0.1", "1e-3", "true", "false", '"same"', "[1, 2]", "hidden * 2", "d_in // 2",
                         "(hidden + 1)", "-hidden", "linear(x)", '"a\tb"', '"\x00"', '"\\u00e9\\n"']),
    ))
    if draw(st.booleans()):
        key = draw(st.sampled_from(["dim", "heads", "hidden", "p", "out", "kernel", "stride", "padding",
                                    "bias", "eps", "num_heads", "causal", "average_weights", "nope"]))
        return f"{key}={value}"
    return value


@st.composite
def _element(draw, depth=0):
    kind = draw(st.integers(0, 9))
    frozen = "frozen " if draw(st.integers(0, 9)) == 0 else ""
    op = draw(st.sampled_from([*_ops, "residual", "two_heads", "mlp", "nope", "x"]))
    if kind == 0 and depth < 2:
        count = draw(st.sampled_from(["2", "depth", "0", "hidden", "1.5"]))
        return f"{frozen}repeat({count}) {{ {draw(_chain(depth + 1))} }}"
    if kind <= 3:
        return frozen + op
    args = draw(st.lists(_arg(), max_size=4))
    return f"{frozen}{op}({', '.join(args)})"


@st.composite
def _chain(draw, depth=0):
    elements = draw(st.lists(_element(depth), min_size=1, max_size=4))
    head = draw(st.sampled_from(["x", "h", "a", "b", "y", ""]))
    parts = ([head] if head and depth == 0 else []) + elements
    return " >> ".join(parts)


@st.composite
def _statement(draw):
    kind = draw(st.integers(0, 11))
    if kind == 0:
        dtype = draw(st.sampled_from(["", "long", "bool", "float64", "int8", "complex"]))
        dims = draw(st.lists(st.sampled_from(["batch", "feature=d_in", "token=128", "16", "hidden", "c=3"]),
                             max_size=4))
        return f"input {draw(st.sampled_from(['x', 'y', 'mask']))}: {dtype}[{', '.join(dims)}]"
    if kind == 1:
        return "output " + ", ".join(draw(st.lists(st.sampled_from(["h", "a", "b", "x", "y"]), min_size=1,
                                                   max_size=3)))
    if kind == 2:
        op = draw(st.sampled_from(["add", "cat", "mul", "attention"]))
        return f"merge {op}(a, b{draw(st.sampled_from(['', ', dim=feature', ', h']))})"
    if kind == 3:
        path = draw(st.sampled_from(["weights/w.pt", "w\t.pt", "\x1b", "", "\\\"q\\\"", "é/\U0001f600.pt"]))
        return f'load {draw(st.sampled_from(["h", "a", "x"]))} from "{path}"'
    targets = draw(st.lists(st.sampled_from(["h", "a", "b", "y", "_", "c"]), min_size=1, max_size=3))
    return f"{', '.join(targets)} = {draw(_chain())}"


@st.composite
def generated_program(draw):
    stmts = draw(st.lists(_statement(), min_size=1, max_size=8))
    sep = draw(st.sampled_from(["\n", "; ", "\n\n", "\r\n"]))
    body = sep.join(stmts)
    wrap = draw(st.integers(0, 3))
    blocks = (
        "block residual(width: int, p: float = 0.0) (x) -> y {\n"
        "    h = x >> linear(width) >> relu >> dropout(p) >> linear(width)\n    y = add(x, h)\n}\n"
        "block two_heads(width: int) (x) -> (a, b) {\n    a = x >> linear(width)\n    b = x >> relu\n}\n"
    )
    if wrap == 0:
        return body
    if wrap == 1:
        return f"{blocks}model M(d_in: int = 16, hidden: int = 32, depth: int = 2, p: float = 0.1) {{\n{body}\n}}\n"
    if wrap == 2:
        return f"{blocks}block b(hidden: int = 8) (x) -> (h) {{\n{body}\n}}\nz = x >> b(4)\n"
    return f"import std\n{blocks}{body}\n"




@st.composite
def mutated_example(draw):
    text = draw(st.sampled_from(EXAMPLE_TEXTS))
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(
            ["del_char", "ins_char", "dup_span", "del_token", "dup_token", "swap_tokens", "ins_token",
             "truncate", "replace_char", "move_line"]
        ))
        n = len(text)
        if kind == "truncate":
            text = text[: draw(st.integers(0, n))]
        elif kind in ("del_char", "replace_char", "ins_char", "dup_span"):
            i = draw(st.integers(0, n))
            if kind == "del_char":
                text = text[:i] + text[i + 1:]
            elif kind == "replace_char":
                text = text[:i] + draw(st.one_of(_any_char, _special)) + text[i + 1:]
            elif kind == "ins_char":
                text = text[:i] + draw(st.one_of(_any_char, _special)) + text[i:]
            else:
                j = draw(st.integers(i, min(n, i + 40)))
                text = text[:j] + text[i:j] + text[j:]
        elif kind == "move_line":
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            lines.insert(j, lines.pop(i))
            text = "\n".join(lines)
        else:
            toks = _TOKEN.findall(text)
            if not toks:
                continue
            i = draw(st.integers(0, len(toks) - 1))
            if kind == "del_token":
                del toks[i]
            elif kind == "dup_token":
                toks.insert(i, toks[i])
            elif kind == "swap_tokens":
                j = draw(st.integers(0, len(toks) - 1))
                toks[i], toks[j] = toks[j], toks[i]
            else:
                toks.insert(i, draw(st.sampled_from(TG_TOKENS)))
            text = "".join(toks)
    return text


# ------------------------------------------------------------------------------ tests


@pytest.mark.slow
@settings(max_examples=700, **SETTINGS)
@given(random_text)
def test_random_text(text):
    _run_all(text)


@pytest.mark.slow
@settings(max_examples=700, **SETTINGS)
@given(token_soup)
def test_token_soup(text):
    _run_all(text)


@pytest.mark.slow
@settings(max_examples=300, **SETTINGS)
@given(generated_program())
def test_generated_programs(text):
    _run_all(text)


@pytest.mark.slow
@settings(max_examples=700, **SETTINGS)
@given(mutated_example())
def test_mutated_examples(text):
    _run_all(text)


def test_mutations_do_reach_the_later_stages():
    # a sanity check of the strategies above: the examples themselves are clean programs
    for text in EXAMPLE_TEXTS:
        _run_all(text)


@settings(max_examples=300, **SETTINGS)
@given(st.binary(max_size=200))
def test_decode_source_random_bytes(data):
    try:
        text = decode_source(data, FILE)
    except CompileError as exc:
        (d,) = exc.diagnostics
        assert d.code == "E001" and d.is_error and d.message
        assert d.span.file == FILE and d.span.line >= 1 and d.span.column >= 1
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            before = body[: err.start]
            assert d.span.line == before.count(b"\n") + 1
            assert d.span.column == len(before.rsplit(b"\n", 1)[-1].decode("utf-8")) + 1
        else:
            raise AssertionError("valid UTF-8 rejected")
    else:
        expected = data.decode("utf-8")
        assert text == (expected[1:] if expected.startswith("\ufeff") else expected)
        _run_all(text)


@settings(max_examples=200, **SETTINGS)
@given(st.text(_any_char, max_size=30), st.sampled_from([b"\xff", b"\xc0", b"\xed\xa0\x80", b"\x80", b"\xf8"]),
       st.binary(max_size=10))
def test_invalid_utf8_position_counts_characters(prefix, bad, suffix):
    data = prefix.encode("utf-8") + bad + suffix
    try:
        decode_source(data, FILE)
    except CompileError as exc:
        (d,) = exc.diagnostics
        assert d.code == "E001"
        lines = prefix.removeprefix("\ufeff").split("\n")
        assert (d.span.line, d.span.column) == (len(lines), len(lines[-1]) + 1)
    else:
        raise AssertionError("invalid UTF-8 accepted")
