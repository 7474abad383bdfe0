"""The `tgc graph`, `tgc summary`, `tgc ops` and `tgc test-ops` commands (LANGUAGE.md section 12).

The package's `main` parses the command line and dispatches here. `graph`, `summary` and `ops`
never import torch (`graph` runs Graphviz's `dot` for SVG and PNG); `test-ops` runs the per-op
autotest of `runtime/compile_time/autotest.py`, which needs torch and hypothesis.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from .common import (
    EXIT_OK,
    EXIT_USER,
    UsageError,
    _check_options,
    _common,
    _options,
    _Parser,
    _plugin_options,
    _report,
    _write_atomic,
    read_argument,
)

TOOLS = ("graph", "summary", "ops", "test-ops")

# `tgc graph -o FILE`: the format of each file extension
GRAPH_FORMATS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid", ".svg": "svg",
                 ".png": "png"}

GRAPHVIZ_HINT = (
    "Graphviz's `dot` renders SVG and PNG, and it is not installed (or not on PATH). Install it with "
    "`apt-get install graphviz`, `brew install graphviz` or `conda install graphviz` "
    "(https://graphviz.org/download/), or write DOT or Mermaid text instead, which needs nothing: "
    "`-o model.dot`, `-o model.mmd`"
)


def _batch(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a batch size of 1 or more, got {text!r}")
    return int(text)


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a depth of 0 or more, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parsers() -> dict[str, argparse.ArgumentParser]:
    graph = _Parser(prog="tgc graph", description="Draw a .tg file's models: one node per op, blocks as "
                    "clusters, every edge labelled with its tensor shape.")
    graph.add_argument("file", metavar="FILE")
    graph.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                       help="TB: inputs at the top (the default); LR: inputs on the left")
    graph.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="a .dot, .mmd (Mermaid), .svg or .png file (SVG and PNG need Graphviz), "
                       "or - for DOT on standard output")
    graph.add_argument("--as", dest="kind", choices=("dot", "mermaid", "svg", "png"),
                       help="the output format, when OUT's extension does not say it")
    graph.add_argument("--depth", type=_depth, metavar="N",
                       help="show blocks nested up to N deep as clusters, deeper ones as one node each "
                       "(0: every block call is one node; default: all)")
    _common(graph)

    summary = _Parser(prog="tgc summary", description="A table of a .tg file's models: each op's output "
                      "shape, parameters (trainable or frozen) and multiply-accumulates, without torch.")
    summary.add_argument("file", metavar="FILE")
    summary.add_argument("--batch", type=_batch, default=1, metavar="N",
                         help="the batch size the activations column is for (default 1)")
    summary.add_argument("--depth", type=_depth, metavar="N",
                         help="leave out the parts of blocks nested deeper than N (0: top level only)")
    _common(summary)

    ops = _Parser(prog="tgc ops", description="List the ops and std blocks, or show one's help page.")
    ops.add_argument("name", nargs="?", metavar="NAME", help="an op or std block")
    _plugin_options(ops)

    test_ops = _Parser(prog="tgc test-ops", description="Test ops against PyTorch: random valid programs "
                       "per op, checked shape by shape, traced with torch.fx and run under torch.compile; "
                       "and each op's docs for completeness.")
    test_ops.add_argument("names", nargs="*", metavar="NAME",
                          help="ops to test (default: the ops of the --plugin files, or else every op)")
    test_ops.add_argument("--examples", type=_positive, default=20, metavar="N",
                          help="random programs per op (default 20)")
    test_ops.add_argument("--compile-examples", type=int, default=2, metavar="N",
                          help="how many of them also run under torch.compile (default 2; 0: none)")
    _plugin_options(test_ops)
    return {"graph": graph, "summary": summary, "ops": ops, "test-ops": test_ops}


def run(command: str, args: argparse.Namespace, plugin_ops: list[str]) -> int:
    return {"graph": _graph, "summary": _summary, "ops": _ops,
            "test-ops": lambda a: _test_ops(a, plugin_ops)}[command](args)


def _checked(args: argparse.Namespace):
    """Check FILE as `tgc check` does; (result, None) or (None, exit code) after reporting."""
    from ..pipeline import check

    options = _options(args)
    args.file, text = read_argument(args.file)  # `-`: standard input, named <stdin>
    result = check(args.file, options, text)
    _check_options(result, options)
    _report(result.diagnostics, result.sources, args)
    if not result.ok or result.checked is None or (args.werror and result.diagnostics):
        return None, EXIT_USER
    if not result.checked.models:
        print(f"tgc: {args.file} defines no model (only blocks): nothing to show", file=sys.stderr)
        return None, EXIT_USER
    return result, None


# ------------------------------------------------------------------------------ graph


def _graph(args: argparse.Namespace) -> int:
    from ..graph import render

    out = args.output
    kind = args.kind
    if kind is None:
        if out == "-":
            kind = "dot"
        else:
            kind = GRAPH_FORMATS.get(os.path.splitext(out)[1].lower())
            if kind is None:
                raise UsageError(f"tgc graph: cannot tell the format of {out!r} from its extension; use "
                                 ".dot, .mmd, .svg or .png, or say it with --as")
    if kind in ("svg", "png") and out == "-":
        raise UsageError(f"tgc graph: {kind.upper()} needs an output file, not -")
    result, code = _checked(args)
    if result is None:
        return code
    text = render(result.checked, args.file, "mermaid" if kind == "mermaid" else "dot", args.depth, args.rankdir)
    if out == "-":
        sys.stdout.write(text)
        return EXIT_OK
    if kind in ("dot", "mermaid"):
        _write_atomic(out, text)
        print(f"wrote {out}", file=sys.stderr)
        return EXIT_OK
    try:
        data = render_graphviz(text, kind)
    except GraphvizError as exc:
        print(f"tgc graph: {exc}", file=sys.stderr)
        return EXIT_USER
    _write_atomic(out, data)
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK


class GraphvizError(Exception):
    """Graphviz is missing or failed."""


def render_graphviz(dot_text: str, kind: str) -> bytes:
    """SVG or PNG bytes from DOT text, by Graphviz's `dot` (raises GraphvizError)."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(f"cannot write {kind.upper()}: {GRAPHVIZ_HINT}")
    try:
        done = subprocess.run([exe, f"-T{kind}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphvizError(f"running {exe} failed: {exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise GraphvizError(f"{exe} failed (exit {done.returncode}): {message}")
    return done.stdout


# ------------------------------------------------------------------------------ summary


def _summary(args: argparse.Namespace) -> int:
    from ..summary import render, summarize

    result, code = _checked(args)
    if result is None:
        return code
    concrete = bool(args.param or args.input)  # sizes given: show their values, not expressions
    summaries = [summarize(result.checked, shapes, args.depth, concrete=concrete) for shapes in result.checked.models]
    if args.format == "json":
        import json

        from ..summary import to_dict

        print(json.dumps([to_dict(s, args.batch) for s in summaries], indent=1))
        return EXIT_OK
    sys.stdout.write("\n".join(render(s, os.path.basename(args.file), args.batch) for s in summaries))
    return EXIT_OK


# ------------------------------------------------------------------------------ ops


def _ops(args: argparse.Namespace) -> int:
    from ..help import UnknownName, help_text, list_text

    if args.name is None:
        sys.stdout.write(list_text())
        return EXIT_OK
    try:
        sys.stdout.write(help_text(args.name))
    except UnknownName as exc:
        hint = (" did you mean " + " or ".join(f"`{c}`" for c in exc.close) + "?") if exc.close else ""
        print(f"tgc ops: no op or std block is called `{exc.name}`;{hint or ' run `tgc ops` for the list'}",
              file=sys.stderr)
        return EXIT_USER
    return EXIT_OK


# ------------------------------------------------------------------------------ test-ops


def _test_ops(args: argparse.Namespace, plugin_ops: list[str]) -> int:
    from ..help import missing_docs
    from ..ops.registry import all_ops

    ops = all_ops()
    names = list(args.names) or plugin_ops or list(ops)
    unknown = [n for n in names if n not in ops]
    if unknown:
        import difflib

        for n in unknown:
            close = difflib.get_close_matches(n, list(ops), n=1)
            print(f"tgc test-ops: no op is called `{n}`" + (f"; did you mean `{close[0]}`?" if close else ""),
                  file=sys.stderr)
        return EXIT_USER
    try:
        from tgc.runtime.compile_time.autotest import autotest_op
    except ImportError as exc:  # hypothesis is a development dependency
        print(f"tgc test-ops: needs torch and hypothesis ({exc}); `pip install hypothesis`", file=sys.stderr)
        return EXIT_USER
    compiled = min(args.compile_examples, args.examples)
    rows = []
    details: list[str] = []
    for name in names:
        print(f"testing {name} ...", file=sys.stderr, flush=True)
        failures = autotest_op(name, max_examples=args.examples, compile_examples=compiled)
        docs = missing_docs(ops[name])
        kinds = {kind for f in failures for kind in _failure_kinds(f)}
        torch_failed, compile_failed = "torch" in kinds, "compile" in kinds
        rows.append((name, "FAIL" if torch_failed else "pass",
                     ("FAIL" if compile_failed else "pass") if compiled else "-",
                     "FAIL" if docs else "pass", "FAIL" if failures or docs else "ok"))
        details += failures
        details += [f"{name}: docs: {d}" for d in docs]
    head = ("op", f"vs torch ({args.examples} programs)", f"torch.compile ({compiled})", "docs", "result")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    failed = sum(r[-1] != "ok" for r in rows)
    if details:
        print("\n" + "\n\n".join(details))
    print(f"\n{len(rows) - failed} of {len(rows)} ops pass" + (f"; {failed} fail" if failed else ""))
    return EXIT_USER if failed else EXIT_OK


def _failure_kinds(failure: str) -> set[str]:
    """"compile" and/or "torch" for one autotest failure (its messages, not its program)."""
    lines = failure.splitlines()
    messages = []
    for line in lines[1:]:
        if line.strip() == "program:":
            break
        messages.append(line)
    return {"compile" if "torch.compile" in m else "torch" for m in (messages or lines[:1])}
