"""Tests of the generated training scripts: `tgc FILE.tg -o out/` writes out/train.py and
out/train_utils.py, and these tests run them on small models and csv/npz data written here.

The scripts run in-process (imported under a unique name, `main(argv)` called) for speed; a real
process is used only where one is needed (SIGKILL, torchrun). Tests that want to look inside a run
wrap the script's own module-level functions (`save_checkpoint`, `evaluate`, `outputs`, `build`,
`loss_of`), which the training loop looks up at call time.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tgc.compiler.cli import main as tgc_main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
LABELS = ["cat", "dog", "emu"]

# The model of the old runtime tests, written in tg: a frozen encoder with batch norm, a
# batch-norm + dropout body and a 3-class head.
TINY_MODEL = """\
block encoder(width: int) (x) -> y {
    y = x >> linear(width) >> batchnorm1d
}

model Tiny(d_in: int = 4, hidden: int = 8, n_classes: int = 3, p: float = 0.1) {
    input x: [batch, feature=d_in]
    enc = x >> frozen encoder(hidden)
    h = enc >> relu >> linear(hidden) >> batchnorm1d >> relu >> dropout(p)
    logits = h >> linear(n_classes)
    output logits
}
"""
TINY_TRAIN = {
    "data": 'csv("train.csv", target="label")',
    "task": "classification",
    "loss": "cross_entropy(label_smoothing=0.1)",
    "optimizer": "adamw(lr=1e-2, weight_decay=0.01)",
    "epochs": "3",
    "batch_size": "16",
    "valid": "0.2",
    "metrics": "accuracy, f1",
    "seed": "0",
}


def train_section(model: str, settings: dict) -> str:
    lines = "\n".join(f"    {key}: {value}" for key, value in settings.items() if value is not None)
    return f"\ntrain {model} {{\n{lines}\n}}\n"


def tiny(**settings) -> str:
    """Tiny with its train section; a setting given as None is left out."""
    return TINY_MODEL + train_section("Tiny", TINY_TRAIN | settings)


def write_csv(path, n=120, seed=0, labels=LABELS, bad_cell=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    rows = ["a,b,c,d,label"]
    for i, (r, label) in enumerate(zip(x.tolist(), y.tolist())):
        cells = [f"{v:.5f}" for v in r]
        if bad_cell is not None and i == 5:
            cells[1] = bad_cell
        rows.append(",".join(cells) + f",{labels[label]}")
    path.write_text("\n".join(rows) + "\n")
    return path


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def without_seconds(rows):
    """History rows without the per-epoch wall time."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


_names = itertools.count()


def import_script(out: Path) -> ModuleType:
    """out/train.py as a fresh module: its own `model` and `train_utils`, found on sys.path."""
    for name in ("model", "train_utils"):
        sys.modules.pop(name, None)
    sys.path.insert(0, str(out))
    spec = importlib.util.spec_from_file_location(f"tgc_train_script_{next(_names)}", out / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Script:
    out: Path
    module: ModuleType

    def __call__(self, *argv) -> int:
        """`python train.py ARGV...` in this process: the exit status."""
        try:
            return self.module.main([str(a) for a in argv])
        except SystemExit as done:  # argparse: --help, bad flags
            return done.code

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    @property
    def utils(self) -> ModuleType:
        return sys.modules[self.module.save_checkpoint.__module__]

    def history(self, run: int = 1) -> list[dict]:
        return json.loads((self.runs / str(run) / "history.json").read_text())["epochs"]

    def checkpoint(self, name: str = "best.pt", run: int = 1) -> dict:
        return load(self.runs / str(run) / name)

    def run_folders(self) -> list[str]:
        return sorted(os.listdir(self.runs)) if self.runs.exists() else []


@pytest.fixture
def make(tmp_path, monkeypatch, capsys):
    """make(source, name=..., csv=True) -> Script: compiles tmp_path/NAME/NAME.tg (next to a
    train.csv written by write_csv unless csv=False) into tmp_path/NAME/out/ and imports it."""
    monkeypatch.chdir(tmp_path)
    saved_path = sys.path[:]

    def build(source: str, name: str = "tiny", csv: bool = True) -> Script:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        if csv and not (folder / "train.csv").exists():
            write_csv(folder / "train.csv")
        tg = folder / f"{name}.tg"
        tg.write_text(source)
        out = folder / "out"
        assert tgc_main([str(tg), "-o", str(out) + os.sep]) == 0, capsys.readouterr().err
        script = Script(out, import_script(out))
        capsys.readouterr()  # the compiler's "wrote ..." lines
        return script

    yield build
    sys.path[:] = saved_path
    for name in ("model", "train_utils"):
        sys.modules.pop(name, None)


# ---------------------------------------------------------------------------- hooks into a run


def record_saves(script: Script, monkeypatch) -> list:
    """[(file name, epoch, model tensors)] for every checkpoint the run writes."""
    saves = []
    original = script.module.save_checkpoint

    def recording(state, path):
        original(state, path)
        saves.append((os.path.basename(path), state["epoch"],
                      {k: v.detach().clone() for k, v in state["model"].items()}))

    monkeypatch.setattr(script.module, "save_checkpoint", recording)
    return saves


def record_builds(script: Script, monkeypatch) -> list:
    """The initial weights of every model the script builds."""
    built = []
    original = script.module.build

    def recording(*args, **kwargs):
        model, optimizer = original(*args, **kwargs)
        built.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return model, optimizer

    monkeypatch.setattr(script.module, "build", recording)
    return built


def record_train_batches(script: Script, monkeypatch) -> list:
    """The size of every batch the model sees in training mode."""
    sizes = []
    original = script.module.outputs

    def recording(net, inputs, *args, **kwargs):
        if net.training:
            sizes.append(len(inputs[0]))
        return original(net, inputs, *args, **kwargs)

    monkeypatch.setattr(script.module, "outputs", recording)
    return sizes


def script_valid(script: Script, monkeypatch, **series) -> None:
    """The validation figures of epoch i replaced by series[figure][i] (figure: loss, accuracy)."""
    original = script.module.evaluate
    calls = []

    def scripted(*args, **kwargs):
        figures = original(*args, **kwargs)
        for key, values in series.items():
            figures[key] = values[len(calls)]
        calls.append(1)
        return figures

    monkeypatch.setattr(script.module, "evaluate", scripted)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error" in line]


# ---------------------------------------------------------------------------- history, checkpoints


def test_history_files_hold_every_figure_per_epoch(make):
    script = make(tiny())
    assert script() == 0
    folder = script.runs / "1"
    lines = (folder / "history.csv").read_text().splitlines()
    assert lines[0].split(",") == [
        "epoch", "train_loss", "train_accuracy", "train_f1", "valid_loss", "valid_accuracy", "valid_f1",
        "lr", "seconds",
    ]
    assert len(lines) == 4
    rows = script.history()
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    for line, row in zip(lines[1:], rows):
        assert [float(v) for v in line.split(",")] == pytest.approx([float(v) for v in row.values()])
        assert 0 <= row["valid_accuracy"] <= 1 and row["train_loss"] > 0 and row["lr"] == 0.01
    assert without_seconds(script.checkpoint("last.pt")["history"]) == without_seconds(rows)
    assert not [p for p in os.listdir(folder) if ".tmp-" in p]


def test_a_test_part_is_evaluated_with_best_pt_and_recorded(make, capsys):
    script = make(tiny(test="0.1"))
    assert script() == 0
    assert "test (best.pt): loss" in capsys.readouterr().out
    rows = script.history()
    assert [row["epoch"] for row in rows] == [1, 2, 3, "test"]
    assert set(rows[-1]) == {"epoch", "test_loss", "test_accuracy", "test_f1"}


@pytest.mark.parametrize(
    "callbacks, monitor, higher",
    [
        ("checkpoint(every=2)", "valid_loss", False),
        ("checkpoint(every=2, monitor=\"valid_accuracy\")", "valid_accuracy", True),
        ("early_stopping(monitor=\"valid_accuracy\", patience=10), checkpoint(every=2)", "valid_accuracy", True),
    ],
)
def test_checkpoints_last_every_k_and_best_by_monitor(make, monkeypatch, callbacks, monitor, higher):
    script = make(tiny(epochs="5", callbacks=callbacks))
    saves = record_saves(script, monkeypatch)
    assert script() == 0
    assert [epoch for name, epoch, _ in saves if name == "last.pt"] == [2, 4, 5]  # every 2, and at the end
    rows = script.history()
    improved, best = [], None
    for row in rows:
        if best is None or (row[monitor] > best if higher else row[monitor] < best):
            best = row[monitor]
            improved.append(row["epoch"])
    assert [epoch for name, epoch, _ in saves if name == "best.pt"] == improved
    state = script.checkpoint("best.pt")
    assert state["epoch"] == improved[-1]  # the first epoch reaching the best figure
    assert state["best"][0] == improved[-1] and state["best"][1] == pytest.approx(best)
    assert len(state["history"]) == improved[-1]
    expected = {"cfg", "data", "model", "optimizer", "scaler", "epoch", "history", "best", "rng", "folder"}
    if "early_stopping" in callbacks:
        expected.add("waited")
    assert set(state) == expected  # no scheduler in this section
    assert state["data"]["label_map"] == LABELS and state["data"]["columns"] == {"x": ["a", "b", "c", "d"]}
    assert state["folder"] == str(script.runs / "1")
    assert script.checkpoint("last.pt")["epoch"] == 5
    assert not [p for p in os.listdir(script.runs / "1") if ".tmp-" in p]


def test_checkpoints_of_a_section_with_a_scheduler_hold_it(make):
    script = make(tiny(epochs="1", scheduler="step(step_size=1)"))
    assert script() == 0
    assert "scheduler" in script.checkpoint("last.pt")


def test_atomic_save_keeps_the_old_file_when_writing_fails(make, tmp_path, monkeypatch):
    script = make(tiny())
    utils = script.utils
    folder = tmp_path / "atomic"
    folder.mkdir()
    path = folder / "last.pt"
    utils.save_checkpoint({"epoch": 1}, str(path))
    before = path.read_bytes()

    def broken_save(obj, target):
        with open(target, "wb") as handle:
            handle.write(b"half a checkp")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(utils.TrainingError, match="No space left"):
        utils.save_checkpoint({"epoch": 2}, str(path))
    assert path.read_bytes() == before
    assert os.listdir(folder) == ["last.pt"]


def test_two_runs_make_two_folders_and_overwrite_nothing(make):
    script = make(tiny(epochs="1"))
    assert script() == 0
    first = {p.name: p.read_bytes() for p in (script.runs / "1").iterdir()}
    assert script("--lr", "0.02") == 0
    assert script.run_folders() == ["1", "2"]
    assert {p.name: p.read_bytes() for p in (script.runs / "1").iterdir()} == first
    assert script.checkpoint(run=2)["cfg"]["lr"] == 0.02 and script.checkpoint(run=1)["cfg"]["lr"] == 0.01


def test_out_dir_places_the_run_folders(make, tmp_path):
    script = make(tiny(epochs="1"))
    assert script("--out_dir", "elsewhere") == 0  # on the command line: relative to the working folder
    assert sorted(os.listdir(tmp_path / "elsewhere")) == ["1"]
    assert not script.runs.exists()


# ---------------------------------------------------------------------------- callbacks


def test_early_stopping_stops(make, monkeypatch, capsys):
    script = make(tiny(epochs="10", callbacks="early_stopping(patience=2)"))
    saves = record_saves(script, monkeypatch)
    script_valid(script, monkeypatch, loss=[1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3])
    assert script() == 0
    assert "early stopping: no better valid_loss for 2 epochs" in capsys.readouterr().out
    assert [row["epoch"] for row in script.history()] == [1, 2, 3, 4]  # 2 epochs without improvement
    assert script.checkpoint("best.pt")["epoch"] == 2
    assert script.checkpoint("last.pt")["epoch"] == 4
    assert script.checkpoint("last.pt")["waited"] == 2
    assert [epoch for name, epoch, _ in saves if name == "best.pt"] == [1, 2]


def test_early_stopping_writes_last_pt_when_it_stops(make, monkeypatch):
    script = make(tiny(epochs="10", callbacks="early_stopping(patience=2), checkpoint(every=3)"))
    script_valid(script, monkeypatch, loss=[1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3])
    assert script() == 0
    assert [row["epoch"] for row in script.history()] == [1, 2, 3, 4]
    assert script.checkpoint("last.pt")["epoch"] == 4  # the end of the run, as after the last epoch


def lrs(script: Script) -> list[float]:
    return [row["lr"] for row in script.history()]


def test_step_scheduler_steps_per_epoch(make):
    script = make(tiny(epochs="5", optimizer="sgd(lr=0.1, momentum=0.9)", scheduler="step(step_size=2, gamma=0.5)"))
    assert script() == 0
    assert lrs(script) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_cosine_scheduler_steps_per_epoch_over_all_epochs(make):
    script = make(tiny(epochs="5", optimizer="sgd(lr=0.1, momentum=0.9)", scheduler="cosine"))
    assert script() == 0
    assert lrs(script) == pytest.approx([0.05 * (1 + math.cos(math.pi * e / 5)) for e in range(5)])


def test_onecycle_scheduler_steps_per_batch(make, monkeypatch):
    script = make(tiny(epochs="5", optimizer="sgd(lr=0.1, momentum=0.9)", scheduler="onecycle(max_lr=0.5)"))
    sizes = record_train_batches(script, monkeypatch)
    assert script() == 0
    steps = len(sizes)  # 96 training examples in batches of 16: 6 per epoch
    assert steps == 5 * 6
    reference_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    reference = torch.optim.lr_scheduler.OneCycleLR(reference_opt, max_lr=0.5, total_steps=steps)
    after = []
    for _ in range(steps):
        reference_opt.step()
        reference.step()
        after.append(reference_opt.param_groups[0]["lr"])
    # the lr at the end of each epoch: 6 steps, 12 steps, ... into the cycle
    assert lrs(script) == pytest.approx([after[6 * e - 1] for e in range(1, 6)])


def test_plateau_scheduler_steps_per_epoch_on_its_monitor(make, monkeypatch):
    script = make(tiny(epochs="4", optimizer="sgd(lr=0.1, momentum=0.9)",
                       scheduler="plateau(patience=1, factor=0.5)"))
    script_valid(script, monkeypatch, loss=[1.0, 1.0, 1.0, 1.0])
    assert script("--scheduler.patience", "0") == 0  # 0 on the command line (the section needs >= 1)
    assert lrs(script) == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_plateau_scheduler_follows_its_own_monitor_not_best_pts(make, monkeypatch):
    # The plateau watches valid_accuracy (flat: the lr falls); best.pt watches valid_loss, which
    # rises here, so that a plateau stepped on valid_loss in max mode would see progress.
    script = make(tiny(epochs="4", optimizer="sgd(lr=0.1, momentum=0.9)",
                       scheduler='plateau(monitor="valid_accuracy", patience=1, factor=0.5)'))
    script_valid(script, monkeypatch, loss=[1.0, 2.0, 3.0, 4.0], accuracy=[0.5, 0.5, 0.5, 0.5])
    assert script("--scheduler.patience", "0") == 0
    assert lrs(script) == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_unfreeze_at_epoch_k_makes_the_frozen_part_train(make, monkeypatch, capsys):
    script = make(tiny(epochs="3", callbacks="unfreeze(enc, epoch=2)"))
    built = record_builds(script, monkeypatch)
    saves = record_saves(script, monkeypatch)
    assert script() == 0
    assert capsys.readouterr().out.count("unfroze enc") == 1
    initial = built[0]
    per_epoch = {epoch: weights for name, epoch, weights in saves if name == "last.pt"}
    enc = [k for k in initial if k.startswith("enc.") and initial[k].is_floating_point()]
    assert any(k.endswith("running_mean") for k in enc)
    for key in enc:  # frozen during epoch 1: weights and batch-norm statistics
        assert torch.equal(per_epoch[1][key], initial[key]), key
    for key in enc:  # trained from epoch 2 on, batch-norm statistics included
        assert not torch.equal(per_epoch[2][key], per_epoch[1][key]), key
        assert not torch.equal(per_epoch[3][key], per_epoch[2][key]), key
    assert not torch.equal(per_epoch[1]["logits.weight"], initial["logits.weight"])


def test_resume_after_the_unfreeze_epoch_keeps_the_part_trainable(make):
    # Killed after epoch 2 (the unfreeze epoch), a resumed run must train `enc` in epoch 3.
    script = make(tiny(epochs="3", callbacks="unfreeze(enc, epoch=2)"))
    assert script() == 0  # straight: runs/1
    assert script("--epochs", "2") == 0  # runs/2, resumed to 3 epochs
    assert script("--resume", script.runs / "2" / "last.pt", "--epochs", "3") == 0
    straight, resumed = script.checkpoint("last.pt", 1), script.checkpoint("last.pt", 2)
    assert resumed["epoch"] == 3
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert without_seconds(straight["history"]) == without_seconds(resumed["history"])


def test_grad_clip_bounds_the_gradient_norm(make, monkeypatch):
    script = make(tiny(epochs="1"))
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def clip(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        before = original(parameters, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]))
        norms.append((float(before), float(after)))
        return before

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    assert script("--grad_clip", "0.01") == 0
    assert len(norms) == 6  # once per optimizer step
    assert max(after for _, after in norms) <= 0.01 * (1 + 1e-4)
    assert max(before for before, _ in norms) > 0.01  # clipping did something


def test_batch_size_one_with_batch_norm_trains(make, monkeypatch):
    script = make(tiny(epochs="1"))
    write_csv(script.out.parent / "train.csv", n=20)
    sizes = record_train_batches(script, monkeypatch)
    assert script("--batch_size", "1") == 0
    assert sizes == [1] * 16  # 20 examples, 4 held out; batches of one are all kept
    assert math.isfinite(script.history()[0]["train_loss"])


def test_a_last_batch_of_one_is_dropped(make, monkeypatch):
    script = make(tiny(epochs="1"))
    write_csv(script.out.parent / "train.csv", n=21)  # 4 held out, 17 to train on
    sizes = record_train_batches(script, monkeypatch)
    assert script("--batch_size", "8") == 0
    assert sizes == [8, 8]


# ---------------------------------------------------------------------------- command line


def test_overrides_keep_types_and_reach_nested_settings(make):
    script = make(tiny(epochs="3", callbacks="early_stopping(patience=3)"))
    argv = ["--early_stopping.patience", "2", "--lr", "0.01", "--model.hidden", "4", "--epochs", "1",
            "--valid", "0.25", "--grad_clip", "0.5", "--drop_last", "true", "--optimizer.weight_decay", "0",
            "--batch_size", "8", "--loss.label_smoothing", "0"]
    assert script(*argv) == 0
    cfg = script.checkpoint("last.pt")["cfg"]
    expected = {"early_stopping.patience": 2, "lr": 0.01, "model.hidden": 4, "epochs": 1, "valid": 0.25,
                "grad_clip": 0.5, "drop_last": True, "optimizer.weight_decay": 0.0, "batch_size": 8,
                "loss.label_smoothing": 0.0}
    for name, value in expected.items():
        assert cfg[name] == value and type(cfg[name]) is type(value), name
    assert cfg["model.d_in"] == 4 and cfg["seed"] == 0  # the rest keeps the section's values
    assert script.checkpoint("last.pt")["model"]["h.0.weight"].shape == (4, 4)  # hidden 4 reached the model
    assert len(script.checkpoint("last.pt")["data"]["scaling"][0]["mean"]) == 4
    assert script("--grad_clip", "none", "--epochs", "1") == 0
    assert script.checkpoint("last.pt", run=2)["cfg"]["grad_clip"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "argument --epochs: must be at least 1, not 0"),
        (["--epochs", "x"], "argument --epochs"),
        (["--nope", "1"], "--nope"),  # the unknown flag, not "invalid choice: '1'"
        (["--nope"], "unknown flag --nope"),
        (["--epoch", "3"], "unknown flag --epoch; did you mean --epochs?"),
        (["--model.hidden", "0"], "argument --model.hidden: must be at least 1, not 0"),
        (["--lr", "fast"], "argument --lr"),
        (["--valid", "1.5"], "argument --valid: must be between 0 and 1"),
        (["--drop_last", "maybe"], "argument --drop_last: must be true or false"),
        (["fit"], "invalid choice: 'fit'"),
    ],
)
def test_bad_flags_exit_2_with_a_one_line_message(make, capsys, argv, message):
    script = make(tiny())
    assert script(*argv) == 2
    err = capsys.readouterr().err
    lines = error_lines(err)
    assert len(lines) == 1 and message in lines[0], err
    assert err.splitlines()[-1] == lines[0]  # the message is the last line, after argparse's usage
    assert not script.runs.exists()


@pytest.mark.parametrize("device", ["mps", "cuda"])
def test_an_unavailable_device_exits_2(make, capsys, device):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    if device == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    script = make(tiny())
    assert script("--device", device) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not available" in err and err.count("\n") == 1, err
    assert not script.runs.exists()


def test_help_lists_the_settings_with_their_help(make, capsys):
    script = make(tiny(callbacks="early_stopping(patience=3), unfreeze(enc, epoch=2)"))
    assert script("--help") == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help text
    settings = {name: (default, help) for name, _, default, help in script.module.SETTINGS}
    for name in ("model.hidden", "lr", "early_stopping.patience", "unfreeze.enc.epoch", "epochs", "batch_size",
                 "seed", "device"):
        assert name in settings, name
    assert settings["model.hidden"] == (8, "Tiny(hidden=...)") and settings["early_stopping.patience"][0] == 3
    assert "valid_loss" in settings["early_stopping.patience"][1]
    for name, (default, help) in settings.items():
        assert f"--{name} " in out and " ".join(help.split()) in out, name
    assert "Tiny(hidden=...) (default: 8)" in out
    for text in ("--resume", "--checkpoint", "--fast_dev_run", "--overfit_batches", "--limit_train_batches",
                 "predict --data", "lr_find", "evaluate"):
        assert text in out, text


def test_a_model_that_does_not_fit_the_data_is_a_one_line_error(make, capsys):
    script = make(tiny())
    assert script("--model.d_in", "5") == 1  # a DataError: the data's columns, say, are not the model's
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not fit the data" in err and err.count("\n") == 1, err


# ---------------------------------------------------------------------------- resume


def test_resume_takes_its_settings_from_the_checkpoint(make, monkeypatch, capsys):
    script = make(tiny(epochs="3"))
    assert script("--epochs", "2", "--batch_size", "8") == 0
    capsys.readouterr()
    last = script.runs / "1" / "last.pt"
    assert script("--resume", last) == 0  # 2 epochs, as the checkpoint says: nothing left to do
    assert "changed from" not in capsys.readouterr().out
    assert script.checkpoint("last.pt")["epoch"] == 2
    sizes = record_train_batches(script, monkeypatch)
    assert script("--resume", last, "--epochs", "4") == 0
    out = capsys.readouterr().out
    assert "--epochs 4: changed from 2" in out and out.count("changed from") == 1
    assert script.run_folders() == ["1"]  # continued in runs/1
    state = script.checkpoint("last.pt")
    assert state["epoch"] == 4 and state["cfg"]["batch_size"] == 8 and state["cfg"]["epochs"] == 4
    assert [row["epoch"] for row in script.history()] == [1, 2, 3, 4]
    assert sizes == [8] * 12 * 2  # 96 examples in batches of 8, for epochs 3 and 4


def test_resume_with_a_changed_lr_uses_it(make, capsys):
    script = make(tiny(epochs="1"))
    assert script() == 0
    capsys.readouterr()
    assert script("--resume", script.runs / "1" / "last.pt", "--epochs", "2", "--lr", "0.5") == 0
    assert "--lr 0.5: changed from 0.01" in capsys.readouterr().out
    assert lrs(script) == pytest.approx([0.01, 0.5])  # the flag says it changed: so it must


def test_resume_removes_stale_temporaries_but_not_live_ones(make):
    script = make(tiny(epochs="1"))
    assert script() == 0
    folder = script.runs / "1"
    stale = folder / "best.pt.tmp-999999"
    stale.write_bytes(b"half a checkpoint")
    live = folder / f"last.pt.tmp-{os.getppid()}"  # a process that is alive: never touched
    live.write_bytes(b"being written")
    assert script("--resume", folder / "last.pt", "--epochs", "2") == 0
    assert not stale.exists()
    assert live.exists()


def test_resume_from_a_missing_checkpoint_is_a_one_line_error(make, capsys, tmp_path):
    script = make(tiny())
    assert script("--resume", tmp_path / "none.pt") == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.pt'}: no such checkpoint\n"


KILL_WRAPPER = """
import os, runpy, signal, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_utils

_save = train_utils.save_checkpoint


def save_then_die(state, path):
    _save(state, path)
    if os.path.basename(path) == "last.pt" and state["epoch"] == int(os.environ["KILL_AFTER_EPOCH"]):
        os.kill(os.getpid(), signal.SIGKILL)


train_utils.save_checkpoint = save_then_die  # before train.py imports it
sys.argv = [os.path.join(HERE, "train.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

RESUME_PROGRAM = tiny(
    epochs="4", scheduler="onecycle(max_lr=0.05)",
    callbacks="early_stopping(patience=10), checkpoint(every=1), unfreeze(enc, epoch=3)",
)


@pytest.mark.slow
@pytest.mark.parametrize("unfreeze_epoch", [3, 2])
def test_resume_after_sigkill_matches_a_straight_run_exactly(make, tmp_path, unfreeze_epoch):
    flags = ["--unfreeze.enc.epoch", str(unfreeze_epoch)]
    straight = make(RESUME_PROGRAM, name="straight")
    assert straight(*flags) == 0

    killed = make(RESUME_PROGRAM, name="killed")
    (killed.out / "kill_wrapper.py").write_text(KILL_WRAPPER)
    env = {**os.environ, "KILL_AFTER_EPOCH": "2"}
    done = subprocess.run([sys.executable, str(killed.out / "kill_wrapper.py"), *flags], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    assert killed.checkpoint("last.pt")["epoch"] == 2

    assert killed("--resume", killed.runs / "1" / "last.pt") == 0
    assert killed.run_folders() == ["1"]
    for name in ("last.pt", "best.pt"):
        a, b = straight.checkpoint(name), killed.checkpoint(name)
        assert a["epoch"] == b["epoch"]
        for key, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][key]), (name, key)
        assert without_seconds(a["history"]) == without_seconds(b["history"])
    assert straight.checkpoint("last.pt")["epoch"] == 4
    assert without_seconds(straight.history()) == without_seconds(killed.history())
    for script in (straight, killed):
        assert len(list(csv.DictReader(open(script.runs / "1" / "history.csv")))) == 4


# ---------------------------------------------------------------------------- torchrun


DIST_WRAPPER = """
import os, runpy, sys

HERE = os.path.dirname(os.path.abspath(__file__))
RANK = os.environ["RANK"]
_replace, _mkdir = os.replace, os.mkdir


def log(path):
    if os.path.relpath(path, HERE).startswith(".."):
        return  # torch's own caches, say
    with open(os.path.join(HERE, f"writes-{RANK}.txt"), "a") as handle:
        handle.write(os.path.relpath(path, HERE) + "\\n")


def logged_replace(src, dst):  # every file this rank moves into place
    log(dst)
    _replace(src, dst)


def logged_mkdir(path, *args, **kwargs):  # every folder it makes
    log(path)
    _mkdir(path, *args, **kwargs)


os.replace, os.mkdir = logged_replace, logged_mkdir
sys.argv = [os.path.join(HERE, "train.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_trains_and_only_rank_0_writes(make, tmp_path):
    script = make(tiny(epochs="2", callbacks="unfreeze(enc, epoch=2)"))
    (script.out / "dist_wrapper.py").write_text(DIST_WRAPPER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script.out / "dist_wrapper.py"), "--epochs", "2", "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("epoch 1/2") == 1 and done.stdout.count("epoch 2/2") == 1  # rank 0 logs
    assert "cpu x 2" in done.stdout
    assert script.run_folders() == ["1"]
    written = (script.out / "writes-0.txt").read_text().split()
    assert {"runs/1", "runs/1/history.csv", "runs/1/history.json", "runs/1/last.pt", "runs/1/best.pt"} <= set(written)
    assert not (script.out / "writes-1.txt").exists()
    rows = script.history()
    assert [row["epoch"] for row in rows] == [1, 2] and all(math.isfinite(r["train_loss"]) for r in rows)
    assert script.checkpoint("last.pt")["epoch"] == 2


# ---------------------------------------------------------------------------- diverged training, bad data


def test_a_huge_lr_diverges_with_status_1_and_writes_no_checkpoint(make, capsys):
    script = make(tiny())
    assert script("--lr", "1e30") == 1
    err = capsys.readouterr().err
    assert re.match(r"error: the loss is (nan|-?inf) at epoch 1, batch \d+", err) and err.count("\n") == 1, err
    assert not list(script.runs.rglob("*.pt"))


def test_nan_loss_exits_1_and_keeps_the_last_good_checkpoint_untouched(make, monkeypatch, capsys):
    script = make(tiny(epochs="3"))
    good = {}
    original_save, original_loss = script.module.save_checkpoint, script.module.loss_of

    def save(state, path):
        original_save(state, path)
        if state["epoch"] == 1:
            good[os.path.basename(path)] = Path(path).read_bytes()

    def loss_of(*args):
        loss = original_loss(*args)
        return loss * float("nan") if "last.pt" in good else loss  # diverges from epoch 2 on

    monkeypatch.setattr(script.module, "save_checkpoint", save)
    monkeypatch.setattr(script.module, "loss_of", loss_of)
    assert script() == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the loss is nan at epoch 2, batch 1") and err.count("\n") == 1, err
    folder = script.runs / "1"
    assert set(good) == {"best.pt", "last.pt"}
    for name, data in good.items():
        assert (folder / name).read_bytes() == data, name
    assert [row["epoch"] for row in script.history()] == [1]
    assert not [p for p in os.listdir(folder) if ".tmp-" in p]


def test_weights_broken_after_the_last_step_are_never_saved(make, monkeypatch, capsys):
    script = make(tiny(epochs="3"))
    original = script.module.evaluate
    calls = []

    def poison(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            with torch.no_grad():
                model.get_submodule("h.1").running_var.fill_(float("inf"))
        return original(model, *args, **kwargs)

    monkeypatch.setattr(script.module, "evaluate", poison)
    assert script() == 1
    err = capsys.readouterr().err
    assert err.startswith("error: `h.1.running_var` has NaN or infinite values after epoch 2"), err
    assert err.count("\n") == 1
    assert script.checkpoint("last.pt")["epoch"] == 1


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing file", "no such file"),
        ("missing target", "no column 'label'"),
        ("non-numeric", "non-numeric value 'abc'"),
        ("nan", "missing value (empty or NaN)"),
        ("missing label", "missing label"),
    ],
)
def test_bad_data_is_a_one_line_error_with_status_1(make, capsys, case, message):
    script = make(tiny())
    data = script.out.parent / "train.csv"
    if case == "missing file":
        data.unlink()
    elif case == "missing target":
        data.write_text("a,b,c,d,labl\n1,2,3,4,cat\n2,3,4,5,dog\n")
    elif case == "non-numeric":
        write_csv(data, bad_cell="abc")
    elif case == "nan":
        write_csv(data, bad_cell="nan")
    else:
        data.write_text("a,b,c,d,label\n1,2,3,4,cat\n2,3,4,5,\n3,4,5,6,dog\n")
    assert script() == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not script.runs.exists() or not os.listdir(script.runs)


def test_bad_data_given_by_flag_is_a_one_line_error(make, capsys, tmp_path):
    script = make(tiny())
    assert script("--data", tmp_path / "nope.csv") == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.csv'}: no such file\n"


# ---------------------------------------------------------------------------- prediction, evaluation


def test_predict_restores_labels_and_writes_probabilities(make, tmp_path, capsys):
    script = make(tiny(epochs="2"))
    assert script() == 0
    new = tmp_path / "new.csv"
    new.write_text("d,c,b,a\n0.1,0.2,0.3,0.4\n-1,-1,-1,-1\n2,0,2,2\n")  # another column order, no label
    out = tmp_path / "predictions.csv"
    capsys.readouterr()
    assert script("predict", "--data", new, "--checkpoint", script.runs / "1" / "best.pt", "--out", out) == 0
    assert "wrote 3 predictions" in capsys.readouterr().out
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows[0] == ["prediction", "prob_cat", "prob_dog", "prob_emu"]
    assert len(rows) == 4
    for row in rows[1:]:
        probs = [float(p) for p in row[1:]]
        assert row[0] in LABELS and row[0] == LABELS[probs.index(max(probs))]
        assert sum(probs) == pytest.approx(1, abs=1e-5)
    # without --checkpoint: the newest run's best.pt, the same one here
    assert script("predict", "--data", new, "--out", tmp_path / "again.csv") == 0
    assert (tmp_path / "again.csv").read_text() == out.read_text()


def test_predict_matches_the_model_on_standardised_features(make, tmp_path):
    import numpy as np

    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 4, generator=g) * 10 + 5
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) / 10
    folder = tmp_path / "reg"
    folder.mkdir()
    np.savez(folder / "reg.npz", X=x.numpy(), y=y.numpy())
    program = TINY_MODEL.replace("n_classes: int = 3", "n_classes: int = 1") + train_section("Tiny", {
        "data": 'npz("reg.npz")', "task": "regression", "loss": "huber", "metrics": "r2, mae",
        "epochs": "2", "batch_size": "16",
    })
    script = make(program, name="reg", csv=False)
    assert script() == 0
    out = tmp_path / "p.csv"
    assert script("predict", "--data", folder / "reg.npz", "--out", out) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "prediction" and len(lines) == 81
    state = script.checkpoint("best.pt")
    model = script.module.Tiny(d_in=4, n_classes=1)
    model.load_state_dict(state["model"])
    model.eval()
    scaling = state["data"]["scaling"][0]
    mean, std = torch.tensor(scaling["mean"]), torch.tensor(scaling["std"])
    assert mean.tolist() == pytest.approx(x.mean(0).tolist(), abs=3)  # the training part's statistics
    with torch.no_grad():
        expected = model((x - mean) / std).reshape(-1)
    assert [float(v) for v in lines[1:]] == pytest.approx(expected.tolist(), rel=1e-5, abs=1e-6)


def test_standardize_false_leaves_the_features_alone(make):
    script = make(tiny(epochs="1"))
    assert script("--standardize", "false") == 0
    assert script.checkpoint("best.pt")["data"]["scaling"] == [None]


def test_predict_with_a_missing_checkpoint_is_a_one_line_error(make, capsys, tmp_path):
    script = make(tiny())
    data = script.out.parent / "train.csv"
    assert script("predict", "--data", data, "--checkpoint", tmp_path / "none.pt") == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.pt'}: no such checkpoint\n"
    assert script("predict", "--data", data) == 1  # no run yet
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "train first" in err and err.count("\n") == 1


def test_predict_without_data_exits_2(make, capsys):
    script = make(tiny())
    assert script("predict") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: predict needs --data") and err.count("\n") == 1


def figures_of(line: str) -> dict:
    words = line.split(": ", 1)[1].split()
    return {name: float(value) for name, value in zip(words[::2], words[1::2])}


def test_evaluate_prints_the_valid_figures_of_best_pt(make, capsys):
    script = make(tiny(epochs="3"))
    assert script() == 0
    capsys.readouterr()
    assert script("evaluate") == 0
    lines = capsys.readouterr().out.splitlines()
    valid = [line for line in lines if line.startswith("valid: ")]
    assert len(valid) == 1 and not [line for line in lines if line.startswith("train")]
    row = script.checkpoint("best.pt")["history"][-1]  # the best epoch's figures
    assert figures_of(valid[0]) == pytest.approx(
        {"loss": row["valid_loss"], "accuracy": row["valid_accuracy"], "f1": row["valid_f1"]}, rel=1e-3)
    assert script("evaluate", "--data", script.out.parent / "train.csv") == 0  # all of a file
    assert capsys.readouterr().out.startswith("data: loss ")


def test_lr_find_prints_a_suggestion_and_writes_nothing(make, tmp_path, capsys):
    script = make(tiny())
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert script("lr_find") == 0
    out = capsys.readouterr().out
    assert "suggested: --lr " in out and out.count("lr ") > 2
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_fast_dev_run_writes_no_run_folder(make, monkeypatch, capsys):
    script = make(tiny(epochs="3"))
    sizes = record_train_batches(script, monkeypatch)
    assert script("--fast_dev_run") == 0
    assert "epoch 1/1" in capsys.readouterr().out
    assert sizes == [16]  # one batch
    assert not script.runs.exists()


def test_overfit_batches_trains_and_validates_on_the_same_batches(make, monkeypatch, capsys):
    script = make(tiny(epochs="2"))
    sizes = record_train_batches(script, monkeypatch)
    assert script("--overfit_batches", "1") == 0
    assert ": 16 examples" in capsys.readouterr().out
    assert sizes == [16, 16]
    rows = script.history()
    assert [row["epoch"] for row in rows] == [1, 2]


def test_limit_train_batches(make, monkeypatch):
    script = make(tiny(epochs="2"))
    sizes = record_train_batches(script, monkeypatch)
    assert script("--limit_train_batches", "1") == 0
    assert sizes == [16, 16]
    assert [row["epoch"] for row in script.history()] == [1, 2]


# ---------------------------------------------------------------------------- inputs and outputs


IDS_PROGRAM = """\
model Ids(n_classes: int = 3) {
    input ids: long[batch, feature=3]
    logits = ids >> embedding(10, 4) >> flatten >> linear(n_classes)
}
""" + train_section("Ids", {"data": 'csv("ids.csv", target="label")', "epochs": "2", "batch_size": "16"})


def write_ids_csv(path, n=80, fraction=False):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 10, (n, 3), generator=g)
    rows = ["i0,i1,i2,label"]
    for i, r in enumerate(ids.tolist()):
        cells = [str(v) for v in r]
        if fraction and i == 7:
            cells[2] = "2.5"
        rows.append(",".join(cells) + f",{int(r[0] > 4) + int(r[1] > 6)}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_an_integer_input_trains_from_integer_columns(make, tmp_path):
    folder = tmp_path / "ids"
    folder.mkdir()
    write_ids_csv(folder / "ids.csv")
    script = make(IDS_PROGRAM, name="ids", csv=False)
    assert script.module.INPUTS == {"ids": torch.int64}
    assert script() == 0
    assert [row["epoch"] for row in script.history()] == [1, 2]
    state = script.checkpoint("best.pt")
    assert state["data"]["columns"] == {"ids": ["i0", "i1", "i2"]} and state["data"]["scaling"] == [None]
    assert script("predict", "--data", folder / "ids.csv", "--out", tmp_path / "p.csv") == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 81


def test_a_fraction_for_an_integer_input_exits_1(make, tmp_path, capsys):
    folder = tmp_path / "ids"
    folder.mkdir()
    write_ids_csv(folder / "ids.csv", fraction=True)
    script = make(IDS_PROGRAM, name="ids", csv=False)
    assert script() == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "fraction" in err and err.count("\n") == 1, err


TWO_INPUTS = {
    "cat": "h = cat(a >> linear(4), b >> linear(4), dim=feature) >> relu",
    "arithmetic": "h = ((a >> linear(4)) + (b >> linear(4))) >> relu",
}


@pytest.mark.parametrize("join", sorted(TWO_INPUTS))
def test_two_inputs_train_from_dotted_columns(make, tmp_path, join):
    program = f"""\
model TwoIn(n_classes: int = 2) {{
    input a: [batch, feature=2]
    input b: [batch, feature=3]
    {TWO_INPUTS[join]}
    logits = h >> linear(n_classes)
}}
""" + train_section("TwoIn", {"data": 'csv("two.csv", target="label")', "epochs": "2", "batch_size": "16"})
    folder = tmp_path / "two"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 5, generator=g)
    rows = ["a.0,a.1,b.0,b.1,b.2,label"] + [
        ",".join(f"{v:.4f}" for v in r) + f",{int(r[0] + r[3] > 0)}" for r in x.tolist()]
    (folder / "two.csv").write_text("\n".join(rows) + "\n")
    script = make(program, name="two", csv=False)
    assert script() == 0
    state = script.checkpoint("best.pt")
    assert state["data"]["columns"] == {"a": ["a.0", "a.1"], "b": ["b.0", "b.1", "b.2"]}
    assert len(state["data"]["scaling"]) == 2
    assert script("predict", "--data", folder / "two.csv", "--out", tmp_path / "p.csv") == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 81


def two_outputs(head: str | None) -> str:
    return """\
model TwoOut(d_in: int = 4) {
    input x: [batch, feature=d_in]
    h = x >> linear(8) >> relu
    first = h >> linear(3)
    second = h >> linear(3)
    output first, second
}
""" + train_section("TwoOut", {"data": 'csv("train.csv", target="label")', "epochs": "2", "batch_size": "16",
                               "head": head})


@pytest.mark.parametrize("head, trained, untouched", [(None, "first", "second"), ("second", "second", "first")])
def test_a_model_with_two_outputs_trains_its_head(make, monkeypatch, head, trained, untouched):
    script = make(two_outputs(head), name="two_out")
    built = record_builds(script, monkeypatch)
    assert script() == 0
    weights = script.checkpoint("last.pt")["model"]
    assert not torch.equal(weights[f"{trained}.weight"], built[0][f"{trained}.weight"])
    assert torch.equal(weights[f"{untouched}.weight"], built[0][f"{untouched}.weight"])  # no gradient


# ---------------------------------------------------------------------------- every function runs


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


@pytest.mark.slow
def test_every_emitted_function_runs(make, tmp_path):
    from sklearn.datasets import load_digits

    script = make((EXAMPLES / "digits.tg").read_text(), name="digits", csv=False)
    bunch = load_digits()
    digits_csv = tmp_path / "digits.csv"
    with open(digits_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(bunch.feature_names)
        writer.writerows(bunch.data[:30].tolist())

    files = {os.path.realpath(script.out / name): name for name in ("train.py", "train_utils.py")}
    entered: set[tuple[str, str]] = set()

    def tracer(frame, event, arg):
        if event == "call":
            code = frame.f_code
            name = files.get(code.co_filename) or files.get(os.path.realpath(code.co_filename))
            if name is not None:
                entered.add((name, code.co_name))
        return None

    broken_csv = tmp_path / "broken.csv"
    broken_csv.write_text(digits_csv.read_text().replace("pixel_0_0", "pixel_zero", 1))
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("not a checkpoint")
    # Every flag type is parsed once (the type checkers are functions), and the error paths run:
    # all of them ship, so all of them must be reachable.
    flags = ["--lr", "0.003", "--valid", "0.2", "--grad_clip", "none", "--compile", "false",
             "--optimizer.weight_decay", "0.01"]
    commands = [
        ["--epochs", "2", *flags],
        ["--resume", script.runs / "1" / "last.pt", "--epochs", "3"],
        ["predict", "--data", digits_csv, "--out", tmp_path / "pred.csv"],
        ["evaluate"],
        ["lr_find"],
        ["--fast_dev_run"],
        ["--overfit_batches", "1", "--epochs", "1"],
    ]
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        statuses = [script(*argv) for argv in commands]
    finally:
        sys.settrace(previous)
    assert statuses == [0] * len(commands)
    assert len((tmp_path / "pred.csv").read_text().splitlines()) == 31
    bad_cell = tmp_path / "bad_cell.csv"
    lines = digits_csv.read_text().splitlines()
    bad_cell.write_text("\n".join([lines[0], "x" + lines[1][3:], *lines[2:]]) + "\n")
    failing = [
        ["predict", "--data", broken_csv],  # a missing column: did-you-mean and the columns
        ["predict", "--data", bad_cell],  # a cell that is not a number, shown shortened
        ["evaluate", "--checkpoint", not_a_checkpoint],  # not a checkpoint: its first line
    ]
    sys.settrace(tracer)
    try:
        statuses = [script(*argv) for argv in failing]
    finally:
        sys.settrace(previous)
    assert statuses == [1] * len(failing)

    never = sorted(f"{name}: {function}" for path, name in files.items()
                   for function in defined_functions(Path(path)) if (name, function) not in entered)
    assert not never, f"{len(never)} emitted functions never entered:\n  " + "\n  ".join(never)


def test_the_epoch_order_is_distributed_samplers(make):
    # train.py draws an epoch's order itself (6 ms an epoch cheaper than listing a sampler,
    # benchmarks/README.md); it must be exactly DistributedSampler's for any world size.
    from torch.utils.data.distributed import DistributedSampler

    script = make(tiny())
    cfg = {"seed": 3, "batch_size": 1, "drop_last": False}
    options = {"overfit_batches": 0, "limit_train_batches": 0}
    for n in (10, 11, 97):
        for world in (1, 2, 3):
            for rank in range(world):
                for epoch in (1, 5):
                    sampler = DistributedSampler(range(n), world, rank, seed=3)
                    sampler.set_epoch(epoch)
                    ours = script.module.order_of(n, epoch, cfg, options, rank, world)
                    assert ours.tolist() == list(sampler), (n, world, rank, epoch)


# ---------------------------------------------------------------------------- precision, accumulation, compile

PLAIN_MODEL = """\
model Plain(d_in: int = 4, hidden: int = 8, n_classes: int = 3) {
    input x: [batch, feature=d_in]
    logits = x >> linear(hidden) >> relu >> linear(n_classes)
}
"""


def plain(**settings) -> str:
    return PLAIN_MODEL + train_section("Plain", TINY_TRAIN | {"optimizer": "sgd(lr=0.1)", "metrics": None}
                                       | settings)


def test_gradient_accumulation_equals_a_batch_as_large(make):
    # 2 batches of 8 accumulated are one step on the 16 examples of one batch of 16: the epoch's
    # order is the same (seed, epoch), the loss of each half is divided by 2
    a = make(plain(batch_size="16", epochs="1"), name="one")
    assert a("--drop_last", "true") == 0
    b = make(plain(batch_size="8", epochs="1", accumulate="2"), name="acc")
    assert b("--drop_last", "true") == 0
    wa, wb = a.checkpoint("last.pt")["model"], b.checkpoint("last.pt")["model"]
    for name in wa:
        assert torch.allclose(wa[name], wb[name], atol=1e-6), name
    c = make(plain(batch_size="8", epochs="1"), name="no_acc")
    assert c("--drop_last", "true") == 0
    last = list(wa)[-1]  # without accumulation: two steps, other weights
    assert not torch.allclose(c.checkpoint("last.pt")["model"][last], wa[last])


def test_bf16_autocast_trains_on_the_cpu(make):
    script = make(plain(epochs="2"))
    assert script("--precision", "bf16") == 0
    history = script.history()
    assert len(history) == 2 and all(math.isfinite(row["train_loss"]) for row in history)
    assert script("--precision", "fp64") == 2  # not a choice


@pytest.mark.slow
def test_compile_true_trains_with_torch_compile(make):
    script = make(plain(epochs="1"))
    assert script("--compile", "true") == 0
    assert math.isfinite(script.history()[0]["valid_loss"])
