"""Fuzzing the whole compiler (issue 13): whatever the file, `tgc check` answers with diagnostics,
and whatever it accepts compiles.

Programs come from `fuzz/generate.py` (valid programs of the differential generator, the same
after grammar-aware edits, the examples after edits, random bytes), one per seed. For each:

- `pipeline.check` (everything `tgc check` does) returns; no exception escapes it;
- every diagnostic has a known code, line >= 0 (0: the file as a whole), column >= 1 and a caret
  inside its line (at most one column past its end), an end not before its start, and renders;
- `tgc check FILE` exits 0 or 1, never 2 or 3 (an internal error);
- a program that checks (no errors) compiles: `tgc FILE -o OUT` (a folder when it has a `train`
  section) exits 0, which includes the torch.fx verification of the emitted module, and every
  file written is black-clean.

CI runs `N` programs from seed 0 (seeded: a failure prints its seed, and `python -m fuzz.generate
SEED` with `PYTHONPATH=tests` prints the program). The long mode runs `TGC_FUZZ_N` programs from
seed `TGC_FUZZ_SEED` (default `N`):

    TGC_FUZZ_N=100000 python -m pytest -q tests/fuzz -m slow

(about 29 s per 1,000 programs on a 2-CPU machine, of which about 28 % check and are compiled).

Programs that failed once, minimized, are regression cases (`REGRESSIONS`).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import black
import pytest

from tgc.compiler import pipeline
from tgc.compiler.cli import main
from tgc.compiler.diagnostics import CODES, render

from . import generate as G

N = 200
N_ENV, SEED_ENV = "TGC_FUZZ_N", "TGC_FUZZ_SEED"
BLACK_MODE = black.Mode(target_versions={black.TargetVersion.PY310})
FILE = "fuzz.tg"

# Minimized programs of failures the fuzzing found, each a bug fixed (what it was, then the text).
REGRESSIONS: list[tuple[str, str]] = [
    # `1e309` was infinity, emitted as `inf` (a NameError) or crashing the checker (OverflowError
    # in `upsample`); now E017 at the literal (compiler/parse.py)
    ("float_literal_overflow", "block b(rate = 0.25) (x) -> y {\n    y = x >> relu\n}\n"
     "model M {\n    input x: [batch, feature=4]\n    y = x >> b(rate=1e309)\n}\n"),
    ("float_literal_overflow_in_upsample", "model M {\n    input x: [batch, channel=2, length]\n"
     "    y = x >> upsample(scale_factor=1e309)\n}\n"),
    # an input size beyond int64 failed in verification (`torch.zeros`); now E057 at the input
    # (compiler/shapes.py)
    ("input_size_beyond_int64", "model M(ch: int = 1000000000000000000000000000000) {\n"
     "    input x: [batch, feature=4]\n    input y: [batch, token, feature=ch]\n    v = x >> linear(16)\n"
     "    output v\n}\n"),
    # a run-time size that overflows int64 for every input (`length * 10**30`) ran into torch; now
    # E053, no input sizes can run it (compiler/sizes.py, compiler/shapes.py)
    ("run_time_size_beyond_int64", "model M {\n    input x: [batch, channel=16, length]\n"
     "    y = x >> upsample(scale_factor=1000000000000000000000000000000)\n}\n"),
    # torch's 2-d and 3-d pools take C ints: `stride=99999999999` failed in torch; now E057
    # (compiler/ops/pool.py)
    ("pool_stride_beyond_int32", "model M {\n    input x: [batch, channel=3, height, width]\n"
     "    y = x >> maxpool2d(2, stride=99999999999)\n}\n"),
    # an integer argument beyond int64 failed in torch (`conv2d(stride=10**30)`: "Overflow when
    # unpacking long long"; a float's `negative_slope=10**30`: "int too big to convert"); now E057
    # at the argument (compiler/shapes.py)
    ("conv_stride_beyond_int64", "model M {\n    input x: [batch, channel=3, height, width]\n"
     "    y = x >> conv2d(4, 3, stride=1000000000000000000000000000000, padding=1)\n}\n"),
    ("float_argument_given_as_a_huge_int", "model M {\n    input x: [batch, feature=4]\n"
     "    y = x >> leaky_relu(negative_slope=1000000000000000000000000000000)\n}\n"),
    # `gru(num_layers=99999999999)`: the weight count listed every layer (MemoryError in `tgc
    # check`), and torch would build them one by one; now counted in closed form, and more than
    # 10,000 stacked layers is E057 (compiler/ops/recurrent.py)
    ("rnn_with_a_huge_number_of_layers", "model M {\n    input x: [batch, token, feature=4]\n"
     "    v, h = gru(x, hidden=3, num_layers=99999999999)\n}\n"),
    # `unfreeze(...)` without its target crashed the train section's plan (KeyError) after
    # reporting the missing argument; now the E041s alone (compiler/train.py)
    ("unfreeze_without_a_target", "model M(d: int = 4) {\n    input x: [batch, feature=d]\n"
     "    logits = x >> linear(3)\n}\ntrain M {\n    data: sklearn(\"digits\")\n    task: classification\n"
     "    callbacks: unfreeze(every=1)\n    epochs: 1\n}\n"),
    # a repeat body that starts with an expression crashed the resolver (AttributeError); now E036
    # (compiler/resolve/statements.py)
    ("repeat_body_expression", "model M {\n    input x: [batch, feature=4]\n"
     "    y = x >> repeat(1) { - relu }\n}\n"),
    # a repeat body equal to a one-block body (which is not emitted: its steps are the block's
    # class) reused that body's class name, never defined (NameError); compiler/emit.py
    ("repeat_body_like_a_one_block_body", "block mix() (x) -> y {\n    y = x >> relu\n}\n"
     "model M {\n    input x: [batch, feature=4]\n    a = x >> repeat(1) { mix() }\n"
     "    b = a >> repeat(1) { mix() >> identity }\n}\n"),
]


@dataclass
class Stats:
    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[str, list[str], str]] = field(default_factory=list)  # (what, problems, text)
    seconds: float = 0.0

    def line(self) -> str:
        c = self.counts
        return (f"{c['programs']} programs ({', '.join(f'{k} {c[k]}' for k in ('valid', 'near', 'example', 'bytes'))})"
                f": {c['checked']} check clean, {c['compiled']} compiled and verified, "
                f"{c['diagnostics']} diagnostics; {self.seconds:.1f} s "
                f"({1000 * self.seconds / max(1, c['programs']):.1f} s per 1,000)")

    def report(self, limit: int = 10) -> str:
        out = []
        for what, problems, text in self.failures[:limit]:
            shown = text if len(text) < 3000 else text[:3000] + "\n..."
            out.append(f"--- {what}\n" + "\n".join(f"  {p}" for p in problems) + f"\n{shown}")
        return "\n".join(out)


def _diagnostic_problems(d, sources: dict[str, str], fallback: str) -> list[str]:
    problems = []
    s = d.span
    if d.code not in CODES or d.severity != ("error" if d.code.startswith("E") else "warning"):
        problems.append(f"unknown code or severity: {d}")
    if not (isinstance(d.message, str) and d.message.strip()):
        problems.append(f"no message: {d}")
    if s.line < 0 or s.column < 1:
        problems.append(f"{d.code} at line {s.line}, column {s.column}: {d.message}")
    source = sources.get(s.file, fallback if os.path.basename(s.file) == FILE else None)
    if source is not None and s.line >= 1:
        lines = source.split("\n")  # only LF ends a line (LANGUAGE.md 10)
        if s.line > len(lines):
            problems.append(f"{d.code} at line {s.line} of {len(lines)}: {d.message}")
        else:
            text = lines[s.line - 1].rstrip("\r")
            if s.column > len(text) + 1:
                problems.append(f"{d.code} at {s.line}:{s.column}, past the end of its line "
                                f"({len(text)} characters): {d.message}")
    if (s.end_line, s.end_column) < (s.line, s.column):
        problems.append(f"{d.code} ends before it starts ({s}): {d.message}")
    try:
        render(d, source)
    except Exception as exc:  # noqa: BLE001 (what is checked: nothing escapes)
        problems.append(f"rendering {d.code} raises {type(exc).__name__}: {exc}")
    return problems


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, err.getvalue()


def examine(data: bytes, root: Path, stats: Stats) -> list[str]:
    """The problems of one file (nothing is fine); `stats` counts what happened."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "data").symlink_to(G.EXAMPLES / "data")  # the examples' data files, where they look
    path = root / FILE
    path.write_bytes(data)
    fallback = data.decode("utf-8", "replace").removeprefix("\ufeff")
    try:
        result = pipeline.check(str(path), pipeline.Options())
    except BaseException as exc:  # noqa: BLE001 (what is checked: nothing escapes)
        return [f"pipeline.check raises {type(exc).__name__}: {exc}"]
    problems = []
    for d in result.diagnostics:
        problems += _diagnostic_problems(d, result.sources, fallback)
    stats.counts["diagnostics"] += len(result.diagnostics)
    status, err = _cli(["check", str(path)])
    if status not in (0, 1) or "internal error" in err:
        problems.append(f"tgc check exits {status}: {err.strip()[-2000:]}")
    elif (status == 0) != result.ok:
        problems.append(f"tgc check exits {status}, but pipeline.check says ok={result.ok}")
    if not result.ok:
        return problems
    stats.counts["checked"] += 1
    out = root / ("out" if result.plans else "out.py")
    status, err = _cli([str(path), "-o", str(out)])
    if status != 0:
        return problems + [f"compiling a checked program exits {status}: {err.strip()[-2000:]}"]
    stats.counts["compiled"] += 1
    for py in sorted(out.glob("*.py")) if out.is_dir() else [out]:
        text = py.read_text(encoding="utf-8")
        if black.format_str(text, mode=BLACK_MODE) != text:
            problems.append(f"{py.name} is not black-clean")
    return problems


def run(seeds, root: Path) -> Stats:
    stats = Stats()
    start = time.perf_counter()
    for seed in seeds:
        program = G.program(seed)
        stats.counts["programs"] += 1
        stats.counts[program.kind] += 1
        problems = examine(program.data, root / "work", stats)
        if problems:
            stats.failures.append((program.describe(), problems, program.text))
    stats.seconds = time.perf_counter() - start
    return stats


def _assert_ok(stats: Stats) -> None:
    print("\nfuzz:", stats.line())
    if stats.failures:
        pytest.fail(f"{len(stats.failures)} of {stats.counts['programs']} programs fail; each with its "
                    f"seed (`PYTHONPATH=tests python -m fuzz.generate SEED` prints it):\n" + stats.report(),
                    pytrace=False)


def test_fuzz(tmp_path):
    """`N` programs from seed 0: diagnostics only, and what checks compiles and verifies."""
    stats = run(range(N), tmp_path)
    _assert_ok(stats)
    c = stats.counts
    assert c["checked"] >= 0.2 * c["programs"] and c["compiled"] == c["checked"], c  # the later stages are reached
    assert all(c[kind] for kind, _ in G.KINDS), c


@pytest.mark.slow
def test_fuzz_long(tmp_path):
    """`TGC_FUZZ_N` programs (1,000 by default) from seed `TGC_FUZZ_SEED` (default `N`)."""
    start = int(os.environ.get(SEED_ENV, N))
    _assert_ok(run(range(start, start + int(os.environ.get(N_ENV, 1000))), tmp_path))


@pytest.mark.parametrize("what, text", REGRESSIONS, ids=[w for w, _ in REGRESSIONS] or None)
def test_regression(what, text, tmp_path):
    stats = Stats()
    problems = examine(text.encode("utf-8"), tmp_path / "work", stats)
    assert not problems, problems


def test_generation_is_reproducible():
    for seed in (0, 1, 17, 2**40):
        assert G.program(seed) == G.program(seed)


def test_the_oracle_finds_a_caret_past_the_line(tmp_path, monkeypatch):
    """The oracle can fail: a diagnostic whose column is past the end of its line is reported."""
    from dataclasses import replace

    real = pipeline.check

    def shifted(*args, **kwargs):
        result = real(*args, **kwargs)
        result.diagnostics = [replace(d, span=replace(d.span, column=d.span.column + 200)) for d in result.diagnostics]
        return result

    monkeypatch.setattr(pipeline, "check", shifted)
    problems = examine(b"model M {\n    y = x >> lineer(3)\n}\n", tmp_path / "work", Stats())
    assert any("past the end of its line" in p for p in problems), problems
