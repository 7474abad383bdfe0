"""What every `tgc` command shares: exit codes, usage errors, the argument parser and its option
types, the options every command takes, plugin loading, diagnostics reporting, the atomic writer.

The command modules (`build.py`, `tools.py`) import this module; it imports none of them, nor
the package's `__init__`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Sequence

from ..diagnostics import render, summary, to_json

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """A mistake on the command line (exit code 2)."""


class UserFileError(Exception):
    """A file the command must not or cannot touch (exit code 1): a user's file in the way."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits with 2 itself; keep one place for it
        raise UsageError(f"{self.prog}: {message}")


# ------------------------------------------------------------------------------ option types


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


# ------------------------------------------------------------------------------ option sets


def _common(p: argparse.ArgumentParser) -> None:
    """The options of every command that checks a file (`tgc FILE`, check, graph, summary)."""
    p.add_argument("--input", action="append", default=[], type=_input_option, metavar="NAME=SIZES",
                   help="non-batch sizes of an input, e.g. x=16 or img=1,28,28 (repeatable)")
    p.add_argument("--param", action="append", default=[], type=_param_option, metavar="NAME=VALUE",
                   help="a model parameter's value for checking, e.g. hidden=256 (repeatable)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file that registers extra ops (repeatable)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="how to print diagnostics (json is for editors)")
    p.add_argument("--werror", action="store_true", help="treat warnings as errors")
    p.add_argument("-q", "--quiet", action="store_true", help="print diagnostics only (no ok lines, no tally)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each file's check time")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour diagnostics: auto (on a terminal, unless NO_COLOR is set), always, never")
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")


def use_color(args: argparse.Namespace, stream=None) -> bool:
    """Colour on a terminal only, never with NO_COLOR set (no-color.org), unless --color says."""
    import os

    choice = getattr(args, "color", "never")
    if choice != "auto":
        return choice == "always"
    stream = stream or sys.stderr
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


STDIN = "-"
STDIN_NAME = "<stdin>"


def read_argument(path: str) -> tuple[str, str | None]:
    """(the name diagnostics use, the text for `-`, else None: the file is read by the pipeline)."""
    if path != STDIN:
        return path, None
    data = sys.stdin.buffer.read()
    from ..parse import decode_source

    return STDIN_NAME, decode_source(data, STDIN_NAME)


def _plugin_options(p: argparse.ArgumentParser) -> None:
    """The options of the commands that check no file (ops, test-ops)."""
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file that registers extra ops (repeatable)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")


# ------------------------------------------------------------------------------ plugins


def _load_plugins(paths: Sequence[str]) -> list[str]:
    """Load each --plugin file; the names of the ops they register. Each run starts from the
    built-in ops, so plugins of an earlier `main()` in the same process are forgotten."""
    import os

    from ..ops.registry import load_plugin, unload_plugins

    unload_plugins()
    names: list[str] = []
    for path in paths:
        if not os.path.isfile(path):
            unload_plugins()
            raise UsageError(f"tgc: --plugin {path}: no such file")
        try:
            names += load_plugin(path)
        except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end tgc
            unload_plugins()  # all of them or none
            raise UsageError(f"tgc: --plugin {path} failed to load: {type(exc).__name__}: {exc}") from None
    return names


# ------------------------------------------------------------------------------ checking a file


def _options(args: argparse.Namespace):
    from ..pipeline import Options

    return Options(inputs=tuple(args.input), params=tuple(args.param))


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


def _report(diags, sources, args, tally: bool = True) -> None:
    from ..diagnostics import sort_key

    diags = sorted(diags, key=sort_key)
    if args.format == "json":
        # stdout carries the command's own output when there is one: `tgc summary | ...`, `-o - | dot`
        print(to_json(diags), file=sys.stderr if getattr(args, "stdout_output", False) else sys.stdout)
        return
    color = use_color(args)
    for d in diags:
        print(render(d, sources.get(d.span.file), color=color) + "\n", file=sys.stderr)
    if diags and tally:
        note = " (warnings are errors: --werror)" if args.werror and not any(d.is_error for d in diags) else ""
        print(f"{summary(diags)}{note}", file=sys.stderr)


# ------------------------------------------------------------------------------ writing files


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
