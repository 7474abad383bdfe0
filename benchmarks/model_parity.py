#!/usr/bin/env python3
"""Speed parity of the zoo: forward + backward of each emitted module against its hand-written reference.

For every model under examples/zoo/*.tg that has a hand-written PyTorch reference in
tests/test_zoo_*.py, the emitted module (compiled in-process by `compile_zoo`, as the tests do)
and the reference (imported from the test module) are built at small sizes, the reference's
weights are copied into the emitted module by registration order (`copy_by_order`, which also
checks that the two have the same parameters), and one training step without the optimizer is
timed: `model(*inputs)`, a sum of the outputs, `backward()`, in training mode, gradients cleared
(untimed) before each step. The two run interleaved in one process, A then B then B then A ...
(the order alternates so that neither always runs on a warm or a cold cache), after a warm-up of
both, for a fixed time per model; the garbage collector is off inside each timed step. The figure
per model is the median of each side; the ratio is emitted / reference (target: at most 1.05).

A model whose .tg file or reference is missing is skipped with a line that says why. Before
timing, the two are compared once in eval mode (the largest absolute difference of the outputs is
printed): a benchmark of two different computations would mean nothing.

usage: python benchmarks/model_parity.py [--seconds S] [--threads N] [--only NAME ...]
       (from the project's root; ~3 minutes with the defaults on 2 CPUs)

It prints the figures and exits 0 whatever they are; 1 only when no model could be measured.
`--profile NAME` prints torch.profiler's operator table of both sides of that model instead.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import platform
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402

TARGET = 1.05  # emitted / reference, median forward + backward time


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image(batch: int, channels: int, side: int) -> Callable[[], tuple]:
    return lambda: (torch.randn(batch, channels, side, side, generator=_gen(0)),)


def ids(batch: int, length: int, vocab: int) -> Callable[[], tuple]:
    return lambda: (torch.randint(0, vocab, (batch, length), generator=_gen(0)),)


def rows(batch: int, features: int) -> Callable[[], tuple]:
    return lambda: (torch.randn(batch, features, generator=_gen(0)),)


@dataclass
class Case:
    name: str          # the table's row
    tg: str            # examples/zoo/<tg>
    test_module: str   # tests/<test_module>.py holds the reference
    reference: Callable[[object], torch.nn.Module]  # test module -> reference instance
    emitted_args: dict  # the emitted class's constructor arguments (the same sizes)
    inputs: Callable[[], tuple]


CASES = [
    Case("vgg11", "vgg11.tg", "test_zoo_vgg_mobilenet",
         lambda m: m.VGG(m.make_layers(m.VGG_CFGS["A"], scale=8 / 64), num_classes=10, last_channels=64, hidden=64),
         dict(base=8, hidden=64, n_classes=10), image(2, 3, 32)),
    Case("mobilenet_v2", "mobilenet_v2.tg", "test_zoo_vgg_mobilenet",
         lambda m: m.MobileNetV2(num_classes=10, width_mult=0.5),
         dict(stem=16, c1=8, c2=16, c3=16, c4=32, c5=48, c6=80, c7=160, n_classes=10), image(2, 3, 64)),
    Case("unet", "unet.tg", "test_zoo_unet_se_lstm",
         lambda m: m.RefUNet(3, 2, base=8), dict(base=8), image(2, 3, 64)),
    Case("se_resnet", "se_resnet.tg", "test_zoo_unet_se_lstm",
         lambda m: m.RefSEResNet(), {}, image(2, 3, 32)),
    Case("bilstm", "bilstm.tg", "test_zoo_unet_se_lstm",
         lambda m: m.RefBiLSTM(2000, 64, 64, 1, n_layers=2),
         dict(vocab=2000, embedding_dim=64, hidden_dim=64, n_layers=2, n_classes=1), ids(2, 32, 2000)),
    Case("vit_tiny", "vit_tiny.tg", "test_zoo_vit_ft",
         lambda m: m.ViTReference(image_size=32, patch=8, layers=2, n_classes=10),
         dict(image_size=32, patch=8, layers=2, n_classes=10), image(2, 3, 32)),
    Case("ft_transformer_cls", "ft_transformer_cls.tg", "test_zoo_vit_ft",
         lambda m: m.FTReference(), {}, rows(16, 8)),
    Case("nanogpt", "nanogpt.tg", "test_zoo_nanogpt",
         lambda m: m.GPTReference(), {}, ids(2, 64, 65)),
    # the same model at a 256-token context, where attention is a larger share of the time
    Case("nanogpt_t256", "nanogpt.tg", "test_zoo_nanogpt",
         lambda m: m.GPTReference(block_size=256), dict(block_size=256), ids(2, 256, 65)),
    Case("resnet18", "resnet18.tg", "test_zoo_resnet",
         lambda m: m.resnet18(num_classes=10, base=16), dict(n_classes=10, base=16), image(2, 3, 64)),
    Case("resnet50", "resnet50.tg", "test_zoo_resnet",
         lambda m: m.resnet50(num_classes=10, base=16), dict(n_classes=10, base=16), image(2, 3, 64)),
]


def build(case: Case) -> tuple[torch.nn.Module, torch.nn.Module, tuple, float]:
    """(emitted, reference, inputs, max |difference| of the outputs in eval mode)."""
    if not (ROOT / "examples" / "zoo" / case.tg).exists():
        raise LookupError(f"examples/zoo/{case.tg} does not exist")
    if not (ROOT / "tests" / f"{case.test_module}.py").exists():
        raise LookupError(f"tests/{case.test_module}.py does not exist")
    from zoo_util import compile_zoo, copy_by_order

    module = importlib.import_module(case.test_module)
    torch.manual_seed(0)
    try:
        reference = case.reference(module)
    except AttributeError as e:
        raise LookupError(f"no reference in tests/{case.test_module}.py ({e})") from None
    cls, _ = compile_zoo(case.tg)
    emitted = cls(**case.emitted_args)
    copy_by_order(reference, emitted)
    inputs = case.inputs()
    reference.eval()
    emitted.eval()
    with torch.no_grad():
        want, got = reference(*inputs), emitted(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    diff = max((w - g).abs().max().item() for w, g in zip(want, got))
    reference.train()
    emitted.train()
    return emitted, reference, inputs, diff


def step(model: torch.nn.Module, inputs: tuple) -> float:
    """Seconds of one forward + backward (gradients cleared before, untimed)."""
    model.zero_grad(set_to_none=True)
    gc.disable()
    try:
        start = time.perf_counter()
        out = model(*inputs)
        out = out if isinstance(out, tuple) else (out,)
        sum(o.float().sum() for o in out).backward()
        return time.perf_counter() - start
    finally:
        gc.enable()


def measure(emitted, reference, inputs, seconds: float, warmup: int, min_reps: int,
            max_reps: int) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        step(emitted, inputs)
        step(reference, inputs)
    a, b = [], []
    deadline = time.perf_counter() + seconds
    i = 0
    while i < max_reps and (i < min_reps or time.perf_counter() < deadline):
        if i % 2 == 0:
            a.append(step(emitted, inputs))
            b.append(step(reference, inputs))
        else:
            b.append(step(reference, inputs))
            a.append(step(emitted, inputs))
        i += 1
    return a, b


def profile(case: Case, reps: int = 20, rows_shown: int = 25) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    emitted, reference, inputs, diff = build(case)
    print(f"{case.name}: max |difference| in eval mode {diff:.2e}")
    for label, model in (("emitted", emitted), ("reference", reference)):
        for _ in range(5):
            step(model, inputs)
        with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
            for _ in range(reps):
                step(model, inputs)
        print(f"\n=== {label}: {reps} forward + backward steps ===")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows_shown))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12.0,
                    help="timed seconds per model, both sides together (default 12)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps of each side first (default 5)")
    ap.add_argument("--min-reps", type=int, default=30, help="at least this many pairs (default 30)")
    ap.add_argument("--max-reps", type=int, default=2000, help="at most this many pairs (default 2000)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: steadier on a shared machine)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these models only")
    ap.add_argument("--profile", metavar="NAME", help="print torch.profiler tables for this model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    by_name = {c.name: c for c in CASES}
    if args.profile:
        if args.profile not in by_name:
            print(f"unknown model {args.profile!r}; known: {', '.join(by_name)}", file=sys.stderr)
            return 1
        profile(by_name[args.profile])
        return 0
    unknown = [n for n in args.only or () if n not in by_name]
    if unknown:
        print(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(by_name)}", file=sys.stderr)
        return 1
    cases = [by_name[n] for n in args.only] if args.only else CASES
    print(f"forward + backward, training mode, emitted vs reference interleaved; median of each "
          f"(torch {torch.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})")
    header = (f"{'model':<20} {'params':>10} {'pairs':>6} {'emitted ms':>11} {'reference ms':>13} "
              f"{'ratio':>7}  {'max |diff|':>10}")
    print(header)
    print("-" * len(header))
    results = []
    for case in cases:
        try:
            emitted, reference, inputs, diff = build(case)
        except LookupError as e:
            print(f"{case.name:<20} skipped: {e}")
            continue
        except Exception:  # a broken model must not stop the others
            print(f"{case.name:<20} failed:\n{traceback.format_exc(limit=3)}")
            continue
        a, b = measure(emitted, reference, inputs, args.seconds, args.warmup, args.min_reps, args.max_reps)
        ea, rb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        ratio = ea / rb
        params = sum(p.numel() for p in reference.parameters())
        flag = "" if ratio <= TARGET else "  OVER"
        print(f"{case.name:<20} {params:>10,} {len(a):>6} {ea:>11.2f} {rb:>13.2f} {ratio:>7.3f}  {diff:>10.1e}{flag}",
              flush=True)
        results.append((case.name, ratio))
    if not results:
        return 1
    over = [n for n, r in results if r > TARGET]
    print(f"target: ratio at most {TARGET}; " + (f"over: {', '.join(over)}" if over else "all within"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
