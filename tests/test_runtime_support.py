"""runtime/vendored/support.py: setting types, devices, run folders, checkpoints, history files.

Only what needs no training loop; the vendoring rules of the whole library (support.py, data.py,
metrics.py) are checked at the end.
"""

import argparse
import ast
import builtins
import json
import os
import pathlib
import random
import subprocess
import symtable
import sys

import pytest
import torch

from tgc.compiler.vendor import library, vendor
from tgc.runtime.vendored import support as S
from tgc.runtime.vendored.support import SettingError, TrainingError

RUNTIME = pathlib.Path(__file__).resolve().parent.parent / "runtime" / "vendored"


# ------------------------------------------------------------------ setting types

@pytest.mark.parametrize(
    "fn, good, bad",
    [
        (S.positive, {"1": 1, "64": 64}, {"0": "at least 1, not 0", "-3": "at least 1, not -3"}),
        (S.natural, {"0": 0, "7": 7}, {"-1": "at least 0, not -1"}),
        (S.number, {"-2.5": -2.5, "0": 0.0, "1e-3": 1e-3}, {"nan": "finite", "inf": "finite", "-inf": "finite"}),
        (S.positive_number, {"3e-4": 3e-4, "1": 1.0}, {"0": "above 0, not 0.0", "-1e-3": "above 0", "nan": "finite"}),
        (S.fraction, {"0.2": 0.2, "0.999": 0.999},
         {"0": "between 0 and 1, not 0.0", "1": "between 0 and 1", "-0.1": "between 0 and 1", "nan": "between"}),
        (S.optional_number, {"none": None, "None": None, "NONE": None, "1.5": 1.5}, {"0": "above 0", "-2": "above 0"}),
        (S.precision, {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}, {"fp64": "fp32, bf16 or fp16", "FP16": "not 'FP16'"}),
    ],
)
def test_setting_types(fn, good, bad):
    for text, value in good.items():
        assert fn(text) == value and type(fn(text)) is type(value)
    for text, message in bad.items():
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            fn(text)


@pytest.mark.parametrize("fn", [S.positive, S.natural, S.number, S.positive_number, S.fraction, S.optional_number])
def test_setting_types_reject_text_with_value_error(fn):
    # argparse turns a ValueError into "invalid <type> value: 'abc'".
    with pytest.raises(ValueError):
        fn("abc")


def test_integer_types_reject_fractions():
    for fn in (S.positive, S.natural):
        with pytest.raises(ValueError):
            fn("1.5")


def test_flag_spellings():
    for text in ("true", "True", "YES", "yes", "1", "on", "On"):
        assert S.flag(text) is True
    for text in ("false", "False", "no", "NO", "0", "off"):
        assert S.flag(text) is False
    for text in ("", "2", "maybe", "t"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be true or false"):
            S.flag(text)


def test_setting_types_in_argparse(capsys):
    parser = argparse.ArgumentParser(prog="train.py")
    parser.add_argument("--epochs", type=S.positive)
    parser.add_argument("--grad_clip", type=S.optional_number)
    parser.add_argument("--standardize", type=S.flag)
    options = parser.parse_args(["--epochs", "3", "--grad_clip", "none", "--standardize", "no"])
    assert (options.epochs, options.grad_clip, options.standardize) == (3, None, False)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--epochs", "0"])
    assert exit_.value.code == 2
    assert "argument --epochs: must be at least 1, not 0" in capsys.readouterr().err


# ------------------------------------------------------------------ devices and ranks

@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)


def test_pick_device_cpu_and_auto(no_accelerator):
    assert S.pick_device("cpu") == torch.device("cpu")
    assert S.pick_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_pick_device_cuda_without_cuda(no_accelerator, name):
    with pytest.raises(SettingError, match=f"^device {name} is not available here \\(no CUDA\\); use --device cpu$"):
        S.pick_device(name)


def test_pick_device_mps_without_mps(no_accelerator):
    with pytest.raises(SettingError, match=r"no MPS"):
        S.pick_device("mps")


@pytest.mark.parametrize("name", ["nope", "gpu", "cuda:x", ""])
def test_pick_device_unknown(name):
    with pytest.raises(SettingError, match=f"^unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps$"):
        S.pick_device(name)


def test_pick_device_not_for_training():
    with pytest.raises(SettingError, match="training runs on cpu, cuda or mps"):
        S.pick_device("meta")


def test_ranks_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert S.start_ranks(torch.device("cpu")) == (0, 1)
    assert S.sum_over_ranks([3.0, 4]) == [3.0, 4]
    rows = torch.arange(6).reshape(3, 2)
    assert S.gather(rows) is rows
    assert S.any_rank(True) is True and S.any_rank(False) is False


# ------------------------------------------------------------------ run folders

def test_new_run_folder_numbers_runs_and_never_reuses(tmp_path):
    out = tmp_path / "runs" / "nested"  # made when missing
    first = S.new_run_folder(str(out))
    second = S.new_run_folder(str(out))
    assert (first, second) == (str(out / "1"), str(out / "2"))
    assert os.path.isdir(first) and os.listdir(first) == []
    os.rmdir(first)  # a gap below the newest run is not filled
    assert S.new_run_folder(str(out)) == str(out / "3")
    (out / "9").mkdir()
    (out / "notes").mkdir()  # other names do not count
    assert S.new_run_folder(str(out)) == str(out / "10")
    assert S.new_run_folder(str(out)) == str(out / "11")  # numeric, not text, order


def test_new_run_folder_taken_meanwhile(tmp_path, monkeypatch):
    # Another run makes folder 1 between listdir and mkdir: this one takes 2.
    listdir = os.listdir

    def racing_listdir(path):
        names = listdir(path)
        if not (tmp_path / "1").exists():
            (tmp_path / "1").mkdir()
        return names

    monkeypatch.setattr(os, "listdir", racing_listdir)
    assert S.new_run_folder(str(tmp_path)) == str(tmp_path / "2")


def test_latest_checkpoint(tmp_path):
    for run, has in ((1, True), (2, True), (9, True), (10, True), (11, False)):
        (tmp_path / str(run)).mkdir()
        if has:
            (tmp_path / str(run) / "best.pt").write_bytes(b"")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "best.pt").write_bytes(b"")
    assert S.latest_checkpoint(str(tmp_path), "best.pt") == str(tmp_path / "10" / "best.pt")
    (tmp_path / "2" / "last.pt").write_bytes(b"")
    assert S.latest_checkpoint(str(tmp_path), "last.pt") == str(tmp_path / "2" / "last.pt")
    with pytest.raises(TrainingError, match=r"no run in .* has a final.pt; train first, or pass --checkpoint"):
        S.latest_checkpoint(str(tmp_path), "final.pt")
    with pytest.raises(TrainingError, match="no run in"):
        S.latest_checkpoint(str(tmp_path / "never"), "best.pt")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_remove_stale_temporaries(tmp_path):
    stale = tmp_path / f"last.pt.tmp-{dead_pid()}"
    nested = tmp_path / "sub" / f"history.csv.tmp-{dead_pid()}"
    live = tmp_path / f"best.pt.tmp-{os.getpid()}"
    parent = tmp_path / f"best.pt.tmp-{os.getppid()}"  # a running process: maybe another run
    odd = tmp_path / "notes.tmp-draft"
    keep = tmp_path / "best.pt"
    nested.parent.mkdir()
    for path in (stale, nested, live, parent, odd, keep):
        path.write_bytes(b"x")
    S.remove_stale_temporaries(str(tmp_path))
    assert not stale.exists() and not nested.exists()
    assert live.exists() and parent.exists() and odd.exists() and keep.exists()
    S.remove_stale_temporaries(str(tmp_path / "missing"))  # nothing there: nothing to do


# ------------------------------------------------------------------ writing files

def test_atomic_write_replaces_the_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    S.atomic_write(str(path), lambda tmp: pathlib.Path(tmp).write_text("new"))
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), ValueError("cannot pickle")])
def test_atomic_write_failure_keeps_the_old_file(tmp_path, error):
    path = tmp_path / "best.pt"
    path.write_text("old")

    def write(tmp):
        pathlib.Path(tmp).write_text("half")
        raise error

    expected = TrainingError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected) as raised:
        S.atomic_write(str(path), write)
    if expected is TrainingError:
        assert str(raised.value) == f"cannot write {path}: No space left on device"
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["best.pt"]  # no tmp file left behind


def test_atomic_write_into_a_missing_folder(tmp_path):
    with pytest.raises(TrainingError, match="cannot write"):
        S.atomic_write(str(tmp_path / "gone" / "x.txt"), lambda tmp: pathlib.Path(tmp).write_text("x"))


def test_write_history_csv_and_json(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 0.5, "valid_auroc": float("nan"), "lr": 1e-3},
        {"epoch": 2, "train_loss": 0.25, "valid_auroc": 0.75, "lr": 1e-3, "extra": float("inf")},
        {"epoch": "test", "test_loss": 0.3},
    ]
    S.write_history(history, str(tmp_path))
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines == [
        "epoch,train_loss,valid_auroc,lr,extra,test_loss",
        "1,0.5,nan,0.001,,",
        "2,0.25,0.75,0.001,inf,",
        "test,,,,,0.3",
    ]
    data = json.loads((tmp_path / "history.json").read_text())  # strict json: no NaN tokens
    assert data == {"epochs": [
        {"epoch": 1, "train_loss": 0.5, "valid_auroc": None, "lr": 1e-3},
        {"epoch": 2, "train_loss": 0.25, "valid_auroc": 0.75, "lr": 1e-3, "extra": None},
        {"epoch": "test", "test_loss": 0.3},
    ]}
    assert "NaN" not in (tmp_path / "history.json").read_text()
    assert sorted(os.listdir(tmp_path)) == ["history.csv", "history.json"]


def test_write_history_csv_reads_back_exactly(tmp_path):
    import csv
    value = 0.1 + 0.2  # 0.30000000000000004: every digit kept
    S.write_history([{"epoch": 1, "loss": value}], str(tmp_path))
    with open(tmp_path / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["loss"]) == value and rows[0]["epoch"] == "1"


def test_write_csv_quotes_cells(tmp_path):
    path = tmp_path / "predictions.csv"
    S.write_csv(str(path), ["label", "p"], [["a,b", "0.5"], ['say "hi"', "1.0"]])
    assert path.read_text() == 'label,p\n"a,b",0.5\n"say ""hi""",1.0\n'
    assert os.listdir(tmp_path) == ["predictions.csv"]


def test_log_scalars_never_fails(tmp_path):
    # Without tensorboard installed this is a no-op; with it, events land in folder/tensorboard.
    S.log_scalars(str(tmp_path), {"epoch": 1, "train_loss": 0.5, "note": "x"})
    assert set(os.listdir(tmp_path)) <= {"tensorboard"}


# ------------------------------------------------------------------ checkpoints

def checkpoint_state() -> dict:
    return {
        "cfg": {"lr": 1e-3, "epochs": 2},
        "model": {"weight": torch.ones(2, 2)},
        "history": [{"epoch": 1, "valid_loss": 0.5}],
        "best": (1, 0.5),
        "rng": S.get_rng(),
    }


def test_save_and_load_checkpoint(tmp_path):
    path = str(tmp_path / "best.pt")
    S.save_checkpoint(checkpoint_state(), path)
    assert os.listdir(tmp_path) == ["best.pt"]
    state = S.load_checkpoint(path)
    assert state["cfg"] == {"lr": 1e-3, "epochs": 2} and torch.equal(state["model"]["weight"], torch.ones(2, 2))
    assert list(state["best"]) == [1, 0.5]


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(TrainingError, match=r"^.*nope.pt: no such checkpoint$"):
        S.load_checkpoint(str(tmp_path / "nope.pt"))
    with pytest.raises(TrainingError, match="is a folder, not a checkpoint"):
        S.load_checkpoint(str(tmp_path))
    text = tmp_path / "notes.pt"
    text.write_text("hello\nworld\n")
    with pytest.raises(TrainingError) as error:
        S.load_checkpoint(str(text))
    assert "not a readable checkpoint (" in str(error.value) and "\n" not in str(error.value)
    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.ones(1)}, other)  # a plain state dict: no settings
    with pytest.raises(TrainingError, match="weights.pt: not a checkpoint of this training script"):
        S.load_checkpoint(str(other))
    torch.save([1, 2], other)
    with pytest.raises(TrainingError, match="not a checkpoint of this training script"):
        S.load_checkpoint(str(other))


def test_load_checkpoint_never_unpickles_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"cfg": {}, "model": {}, "payload": argparse.Namespace(a=1)}, path)
    with pytest.raises(TrainingError, match="not a readable checkpoint"):
        S.load_checkpoint(str(path))


def test_rng_state_survives_a_checkpoint(tmp_path):
    path = str(tmp_path / "last.pt")
    torch.manual_seed(5)
    random.seed(5)
    S.save_checkpoint(checkpoint_state(), path)
    expected = (torch.rand(3), random.random())
    torch.manual_seed(99)
    random.seed(99)
    S.set_rng(S.load_checkpoint(path)["rng"])  # lists after the round trip, where there were tuples
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]


def test_checked_weights():
    model = torch.nn.Linear(2, 1)
    assert set(S.checked_weights(model, 3)) == {"weight", "bias"}
    with torch.no_grad():
        model.bias.fill_(float("nan"))
    with pytest.raises(TrainingError, match="^`bias` has NaN or infinite values after epoch 3; not saving"):
        S.checked_weights(model, 3)
    counter = torch.nn.Module()
    counter.register_buffer("steps", torch.tensor(5))  # integer tensors are not checked
    assert S.checked_weights(counter, 1)["steps"] == 5


def test_first_line():
    assert S.first_line(ValueError("one\ntwo")) == "one"
    assert S.first_line(KeyError()) == "KeyError"


# ------------------------------------------------------------------ vendoring rules (the whole library)

def test_library_names_are_unique_and_vendorable():
    definitions, _ = library()  # raises on a name defined twice, or an unsupported statement
    for name in ("positive", "pick_device", "read_csv", "fit_scaling", "accuracy", "METRICS"):
        assert name in definitions


def referenced_globals(source: str) -> set[str]:
    """The global names that the code of `source` refers to (in any function or class)."""
    found: set[str] = set()

    def walk(table):
        for symbol in table.get_symbols():
            if table.get_type() == "module" or symbol.is_global():
                if symbol.is_referenced():
                    found.add(symbol.get_name())
        for child in table.get_children():
            walk(child)

    walk(symtable.symtable(source, "train_utils.py", "exec"))
    return found


@pytest.mark.parametrize("name", sorted(library()[0]))
def test_each_definition_vendored_alone_is_self_contained(name):
    """vendor({name}) defines every global its code refers to: nothing is missing at call time."""
    _, body = vendor({name})
    namespace: dict = {}
    exec(compile(body, "train_utils.py", "exec"), namespace)  # annotations are evaluated here
    missing = {g for g in referenced_globals(body) if g not in namespace and not hasattr(builtins, g)}
    assert not missing, f"vendor({{{name!r}}}) lacks {sorted(missing)}"


def test_vendored_support_module_runs_without_numpy(tmp_path):
    from standalone_util import run_blocked

    used = {"positive", "flag", "pick_device", "new_run_folder", "save_checkpoint", "load_checkpoint",
            "write_history", "get_rng", "set_rng", "remove_stale_temporaries", "latest_checkpoint"}
    names, body = vendor(used)
    assert names == sorted(used)
    (tmp_path / "train_utils.py").write_text(body)
    runs = tmp_path / "runs"
    code = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
import torch
from train_utils import *
folder = new_run_folder({str(runs)!r})
save_checkpoint({{"cfg": {{"epochs": positive("2")}}, "model": {{}}, "rng": get_rng()}}, folder + "/best.pt")
write_history([{{"epoch": 1, "loss": float("nan")}}], folder)
remove_stale_temporaries(folder)
state = load_checkpoint(latest_checkpoint({str(runs)!r}, "best.pt"))
set_rng(state["rng"])
print(state["cfg"], flag("on"), pick_device("cpu"), sorted(__import__("os").listdir(folder)))
"""
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "{'epochs': 2} True cpu ['best.pt', 'history.csv', 'history.json']"
    ]

