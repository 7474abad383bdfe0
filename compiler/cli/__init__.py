"""The `tgc` command line (LANGUAGE.md section 12).

Exit codes: 0 ok, 1 user errors (diagnostics), 2 usage errors, 3 internal errors. A failure
inside the compiler is one line unless `--debug` is given.

Layout (imports go one way: `__init__` -> command modules -> `common`):

- `common.py`: what every command shares (exit codes, `UsageError`, the parser, option types,
  plugin loading, diagnostics reporting, the atomic writer);
- `build.py`: `tgc FILE -o OUT` and `tgc check`;
- `tools.py`: `tgc graph`, `tgc summary`, `tgc ops` and `tgc test-ops`;
- this module: `main`, which parses the command line and dispatches to them.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import sys
from typing import Sequence

from tgc import __version__

from . import build, tools
from .common import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, EXIT_USER, UsageError, UserFileError, _load_plugins
from .common import _input_option, _param_option  # noqa: F401  (tests import them from here)

__all__ = ["main", "EXIT_OK", "EXIT_USER", "EXIT_USAGE", "EXIT_INTERNAL", "UsageError"]

COMMANDS = ("check", *tools.TOOLS)


def _build_parsers() -> dict[str, argparse.ArgumentParser]:
    return {**build.build_parsers(), **tools.build_parsers()}


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
        status = _main(args_list)
        sys.stdout.flush()  # here, where a full disk is still reported (not at exit)
        return status
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except UserFileError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("tgc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_OK
    except Exception as exc:  # an internal error: never the user's fault
        if isinstance(exc, OSError) and exc.errno in _STREAM_ERRORS:  # ... but for a full disk
            _drop_stdout()  # so that the interpreter's own flush at exit does not fail again
            print(f"tgc: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USER
        if debug:
            import traceback

            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"tgc: internal error: {type(exc).__name__}{': ' + first if first else ''}"
              + ("" if debug else " (run with --debug for the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        gc.set_threshold(*gc_threshold)


# errno values of a stream that cannot take the output: a full disk or quota, an I/O error
_STREAM_ERRORS = {28, 5, 122, 27}  # ENOSPC, EIO, EDQUOT, EFBIG


def _drop_stdout() -> None:
    import os

    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:
        pass


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
    # what the command writes on stdout (a summary, `-o -`): JSON diagnostics then go to stderr
    args.stdout_output = command == "summary" or getattr(args, "output", None) == "-"
    plugin_ops = _load_plugins(args.plugin)
    try:
        if command in tools.TOOLS:
            return tools.run(command, args, plugin_ops)
        return build.run(command, args)
    except SystemExit as exc:  # tgc returns its statuses: only a plugin's code exits
        print(f"tgc: a plugin op called sys.exit({exc.code!r}); stopped, nothing written", file=sys.stderr)
        return EXIT_USER
