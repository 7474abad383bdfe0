"""Tests of runtime/vendored/training.py: the fit loop, callbacks, command line, checkpoints, resume,
torchrun and prediction, on a tiny hand-written model and synthetic csv/npz data."""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from tgc.runtime.vendored import training
from tgc.runtime.vendored.training import Callback, run

# The model a generated model.py would hold: a frozen encoder (with batch norm) listed in
# `frozen_modules`, kept in eval mode by train(), and a trainable batch-norm + dropout head.
MODEL_SOURCE = textwrap.dedent(
    '''
    import torch
    from torch import nn


    class Tiny(nn.Module):
        def __init__(self, d_in: int = 4, hidden: int = 8, n_classes: int = 3, p: float = 0.1):
            super().__init__()
            self.frozen_modules = {"enc"}
            self.enc = nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden))
            self.enc.requires_grad_(False)
            self.body = nn.Sequential(nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(p))
            self.head = nn.Linear(hidden, n_classes)
            self.train()

        def forward(self, x):
            return self.head(self.body(torch.relu(self.enc(x))))

        def train(self, mode: bool = True):
            super().train(mode)
            for name in self.frozen_modules:
                self.get_submodule(name).eval()
            return self
    '''
)
_namespace: dict = {}
exec(MODEL_SOURCE, _namespace)
Tiny = _namespace["Tiny"]

LABELS = ["cat", "dog", "emu"]


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


def make_config(tmp_path, **changes):
    config = {
        "model": {"d_in": 4, "n_classes": 3},
        "data": {"kind": "csv", "path": str(write_csv(tmp_path / "train.csv")), "target": "label"},
        "task": "classification",
        "loss": {"name": "cross_entropy", "label_smoothing": 0.1},
        "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.01},
        "scheduler": None,
        "epochs": 3,
        "batch_size": 16,
        "valid": 0.2,
        "test": None,
        "metrics": ["accuracy", "f1"],
        "callbacks": [],
        "seed": 0,
        "device": "cpu",
        "deterministic": False,
        "drop_last": False,
        "grad_clip": None,
        "out_dir": "runs",
    }
    config.update(changes)
    return config


def train(tmp_path, config, argv=(), callbacks=()):
    return run(config, Tiny, str(tmp_path / "train.py"), list(argv), callbacks=list(callbacks))


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


class Recorder(Callback):
    """Calls `fn(trainer)` at `hook`."""

    def __init__(self, hook, fn, order=100):
        self.order = order
        setattr(self, hook, fn)


# ---------------------------------------------------------------------------- callbacks


def test_history_files_hold_every_figure_per_epoch(tmp_path):
    config = make_config(tmp_path, test=0.1)
    assert train(tmp_path, config) == 0
    runs = tmp_path / "runs"
    lines = (runs / "history.csv").read_text().splitlines()
    assert lines[0].split(",") == [
        "epoch", "train_loss", "train_accuracy", "train_f1", "valid_loss", "valid_accuracy", "valid_f1", "lr",
    ]
    assert len(lines) == 4
    document = json.loads((runs / "history.json").read_text())
    assert [row["epoch"] for row in document["epochs"]] == [1, 2, 3]
    for line, row in zip(lines[1:], document["epochs"]):
        assert [float(v) for v in line.split(",")] == pytest.approx([float(v) for v in row.values()])
        assert 0 <= row["valid_accuracy"] <= 1 and row["train_loss"] > 0
    assert set(document["test"]) == {"loss", "accuracy", "f1"}
    assert not [p for p in os.listdir(runs) if ".tmp-" in p]


def test_checkpoints_last_every_k_and_best_by_monitor(tmp_path):
    seen = []

    def look(trainer):
        path = tmp_path / "runs" / "last.pt"
        seen.append(load(path)["epoch"] if path.exists() else None)

    config = make_config(tmp_path, epochs=5, callbacks=[{"name": "checkpoint", "every": 2, "monitor": "valid_accuracy"}])
    assert train(tmp_path, config, callbacks=[Recorder("on_epoch_end", look, order=60)]) == 0
    assert seen == [None, 2, 2, 4, 5]  # every 2 epochs, and at the end
    history = json.loads((tmp_path / "runs" / "history.json").read_text())["epochs"]
    best = load(tmp_path / "runs" / "best.pt")
    best_value = max(row["valid_accuracy"] for row in history)
    first_best = next(row["epoch"] for row in history if row["valid_accuracy"] == best_value)
    assert best["epoch"] == first_best  # max mode from the metric, first epoch reaching it
    assert best["callbacks"]["checkpoint"] == {"best": best_value, "best_epoch": first_best}
    # What prediction and resume need, all loadable with weights_only=True.
    for key in ("model", "optimizer", "scheduler", "epoch", "rng", "history", "config", "standardizer",
                "label_map", "features", "callbacks"):
        assert key in best
    assert best["label_map"] == LABELS and best["features"] == ["a", "b", "c", "d"]
    assert len(best["history"]) == first_best
    assert not [p for p in os.listdir(tmp_path / "runs") if ".tmp-" in p]


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    training._tr_atomic_save({"epoch": 1}, str(path))
    before = path.read_bytes()

    def broken_save(obj, target):
        with open(target, "wb") as handle:
            handle.write(b"half a checkp")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(training.TrainingError, match="No space left"):
        training._tr_atomic_save({"epoch": 2}, str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.pt"]


def scripted_valid_loss(values):
    def script(trainer):
        trainer.logs["valid_loss"] = values[trainer.current_epoch - 1]

    return Recorder("on_validation_end", script)


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path):
    config = make_config(
        tmp_path, epochs=10,
        callbacks=[{"name": "early_stopping", "monitor": "valid_loss", "patience": 2}],
    )
    final = {}
    grab = Recorder("on_fit_end", lambda t: final.update({k: v.clone() for k, v in t.model.state_dict().items()}), order=200)
    losses = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3]
    assert train(tmp_path, config, callbacks=[scripted_valid_loss(losses), grab]) == 0
    history = json.loads((tmp_path / "runs" / "history.json").read_text())["epochs"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]  # stopped after 2 epochs without improvement
    best = load(tmp_path / "runs" / "best.pt")
    last = load(tmp_path / "runs" / "last.pt")
    assert best["epoch"] == 2 and last["epoch"] == 4  # last.pt written when stopping
    for name, tensor in best["model"].items():
        assert torch.equal(final[name], tensor), name
    assert not torch.equal(last["model"]["head.weight"], best["model"]["head.weight"])


def lrs_per_epoch(tmp_path, scheduler, valid_losses=None, epochs=5, optimizer=None):
    config = make_config(tmp_path, epochs=epochs, scheduler=scheduler,
                         optimizer=optimizer or {"name": "sgd", "lr": 0.1, "momentum": 0.9})
    per_batch = []
    callbacks = [Recorder("on_batch_begin", lambda t: per_batch.append(t.optimizer.param_groups[0]["lr"]))]
    if valid_losses:
        callbacks.append(scripted_valid_loss(valid_losses))
    assert train(tmp_path, config, callbacks=callbacks) == 0
    history = json.loads((tmp_path / "runs" / "history.json").read_text())["epochs"]
    return [row["lr"] for row in history], per_batch


def test_step_scheduler_steps_per_epoch(tmp_path):
    per_epoch, per_batch = lrs_per_epoch(tmp_path, {"name": "step", "step_size": 2, "gamma": 0.5})
    assert per_epoch == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    assert per_batch[:6] == pytest.approx([0.1] * 6)  # constant within an epoch


def test_cosine_scheduler_steps_per_epoch_over_all_epochs(tmp_path):
    per_epoch, _ = lrs_per_epoch(tmp_path, {"name": "cosine", "eta_min": 0.0})
    assert per_epoch == pytest.approx([0.05 * (1 + math.cos(math.pi * e / 5)) for e in range(5)])


def test_onecycle_scheduler_steps_per_batch(tmp_path):
    _, per_batch = lrs_per_epoch(tmp_path, {"name": "onecycle", "max_lr": 0.5})
    steps = len(per_batch)  # 96 training samples, batches of 16: 6 per epoch
    assert steps == 5 * 6
    reference_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    reference = torch.optim.lr_scheduler.OneCycleLR(reference_opt, max_lr=0.5, total_steps=steps)
    expected = []
    for _ in range(steps):
        expected.append(reference_opt.param_groups[0]["lr"])
        reference_opt.step()
        reference.step()
    assert per_batch == pytest.approx(expected)


def test_plateau_scheduler_steps_per_epoch_on_its_monitor(tmp_path):
    per_epoch, _ = lrs_per_epoch(
        tmp_path, {"name": "plateau", "monitor": "valid_loss", "patience": 0, "factor": 0.5},
        valid_losses=[1.0, 1.0, 1.0, 1.0], epochs=4,
    )
    assert per_epoch == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_unfreeze_at_epoch_k_makes_the_frozen_part_train(tmp_path):
    states = []

    def look(trainer):
        enc = trainer.model.enc
        states.append((
            trainer.current_epoch,
            all(p.requires_grad for p in enc.parameters()),
            enc.training,
            "enc" in trainer.model.frozen_modules,
            enc[0].weight.detach().clone(),
        ))

    config = make_config(tmp_path, epochs=3, callbacks=[{"name": "unfreeze", "target": ["enc"], "epoch": 2}])
    assert train(tmp_path, config, callbacks=[Recorder("on_epoch_begin", look, order=5)]) == 0
    assert [s[:4] for s in states] == [(1, False, False, True), (2, True, True, False), (3, True, True, False)]
    assert torch.equal(states[0][4], states[1][4])  # frozen during epoch 1
    assert not torch.equal(states[1][4], states[2][4])  # updated by the optimizer built at the start
    assert not torch.equal(load(tmp_path / "runs" / "last.pt")["model"]["enc.1.running_mean"],
                           states[0][4].new_zeros(8))  # batch norm of the unfrozen part trains


def test_unfreeze_of_a_missing_submodule_is_a_config_error(tmp_path, capsys):
    config = make_config(tmp_path, callbacks=[{"name": "unfreeze", "target": ["encc"], "epoch": 2}])
    assert train(tmp_path, config) == 2
    assert capsys.readouterr().err == "error: unfreeze: the model has no submodule `encc`; did you mean `enc`?\n"


def test_grad_clipping_bounds_the_gradient_norm(tmp_path):
    norms = []

    def measure(trainer):
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    config = make_config(tmp_path, epochs=1, grad_clip=0.01)
    clipper = []
    grab = Recorder("on_fit_end", lambda t: clipper.extend(cb for cb in t.callbacks if isinstance(cb, training.GradClip)))
    assert train(tmp_path, config, callbacks=[Recorder("on_after_backward", measure, order=15), grab]) == 0
    assert norms and max(norms) <= 0.01 * (1 + 1e-4)
    assert clipper[0].last_norm > 0.01  # clipping did something


def test_batch_size_one_with_batch_norm_trains(tmp_path, capsys):
    config = make_config(tmp_path, epochs=1, batch_size=1)
    config["data"]["path"] = str(write_csv(tmp_path / "small.csv", n=20))
    steps = []
    assert train(tmp_path, config, callbacks=[Recorder("on_batch_end", lambda t: steps.append(1))]) == 0
    assert len(steps) == 16  # 20 samples, 4 held out; batches of one are all kept
    assert "batch-norm layers use their running statistics" in capsys.readouterr().out
    assert math.isfinite(json.loads((tmp_path / "runs" / "history.json").read_text())["epochs"][0]["train_loss"])


def test_a_last_batch_of_one_is_dropped(tmp_path):
    config = make_config(tmp_path, epochs=1, batch_size=8, valid=None)
    config["data"]["path"] = str(write_csv(tmp_path / "odd.csv", n=17))
    sizes = []
    assert train(tmp_path, config, callbacks=[Recorder("on_batch_end", lambda t: sizes.append(t.output.shape[0]))]) == 0
    assert sizes == [8, 8]


# ---------------------------------------------------------------------------- command line


def test_overrides_keep_types_and_reach_nested_settings(tmp_path):
    config = training._tr_merge_defaults(make_config(
        tmp_path, callbacks=[{"name": "early_stopping", "monitor": "valid_loss", "patience": 3}]))
    argv = ["train", "--epochs", "7", "--lr", "1", "--data", "other.csv", "--early_stopping.patience", "5",
            "--optimizer.weight_decay", "0", "--model.hidden", "256", "--deterministic", "--device=auto",
            "--metrics", "accuracy", "--valid", "0.3", "--grad_clip", "0.5", "--batch-size", "4"]
    command, pairs = training._tr_parse_argv(argv)
    result, resume = training._tr_apply_overrides(config, pairs, Tiny)
    assert command == "train" and resume is None
    assert result["epochs"] == 7 and type(result["epochs"]) is int
    assert result["optimizer"]["lr"] == 1.0 and type(result["optimizer"]["lr"]) is float
    assert result["optimizer"]["weight_decay"] == 0.0 and type(result["optimizer"]["weight_decay"]) is float
    assert result["data"] == {"kind": "csv", "path": os.path.abspath("other.csv"), "target": "label"}
    assert result["callbacks"][0]["patience"] == 5
    assert result["model"] == {"d_in": 4, "n_classes": 3, "hidden": 256}
    assert result["deterministic"] is True and result["device"] == "auto"
    assert result["metrics"] == ["accuracy"] and result["valid"] == 0.3
    assert result["grad_clip"] == 0.5 and result["batch_size"] == 4
    assert config["epochs"] == 3  # the given config is not changed

    _, pairs = training._tr_parse_argv(["--valid", "valid.csv", "--test", "none", "--resume", "last.pt",
                                        "--scheduler", "cosine", "--optimizer", "sgd"])
    result, resume = training._tr_apply_overrides(config, pairs, Tiny)
    assert result["valid"] == {"kind": "csv", "path": os.path.abspath("valid.csv"), "target": "label"}
    assert result["test"] is None
    assert result["scheduler"] == {"name": "cosine"} and result["optimizer"]["name"] == "sgd"
    assert resume == "last.pt"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epoch", "3"], "error: unknown setting `--epoch`; did you mean `--epochs`?"),
        (["--epochs", "2.5"], "error: --epochs expects an integer, got `2.5`"),
        (["--lr", "fast"], "error: --lr expects a number, got `fast`"),
        (["--model.hiden", "3"], "error: `Tiny` has no argument `hiden`; did you mean `hidden`?"),
        (["--patience", "3"], "error: unknown setting `--patience`; did you mean `--early_stopping.patience`?"),
        (["fit"], "error: unknown command `fit`; expected train or predict"),
        (["--deterministic", "maybe"], "error: --deterministic expects true or false, got `maybe`"),
    ],
)
def test_bad_command_lines_are_one_line_errors_with_status_2(tmp_path, capsys, argv, message):
    config = make_config(tmp_path, callbacks=[{"name": "early_stopping", "patience": 3}])
    assert train(tmp_path, config, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_help_lists_the_settings(tmp_path, capsys):
    assert train(tmp_path, make_config(tmp_path), ["--help"]) == 0
    out = capsys.readouterr().out
    assert "--optimizer.lr 0.01" in out and "--model.hidden 8" in out and "predict --data" in out


# ---------------------------------------------------------------------------- resume


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_model import Tiny
from tgc.runtime.vendored.training import Callback, run
import json
CONFIG = json.loads(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")).read())

class KillAfterCheckpoint(Callback):
    order = 60  # after the checkpoint callback (50) has written last.pt
    def on_epoch_end(self, trainer):
        if trainer.epoch == int(os.environ.get("KILL_AFTER_EPOCH", "0")):
            os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    raise SystemExit(run(CONFIG, Tiny, __file__, callbacks=[KillAfterCheckpoint()]))
"""


@pytest.mark.slow
def test_resume_after_sigkill_matches_a_straight_run_exactly(tmp_path):
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight_dir.mkdir()
    killed_dir.mkdir()
    config = make_config(
        tmp_path, epochs=4, scheduler={"name": "onecycle", "max_lr": 0.05},
        callbacks=[{"name": "early_stopping", "patience": 10}, {"name": "checkpoint", "every": 1},
                   {"name": "unfreeze", "target": ["enc"], "epoch": 3}],
    )
    assert train(straight_dir, config) == 0

    (killed_dir / "tiny_model.py").write_text(MODEL_SOURCE)
    (killed_dir / "config.json").write_text(json.dumps(config))
    (killed_dir / "train.py").write_text(KILL_SCRIPT)
    env = {**os.environ, "KILL_AFTER_EPOCH": "2"}
    done = subprocess.run([sys.executable, str(killed_dir / "train.py")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert load(killed_dir / "runs" / "last.pt")["epoch"] == 2
    assert len(json.loads((killed_dir / "runs" / "history.json").read_text())["epochs"]) == 2

    assert train(killed_dir, config, ["--resume", "last.pt"]) == 0
    straight = load(straight_dir / "runs" / "last.pt")
    resumed = load(killed_dir / "runs" / "last.pt")
    assert straight["epoch"] == resumed["epoch"] == 4
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert straight["history"] == resumed["history"]
    for part in ("history.json", "history.csv"):
        assert (straight_dir / "runs" / part).read_text() == (killed_dir / "runs" / part).read_text()


# ---------------------------------------------------------------------------- torchrun


DIST_SCRIPT = """
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from tiny_model import Tiny
from tgc.runtime.vendored.training import Callback, run
import json
HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = json.loads(open(os.path.join(HERE, "config.json")).read())
RANK = os.environ["RANK"]

_replace = os.replace
def logged_replace(src, dst):  # records every file this rank moves into place
    with open(os.path.join(HERE, f"writes-{RANK}.txt"), "a") as handle:
        handle.write(os.path.basename(dst) + "\\n")
    _replace(src, dst)
os.replace = logged_replace

class DumpWeights(Callback):
    def on_fit_end(self, trainer):
        weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        torch.save(weights, os.path.join(HERE, f"weights-{RANK}.pt"))
        with open(os.path.join(HERE, f"world-{RANK}.txt"), "w") as handle:
            handle.write(f"{trainer.dist.world} {trainer.dist.active} {type(trainer.net).__name__}")

if __name__ == "__main__":
    raise SystemExit(run(CONFIG, Tiny, __file__, callbacks=[DumpWeights()]))
"""


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_trains_and_only_rank_0_writes(tmp_path):
    config = make_config(tmp_path, epochs=1, callbacks=[{"name": "unfreeze", "target": ["enc"], "epoch": 1}])
    (tmp_path / "tiny_model.py").write_text(MODEL_SOURCE)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "train.py").write_text(DIST_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(tmp_path / "train.py")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("epoch 1/1") == 1  # only rank 0 logs
    assert "cpu x 2 processes" in done.stdout
    for rank in ("0", "1"):
        assert (tmp_path / f"world-{rank}.txt").read_text() == "2 True DistributedDataParallel"
    written = (tmp_path / "writes-0.txt").read_text().split()
    assert {"history.csv", "history.json", "last.pt", "best.pt"} <= set(written)
    assert not (tmp_path / "writes-1.txt").exists()
    w0, w1 = load(tmp_path / "weights-0.pt"), load(tmp_path / "weights-1.pt")
    for name in w0:
        assert torch.equal(w0[name], w1[name]), name  # gradients were averaged across ranks
    assert torch.equal(load(tmp_path / "runs" / "last.pt")["model"]["head.weight"], w0["head.weight"])


# ---------------------------------------------------------------------------- bad input


def test_nan_loss_stops_with_status_1_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    def poison(trainer):
        if trainer.current_epoch == 2:
            with torch.no_grad():
                trainer.model.head.weight.fill_(float("nan"))

    config = make_config(tmp_path, epochs=3)
    assert train(tmp_path, config, callbacks=[Recorder("on_epoch_begin", poison)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: loss is nan at epoch 2, batch 1: training diverged") and err.count("\n") == 1
    assert load(tmp_path / "runs" / "last.pt")["epoch"] == 1
    assert load(tmp_path / "runs" / "best.pt")["epoch"] == 1


def test_weights_broken_after_the_last_step_are_never_saved(tmp_path, capsys):
    def poison(trainer):
        if trainer.current_epoch == 2:
            with torch.no_grad():
                trainer.model.body[1].running_var.fill_(float("inf"))

    config = make_config(tmp_path, epochs=3, valid=None)
    assert train(tmp_path, config, callbacks=[Recorder("on_validation_end", poison)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: `body.1.running_var` has NaN or infinite values after epoch 2")
    assert load(tmp_path / "runs" / "last.pt")["epoch"] == 1


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing file", "no such file"),
        ("missing target", "no column 'label'"),
        ("non-numeric", "non-numeric value 'abc'"),
        ("nan", "missing value (empty or NaN)"),
    ],
)
def test_bad_data_is_a_one_line_error_with_status_1(tmp_path, capsys, case, message):
    config = make_config(tmp_path)
    path = tmp_path / "bad.csv"
    if case == "missing target":
        path.write_text("a,b,c,d,labl\n1,2,3,4,cat\n2,3,4,5,dog\n")
    elif case == "non-numeric":
        write_csv(path, bad_cell="abc")
    elif case == "nan":
        write_csv(path, bad_cell="nan")
    config["data"]["path"] = str(path if case != "missing file" else tmp_path / "nope.csv")
    assert train(tmp_path, config) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")


def test_model_that_does_not_fit_the_data_is_a_config_error(tmp_path, capsys):
    config = make_config(tmp_path, model={"d_in": 5, "n_classes": 3})
    assert train(tmp_path, config) == 2
    assert "the model cannot run on the data's features [4]" in capsys.readouterr().err


# ---------------------------------------------------------------------------- prediction


def test_predict_restores_labels_and_writes_probabilities(tmp_path, capsys):
    config = make_config(tmp_path, epochs=2)
    assert train(tmp_path, config) == 0
    new = tmp_path / "new.csv"
    new.write_text("d,c,b,a\n0.1,0.2,0.3,0.4\n-1,-1,-1,-1\n2,0,2,2\n")  # another column order, no label
    out = tmp_path / "predictions.csv"
    argv = ["predict", "--data", str(new), "--checkpoint", "best.pt", "--out", str(out)]
    assert train(tmp_path, config, argv) == 0
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows[0] == ["prediction", "prob_cat", "prob_dog", "prob_emu"]
    assert len(rows) == 4
    for row in rows[1:]:
        probs = [float(p) for p in row[1:]]
        assert row[0] in LABELS and row[0] == LABELS[probs.index(max(probs))]
        assert sum(probs) == pytest.approx(1, abs=1e-5)
    assert "wrote 3 predictions" in capsys.readouterr().out


def test_predict_matches_the_model_on_standardised_features(tmp_path):
    import numpy as np
    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 4, generator=g) * 10 + 5
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) / 10
    np.savez(tmp_path / "reg.npz", X=x.numpy(), y=y.numpy())
    config = make_config(
        tmp_path, task="regression", model={"d_in": 4, "n_classes": 1}, loss={"name": "huber"},
        data={"kind": "npz", "path": str(tmp_path / "reg.npz")}, metrics=["r2", "mae"], epochs=2,
    )
    assert train(tmp_path, config) == 0
    out = tmp_path / "p.csv"
    assert train(tmp_path, config, ["predict", "--data", str(tmp_path / "reg.npz"), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "prediction" and len(lines) == 81
    state = load(tmp_path / "runs" / "best.pt")
    model = Tiny(d_in=4, n_classes=1)
    model.load_state_dict(state["model"])
    model.eval()
    mean, std = torch.tensor(state["standardizer"]["mean"]), torch.tensor(state["standardizer"]["std"])
    with torch.no_grad():
        expected = model((x - mean) / std).reshape(-1)
    assert [float(v) for v in lines[1:]] == pytest.approx(expected.tolist(), rel=1e-5, abs=1e-6)


def test_predict_with_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    config = make_config(tmp_path)
    argv = ["predict", "--data", config["data"]["path"], "--checkpoint", str(tmp_path / "none.pt")]
    assert train(tmp_path, config, argv) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.pt'}: no such checkpoint\n"


# ---------------------------------------------------------------------------- compiler-written keys


def test_input_sizes_standardize_and_valid_monitor_without_validation_data(tmp_path, capsys):
    # What the compiler writes: input widths left to the data, standardize, num_workers, and
    # valid_loss monitors even when there is no validation part.
    config = make_config(
        tmp_path, model={"n_classes": 3}, input_sizes={"d_in": "n_features"}, standardize=False,
        num_workers=0, valid=None, epochs=2,
        optimizer={"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "betas": None},
        scheduler={"name": "cosine", "T_max": None, "eta_min": 0.0},
        callbacks=[{"name": "checkpoint", "every": 1, "monitor": "valid_loss"},
                   {"name": "early_stopping", "monitor": "valid_accuracy", "patience": 3}],
    )
    assert train(tmp_path, config) == 0
    out = capsys.readouterr().out
    assert "checkpoint monitors train_loss instead of valid_loss" in out
    assert "early_stopping monitors train_accuracy instead of valid_accuracy" in out
    state = load(tmp_path / "runs" / "best.pt")
    assert state["config"]["model"] == {"n_classes": 3, "d_in": 4}
    assert state["standardizer"] is None
    assert state["callbacks"]["checkpoint"]["best"] == min(r["train_loss"] for r in state["history"])
    argv = ["predict", "--data", config["data"]["path"], "--out", str(tmp_path / "p.csv")]
    assert train(tmp_path, config, argv) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 121
