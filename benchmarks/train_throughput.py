#!/usr/bin/env python3
"""Training throughput: the generated train.py against a hand-written loop, skorch and Lightning.

One MLP (the `Digits` model of examples/digits.tg: 64 -> 128 -> 128 -> 10, ReLU, dropout 0.1),
one data set and one recipe (AdamW, lr 3e-3, weight decay 0.01, batch size 64, 20 % held out for
validation, a fixed number of epochs: no scheduler, no early stopping) go through four trainers:

  generated    the train.py that `tgc model.tg -o DIR/` writes for the recipe, imported and run
               in-process: `main(["--epochs", N, "--device", "cpu", "--out_dir", TMP])`; it
               writes best.pt, last.pt and the history every epoch, as it always does;
  hand         the minimal idiomatic loop: tensors in memory, randperm batches, zero_grad,
               backward, step, and the validation accuracy after every epoch;
  skorch       NeuralNetClassifier with its defaults but for the module, criterion
               (CrossEntropyLoss: the module returns logits), optimizer, lr, max_epochs,
               batch_size, train_split (the same held-out part, as `predefined_split`) and
               iterator_train__shuffle=True (every contender shuffles);
  lightning    a LightningModule and `Trainer` with its defaults (checkpointing, its logger, the
               sanity check) but for accelerator="cpu", devices=1, default_root_dir=TMP and
               enable_progress_bar=False (a progress bar is terminal I/O); DataLoaders over
               TensorDatasets, batch size 64, validation every epoch.

The data: scikit-learn's digits (1,797 8x8 images) repeated to --rows rows (50,000) with
Gaussian noise (sd --noise, on pixel values 0..16), saved as an npz file that the .tg names;
`load_data` of the generated script splits and standardises it, and the other three get the
same arrays (from that `load_data`, called once here; should the template's internals change,
from a copy of its recipe: a seeded 20 % split, standardised with the training part's mean and
population deviation; the first line of the output says which). The validation rows are noisy
copies of training images: the accuracy shows that the four trained alike, not how well the
model generalises.

Timing: each trainer runs once with 1 epoch and once with N + 1 epochs; its time per epoch is
(t(N + 1) - t(1)) / N, so what every run pays once (data loading and the import of the
generated script, building the model, Lightning's set-up and sanity check, skorch's
initialisation) drops out alike for all four. The generated script is timed as the whole
`main()` call (nothing subtracted); the others from building the model to the end of training.
"fixed s" is t(1) minus one epoch: what a run costs besides its epochs. --rounds rounds, each
running every trainer in a rotated order after an untimed warm-up of each; the median per
epoch counts. Both the wall time and the process's CPU time are measured (on a shared machine
the CPU time is steadier: another process's load stretches the wall time, not it), and each
verdict line also gives the range of the rounds' own ratios (the two trainers of a ratio ran
minutes apart at most). One intra-op thread (torch.set_num_threads(1)) for all: steadier on a
shared machine. Standard output of the trainers (epoch lines, skorch's table) goes to a buffer.
Lightning's default logger is TensorBoard's when tensorboard is installed, else a CSVLogger; the
generated script writes TensorBoard scalars only when tensorboard is installed, too.

usage: python benchmarks/train_throughput.py [--rounds 3] [--epochs 5] [--rows 50000]
       python benchmarks/train_throughput.py --profile    # cProfile of one generated run
       (from the project's root, with `pip install -e '.[bench]'`; ~2 to 3 minutes on 2 CPUs)

Targets (issue "Training as generated code"): generated within 1.1x of the hand-written loop
per epoch, skorch at least 2.4x and Lightning at least 3x slower than the generated script,
every validation accuracy within one point of the generated script's. It prints the figures
and exits 0 whatever they are; 1 when a trainer fails, 2 when skorch or Lightning is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.util
import io
import json
import logging
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

try:
    import skorch  # noqa: E402
    from skorch.dataset import Dataset as SkorchDataset  # noqa: E402
    from skorch.helper import predefined_split  # noqa: E402
    import lightning  # noqa: E402
    import lightning.pytorch as pl  # noqa: E402
except ImportError as error:
    print(f"train_throughput.py compares against skorch and Lightning: {error.name} is not "
          "installed.\n  pip install -e '.[bench]'   (from the project's root)", file=sys.stderr)
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"hand": 1.1, "skorch": 2.4, "lightning": 3.0}  # see the docstring
LR, WEIGHT_DECAY, BATCH, VALID, SEED, DROPOUT = 3e-3, 0.01, 64, 0.2, 0, 0.1
HIDDEN = 128  # the width of examples/digits.tg; --hidden changes it (for all four)

TG = """\
# The Digits MLP of examples/digits.tg, with a fixed number of epochs (no scheduler, no early
# stopping), on digits repeated with noise: benchmarks/train_throughput.py writes this file.
model Digits(hidden: int = {hidden}, p: float = {p}) {{
    input x: [batch, feature=64]
    h = x >> linear(hidden) >> relu >> dropout(p) >> linear(hidden) >> relu
    logits = h >> linear(10)
}}
train Digits {{
    data: npz("{data}")
    task: classification
    loss: cross_entropy
    optimizer: adamw(lr={lr}, weight_decay={wd})
    epochs: 5
    batch_size: {batch}
    valid: {valid}
    metrics: accuracy
    callbacks: checkpoint(every=1)
    seed: {seed}
}}
"""


# --------------------------------------------------------------------------- set-up

def make_data(path: Path, rows: int, noise: float) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.RandomState(SEED)
    index = np.arange(rows) % len(digits.target)
    x = digits.data[index] + rng.normal(0.0, noise, size=(rows, digits.data.shape[1]))
    np.savez(path, X=x.astype(np.float32), y=digits.target[index].astype(np.int64))


def compile_script(work: Path, data: Path) -> Path:
    from tgc.compiler.cli import main as tgc_main

    tg = work / "throughput.tg"
    tg.write_text(TG.format(hidden=HIDDEN, p=DROPOUT, data=data, lr=LR, wd=WEIGHT_DECAY,
                            batch=BATCH, valid=VALID, seed=SEED))
    out = work / "generated"
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        status = tgc_main([str(tg), "-o", str(out) + os.sep])
    if status != 0:
        sys.exit(f"tgc {tg} -o {out}/ failed (exit {status}):\n{said.getvalue()}")
    return out


def import_fresh(folder: Path, name: str):
    """folder/name.py as a new module; the generated files import `model` and `train_utils`
    by those names, so earlier copies leave sys.modules first."""
    for stale in ("model", "train_utils"):
        sys.modules.pop(stale, None)
    spec = importlib.util.spec_from_file_location(f"throughput_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)  # train.py puts its folder on sys.path
    finally:
        sys.path[:] = path
    return module


def same_arrays(generated: Path, data: Path) -> tuple[dict, str]:
    """The training and validation parts as the generated script makes them (its seeded split,
    its standardisation with the training part's statistics): its own `load_data`, else (a
    script whose internals changed) the same recipe here."""
    script = import_fresh(generated, "train")
    try:
        _, cfg, _ = script.parse_command_line(["--device", "cpu"])
        parts, _ = script.load_data(cfg)
        return {k: (xs[0], y) for k, (xs, y) in parts.items()}, "the generated load_data"
    except Exception as error:  # noqa: BLE001 - any change of the template's internals
        why = f"a copy of its recipe (load_data: {type(error).__name__}: {error})"
    with np.load(data) as arrays:
        x, y = torch.from_numpy(arrays["X"]), torch.from_numpy(arrays["y"])
    n_valid = round(len(y) * VALID)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(SEED))
    train, valid = perm[n_valid:].sort().values, perm[:n_valid].sort().values
    std, mean = torch.std_mean(x[train].double(), dim=0, correction=0)
    std = torch.where(std == 0, torch.ones_like(std), std)
    scale = lambda v: ((v.double() - mean) / std).float()  # noqa: E731
    return {"train": (scale(x[train]), y[train]), "valid": (scale(x[valid]), y[valid])}, why


# --------------------------------------------------------------------------- the trainers
# Each takes the number of epochs and returns (Clock, final validation accuracy).

class Clock:
    """Wall time and this process's CPU time (user + system, all threads) of a `with` block:
    on a shared machine the CPU time is the steadier figure, as other processes' load
    stretches the wall time but not it."""

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_generated(ctx: dict, epochs: int) -> tuple[Clock, float]:
    script = import_fresh(ctx["generated"], "train")
    out_dir = Path(tempfile.mkdtemp(dir=ctx["work"], prefix="gen-"))
    argv = ["--epochs", str(epochs), "--device", "cpu", "--out_dir", str(out_dir)]
    with contextlib.redirect_stdout(io.StringIO()):
        with Clock() as clock:
            status = script.main(argv)
    if status != 0:
        raise RuntimeError(f"generated train.py {' '.join(argv)} exited {status}")
    runs = sorted((int(n) for n in os.listdir(out_dir) if n.isdigit()))
    history = json.loads((out_dir / str(runs[-1]) / "history.json").read_text())["epochs"]
    shutil.rmtree(out_dir)
    return clock, history[-1]["valid_accuracy"]


def run_hand(ctx: dict, epochs: int) -> tuple[Clock, float]:
    (x, y), (xv, yv) = ctx["data"]["train"], ctx["data"]["valid"]
    with Clock() as clock:
        torch.manual_seed(SEED)
        model = ctx["Model"](hidden=HIDDEN, p=DROPOUT)
        optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        for _ in range(epochs):
            model.train()
            for rows in torch.randperm(len(y)).split(BATCH):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x[rows]), y[rows])
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(xv).argmax(1) == yv).float().mean().item()
    return clock, accuracy


def run_skorch(ctx: dict, epochs: int) -> tuple[Clock, float]:
    (x, y), (xv, yv) = ctx["data"]["train"], ctx["data"]["valid"]
    x, y, xv, yv = x.numpy(), y.numpy(), xv.numpy(), yv.numpy()
    with contextlib.redirect_stdout(io.StringIO()), Clock() as clock:
        torch.manual_seed(SEED)
        net = skorch.NeuralNetClassifier(
            ctx["Model"], module__hidden=HIDDEN, module__p=DROPOUT,
            criterion=nn.CrossEntropyLoss, optimizer=torch.optim.AdamW,
            optimizer__weight_decay=WEIGHT_DECAY, lr=LR, max_epochs=epochs, batch_size=BATCH,
            train_split=predefined_split(SkorchDataset(xv, yv)), iterator_train__shuffle=True,
        )
        net.fit(x, y)
    return clock, float(net.history[-1]["valid_acc"])


class LitDigits(pl.LightningModule):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self.model(x)
        self.log("valid_loss", F.cross_entropy(out, y))
        self.log("valid_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)


def run_lightning(ctx: dict, epochs: int) -> tuple[Clock, float]:
    from torch.utils.data import DataLoader, TensorDataset

    root = tempfile.mkdtemp(dir=ctx["work"], prefix="lightning-")
    train = DataLoader(TensorDataset(*ctx["data"]["train"]), batch_size=BATCH, shuffle=True)
    valid = DataLoader(TensorDataset(*ctx["data"]["valid"]), batch_size=BATCH)
    with contextlib.redirect_stdout(io.StringIO()), Clock() as clock:
        torch.manual_seed(SEED)
        module = LitDigits(ctx["Model"](hidden=HIDDEN, p=DROPOUT))
        trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1,
                             default_root_dir=root, enable_progress_bar=False)
        trainer.fit(module, train, valid)
    shutil.rmtree(root)
    return clock, float(trainer.callback_metrics["valid_acc"])


TRAINERS = {"generated": run_generated, "hand": run_hand, "skorch": run_skorch,
            "lightning": run_lightning}


# --------------------------------------------------------------------------- main

def quiet_lightning() -> None:
    """Lightning's info lines (devices, model summary) and its few-workers warning: output
    only; the work behind them (the summary callback, ...) still runs."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*tensorboardX.*")  # it falls back to CSVLogger
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # its pytree helper on torch 2.13


def profile_generated(ctx: dict, epochs: int, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    clock, accuracy = run_generated(ctx, epochs)
    profiler.disable()
    print(f"cProfile of the generated train.py, {epochs} epochs: {clock.wall:.2f} s under the "
          f"profiler, valid accuracy {accuracy:.4f}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> int:
    global HIDDEN
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median counts)")
    ap.add_argument("--epochs", type=int, default=5, help="N: runs of 1 and N + 1 epochs")
    ap.add_argument("--rows", type=int, default=50_000, help="rows of the data set")
    ap.add_argument("--noise", type=float, default=4.0, help="noise sd on pixels 0..16")
    ap.add_argument("--only", nargs="+", choices=list(TRAINERS), help="a subset of trainers")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--hidden", type=int, default=HIDDEN, help="MLP width (digits.tg: 128)")
    ap.add_argument("--workdir", help="temporary files here (default: a new temporary folder)")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile one generated run of --epochs epochs instead (top 15)")
    args = ap.parse_args()
    if args.epochs < 1 or args.rounds < 1:
        ap.error("--epochs and --rounds must be at least 1")

    HIDDEN = args.hidden
    torch.set_num_threads(args.threads)
    quiet_lightning()
    work = Path(tempfile.mkdtemp(prefix="tgc-throughput-", dir=args.workdir))
    try:
        data = work / "digits_noisy.npz"
        make_data(data, args.rows, args.noise)
        generated = compile_script(work, data)
        arrays, source = same_arrays(generated, data)
        ctx = {"work": work, "generated": generated, "data": arrays,
               "Model": import_fresh(generated, "model").Digits}
        if args.profile:
            profile_generated(ctx, args.epochs, 15)
            return 0
        names = args.only or list(TRAINERS)
        n_train = len(ctx["data"]["train"][1])
        print(f"training throughput: MLP 64-{HIDDEN}-{HIDDEN}-10, {n_train:,} training rows "
              f"({-(-n_train // BATCH)} batches of {BATCH}), "
              f"{len(ctx['data']['valid'][1]):,} validation rows, "
              f"{args.rounds} rounds of 1 and {args.epochs + 1} epochs; arrays from {source}")
        print(f"python {platform.python_version()}, torch {torch.__version__}, skorch "
              f"{skorch.__version__}, lightning {lightning.__version__}, {os.cpu_count()} CPUs, "
              f"{torch.get_num_threads()} torch thread(s), load average "
              f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
        for name in names:  # warm-up: lazy imports, first-call caches
            TRAINERS[name](ctx, 1)
        wall = {name: [] for name in names}  # seconds per epoch, one per round
        cpu = {name: [] for name in names}
        fixed = {name: [] for name in names}
        accuracy = {name: [] for name in names}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                torch.set_num_threads(args.threads)
                one, _ = TRAINERS[name](ctx, 1)
                many, acc = TRAINERS[name](ctx, args.epochs + 1)
                wall[name].append((many.wall - one.wall) / args.epochs)
                cpu[name].append((many.cpu - one.cpu) / args.epochs)
                fixed[name].append(one.wall - wall[name][-1])
                accuracy[name].append(acc)
            print(f"  round {r + 1} (order {', '.join(order)}), s per epoch, wall (CPU): "
                  + "  ".join(f"{n} {wall[n][-1]:.3f} ({cpu[n][-1]:.3f})" for n in names),
                  flush=True)
        load = os.getloadavg()
        if torch.get_num_threads() != args.threads:
            print(f"note: a trainer changed torch's threads to {torch.get_num_threads()}")
    except Exception:
        import traceback

        traceback.print_exc()
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(names, wall, cpu, fixed, accuracy, load)
    return 0


def report(names, wall, cpu, fixed, accuracy, load) -> None:
    med = {"wall": {n: statistics.median(v) for n, v in wall.items()},
           "CPU": {n: statistics.median(v) for n, v in cpu.items()}}

    def ratio(kind: str, name: str) -> float | None:
        m = med[kind]
        if "generated" not in m or name not in m or name == "generated":
            return None
        return m["generated"] / m[name] if name == "hand" else m[name] / m["generated"]

    print()
    print(f"{'trainer':<10} {'wall s/epoch':>12} {'(min-max)':>13} {'CPU s/epoch':>11} "
          f"{'fixed s':>7} {'valid acc':>9}  {'ratio wall':>10} {'ratio CPU':>9}  target")
    print("-" * 100)
    for name in names:
        rw, rc = ratio("wall", name), ratio("CPU", name)
        target = {"hand": f"generated/hand <= {TARGETS['hand']}"}.get(
            name, f"{name}/generated >= {TARGETS[name]}" if name in TARGETS else "")
        print(f"{name:<10} {med['wall'][name]:12.3f} "
              f"{f'({min(wall[name]):.3f}-{max(wall[name]):.3f})':>13} {med['CPU'][name]:11.3f} "
              f"{statistics.median(fixed[name]):7.2f} {accuracy[name][-1]:9.4f}  "
              f"{'' if rw is None else f'{rw:.2f}':>10} {'' if rc is None else f'{rc:.2f}':>9}  "
              f"{target}")
    print()
    for name in names:
        if name in TARGETS and "generated" in names:
            verdict = [("met" if (r <= TARGETS[name] if name == "hand" else r >= TARGETS[name])
                        else "NOT met") for r in (ratio("wall", name), ratio("CPU", name))]
            what = (f"generated within {TARGETS[name]}x of hand" if name == "hand"
                    else f"{name} at least {TARGETS[name]}x slower than generated")
            pairs = sorted((g / o if name == "hand" else o / g)
                           for g, o in zip(cpu["generated"], cpu[name]))
            print(f"{what}: {verdict[0]} (wall), {verdict[1]} (CPU); the rounds' own CPU "
                  f"ratios {pairs[0]:.2f} to {pairs[-1]:.2f}")
    if "generated" in names:
        ref = accuracy["generated"][-1]
        spread = max(abs(accuracy[n][-1] - ref) for n in names)
        print(f"validation accuracy within one point of generated: "
              f"{'met' if spread <= 0.01 else 'NOT met'} (largest difference "
              f"{100 * spread:.2f} points)")
    print("(medians over rounds of (t(N+1) - t(1)) / N; fixed s: wall t(1) minus one epoch; "
          "accuracy: the last round's N+1-epoch run; load average at the end "
          f"{', '.join(f'{v:.2f}' for v in load)})")


if __name__ == "__main__":
    sys.exit(main())
