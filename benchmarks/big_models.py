#!/usr/bin/env python3
"""Compiling big models with verification: wall time and peak memory of `tgc FILE -o OUT`.

Two models whose weights would not fit (or barely) if verification allocated them:

- `wide`: `input x: [batch, feature=100000]`, `x >> linear(100000) >> linear(100000)`, 2 x 10^10
  weights (80 GB of float32);
- `encoder`: a ~300M-parameter transformer encoder from the std library (embedding of 32,000
  ids, 20 `transformer_encoder_layer`s of width 1,024 with a 4,096-wide feed-forward, a
  32,000-way output layer), over a `token` dimension sized only when the model runs.

Each is compiled in a fresh interpreter (`python -m tgc.compiler.cli FILE -o OUT`), with
verification and with `--no-verify`, under `/usr/bin/time -v` where it exists (else the child's
`resource.getrusage`); the figures are the wall time and the peak resident set size. Where
verification ran each model (meta or CPU, `choose_device`) and its parameter count are printed
too. The targets: well under 10 s and 1 GB each.

usage: python benchmarks/big_models.py   (from the project's root)

It exits 0 whatever the figures, 1 only when a compile fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "wide": (
        "model Wide {\n"
        "    input x: [batch, feature=100000]\n"
        "    y = x >> linear(100000) >> linear(100000)\n"
        "    output y\n"
        "}\n"
    ),
    "encoder": (
        "import std\n\n"
        "model BigEncoder(d_model: int = 1024, heads: int = 16, ff: int = 4096, layers: int = 20,\n"
        "                 vocab: int = 32000) {\n"
        "    input ids: long[batch, token]\n"
        "    h = ids >> embedding(vocab, d_model) >> transformer_encoder(d_model, heads, ff, layers)\n"
        "    logits = h >> layernorm >> linear(vocab)\n"
        "    output logits\n"
        "}\n"
    ),
}
TARGET_S, TARGET_MB = 10.0, 1024


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float] | None:
    """(wall seconds, peak RSS in MB) of one run of `cmd`; None when it fails."""
    if os.path.exists("/usr/bin/time"):  # GNU time: the peak of the command itself
        wrapped = ["/usr/bin/time", "-v", *cmd]
    else:  # a child that runs the command and reports its own child's peak
        probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                 "print('Maximum resident set size (kbytes):', "
                 "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                 "sys.exit(r.returncode)")
        wrapped = [sys.executable, "-c", probe, *cmd]
    start = time.perf_counter()
    r = subprocess.run(wrapped, capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        print(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr[-3000:]}", file=sys.stderr)
        return None
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return elapsed, (int(peak.group(1)) / 1024 if peak else float("nan"))


def placement(path: Path) -> str:
    """Where verification runs each model of `path`, and its parameter count."""
    from tgc.compiler import pipeline
    from tgc.compiler.naming import name_program
    from tgc.compiler.summary import summarize
    from tgc.runtime.compile_time.verify import choose_device, dim_sizes

    result = pipeline.check(str(path))
    names = name_program(result.checked)
    out = []
    for shapes in result.checked.models:
        device, _ = choose_device(result.checked, shapes, dim_sizes(shapes), names)
        total = summarize(result.checked, shapes, names=names).total
        out.append(f"{shapes.graph.name}: {total:,} parameters, verified on {device}")
    return "; ".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="runs of each compile; the best counts (default 1)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tgc-big-") as tmp:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        base = [sys.executable, "-m", "tgc.compiler.cli"]
        # a small verified compile first: the grammar cache and the bytecode of tgc and of torch
        # (PYTHONPYCACHEPREFIX moves torch's too), as an installed tgc finds them
        warm = Path(tmp) / "warm.tg"
        warm.write_text("import std\nmodel W {\n    input ids: long[batch, token]\n"
                        "    y = ids >> embedding(50, 8) >> transformer_encoder(8, 2, 16, 1)\n}\n",
                        encoding="utf-8")
        if measure(base + [str(warm), "-o", str(Path(tmp) / "warm.py")], env) is None:
            return 1
        rows = []
        for name, text in MODELS.items():
            src = Path(tmp) / f"{name}.tg"
            src.write_text(text, encoding="utf-8")
            out = str(Path(tmp) / f"{name}.py")
            figures = {}
            for label, extra in (("verify", []), ("no-verify", ["--no-verify"])):
                runs = [measure(base + [str(src), "-o", out, *extra], env) for _ in range(args.runs)]
                if any(r is None for r in runs):
                    return 1
                figures[label] = (min(r[0] for r in runs), max(r[1] for r in runs))
            rows.append((name, placement(src), figures))
    print(f"`tgc FILE -o OUT` of big models, fresh interpreter each run, best of {args.runs} "
          f"(Python {platform.python_version()}, {os.cpu_count()} CPUs)")
    for name, where, figures in rows:
        (t, mb), (t0, mb0) = figures["verify"], figures["no-verify"]
        verdict = "within" if t < TARGET_S and mb < TARGET_MB else "OVER"
        print(f"{name}: {where}")
        print(f"  with verification: {t:.2f} s, peak {mb:.0f} MB ({verdict} {TARGET_S:.0f} s / {TARGET_MB} MB)")
        print(f"  --no-verify:       {t0:.2f} s, peak {mb0:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
