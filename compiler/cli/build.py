"""`tgc FILE -o OUT` (compile, `--check`, `--diff`) and `tgc check FILE...` (LANGUAGE.md section 12).

`check` never imports torch; compiling imports it only to verify the generated module (unless
`--no-verify`) and to check `load`ed weights.
"""

from __future__ import annotations

import argparse
import difflib
import sys

from .common import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USER,
    UsageError,
    _check_options,
    _common,
    _options,
    _Parser,
    _report,
    _write_atomic,
)

def build_parsers() -> dict[str, argparse.ArgumentParser]:
    check = _Parser(prog="tgc check", description="Check .tg files without generating code.")
    check.add_argument("files", nargs="+", metavar="FILE")
    _common(check)
    build = _Parser(prog="tgc", description="Compile a .tg file to PyTorch source.",
                    usage="tgc FILE -o OUT [options]")
    build.add_argument("file", metavar="FILE")
    build.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="a .py file, a folder (gets model.py), or - for standard output")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when OUT differs from what would be generated")
    build.add_argument("--diff", action="store_true",
                       help="write nothing; print a unified diff of OUT against what would be generated")
    build.add_argument("--no-verify", action="store_true",
                       help="skip importing and tracing the generated module with torch")
    _common(build)
    return {"check": check, "build": build}


def run(command: str, args: argparse.Namespace) -> int:
    return _check(args) if command == "check" else _build(args)


# ------------------------------------------------------------------------------ check


def _check(args: argparse.Namespace) -> int:
    from ..pipeline import check

    options = _options(args)
    all_diags = []
    failed = False
    results = []
    for path in args.files:
        result = check(path, options)
        results.append(result)
        _check_options(result, options)
        all_diags.extend((d, result.sources) for d in result.diagnostics)
        if not result.ok or (args.werror and result.diagnostics):
            failed = True
    _report([d for d, _ in all_diags], {k: v for _, s in all_diags for k, v in s.items()}, args)
    if args.format == "text" and not failed:
        for r in results:
            names = ", ".join(g.name for g in r.program.models) if r.program else ""
            print(f"{r.path}: ok" + (f" (model {names})" if names else ""))
    return EXIT_USER if failed else EXIT_OK


# ------------------------------------------------------------------------------ build


def _build(args: argparse.Namespace) -> int:
    import os

    from ..pipeline import check

    options = _options(args)
    result = check(args.file, options)
    _check_options(result, options)
    failed = not result.ok or result.checked is None or (args.werror and bool(result.diagnostics))
    _report(result.diagnostics, result.sources, args)
    if failed:
        return EXIT_USER
    from ..diagnostics import CompileError
    from ..emit import emit
    from ..naming import name_program

    names = name_program(result.checked)  # one naming pass: the emitted file and verification share it
    try:
        code = emit(result.checked, args.file, names)
    except CompileError as exc:
        _report(list(exc.diagnostics), result.sources, args)
        return EXIT_USER
    if result.checked.program.models and any(m.loads for m in result.checked.program.models):
        from tgc.runtime.compile_time.verify import check_weights

        weights = check_weights(result.checked, args.file)
        if weights:
            _report(weights, result.sources, args)
            return EXIT_USER
    if not args.no_verify:
        from tgc.runtime.compile_time.verify import verify

        problems = verify(result.checked, args.file, code, names)  # the very source that is written
        if problems:
            print(f"tgc: internal error: the generated module does not match the checker: {problems[0]}"
                  + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""), file=sys.stderr)
            return EXIT_INTERNAL
    out = args.output
    if not out:
        raise UsageError("tgc: -o needs a file or folder name (or - for stdout)")
    if out != "-" and os.path.exists(out) and os.path.exists(args.file) and os.path.samefile(out, args.file):
        raise UsageError(f"tgc: -o {out} is the source file itself; write the Python somewhere else")
    if out == "-":
        if args.check or args.diff:
            raise UsageError("tgc: --check and --diff need an output file, not -")
        sys.stdout.write(code)
        return EXIT_OK
    folder = os.path.isdir(out) or out.endswith(("/", os.sep))
    outputs = {os.path.join(out, "model.py") if folder else out: code}
    if result.plans and folder:
        from ..emit_train import emit_train, vendor_runtime

        for plan in result.plans:  # one train section per model; the first keeps the plain name
            name = "train.py" if plan is result.plans[0] else f"train_{plan.model}.py"
            outputs[os.path.join(out, name)] = emit_train(result.checked, plan, args.file, out)
        outputs[os.path.join(out, "tgc_runtime.py")] = vendor_runtime()
    elif result.plans:
        print(f"tgc: {args.file} has a `train` section; writing the model only. The training script "
              f"needs a folder: tgc {args.file} -o out/", file=sys.stderr)
    if args.check or args.diff:
        return _compare_outputs(outputs, args)
    for path, text in outputs.items():  # everything is generated before anything is written
        _write_atomic(path, text)
        print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def _compare_outputs(outputs: dict[str, str], args: argparse.Namespace) -> int:
    """`--check`/`--diff`: compare what would be written with what is there; write nothing."""
    stale = []
    for path, text in outputs.items():
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                current = fh.read()
        except OSError:
            current = None
        if current == text:
            continue
        stale.append(path)
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                (current or "").splitlines(keepends=True), text.splitlines(keepends=True),
                fromfile=f"{path} (current)", tofile=f"{path} (from {args.file})"))
        if args.check:
            print(f"{path} would be regenerated from {args.file}"
                  + ("" if current is not None else " (it does not exist)"), file=sys.stderr)
    if not stale and args.check:
        print(f"{', '.join(outputs)} {'is' if len(outputs) == 1 else 'are'} up to date", file=sys.stderr)
    return EXIT_USER if stale and args.check else EXIT_OK
