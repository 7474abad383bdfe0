"""Programs for the fuzz suite, one per seed (`program(seed)`), reproducible from the seed alone.

Four kinds, drawn with a plain `random.Random(seed)`:

- `valid`: a program of the differential generator (`tests/differential/generate.py`, which
  writes mostly well-typed programs over the whole language), as it is;
- `near`: such a program after 1-3 grammar-aware edits on its tokens: delete, duplicate, swap or
  insert a token, rename a name (everywhere, or once; to another name of the program, a Python
  keyword or builtin, a reserved word, an op, a name the emitted file uses), change a number or a
  string, drop, duplicate or swap a line, cut the text short; so it is valid or nearly so;
- `example`: a file of `examples/` (the zoo and the three levels too) after the same edits;
- `bytes`: random bytes, a soup of tg tokens, or a valid program with bytes flipped and
  inserted (invalid UTF-8, NUL, CR, a BOM, control characters).

The tokenizer (`TOKEN`) and the token list (`TG_TOKENS`) are the ones the hypothesis-based
front-end fuzzing of `tests/test_fuzz.py` mutates with.

`python -m fuzz.generate SEED...` (with `PYTHONPATH=tests`) prints programs.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from differential import generate as differential

from tgc.compiler.ops.registry import all_ops
from tgc.compiler.parse import RESERVED

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"

_OPS = sorted(all_ops())
_NAMES = ["x", "y", "h", "a", "b", "q", "k", "v", "_", "self", "class", "torch", "hidden", "d_in",
          "width", "p", "batch", "feature", "token", "int", "float", "long", "bool", "std"]
# The tokens an edit may insert (and test_fuzz.py's token soups are made of).
TG_TOKENS = [
    *sorted(RESERVED), *_NAMES, *_OPS, "residual", "mlp", "csv", "classification",
    ">>", "(", ")", "[", "]", "{", "}", ",", "=", ":", ";", "->", "-", "+", "*", "/", "//", "%",
    "0", "1", "2", "64", "128", "-1", "0.5", "1e-3", ".5", "1.", "007",
    '"s"', '"weights/encoder.pt"', '"a\\"b"', '"\\u00e9"', '"bad\\q"', '"open', "'single'", '"tab\there"',
    '"\x00"',
    "\n", "\n", "\r\n", "\r", "# comment\n", "#", "\t", "  ",
]
# A name, a number, `>>`, `->`, `//`, a string, a comment, white space, or one character.
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|>>|->|//|\"[^\"\n]*\"|#[^\n]*|\s+|.")

# What a rename may choose, besides the program's own names and the ops.
HOSTILE_NAMES = [
    "class", "def", "lambda", "return", "None", "False", "match", "case", "type", "_", "__", "print", "len",
    "super", "object", "int", "open", "exec", "eval", "__import__", "__class__", "__init__", "__dict__", "__h",
    "self", "torch", "nn", "F", "os", "sys", "math", "forward", "train", "_load_weights", "weights_dir",
    "main", "cfg", "SETTINGS", "INPUTS", "build", "outputs", "compile", "_modules", "state_dict", "x_features",
    "layer", "batch", "feature", "token", "std", "Model", "M", "n", "d", "hidden", "heads",
]
NUMBERS = ["0", "1", "2", "3", "-1", "-2", "7", "16", "64", "1000", "100000", "99999999999", "1" + "0" * 30,
           "0.0", "0.5", "1.5", "-0.5", "1e-3", "1e309", "007", ".5", "1.", "true", "false"]
STRINGS = ['""', '"same"', '"valid"', '"tanh"', '"none"', '"normal"', '"zeros"', '"nearest"', '"char"',
           '"digits"', '"x.pt"', '"data/train.csv"', '"label"', '"\\u0000"', '"\\"\\"\\""', '"a\\\\b"',
           '"{{ x }}"', "\"__import__('os').system('touch PWNED')\""]


@dataclass(frozen=True)
class Program:
    seed: int
    kind: str  # valid, near, example, bytes
    data: bytes  # the file's bytes
    origin: str  # where it comes from: a differential seed, an example file, ...
    edits: tuple[str, ...] = ()  # the edits made to it, in words

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def describe(self) -> str:
        edits = "; ".join(self.edits) or "none"
        return f"seed {self.seed} ({self.kind}, from {self.origin}; edits: {edits})"


KINDS = (("valid", 0.25), ("near", 0.40), ("example", 0.25), ("bytes", 0.10))


def program(seed: int) -> Program:
    """The program of a seed; the same seed always gives the same bytes."""
    rng = random.Random(f"tgc-fuzz:{seed}")
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    if kind in ("valid", "near"):
        source = rng.randrange(2**32)
        text = differential.generate(source).text
        origin = f"differential seed {source}"
        if kind == "valid":
            return Program(seed, kind, text.encode("utf-8"), origin)
        text, edits = mutate(text, rng, rng.randint(1, 3))
        return Program(seed, kind, text.encode("utf-8"), origin, tuple(edits))
    if kind == "example":
        path = rng.choice(example_files())
        text, edits = mutate(path.read_text(encoding="utf-8"), rng, rng.randint(1, 4))
        return Program(seed, kind, text.encode("utf-8"), str(path.relative_to(ROOT)), tuple(edits))
    data, origin = random_bytes(rng)
    return Program(seed, kind, data, origin)


@lru_cache(maxsize=1)
def example_files() -> tuple[Path, ...]:
    """The examples, the zoo and the levels (not the plugin's model, which needs its plugin)."""
    return tuple(sorted([*EXAMPLES.glob("*.tg"), *EXAMPLES.glob("zoo/*.tg"), *EXAMPLES.glob("levels/*.tg")]))


# ------------------------------------------------------------------------------ edits


def mutate(text: str, rng: random.Random, n: int) -> tuple[str, list[str]]:
    """`text` after `n` edits drawn from `EDITS`, and the edits in words."""
    edits = []
    for _ in range(n):
        edit = rng.choice(EDITS)
        text, what = edit(text, rng)
        edits.append(what)
    return text, edits


def _tokens(text: str) -> tuple[list[str], list[int]]:
    """The tokens of `text` (joined, they are the text) and the indices of those not white space."""
    toks = TOKEN.findall(text)
    return toks, [i for i, t in enumerate(toks) if not t.isspace()]


def _names(toks: list[str]) -> list[int]:
    """Indices of the names that are the program's own (not reserved words, ops or types)."""
    skip = set(RESERVED) | set(_OPS) | {"int", "float", "bool", "str", "long", "std"}
    return [i for i, t in enumerate(toks) if re.fullmatch(r"[A-Za-z_]\w*", t) and t not in skip]


def _delete_token(text, rng):
    toks, solid = _tokens(text)
    if not solid:
        return text, "delete a token (none)"
    i = rng.choice(solid)
    what = f"delete token {toks[i]!r}"
    del toks[i]
    return "".join(toks), what


def _duplicate_token(text, rng):
    toks, solid = _tokens(text)
    if not solid:
        return text, "duplicate a token (none)"
    i = rng.choice(solid)
    toks.insert(i, toks[i] + rng.choice(["", " "]))
    return "".join(toks), f"duplicate token {toks[i + 1]!r}"


def _swap_tokens(text, rng):
    toks, solid = _tokens(text)
    if len(solid) < 2:
        return text, "swap tokens (too few)"
    k = rng.randrange(len(solid))
    m = min(len(solid) - 1, max(0, k + rng.choice([-3, -2, -1, 1, 2, 3])))
    i, j = solid[k], solid[m]
    toks[i], toks[j] = toks[j], toks[i]
    return "".join(toks), f"swap tokens {toks[j]!r} and {toks[i]!r}"


def _insert_token(text, rng):
    toks, solid = _tokens(text)
    new = rng.choice(TG_TOKENS)
    i = rng.choice(solid) if solid else 0
    toks.insert(i, new + " ")
    return "".join(toks), f"insert token {new!r}"


def _rename(text, rng):
    toks, _ = _tokens(text)
    names = _names(toks)
    if not names:
        return _delete_token(text, rng)
    i = rng.choice(names)
    old = toks[i]
    own = sorted({toks[k] for k in names} - {old})
    pool = rng.choice([own or HOSTILE_NAMES, HOSTILE_NAMES, sorted(RESERVED), _OPS, [old + "2", old[:-1] or "z"]])
    new = rng.choice(pool)
    if rng.random() < 0.7:  # everywhere: a consistent rename, which keeps a valid program valid
        toks = [new if t == old else t for t in toks]
        return "".join(toks), f"rename {old!r} to {new!r} everywhere"
    toks[i] = new
    return "".join(toks), f"rename one {old!r} to {new!r}"


def _number(text, rng):
    toks, _ = _tokens(text)
    numbers = [i for i, t in enumerate(toks) if t[:1].isdigit()]
    if not numbers:
        return _insert_token(text, rng)
    i = rng.choice(numbers)
    old, toks[i] = toks[i], rng.choice(NUMBERS)
    return "".join(toks), f"change number {old!r} to {toks[i]!r}"


def _string(text, rng):
    toks, _ = _tokens(text)
    strings = [i for i, t in enumerate(toks) if t.startswith('"')]
    if not strings:
        return _number(text, rng)
    i = rng.choice(strings)
    old, toks[i] = toks[i], rng.choice(STRINGS)
    return "".join(toks), f"change string {old!r} to {toks[i]!r}"


def _lines(text, rng):
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    how = rng.choice(["drop", "duplicate", "swap"])
    if how == "drop":
        what = f"drop line {i + 1}"
        del lines[i]
    elif how == "duplicate":
        what = f"duplicate line {i + 1}"
        lines.insert(i, lines[i])
    else:
        j = min(len(lines) - 1, i + 1)
        what = f"swap lines {i + 1} and {j + 1}"
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines), what


def _truncate(text, rng):
    toks, _ = _tokens(text)
    k = rng.randrange(len(toks) + 1)
    return "".join(toks[:k]), f"cut after token {k}"


EDITS = (_delete_token, _duplicate_token, _swap_tokens, _insert_token, _rename, _rename, _rename, _number,
         _number, _string, _lines, _lines, _truncate)


# ------------------------------------------------------------------------------ bytes


_SPECIAL = [b"\r", b"\n", b"\r\n", b"\x00", b"\t", b"\x0b", b"\x0c", b"\x1b", b"\x7f", b"\xef\xbb\xbf",
            "\u2028".encode(), "\U0001f600".encode(), b"\xff", b"\xc0", b"\xed\xa0\x80", b"\x80", b'"', b"\\",
            b"#", b">>"]


def random_bytes(rng: random.Random) -> tuple[bytes, str]:
    """Random bytes, a soup of tg tokens, or a valid program with bytes flipped and inserted."""
    style = rng.randrange(3)
    if style == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(200))), "random bytes"
    if style == 1:
        parts = [rng.choice(TG_TOKENS).encode("utf-8") + rng.choice([b"", b" ", b"\n"])
                 for _ in range(rng.randrange(60))]
        return b"".join(parts), "a soup of tg tokens"
    data = bytearray(differential.generate(rng.randrange(2**32)).text.encode("utf-8"))
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data) + 1)
        if rng.random() < 0.5 and i < len(data):
            data[i] = rng.randrange(256)
        else:
            data[i:i] = rng.choice(_SPECIAL)
    return bytes(data), "a valid program with bytes flipped and inserted"


if __name__ == "__main__":  # PYTHONPATH=tests python -m fuzz.generate SEED...
    import sys

    for arg in sys.argv[1:]:
        p = program(int(arg))
        print(f"# {p.describe()}")
        print(p.text)
