"""The differential oracle: what `tgc check` says about a program against what PyTorch computes.

The promise under test: a program that `tgc check` accepts compiles, verifies, and computes
exactly the shapes the checker says, for every value of its parameters (and of the run-time
sizes of its inputs' unsized dimensions, within what the checker requires of them).

`examine(text, seed)` checks one program (`pipeline.check`). A rejected program is only counted.
An accepted one is

1. emitted (`name_program`, `emit`) and verified at its defaults (`verify` must return []);
   the emitted source is executed once in a fresh module;
2. run at its defaults on inputs of freshly drawn run-time sizes (batch, token, height...),
   drawn to satisfy the checker's `runtime_requires`; each output's shape and dtype must be the
   checked type's, evaluated for those sizes (`Dim.extent`, `Sym.evaluate`);
3. re-parametrised: new parameter values (ints from a small range that ignores the defaults,
   0 included; floats from a few probabilities; bools flipped; undeclared input widths redrawn
   and given as `--input`) are re-checked with `pipeline.Options(params=...)` on the same text.
   If the re-check accepts, the module emitted in step 1 (not recompiled) is constructed with
   the new values and run as in step 2 against the re-check's types. If it rejects, constructing
   or running the module with those values should fail too: a rejection that torch would accept
   is a *conservative rejection*, allowed only where a documented language rule makes it
   (`CONSERVATIVE_RULES`); any other is a failure.

Every exception the compiler raises is a failure (an internal error). `Outcome` records the
counts and the failures, each with a class (`Failure.kind`) and a message.

`PYTHONPATH=tests python -m differential.harness --n 300` runs seeds 0..299 and prints the failures grouped
by class, with the shortest program of each; `--seed S` shows one program and its outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import re
import sys
import time
import types
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from tgc.compiler import pipeline

from .generate import generate

FILE = "gen.tg"
TRIALS = 3  # re-parametrisations whose re-check accepts, per program (at most MAX_DRAWS draws)
MAX_DRAWS = 6
SIZE_TRIES = 40  # draws of run-time sizes before a trial's requirements count as unsatisfiable

# Rejections of the checker that torch would accept, made on purpose by a documented rule:
# (name, diagnostic code, pattern of the message, where the rule is written down).
# The emitted `__init__`'s refusal of a parameter value that would change which dimension a
# `dim`/`keepdim` argument picks, or which of the two ceil_mode pooling formulas applies (the module
# was compiled for one).
FIXED_AT_COMPILE = re.compile(r"as (it did|it was) when the module was compiled"
                              r"|follows one formula only for sizes like these")

CONSERVATIVE_RULES: list[tuple[str, str, str, str]] = [
    ("positive sizes", "E055", r"must be positive|positive integer|at least 1|must be >= ?1",
     ("sizes and counts are positive integers (E055 of every op and input; implied by LANGUAGE.md "
      "section 2's sizes but not written there), where torch builds some zero-sized layers")),
    ("equal pieces", "E053", r"cannot be cut into|equal pieces",
     ("`tgc ops split` / `tgc ops chunk`: a count must divide the dimension's size (torch.chunk "
      "would give unequal pieces)")),
    ("one-layer dropout", "E055", r"no effect with one layer",
     ("`tgc ops lstm` / `tgc ops gru`: a non-zero dropout with num_layers=1 is an error rather than "
      "torch's run-time warning")),
    ("repeat keeps the shape", "E050", r"the body of `repeat\(",
     ("LANGUAGE.md section 5 and `repeat`'s diagnostic: with a parameter count the body must keep "
      "its input's shape (checked once for every count), where torch runs any body 0 or 1 times")),
    ("broadcasting needs a literal 1", "E056", r"literal size 1",
     ("compiler/ops/arith.py: a dimension broadcasts only where its size is the literal 1 (a "
      "parameter that is 1 now may not be later); `cat` and `stack` never broadcast (LANGUAGE.md 13.1)")),
]


@dataclass
class Failure:
    kind: str
    message: str


@dataclass
class Outcome:
    seed: int
    text: str
    accepted: bool = False
    codes: list[str] = field(default_factory=list)  # error codes of the default check
    runs: int = 0  # runs of the emitted module compared with a check (defaults included)
    reparams: int = 0  # re-parametrisations drawn
    reparams_run: int = 0  # ... whose re-check accepted and whose module ran
    rejected: int = 0  # ... whose re-check rejected and torch failed too
    conservative: Counter = field(default_factory=Counter)  # documented conservative rejections
    wildcards: int = 0  # output dimensions the checker leaves unknown
    unsatisfiable: int = 0  # trials without run-time sizes that satisfy the requirements
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, kind: str, message: str) -> None:
        self.failures.append(Failure(kind, message))


# ------------------------------------------------------------------------------ one program


FORMAT_EVERY = 10  # black formats the emitted source of one program in this many


def run_seed(seed: int) -> Outcome:
    return examine(generate(seed).text, seed, formatted=seed % FORMAT_EVERY == 0)


def examine(text: str, seed: int = 0, trials: int = TRIALS, formatted: bool = True) -> Outcome:
    """Check, emit, verify and run one program; see the module's docstring. `formatted=False`
    skips black on the emitted source (layout only, and most of the cost of emission)."""
    start = time.perf_counter()
    out = Outcome(seed, text)
    try:
        with _shortcuts(formatted):
            _examine(text, out, random.Random(seed * 7919 + 17), trials)
    finally:
        out.seconds = time.perf_counter() - start
    return out


@contextlib.contextmanager
def _shortcuts(formatted: bool):
    """Cheaper, equivalent runs of the compiler for many checks of one text: the parse of a text
    is kept (the AST is immutable) and, unless `formatted`, black's layout is skipped."""
    from tgc.compiler import emit as emit_module

    parse, format_code = pipeline.parse, emit_module.format_code
    cache: dict[tuple[str, str], Any] = {}

    def cached_parse(text: str, path: str):
        if (text, path) not in cache:
            cache[(text, path)] = parse(text, path)
        return cache[(text, path)]

    pipeline.parse = cached_parse
    if not formatted:
        emit_module.format_code = lambda text: text
    try:
        yield
    finally:
        pipeline.parse, emit_module.format_code = parse, format_code


def _check(text: str, out: Outcome, options: pipeline.Options, what: str):
    try:
        return pipeline.check(FILE, options, text=text)
    except Exception as exc:  # the compiler must answer with diagnostics, never raise
        out.fail("internal", f"{what}: pipeline.check raised {_exc(exc)}")
        return None


def _examine(text: str, out: Outcome, rng: random.Random, trials: int) -> None:
    result = _check(text, out, pipeline.Options(), "default check")
    if result is None:
        return
    if not result.ok:
        out.codes = sorted({d.code for d in result.diagnostics if d.is_error})
        return
    out.accepted = True
    checked = result.checked
    if checked is None or not checked.models:
        out.fail("internal", "the check accepts the program but gives no checked model")
        return
    try:
        from tgc.compiler.emit import emit
        from tgc.compiler.naming import name_program

        names = name_program(checked)
        source = emit(checked, FILE, names)
    except Exception as exc:
        out.fail("internal", f"emission raised {_exc(exc)}")
        return
    try:
        from tgc.runtime.compile_time.verify import verify

        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            messages = verify(checked, FILE, source, names)
    except Exception as exc:
        out.fail("internal", f"verify raised {_exc(exc)}")
        messages = []
    for m in messages:
        out.fail("verify", m)
    module = types.ModuleType("tgc_differential")
    try:
        exec(compile(source, "<tgc differential>", "exec"), module.__dict__)
    except Exception as exc:
        out.fail("exec", f"the emitted source does not run: {_exc(exc)}")
        return
    if hasattr(module, "_load_weights"):
        module._load_weights = lambda *a, **k: None
    shapes = checked.models[0]
    gnames = names.models[0]
    cls = getattr(module, gnames.cls, None)
    if cls is None:
        out.fail("exec", f"the emitted source defines no class `{gnames.cls}`")
        return
    model = _Model(cls, gnames.init, shapes)

    # the defaults, on run-time sizes of their own
    _compare(out, model, shapes, dict(shapes.param_values), dict(shapes.required_values), rng, "defaults")

    # re-parametrisations
    accepted = 0
    for draw in range(MAX_DRAWS):
        if accepted >= trials:
            break
        params, widths = _draw_params(shapes, rng, everything=draw == 0)
        out.reparams += 1
        options = pipeline.Options(
            params=tuple(params.items()),
            inputs=tuple((w[: -len("_features")], (v,)) for w, v in widths.items()),
        )
        label = _label(params, widths)
        again = _check(text, out, options, f"re-check with {label}")
        if again is None:
            continue
        if again.ok and again.checked is not None and again.checked.models:
            accepted += 1
            if _compare(out, model, again.checked.models[0], params, widths, rng, label):
                out.reparams_run += 1
        elif again.ok:
            out.fail("internal", f"re-check with {label} accepts but gives no checked model")
        else:
            _rejected(out, model, shapes, params, widths, again, rng, label, text, options)


@dataclass
class _Model:
    cls: type
    init: Any  # source name -> constructor argument name
    shapes: Any  # the default check's GraphShapes

    def build(self, params: dict[str, Any], widths: dict[str, int]) -> torch.nn.Module:
        kwargs = {self.init.get(w, w): v for w, v in widths.items()}
        kwargs.update({self.init.get(p.name, p.name): params[p.name] for p in self.shapes.graph.params})
        return self.cls(**kwargs).eval()  # fresh weights: shapes do not depend on them


def _label(params: dict[str, Any], widths: dict[str, int]) -> str:
    given = [f"{k}={v}" for k, v in {**params, **widths}.items()]
    return "params (" + ", ".join(given) + ")"


def _draw_params(shapes, rng: random.Random, everything: bool) -> tuple[dict[str, Any], dict[str, int]]:
    """New values for the model parameters and the undeclared input widths: for all of them
    (`everything`: ints drawn from 0..16 whatever the default, bools flipped), or for one or two of
    them, the others keeping their defaults (constraints between parameters, such as heads
    dividing a width, reject most draws of everything)."""
    params = {p.name: shapes.param_values[p.name] for p in shapes.graph.params}
    widths = {w: shapes.required_values.get(w, 16) for w in shapes.required}
    names = [*params, *widths]
    chosen = names if everything else rng.sample(names, min(len(names), rng.choice([1, 1, 2])))
    types_ = {p.name: p.type for p in shapes.graph.params}
    for name in chosen:
        if name in widths:
            widths[name] = rng.randint(1, 16)
            continue
        kind, value = types_[name], params[name]
        if kind == "int":
            r = rng.random()
            params[name] = 0 if r < 0.06 else rng.randint(1, 8) if r < 0.7 else rng.choice([1, 2, 3, 4, 6, 8, 12, 16])
        elif kind == "float":
            params[name] = rng.choice([0.0, 0.1, 0.5])
        elif kind == "bool":
            params[name] = not value
    return params, widths


def _input_dims(shapes) -> dict[str, bool]:
    """The run-time dimension variables of the inputs: name -> whether it is a batch dimension."""
    names: dict[str, bool] = {}
    for inp in shapes.graph.inputs:
        for k, d in enumerate(shapes.types[inp.name].dims):
            if d.size is None and d.name:
                names[d.name] = names.get(d.name, False) or k == 0
    return names


def _draw_sizes(shapes, values: dict[str, Any], rng: random.Random, out: Outcome,
                requires: list | None) -> dict[str, int] | None:
    """Run-time sizes for the inputs' unsized dimensions that satisfy `requires`; None if none found."""
    variables = _input_dims(shapes)
    for _ in range(SIZE_TRIES):
        sizes = {}
        for name, batch in variables.items():
            if batch:
                sizes[name] = rng.randint(1, 4)
            else:
                sizes[name] = rng.randint(5, 17) if rng.random() < 0.65 else rng.randint(1, 6)
        if requires is None:
            return sizes
        try:
            if all(a.condition.evaluate(params=values, dims=sizes) for a in requires):
                return sizes
        except Exception as exc:
            out.fail("requires", f"a run-time requirement cannot be evaluated "
                                 f"({'; '.join(a.condition.render() for a in requires)}): {_exc(exc)}")
            return None
    return None


def _inputs(shapes, values: dict[str, Any], sizes: dict[str, int]) -> list[torch.Tensor]:
    tensors = []
    for inp in shapes.graph.inputs:
        t = shapes.types[inp.name]
        shape = []
        for d in t.dims:
            if d.size is None:
                shape.append(sizes[d.name])
                continue
            try:  # the size for these values (a type of the default check has the defaults' values)
                shape.append(d.size.evaluate(params=values, dims=sizes))
            except KeyError:
                shape.append(d.size.value)
        dtype = getattr(torch, t.dtype)
        if dtype.is_floating_point:
            tensors.append(torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(1)))
        else:
            tensors.append(torch.zeros(shape, dtype=dtype))
    return tensors


def _run(model: torch.nn.Module, inputs: list[torch.Tensor]) -> Any:
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return model(*inputs)


def _compare(out: Outcome, model: _Model, shapes, params: dict[str, Any], widths: dict[str, int],
             rng: random.Random, label: str) -> bool:
    """Construct and run the module for `params` against the checked `shapes`; True if it ran."""
    values = {**shapes.param_values, **shapes.required_values, **params, **widths}
    sizes = _draw_sizes(shapes, values, rng, out, list(getattr(shapes, "runtime_requires", [])))
    if sizes is None:
        out.unsatisfiable += 1
        return False
    where = f"{label}, run-time sizes {sizes}"
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            module = model.build(params, widths)
    except Exception as exc:
        if isinstance(exc, AssertionError) and FIXED_AT_COMPILE.search(str(exc)):
            # README, "Decisions": a `dim` or `keepdim` given by a parameter is asserted to pick what it
            # picked when compiled (the shapes after it depend on it); recompiling with the value is
            # what the re-check did, so the refusal is documented, not wrong code
            out.conservative["fixed at compile time"] += 1
            return False
        out.fail("construct", f"{where}: the check accepts, but constructing the module fails: {_exc(exc)}")
        return False
    try:
        inputs = _inputs(shapes, values, sizes)
    except Exception as exc:
        out.fail("internal", f"{where}: the checked input types cannot be evaluated: {_exc(exc)}")
        return False
    shown = ", ".join(f"{i.name}: {list(t.shape)}" for i, t in zip(shapes.graph.inputs, inputs))
    try:
        result = _run(module, inputs)
    except Exception as exc:
        out.fail("forward", f"{where}: the check accepts, but forward on ({shown}) fails: {_exc(exc)}")
        return False
    out.runs += 1
    returned = result if isinstance(result, tuple) else (result,)
    outputs = shapes.graph.outputs
    if len(returned) != len(outputs):
        out.fail("outputs", f"{where}: forward returns {len(returned)} values, the model has {len(outputs)} outputs")
        return True
    for name, real in zip(outputs, returned):
        t = shapes.types[name]
        if not isinstance(real, torch.Tensor):
            out.fail("outputs", f"{where}: output `{name}` is a {type(real).__name__}, not a tensor")
            continue
        want = []
        try:
            for d in t.dims:
                if d.size is not None:
                    want.append(d.size.value)
                elif d.extent is None:
                    out.wildcards += 1
                    want.append(None)
                else:
                    want.append(d.extent.evaluate(params=values, dims=sizes))
        except Exception as exc:
            out.fail("shape", f"{where}: output `{name}` {t.show()}: its sizes cannot be evaluated: {_exc(exc)}")
            continue
        got = list(real.shape)
        if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
            show = "[" + ", ".join("?" if w is None else str(w) for w in want) + "]"
            out.fail("shape", f"{where}, inputs ({shown}): output `{name}`: the checker says {t.show()} = {show}, "
                              f"torch gives {got}")
        if getattr(torch, t.dtype) != real.dtype:
            out.fail("dtype", f"{where}: output `{name}`: the checker says {t.dtype}, torch gives {real.dtype}")
    return True


# A repeat with its body, in the one-line form the generator writes (`>> repeat(n) { relu }`).
_REPEAT = re.compile(r">>\s*repeat\(([^()]*)\)\s*\{[^{}]*\}")
# an int a name is given anywhere: a default (`n: int = 0`, `n = 0`) or a call's argument (`n=0`)
_INT_GIVEN = re.compile(r"\b([A-Za-z_]\w*)\s*(?::\s*int\s*)?=\s*(\d+)\b(?!\.)")


def _only_in_repeat_bodies(text: str, options) -> bool:
    """Whether the rejection came from the body of a repeat that runs 0 times for these values
    (README: `repeat(0)` is the identity, and its body is still checked): the program with those
    repeats taken out (a literal 0, or a name given 0 somewhere in the program or the values)
    checks, or is rejected
    only by other documented rules. A repeat that runs is kept: taking it out changes the shapes."""
    zero = {name for name, v in _INT_GIVEN.findall(text) if int(v) == 0}  # 0 somewhere: an over-estimate
    zero |= {k for k, v in options.params if v == 0 and not isinstance(v, bool)}

    def runs_never(m: re.Match) -> str:
        count = m.group(1).strip()
        never = count == "0" or count in zero
        return "" if never else m.group(0)

    stripped = _REPEAT.sub(runs_never, text)
    if stripped == text:
        return False
    try:
        again = pipeline.check(FILE, options, text=stripped)
    except Exception:
        return False
    return again.ok or all(_documented(d) is not None for d in again.diagnostics if d.is_error)


def _rejected(out: Outcome, model: _Model, shapes, params, widths, again, rng: random.Random, label: str,
              text: str = "", options=None) -> None:
    """The re-check rejects `params`: torch should fail with them too, unless a rule says why not."""
    errors = [d for d in again.diagnostics if d.is_error]
    values = {**shapes.param_values, **shapes.required_values, **params, **widths}
    sizes = _draw_sizes(shapes, values, rng, out, None)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            module = model.build(params, widths)
            inputs = _inputs(shapes, values, sizes)
            result = _run(module, inputs)
            if isinstance(result, torch.Tensor):
                result = (result,)
    except Exception:
        out.rejected += 1  # torch agrees
        return
    for d in errors:
        rule = _documented(d)
        if rule is not None:
            out.conservative[rule] += 1
            return
    if options is not None and _only_in_repeat_bodies(text, options):
        out.conservative["repeat bodies are checked"] += 1
        return
    shown = "; ".join(f"{d.code} line {d.span.line}: {d.message}" for d in errors)
    out.fail("conservative", f"{label}, run-time sizes {sizes}: the re-check rejects ({shown}), "
                             f"but the emitted module constructs and runs")


def _documented(d) -> str | None:
    for name, code, pattern, _ in CONSERVATIVE_RULES:
        if d.code == code and re.search(pattern, d.message):
            return name
    return None


def _exc(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


# ------------------------------------------------------------------------------ many programs


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.outcomes.append(o)

    @property
    def failures(self) -> list[tuple[Outcome, Failure]]:
        return [(o, f) for o in self.outcomes for f in o.failures]

    def counts(self) -> dict[str, Any]:
        os_ = self.outcomes
        conservative: Counter = Counter()
        for o in os_:
            conservative.update(o.conservative)
        return {
            "generated": len(os_),
            "accepted": sum(o.accepted for o in os_),
            "rejected": sum(not o.accepted for o in os_),
            "runs": sum(o.runs for o in os_),
            "reparametrisations": sum(o.reparams for o in os_),
            "reparametrisations run": sum(o.reparams_run for o in os_),
            "re-checks rejected, torch agreeing": sum(o.rejected for o in os_),
            "conservative rejections (documented)": dict(conservative),
            "unknown output dimensions": sum(o.wildcards for o in os_),
            "trials without satisfiable sizes": sum(o.unsatisfiable for o in os_),
            "programs failing": sum(bool(o.failures) for o in os_),
            "failures": len(self.failures),
            "failures by class": dict(Counter(f.kind for _, f in self.failures)),
            "seconds": round(sum(o.seconds for o in os_), 1),
        }

    def report(self, texts: bool = True, limit: int | None = None) -> str:
        lines = []
        for o in self.outcomes:
            if not o.failures:
                continue
            lines.append(f"--- seed {o.seed}:")
            for f in o.failures[:limit]:
                lines.append(f"  [{f.kind}] {f.message}")
            if limit is not None and len(o.failures) > limit:
                lines.append(f"  ... and {len(o.failures) - limit} more")
            if texts:
                lines.append("  program:")
                lines += ["    " + line for line in o.text.rstrip("\n").split("\n")]
        return "\n".join(lines)


def run_many(seeds, progress: bool = False) -> Summary:
    summary = Summary()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only cost time
    try:
        for i, seed in enumerate(seeds):
            summary.add(run_seed(seed))
            if progress and (i + 1) % 100 == 0:
                print(f"  {i + 1} programs, {summary.counts()['failures']} failures", file=sys.stderr)
    finally:
        torch.set_num_threads(threads)
    return summary


def _signature(f: Failure) -> str:
    """A failure's message with the particulars (names, numbers, sizes) blurred, to group them."""
    text = re.sub(r"(params \(.*?\)|defaults)(, run-time sizes \{.*?\})?(, inputs \(.*?\))?", "<values>",
                  f.message)
    text = re.sub(r"`[^`]*`", "`_`", text)
    text = re.sub(r"\(\w+, gen\.tg:\d+\)", "(_, gen.tg:N)", text)
    text = re.sub(r"\d+", "N", text)
    text = re.sub(r"\[[^\]]*\]", "[..]", text)
    return f"[{f.kind}] " + text[:160]


def minimize(text: str, seed: int, signature: str, budget: int = 400) -> str:
    """A smaller program (statement lines removed, with their names from `output`) that still
    fails with `signature`: greedy, one line at a time, until no removal keeps the failure."""

    def fails(candidate: str) -> bool:
        return any(_signature(f) == signature for f in examine(candidate, seed, formatted=False).failures)

    lines = text.split("\n")
    changed = True
    while changed and budget > 0:
        changed = False
        for i in range(len(lines) - 1, -1, -1):
            line = lines[i].strip()
            if not line or line.startswith(("model ", "block ", "}", "import ", "input ")) or budget <= 0:
                continue
            budget -= 1
            trial = lines[:i] + lines[i + 1:]
            if line.startswith("output "):
                if fails("\n".join(trial)):
                    lines, changed = trial, True
                continue
            targets = [t.strip() for t in line.split("=")[0].split(",")] if "=" in line.split("(")[0] else []
            trial = [_drop_outputs(t, targets) for t in trial]
            trial = [t for t in trial if t.strip() != "output"]
            if fails("\n".join(trial)):
                lines, changed = trial, True
                continue
            segments = _segments(lines[i])
            for j in range(len(segments) - 1, 0, -1):  # one `>> element` of the chain less
                if budget <= 0:
                    break
                budget -= 1
                shorter = lines[:i] + [" >> ".join(segments[:j] + segments[j + 1:])] + lines[i + 1:]
                if fails("\n".join(shorter)):
                    lines, changed = shorter, True
                    segments = _segments(lines[i])
    return "\n".join(lines)


def _segments(line: str) -> list[str]:
    """A statement split at its top-level `>>` (not inside brackets or a repeat's braces)."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(line):
        depth += c in "([{"
        depth -= c in ")]}"
        if depth == 0 and line.startswith(" >> ", k):
            parts.append(line[start:k])
            start = k + 4
    parts.append(line[start:])
    return parts


def _drop_outputs(line: str, names: list[str]) -> str:
    stripped = line.strip()
    if not stripped.startswith("output ") or not names:
        return line
    kept = [n.strip() for n in stripped[len("output "):].split(",") if n.strip() not in names]
    indent = line[: len(line) - len(line.lstrip())]
    return indent + ("output " + ", ".join(kept) if kept else "output")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="number of programs (seeds start..start+n-1)")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--seed", type=int, action="append", help="examine these seeds only (repeatable)")
    ap.add_argument("--groups", action="store_true", help="group the failures by message and show the "
                                                         "shortest program of each group")
    ap.add_argument("--minimize", action="store_true", help="with --groups: shrink each group's program")
    args = ap.parse_args(argv)
    seeds = args.seed if args.seed else range(args.start, args.start + args.n)
    summary = run_many(seeds, progress=not args.seed)
    if args.seed:
        for o in summary.outcomes:
            print(f"# seed {o.seed}")
            print(o.text)
    if args.groups:
        groups: dict[str, list[tuple[Outcome, Failure]]] = {}
        for o, f in summary.failures:
            groups.setdefault(_signature(f), []).append((o, f))
        for sig, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            o, f = min(items, key=lambda of: len(of[0].text))
            text = minimize(o.text, o.seed, sig) if args.minimize else o.text
            if args.minimize:
                f = next((g for g in examine(text, o.seed).failures if _signature(g) == sig), f)
            print(f"=== {len(items)} x {sig}\n  e.g. seed {o.seed}: {f.message}")
            print("    " + text.rstrip("\n").replace("\n", "\n    "))
    else:
        print(summary.report())
    for k, v in summary.counts().items():
        print(f"{k}: {v}")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
