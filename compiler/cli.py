"""The `tgc` command line (LANGUAGE.md section 12).

Exit codes: 0 ok, 1 user errors (diagnostics), 2 usage errors, 3 internal errors. A failure
inside the compiler is one line unless `--debug` is given.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import sys
from typing import Sequence

from tgc import __version__

from .diagnostics import render, summary, to_json

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

COMMANDS = ("check", "graph", "summary", "ops", "test-ops")


class UsageError(Exception):
    """A mistake on the command line (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits with 2 itself; keep one place for it
        raise UsageError(f"{self.prog}: {message}")


def _parse_size_list(text: str) -> tuple[int, ...]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError
    sizes = tuple(int(p) for p in parts)
    if any(s < 1 for s in sizes):
        raise ValueError
    return sizes


def _input_option(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, sizes = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=SIZES such as x=16 or x=3,28,28, got {text!r}")
    try:
        return name, _parse_size_list(sizes.strip("[]() "))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sizes of {name!r} must be positive integers separated by commas, got {sizes!r}"
        ) from None


def _param_option(text: str) -> tuple[str, int | float | bool | str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as hidden=256, got {text!r}")
    v = value.strip()
    if v in ("true", "false"):
        return name, v == "true"
    for conv in (int, float):
        try:
            return name, conv(v)
        except ValueError:
            pass
    return name, v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", action="append", default=[], type=_input_option, metavar="NAME=SIZES",
                   help="non-batch sizes of an input, e.g. x=16 or img=1,28,28 (repeatable)")
    p.add_argument("--param", action="append", default=[], type=_param_option, metavar="NAME=VALUE",
                   help="a model parameter's value for checking, e.g. hidden=256 (repeatable)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file that registers extra ops (repeatable)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="how to print diagnostics (json is for editors)")
    p.add_argument("--werror", action="store_true", help="treat warnings as errors")
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")


def _build_parsers() -> dict[str, argparse.ArgumentParser]:
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
    from .commands import build_parsers as tool_parsers  # graph, summary, ops, test-ops

    return {"check": check, "build": build, **tool_parsers(_Parser, _common)}


def _top_usage() -> str:
    return (
        f"tgc {__version__}: compile the tg graph language to PyTorch\n\n"
        "usage:\n"
        "  tgc FILE -o OUT            compile FILE to PyTorch (OUT: a .py file, a folder, or -)\n"
        "  tgc FILE -o OUT --check    exit 1 when OUT is not what FILE compiles to (--diff shows it)\n"
        "  tgc check FILE...          check files (names, arities, shapes) without generating code\n"
        "  tgc graph FILE -o G.svg    draw the models (.dot, .mmd, .svg, .png), shapes on every edge\n"
        "  tgc summary FILE           a table of parameters, shapes and multiply-accumulates\n"
        "  tgc ops [NAME]             list the ops and std blocks, or show one's help page\n"
        "  tgc test-ops [NAME...]     test ops (and --plugin ops) against PyTorch\n"
        "  tgc --version\n\n"
        "Run `tgc COMMAND --help` for a command's options."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    # A run allocates many objects that live to its end and makes few cycles: the cyclic GC's
    # frequent collections would only re-scan them (10-15% of a long check). Like mypy, collect
    # rarely; the caller's setting is restored on return.
    gc_threshold = gc.get_threshold()
    gc.set_threshold(200_000, 30, 30)
    if argv is None:  # the process's entry point (`tgc`, `python -m`): it ends when this returns
        import atexit

        atexit.register(gc.freeze)  # spare the collections at exit a walk over every object
    try:
        return _main(args_list)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tgc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # an internal error: never the user's fault
        if debug:
            import traceback

            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"tgc: internal error: {type(exc).__name__}{': ' + first if first else ''}"
              + ("" if debug else " (run with --debug for the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        gc.set_threshold(*gc_threshold)


def _main(argv: list[str]) -> int:
    if not argv:
        raise UsageError(_top_usage())
    if argv[0] in ("-h", "--help"):
        print(_top_usage())
        return EXIT_OK
    if argv[0] == "--version":
        print(f"tgc {__version__}")
        return EXIT_OK
    parsers = _build_parsers()
    command = argv[0]
    if command in COMMANDS:
        rest = argv[1:]
    elif command.endswith(".tg") or "-o" in argv or "--output" in argv or command == "-":
        command, rest = "build", argv
    else:
        close = difflib.get_close_matches(command, list(COMMANDS), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        raise UsageError(f"tgc: unknown command {command!r}{hint}\n\n{_top_usage()}")
    try:
        args = parsers[command].parse_args(rest)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    plugin_ops = _load_plugins(args.plugin)
    if command in ("graph", "summary", "ops", "test-ops"):
        from .commands import run

        return run(command, args, plugin_ops)
    if command == "check":
        return _check(args)
    return _build(args)


def _load_plugins(paths: Sequence[str]) -> list[str]:
    """Load each --plugin file; the names of the ops they register. Each run starts from the
    built-in ops, so plugins of an earlier `main()` in the same process are forgotten."""
    import os

    from .ops.registry import load_plugin, unload_plugins

    unload_plugins()
    names: list[str] = []
    for path in paths:
        if not os.path.isfile(path):
            unload_plugins()
            raise UsageError(f"tgc: --plugin {path}: no such file")
        try:
            names += load_plugin(path)
        except Exception as exc:
            unload_plugins()  # all of them or none
            raise UsageError(f"tgc: --plugin {path} failed to load: {type(exc).__name__}: {exc}") from None
    return names


def _options(args: argparse.Namespace):
    from .pipeline import Options

    return Options(inputs=tuple(args.input), params=tuple(args.param))


def _check(args: argparse.Namespace) -> int:
    from .pipeline import check

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


def _check_options(result, options) -> None:
    """`--param`/`--input` must name something in the file: a typo there is a usage error."""
    if result.program is None:
        return
    params = {p.name for g in result.program.models for p in g.params}
    inputs = {i.name for g in result.program.models for i in g.inputs}
    for name, _ in options.params:
        if name not in params:
            close = difflib.get_close_matches(name, sorted(params), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise UsageError(f"tgc: --param {name}: no model in {result.path} has a parameter `{name}`{hint}")
    for name, _ in options.inputs:
        if name not in inputs:
            close = difflib.get_close_matches(name, sorted(inputs), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise UsageError(f"tgc: --input {name}: no model in {result.path} has an input `{name}`{hint}")


def _report(diags, sources, args) -> None:
    from .diagnostics import sort_key

    diags = sorted(diags, key=sort_key)
    if args.format == "json":
        print(to_json(diags))
        return
    for d in diags:
        print(render(d, sources.get(d.span.file)) + "\n", file=sys.stderr)
    if diags:
        note = " (warnings are errors: --werror)" if args.werror and not any(d.is_error for d in diags) else ""
        print(f"{summary(diags)}{note}", file=sys.stderr)




def _build(args: argparse.Namespace) -> int:
    import os

    from .pipeline import check

    options = _options(args)
    result = check(args.file, options)
    _check_options(result, options)
    failed = not result.ok or result.checked is None or (args.werror and bool(result.diagnostics))
    _report(result.diagnostics, result.sources, args)
    if failed:
        return EXIT_USER
    from .diagnostics import CompileError
    from .emit import emit

    try:
        code = emit(result.checked, args.file)
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

        problems = verify(result.checked, args.file)
        if problems:
            print(f"tgc: internal error: the generated module does not match the checker: {problems[0]}"
                  + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""), file=sys.stderr)
            return EXIT_INTERNAL
    out = args.output
    if out == "-":
        if args.check or args.diff:
            raise UsageError("tgc: --check and --diff need an output file, not -")
        sys.stdout.write(code)
        return EXIT_OK
    folder = os.path.isdir(out) or out.endswith(("/", os.sep))
    outputs = {os.path.join(out, "model.py") if folder else out: code}
    if result.plans and folder:
        from .emit_train import emit_train, vendor_runtime

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


def _write_atomic(path: str, content: str | bytes) -> None:
    """Write via a temporary file in the same folder and rename: never a partial file."""
    import os
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tgc-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"tgc: cannot write {path}: {exc.strerror or exc}") from None
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


if __name__ == "__main__":
    sys.exit(main())
