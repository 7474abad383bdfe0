#!/usr/bin/env python3
"""How `tgc FILE -o OUT` scales with the program: chains of 10,000, 20,000 and 40,000 ops.

Each program is `input x: [batch, feature=8]` then `x >> relu >> linear(8) >> relu >> ...`,
eight ops to a statement (`chain` of tests/test_verify_scale.py, which tests that it verifies).
Each size is compiled end to end in a fresh interpreter, as a user runs it (`python -m
tgc.compiler.cli FILE -o OUT`), once with verification and once with `--no-verify`; the
difference is what verification costs. Linear scaling shows as flat milliseconds per op down
each column. `verify()` alone is also timed in a fresh interpreter (check and emission
untimed): the difference of two long compiles carries the noise of both.

usage: python benchmarks/compile_scaling.py [--ops 10000 20000 40000] [--runs N]   (from the root)

It prints figures and exits 0 whatever they are; it exits 1 only when a compile fails. The
bytecode of tgc's modules goes to a temporary folder, so the checkout stays clean.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_verify_scale import chain  # noqa: E402

DEFAULT_OPS = (10_000, 20_000, 40_000)


def timed(cmd: list[str], env: dict[str, str]) -> float | None:
    """Wall seconds of one run of `cmd`; None (and the reason printed) when it fails."""
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        print(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr[-2000:]}", file=sys.stderr)
        return None
    return elapsed


# verify() alone, in a fresh interpreter: check and emit untimed, then the verification the CLI
# runs (the end-to-end difference above also carries the noise of two long compiles)
VERIFY_ALONE = """
import sys, time
sys.setrecursionlimit(100000)
from tgc.compiler import pipeline
from tgc.compiler.emit import emit
from tgc.compiler.naming import name_program
from tgc.runtime.compile_time.verify import verify
path = sys.argv[1]
checked = pipeline.check(path).checked
names = name_program(checked)
source = emit(checked, path, names)
start = time.perf_counter()
problems = verify(checked, path, source, names)
print(time.perf_counter() - start)
sys.exit(1 if problems else 0)
"""


def verify_alone(src: Path, env: dict[str, str]) -> float | None:
    r = subprocess.run([sys.executable, "-c", VERIFY_ALONE, str(src)], capture_output=True, text=True,
                       env=env, timeout=1800)
    if r.returncode != 0:
        print(f"verify of {src} failed (exit {r.returncode}):\n{r.stderr[-2000:]}", file=sys.stderr)
        return None
    return float(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, nargs="+", default=list(DEFAULT_OPS),
                    help="chain lengths (default 10000 20000 40000)")
    ap.add_argument("--runs", type=int, default=1, help="runs of each compile; the best counts (default 1)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tgc-scaling-") as tmp:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        base = [sys.executable, "-m", "tgc.compiler.cli"]
        warm = Path(tmp) / "warm.tg"  # grammar cache and bytecode, as `pip install` leaves them
        warm.write_text(chain(16), encoding="utf-8")
        if timed(base + [str(warm), "-o", str(Path(tmp) / "warm.py")], env) is None:
            return 1
        rows = []
        for n in args.ops:
            src = Path(tmp) / f"chain{n}.tg"
            src.write_text(chain(n), encoding="utf-8")
            out = str(Path(tmp) / f"chain{n}.py")
            figures = {}
            for label, extra in (("verify", []), ("no-verify", ["--no-verify"])):
                times = [timed(base + [str(src), "-o", out, *extra], env) for _ in range(args.runs)]
                if any(t is None for t in times):
                    return 1
                figures[label] = min(times)
            alone = [verify_alone(src, env) for _ in range(args.runs)]
            if any(t is None for t in alone):
                return 1
            rows.append((n, figures["verify"], figures["no-verify"], min(alone)))
            print(f"  {n} ops: {figures['verify']:.1f} s with verification, "
                  f"{figures['no-verify']:.1f} s without, verify() alone {min(alone):.1f} s", flush=True)
    print(f"\n`tgc FILE -o OUT` of op chains, fresh interpreter each run, best of {args.runs} "
          f"(Python {platform.python_version()}, {os.cpu_count()} CPUs)")
    print(f"{'ops':>7}  {'verify s':>9}  {'no-verify s':>11}  {'difference s':>12}  {'verify() s':>10}  "
          f"{'ms/op':>6}  {'no-verify ms/op':>15}  {'verify() ms/op':>14}")
    for n, full, bare, alone in rows:
        print(f"{n:>7}  {full:>9.1f}  {bare:>11.1f}  {full - bare:>12.1f}  {alone:>10.1f}  "
              f"{full / n * 1e3:>6.2f}  {bare / n * 1e3:>15.2f}  {alone / n * 1e3:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
