"""Parse stage: source text -> `ast.Program`, or a `CompileError` with readable syntax diagnostics.

The grammar lives in `grammar/tg.lark` and is loaded once (LALR, strict, cached on disk). No Lark
object leaves this module: a Transformer builds the dataclass AST and Lark's exceptions become
`Diagnostic`s phrased for users, never with Lark's terminal names.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from importlib import resources
from typing import Iterator

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lexer import BasicLexer, Lexer, PatternRE, PatternStr

from . import ast as A
from .diagnostics import CompileError, Diagnostic, error

RESERVED = frozenset(
    "model block input output merge repeat frozen load from import train true false".split()
)
# Words that are keywords only where they start a statement of their kind, and names elsewhere
# (`layer` is also the dimension of a recurrent state: `mean(dim=layer)`).
SOFT_KEYWORDS = {"layer": "LAYER"}
# what must follow a soft keyword for it to be one: `layer NAME =`, not `layer == ...`
_SOFT_FOLLOW = re.compile(r"[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*=(?!=)")
_STATEMENT_START = frozenset({"_NL", "LBRACE", "SEMICOLON"})

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())


class _Lexer(Lexer):
    """Lark's basic lexer, specialised for tg and about twice as fast, which matters for long files.

    Same terminals in the same order (so the same tokens), keywords found by a dict lookup
    instead of a second regex match, and line breaks counted only where a token holds one. It
    also drops line breaks inside (...) and [...], keeping them inside {...} (LANGUAGE.md 9).
    Lark's custom-lexer interface 0: `lex(text)` yields tokens.
    """

    def __init__(self, conf):
        if not conf.skip_validation:
            BasicLexer(conf)  # Lark's checks of the terminals (collisions, with strict=True)
        terminals = sorted(
            conf.terminals,
            key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name),
        )
        regexps = [t for t in terminals if isinstance(t.pattern, PatternRE)]
        # a literal that a regex terminal also matches (`model` and NAME) is a keyword of it
        self.keywords: dict[str, dict[str, str]] = {}
        for t in terminals:
            if isinstance(t.pattern, PatternStr):
                for r in regexps:
                    if r.priority == t.priority and re.fullmatch(r.pattern.to_regexp(), t.pattern.value):
                        self.keywords.setdefault(r.name, {})[t.pattern.value] = t.name
        for kw in self.keywords.values():
            for word in SOFT_KEYWORDS:
                kw.pop(word, None)
        embedded = {name for kw in self.keywords.values() for name in kw.values()} | set(SOFT_KEYWORDS.values())
        kept = [t for t in terminals if t.name not in embedded]
        self.pattern = re.compile(
            "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in kept), conf.g_regex_flags
        )
        self.ignore = frozenset(conf.ignore)
        self.allowed = {t.name for t in kept} - self.ignore
        self.terminals_by_name = conf.terminals_by_name

    def lex(self, text: str) -> Iterator[Token]:
        match, keywords, ignore, new_str = self.pattern.match, self.keywords, self.ignore, str.__new__
        pos, end = 0, len(text)
        line, line_start = 1, 0
        stack: list[str] = []  # open brackets
        previous = "_NL"  # the type of the last token yielded: a soft keyword starts a statement
        while pos < end:
            m = match(text, pos)
            if m is None:
                raise UnexpectedCharacters(text, pos, line, pos - line_start + 1, allowed=self.allowed,
                                           terminals_by_name=self.terminals_by_name)
            value, type_ = m.group(), m.lastgroup
            start, start_line, start_col = pos, line, pos - line_start + 1
            pos = m.end()
            if "\n" in value:
                line += value.count("\n")
                line_start = start + value.rindex("\n") + 1
            if type_ in ignore:
                continue
            kw = keywords.get(type_)
            if kw is not None:
                type_ = kw.get(value, type_)
            if (type_ == "NAME" and value in SOFT_KEYWORDS and previous in _STATEMENT_START
                    and not stack[-1:] == ["("] and _SOFT_FOLLOW.match(text, pos)):
                type_ = SOFT_KEYWORDS[value]
            if type_ == "_NL":
                if stack and stack[-1] != "{":
                    continue
            elif type_ != "STRING":
                if value in _OPENERS:
                    stack.append(value)
                elif value in _CLOSERS:
                    if stack:
                        stack.pop()
            # Token(type_, value, start, ...) without its two layers of argument handling
            tok = new_str(Token, value)
            tok.type, tok.value, tok.start_pos, tok.end_pos = type_, value, start, pos
            tok.line, tok.column = start_line, start_col
            tok.end_line, tok.end_column = line, pos - line_start + 1
            previous = type_
            yield tok


def _grammar_text() -> str:
    return resources.files("tgc.grammar").joinpath("tg.lark").read_text(encoding="utf-8")


class _Positions:
    """Wraps a rule's tree builder to give each tree its span: what Lark's `propagate_positions`
    computes, at a third less cost (it was the largest part of parsing a long file).

    `meta.own` is a tree's span, (line, column, end_line, end_column); `meta.box` also covers the
    tokens dropped from the tree (keywords, brackets), and a parent's span comes from its
    children's boxes: so `(a + b)` as an argument spans its parentheses, as in Lark.
    """

    __slots__ = ("build",)

    def __init__(self, build):
        self.build = build

    def __call__(self, children):
        tree = self.build(children)
        if type(tree) is not Tree:
            return tree
        first = None
        for c in children:
            if type(c) is Token:
                first = (c.line, c.column)
                break
            if type(c) is Tree:
                box = getattr(c._meta, "box", None)  # `_meta`: the `meta` property would make one
                if box is not None:
                    first = box[:2]
                    break
        if first is None:
            return tree  # nothing with a position: an empty rule
        box = first
        for c in reversed(children):
            if type(c) is Token:
                box = first + (c.end_line, c.end_column)
                break
            if type(c) is Tree:
                last = getattr(c._meta, "box", None)
                if last is not None:
                    box = first + last[2:]
                    break
        meta = tree.meta
        meta.box = box
        if not hasattr(meta, "own"):  # else an inlined rule (`?atom: "(" expr ")"`) returned a child
            meta.own = box
        return tree


@lru_cache(maxsize=1)
def _parser() -> Lark:
    parser = Lark(
        _grammar_text(),
        parser="lalr",
        lexer=_Lexer,
        propagate_positions=False,  # `_Positions` does it
        maybe_placeholders=True,
        strict=True,
        cache=_cache_path(),
    )
    callbacks = parser._callbacks  # rule -> tree builder, the dict the LALR parser calls
    for rule, build in list(callbacks.items()):
        callbacks[rule] = _Positions(build)
    return parser


def _cache_path() -> str | bool:
    # A per-user cache file keyed by the grammar's content; Lark rebuilds it when it is stale.
    import hashlib
    import tempfile

    digest = hashlib.sha256(_grammar_text().encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"tgc-grammar-{digest}-{os.getuid() if hasattr(os, 'getuid') else 0}.lark")


# ------------------------------------------------------------------------------ reading


def decode_source(data: bytes, filename: str) -> str:
    """Bytes -> text, with no newline translation (a lone CR is not a line break)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        # a column counts characters, as everywhere else, not bytes (the line's start is valid UTF-8)
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8")) + 1
        span = A.Span(filename, line, col, line, col + 1)
        raise CompileError(
            [
                error(
                    span,
                    "E001",
                    f"the file is not valid UTF-8 text (byte 0x{data[exc.start]:02x})",
                    "tg source files must be UTF-8 encoded",
                )
            ]
        ) from None


MAX_SOURCE_BYTES = 8 << 20  # a .tg file is a few KB; /dev/zero or a data file is not one


def read_source(path: str) -> str:
    """A source file's text. Only regular files (a FIFO would block, /dev/zero never ends),
    and at most MAX_SOURCE_BYTES of them."""
    import os
    import stat

    span = A.Span(path, 0, 0, 0, 0)  # line 0: the file as a whole, no position in it
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise CompileError([error(span, "E001", f"cannot read `{path}`: not a regular file")])
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CompileError([error(span, "E001", f"cannot read `{path}`: {reason.lower()}")]) from None
    if len(data) > MAX_SOURCE_BYTES:
        raise CompileError([error(span, "E001", f"cannot read `{path}`: larger than {MAX_SOURCE_BYTES >> 20} MB, "
                                              "which no .tg file is")])
    return decode_source(data, path)


# ------------------------------------------------------------------------------ parsing


def parse(text: str, filename: str = "<input>") -> A.Program:
    """Parse tg source text into an AST; raises `CompileError` on syntax errors."""
    parser = _parser()
    try:
        tree = parser.parse(text)
    except UnexpectedInput as exc:
        first = _syntax_diagnostic(exc, text, filename, parser)
        raise CompileError([first, *_later_syntax_errors(text, filename, parser, first)]) from None
    except RecursionError:
        raise CompileError([_too_deep(filename)]) from None
    try:
        program = _ToAst(filename, text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, CompileError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, RecursionError):
            raise CompileError([_too_deep(filename)]) from None
        raise exc.orig_exc from None
    except RecursionError:
        raise CompileError([_too_deep(filename)]) from None
    return program


def _too_deep(filename: str) -> Diagnostic:
    return error(
        A.Span(filename, 1, 1, 1, 1),
        "E007",
        "the program is nested too deeply to compile",
        "split deeply nested expressions into named steps",
    )


# ------------------------------------------------------------------------------ syntax errors

_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "_NL": "a line break",
    "PIPE": "`>>`",
    "$END": "the end of the file",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "FROZEN": "`frozen`",
}


def _terminal_words(parser: Lark) -> dict[str, str]:
    words = dict(_WORDS)
    for term in parser.terminals:
        if term.name not in words and isinstance(term.pattern, PatternStr):
            words[term.name] = f"`{term.pattern.value}`"
    return words


def _describe_expected(expected: set[str], words: dict[str, str]) -> str:
    names = sorted({words.get(t, t.lower()) for t in expected if not t.startswith("__")})
    # a name, then literals, then the rest; long lists help nobody
    names.sort(key=lambda w: (not w.startswith("a "), w))
    if len(names) > 6:
        names = names[:6] + ["..."]
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _token_text(tok: Token, words: dict[str, str]) -> str:
    if tok.type == "$END":
        return "the end of the file"
    if tok.type == "_NL":
        return "line break"  # "unexpected line break", not "unexpected a line break"
    if tok.type == "PIPE":
        return "`>>`"
    value = tok.value if len(tok.value) <= 30 else tok.value[:27] + "..."
    return f"`{value}`"


def _syntax_diagnostic(exc: UnexpectedInput, text: str, filename: str, parser: Lark) -> Diagnostic:
    words = _terminal_words(parser)
    line = getattr(exc, "line", None) or 1
    column = getattr(exc, "column", None) or 1
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text, filename, line, column)

    tok: Token | None = getattr(exc, "token", None)
    expected = set(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ())
    if isinstance(exc, UnexpectedToken) and getattr(exc, "accepts", None):
        expected = set(exc.accepts)
    at_end = isinstance(exc, UnexpectedEOF) or tok is None or tok.type == "$END"
    if at_end:
        end_line = text.count("\n") + 1
        end_col = len(text) - (text.rfind("\n") + 1) + 1
        span = A.Span(filename, end_line, end_col, end_line, end_col + 1)
        hint = _unclosed_hint(text)
        want = _describe_expected(expected, words)
        msg = "unexpected end of the file" + (f"; expected {want}" if want else "")
        return error(span, "E005", msg, hint)

    tok_line = tok.line or line
    tok_col = tok.column or column
    if tok.type == "PIPE":
        # the PIPE token may start with the blank lines before `>>`: point at `>>` itself
        offset = tok.value.index(">>")
        before = tok.value[:offset]
        nl = before.count("\n")
        if nl:
            tok_line += nl
            tok_col = offset - before.rfind("\n")
        else:
            tok_col += offset
        span = A.Span(filename, tok_line, tok_col, tok_line, tok_col + 2)
    elif tok.type == "_NL":
        span = A.Span(filename, tok_line, tok_col, tok_line, tok_col + 1)
    else:
        end_col = tok.end_column if tok.end_line == tok_line and tok.end_column else tok_col + 1
        span = A.Span(filename, tok_line, tok_col, tok_line, end_col)

    open_ = _open_bracket(text, tok.start_pos) if tok.start_pos is not None else None
    if open_ is not None and open_[1] < tok_line and open_[0] in "([" and _starts_a_statement(text, tok.start_pos):
        # an unclosed `(` or `[`: the parser only notices on a later line; point at the bracket
        c, ln, col = open_
        return error(A.Span(filename, ln, col, ln, col + 1), "E004", f"`{c}` is never closed",
                     f"close it with `{_OPENERS[c]}` (line {tok_line} starts a new statement)")
    reserved_before = _reserved_word_before(tok, text)
    if reserved_before is not None and (tok.value == "=" or "NAME" in expected):
        # `input = ...`, `load, b = ...`: the keyword was meant as a name
        word, start = reserved_before
        span = A.Span(filename, tok_line, tok_col - (tok.start_pos - start), tok_line,
                      tok_col - (tok.start_pos - start) + len(word))
        return error(span, "E006", f"`{word}` is a reserved word and cannot be used as a name",
                     f"rename it, for example to `{word}_`")
    if tok.value in RESERVED and tok.type != "NAME" and "NAME" in expected:
        return error(
            span,
            "E006",
            f"`{tok.value}` is a reserved word and cannot be used as a name",
            f"rename it, for example to `{tok.value}_`",
        )
    want = _describe_expected(expected, words)
    msg = f"unexpected {_token_text(tok, words)}" + (f"; expected {want}" if want else "")
    hint = None
    if tok.type in ("NAME", "NUMBER", "STRING") and "PIPE" in expected:
        hint = "write `>>` between the elements of a chain, or put statements on separate lines"
    elif tok.type == "_NL" and ")" in want:
        hint = None
    elif tok.value == "=" and "NAME" not in expected:
        hint = "the left of `=` must be one name, or several names separated by commas"
    elif tok.value == ":" and expected & {"PIPE", "_NL", "$END"}:
        hint = "only `input` declarations and `train` sections use `:`"
    return error(span, "E004", msg, hint)


def _reserved_word_before(tok: Token, text: str) -> tuple[str, int] | None:
    """The reserved word right before an unexpected `=` or `,` on the same line, and its offset."""
    if tok.value not in ("=", ",") or tok.start_pos is None:
        return None
    # on the token's own line (\Z, not $, which also matches before a final line break), and
    # not inside a comment
    line = text[text.rfind("\n", 0, tok.start_pos) + 1 : tok.start_pos]
    m = re.search(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)[ \t]*\Z", line)
    if m is None or m.group(1) not in RESERVED or "#" in line[: m.start(1)]:
        return None
    return m.group(1), tok.start_pos - len(line) + m.start(1)


def _bad_character(
    exc: UnexpectedCharacters, text: str, filename: str, line: int, column: int
) -> Diagnostic:
    pos = exc.pos_in_stream
    ch = text[pos] if 0 <= pos < len(text) else ""
    span = A.Span(filename, line, column, line, column + 1)
    if ch == '"':
        rest = text[pos:].split("\n", 1)[0]
        if re.match(r'"[^"]*"', rest):
            m = re.search(r"\\(u[0-9a-fA-F]{0,3}(?![0-9a-fA-F])|[^\"\\/bfnrtu]|$)", rest[1:])
            hint = "strings use JSON escapes: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX"
            if m:
                col = column + 1 + m.start()
                span = A.Span(filename, line, col, line, col + max(1, len(m.group(0))))
            return error(span, "E003", "invalid escape sequence in a string", hint)
        return error(
            span,
            "E003",
            "unterminated string",
            "close the string with `\"` on the same line; strings never span lines",
        )
    if ch == "'":
        return error(span, "E002", "unexpected character `'`", 'strings use double quotes: "text"')
    if ch and ch.isprintable() and not ch.isspace():
        return error(span, "E002", f"unexpected character `{ch}`")
    code = f"U+{ord(ch):04X}" if ch else "end of file"
    return error(span, "E002", f"unexpected character {code}")


def _open_bracket(text: str, upto: int | None = None) -> tuple[str, int, int] | None:
    """The innermost bracket still open at offset `upto` (the end by default), skipping
    comments and strings: (bracket, line, column)."""
    stack: list[tuple[str, int, int]] = []
    line, line_start = 1, 0
    i = 0
    n = len(text) if upto is None else min(upto, len(text))
    while i < n:
        c = text[i]
        if c == "\n":
            line, line_start = line + 1, i + 1
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 or j > n else j
            continue
        elif c == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            i = j + 1 if j < n and text[j] == '"' else j
            continue
        elif c in _OPENERS:
            stack.append((c, line, i - line_start + 1))
        elif c in ")]}":
            if stack:
                stack.pop()
        i += 1
    return stack[-1] if stack else None


MAX_SYNTAX_ERRORS = 10


def _later_syntax_errors(text: str, filename: str, parser: Lark, first: Diagnostic) -> list[Diagnostic]:
    """Independent syntax errors after the first (LANGUAGE.md 11: several in one run).

    Recovery by blanking: the line of an error is replaced by spaces (positions stay) and the
    text parsed again, so the next error found is one of its own, not a cascade. A line whose
    braces do not balance, or that opens more `(`/`[` than it closes (a call spanning lines),
    is blanked only where the error is that its bracket is never closed; otherwise blanking would
    cascade, and the search stops. So does an error before the last one (no progress)."""
    found: list[Diagnostic] = []
    last = first
    lines = text.split("\n")
    while len(found) + 1 < MAX_SYNTAX_ERRORS and 1 <= last.span.line <= len(lines):
        index = last.span.line - 1
        code = re.sub(r'"(?:\\.|[^"\\])*"|#.*', "", lines[index])
        opens_more = any(code.count(a) > code.count(b) for a, b in _OPENERS.items())
        if code.count("{") != code.count("}") or (opens_more and not last.message.endswith("is never closed")):
            break  # a block's brace, or the first line of a call spanning lines: blanking would cascade
        lines[index] = " " * len(lines[index])
        try:
            parser.parse("\n".join(lines))
        except UnexpectedInput as exc:
            later = _syntax_diagnostic(exc, "\n".join(lines), filename, parser)
            if later.span.line <= last.span.line or later.code == "E005":
                break  # no progress, or the end of the file: a consequence of the blanking
            found.append(later)
            last = later
            continue
        break
    return found


def _starts_a_statement(text: str, pos: int) -> bool:
    """Whether the token at `pos` begins its line after a line that ended a thought (not after
    a `,` or an opening bracket, which continue a list or call over lines)."""
    line_start = text.rfind("\n", 0, pos) + 1
    if text[line_start:pos].strip():
        return False
    before = re.sub(r"#[^\n]*", "", text[:line_start]).rstrip()
    return not before or before[-1] not in ",([{"


def _unclosed_hint(text: str) -> str | None:
    """The innermost bracket still open at the end of the text, for a helpful hint."""
    open_ = _open_bracket(text)
    if open_ is None:
        return None
    c, ln, _ = open_
    return f"`{c}` opened on line {ln} is never closed with `{_OPENERS[c]}`"


# ------------------------------------------------------------------------------ tree -> AST


def _tok_span(filename: str, tok: Token) -> A.Span:
    return A.Span(filename, tok.line, tok.column, tok.end_line, tok.end_column)


def _doc_comment(lines: list[str], line: int) -> str | None:
    """The comment block directly above line `line` (1-based), without its `#` markers."""
    doc: list[str] = []
    i = line - 2
    while i >= 0:
        stripped = lines[i].strip()
        if not stripped.startswith("#"):
            break
        doc.append(stripped[1:].removeprefix(" ").rstrip())
        i -= 1
    if not doc:
        return None
    return "\n".join(reversed(doc)).strip() or None


class _ToAst(Transformer):
    # Callbacks take `(meta, children)` as with `@v_args(meta=True)`, but are called directly:
    # v_args makes a wrapper object on every call, which cost a third of this pass.
    __visit_tokens__ = False

    def _transform_tree(self, tree):
        children = [self._transform_tree(c) if isinstance(c, Tree) else c for c in tree.children]
        try:
            return getattr(self, tree.data)(tree._meta, children)  # None where no span: see `_span`
        except Exception as exc:
            raise VisitError(tree.data, tree, exc) from None

    def __init__(self, filename: str, text: str):
        super().__init__()
        self.filename = filename
        self.lines = text.split("\n")

    def _span(self, meta) -> A.Span:
        own = getattr(meta, "own", None)  # set by `_Positions`
        if own is None:
            return A.Span(self.filename, 1, 1, 1, 1)
        return A.Span(self.filename, *own)

    def _name(self, tok: Token) -> A.Name:
        return A.Name(_tok_span(self.filename, tok), str(tok))

    # ---- top level
    def start(self, meta, items):
        return A.Program(self._span(meta), tuple(i for i in items if i is not None))

    def model(self, meta, children):
        name, params, body = children
        span = self._span(meta)
        return A.Model(
            span,
            str(name),
            _tok_span(self.filename, name),
            params if params is not None else (),
            body,
            _doc_comment(self.lines, span.line),
        )

    def block(self, meta, children):
        name, params, inputs, outputs, body = children
        span = self._span(meta)
        return A.Block(
            span,
            str(name),
            _tok_span(self.filename, name),
            params,
            inputs,
            outputs,
            body,
            _doc_comment(self.lines, span.line),
        )

    def param_list(self, meta, children):
        return tuple(c for c in children if c is not None)

    def param(self, meta, children):
        name, type_, default = children
        return A.Param(
            self._span(meta),
            str(name),
            self._name(type_) if type_ is not None else None,
            default,
        )

    def input_list(self, meta, children):
        return tuple(self._name(c) for c in children if c is not None)

    def single_output(self, meta, children):
        return (self._name(children[0]),)

    def many_outputs(self, meta, children):
        return tuple(self._name(c) for c in children if c is not None)

    def body(self, meta, children):
        return tuple(c for c in children if c is not None)

    def import_name(self, meta, children):
        return A.Import(self._span(meta), str(children[0]), False)

    def import_path(self, meta, children):
        return A.Import(self._span(meta), _decode_string(children[0], self.filename), True)

    def train(self, meta, children):
        model = children[0]
        items = tuple(c for c in children[1:] if c is not None)
        return A.Train(self._span(meta), self._name(model) if model is not None else None, items)

    def train_item(self, meta, children):
        key = children[0]
        return A.TrainItem(
            self._span(meta), str(key), _tok_span(self.filename, key), tuple(children[1:])
        )

    # ---- statements
    def input_decl(self, meta, children):
        name, type_ = children
        dtype = dtype_span = shape = None
        if type_ is not None:
            dtype, dtype_span, shape = type_
        return A.InputDecl(
            self._span(meta), str(name), _tok_span(self.filename, name), dtype, dtype_span, shape
        )

    def input_type(self, meta, children):
        dtype = children[0]
        dims = tuple(c for c in children[1:] if c is not None)
        if dtype is None:
            return None, None, dims
        return str(dtype), _tok_span(self.filename, dtype), dims

    def named_dim(self, meta, children):
        name, size = children
        return A.Dim(self._span(meta), str(name), size)

    def plain_dim(self, meta, children):
        (size,) = children
        return A.Dim(self._span(meta), None, size)

    def assign(self, meta, children):
        *targets, chain = children  # NAME tokens: no `target` rule, one reduction less per name
        return A.Assign(self._span(meta), tuple(self._name(t) for t in targets), chain)

    def output(self, meta, children):
        return A.Output(self._span(meta), tuple(self._name(c) for c in children))

    def merge(self, meta, children):
        return A.Merge(self._span(meta), children[0])

    def load(self, meta, children):
        name, path = children
        return A.Load(
            self._span(meta),
            self._name(name),
            A.String(_tok_span(self.filename, path), _decode_string(path, self.filename)),
        )

    def expr_stmt(self, meta, children):
        return A.ExprStmt(self._span(meta), children[0])

    def layer_def(self, meta, children):
        _, name, chain = children
        return A.LayerDef(self._span(meta), self._name(name), chain)

    # ---- chains
    def chain(self, meta, children):
        elements = tuple(c for c in children if not isinstance(c, Token))
        head = elements[0]
        if isinstance(head, A.Name):  # a value at the head: `x >> relu`
            head = A.OpElement(head.span, False, head.id, head.span, (), False)
        elif isinstance(head, A.Call):  # `add(a, b) >> relu`
            head = A.OpElement(head.span, False, head.name, head.name_span, head.args, True)
        elif not isinstance(head, (A.OpElement, A.RepeatElement)):  # `a + b >> relu`
            head = A.ExprElement(head.span, head)
        elements = (head, *elements[1:])
        return A.Chain(elements[0].span.to(elements[-1].span), elements)

    def piped(self, meta, children):
        return self.chain(meta, children)

    def paren(self, meta, children):
        (chain,) = children
        return _as_expr(chain)

    def call_element(self, meta, children):
        frozen, call = children
        return A.OpElement(
            self._span(meta), frozen is not None, call.name, call.name_span, call.args, True
        )

    def name_element(self, meta, children):
        frozen, name = children
        span = _tok_span(self.filename, name)
        return A.OpElement(self._span(meta), frozen is not None, str(name), span, (), False)

    def repeat_element(self, meta, children):
        frozen, (span, count, body) = children
        return A.RepeatElement(self._span(meta), frozen is not None, count, body)

    def repeat(self, meta, children):
        count, body = children
        return (self._span(meta), count, body)

    def call(self, meta, children):
        name = children[0]
        args = tuple(c for c in children[1:] if c is not None)
        return A.Call(self._span(meta), str(name), _tok_span(self.filename, name), args)

    def keyword_arg(self, meta, children):
        name, value = children
        return A.Arg(self._span(meta), str(name), _tok_span(self.filename, name), _as_expr(value))

    def positional_arg(self, meta, children):
        (value,) = children
        return A.Arg(self._span(meta), None, None, _as_expr(value))

    def named_item(self, meta, children):
        name, value = children
        return A.NamedItem(self._span(meta), str(name), _tok_span(self.filename, name), value)

    def index(self, meta, children):
        value, *items = children
        return A.Index(self._span(meta), value, tuple(i for i in items if i is not None))

    def named_subscript(self, meta, children):
        name, value = children
        return self._subscript(meta, str(name), _tok_span(self.filename, name), value)

    def plain_subscript(self, meta, children):
        (value,) = children
        return self._subscript(meta, None, None, value)

    def _subscript(self, meta, name, name_span, value) -> A.Subscript:
        span = self._span(meta)
        if isinstance(value, tuple):  # a slice
            start, stop = value
            return A.Subscript(span, name, name_span, None, start, stop, True)
        return A.Subscript(span, name, name_span, value)

    def slice(self, meta, children):
        start, stop = children
        return (start, stop)

    # ---- expressions
    def number(self, meta, children):
        (tok,) = children
        text = str(tok)
        if re.fullmatch(r"\d+", text):
            value: int | float = int(text)
        else:
            value = float(text)
            if value == float("inf"):  # `1e309`: no float has that value (nor would `inf` emit)
                raise CompileError([error(_tok_span(self.filename, tok), "E017",
                                          f"the number `{text}` is too large for a float",
                                          "a float is at most about 1.8e308")])
        return A.Number(_tok_span(self.filename, tok), value, text)

    def string(self, meta, children):
        (tok,) = children
        return A.String(_tok_span(self.filename, tok), _decode_string(tok, self.filename))

    def true(self, meta, children):
        return A.Bool(_tok_span(self.filename, children[0]), True)

    def false(self, meta, children):
        return A.Bool(_tok_span(self.filename, children[0]), False)

    def name(self, meta, children):
        return self._name(children[0])

    def list(self, meta, children):
        return A.ListExpr(self._span(meta), tuple(c for c in children if c is not None))

    def _binop(op: str):  # noqa: N805 - a factory used in the class body
        def rule(self, meta, children):
            left, right = children
            return A.BinOp(self._span(meta), op, left, right)

        return rule

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    truediv = _binop("/")
    floordiv = _binop("//")
    mod = _binop("%")
    del _binop

    def neg(self, meta, children):
        (operand,) = children
        span = self._span(meta)
        if isinstance(operand, A.Number):  # a signed literal: `dim=-1`
            return A.Number(span, -operand.value, "-" + operand.text)
        return A.Neg(span, operand)

    def pos(self, meta, children):
        (operand,) = children
        return operand


def _as_expr(chain: A.Chain) -> A.Expr:
    """A chain where an expression is wanted: its head's expression when it has no `>>`."""
    if len(chain.elements) == 1:
        head = chain.elements[0]
        if isinstance(head, A.ExprElement):
            return head.expr
        if isinstance(head, A.OpElement) and not head.frozen:
            if not head.has_parens:
                return A.Name(head.name_span, head.name)
            return A.Call(head.span, head.name, head.name_span, head.args)
    return A.ChainExpr(chain.span, chain)


def _decode_string(tok: Token, filename: str) -> str:
    # The lexer admits only JSON escapes, so json.loads is exact; but JSON forbids the raw
    # control characters (a tab, NUL, ...) that the lexer lets into a string: report them.
    text = str(tok)
    bad = re.search(r"[\x00-\x1f]", text)
    if bad is not None:
        col = tok.column + bad.start()
        escape = {"\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(bad.group(), f"\\u{ord(bad.group()):04x}")
        span = A.Span(filename, tok.line, col, tok.line, col + 1)
        raise CompileError([error(span, "E003", f"control character U+{ord(bad.group()):04X} in a string",
                                  f"write it as the escape `{escape}`")])
    return json.loads(text)
