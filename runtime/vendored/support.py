"""Helpers of generated training scripts: setting types, devices, run folders, checkpoints, ranks.

Like data.py and metrics.py, this is a library the compiler copies from: a generated
`train_utils.py` holds the functions of these files that its `train.py` uses (and what they
use), nothing else. So: module-level imports are the standard library and torch only, never
tgc; every definition is self-contained apart from names defined in these three files; and
names are unique across the three files.
"""

import argparse
import glob
import json
import math
import os
import random

import torch
import torch.distributed as dist


class SettingError(Exception):
    """A bad setting or command line; the script prints it and exits with status 2."""


class TrainingError(Exception):
    """A run that cannot go on (diverged, unreadable checkpoint); exit status 1."""


# --------------------------------------------------------------------------- setting types


def positive(text: str) -> int:
    """An integer of at least 1 (a size, a count of epochs or steps)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def natural(text: str) -> int:
    """An integer of at least 0 (a seed; 0 turns a limit off)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def number(text: str) -> float:
    """A finite float."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def positive_number(text: str) -> float:
    """A finite float above 0 (a learning rate)."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
    return value


def fraction(text: str) -> float:
    """A float between 0 and 1, both excluded (a held-out share of the data)."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def optional_number(text: str) -> float | None:
    """A finite float above 0, or `none`."""
    return None if text.lower() == "none" else positive_number(text)


def flag(text: str) -> bool:
    """true/false (also yes/no, 1/0, on/off)."""
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, not {text!r}")


# --------------------------------------------------------------------------- devices and ranks


def pick_device(name: str) -> torch.device:
    """`auto` is CUDA, then MPS, then the CPU; an unavailable device is a SettingError."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SettingError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingError(f"device {name} is not available here (no CUDA); use --device cpu")
    if device.type == "mps" and not has_mps:
        raise SettingError(f"device {name} is not available here (no MPS); use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise SettingError(f"device {name}: training runs on cpu, cuda or mps")
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if device.index >= torch.cuda.device_count():
            raise SettingError(f"device {device} does not exist: this machine has {torch.cuda.device_count()} GPUs")
        torch.cuda.set_device(device)
    return device


def start_ranks(device: torch.device) -> tuple[int, int]:
    """(rank, world size): under torchrun, joins the process group; else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def sum_over_ranks(values: list[float]) -> list[float]:
    """Each value summed over all processes (the values themselves without torchrun)."""
    if not dist.is_initialized():
        return values
    on = "cuda" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces CUDA tensors only
    box = torch.tensor(values, dtype=torch.float64, device=on)
    dist.all_reduce(box)
    return box.tolist()


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's rows of `tensor`, in rank order (`tensor` itself without torchrun)."""
    if not dist.is_initialized():
        return tensor
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, tensor.cpu())
    return torch.cat(parts)


def any_rank(flag_value: bool) -> bool:
    """True when `flag_value` holds on any process, so that all of them stop together."""
    if not dist.is_initialized():
        return flag_value
    box = torch.tensor([float(flag_value)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(box)
    return bool(box.item() > 0)


# --------------------------------------------------------------------------- files


def new_run_folder(out_dir: str) -> str:
    """out_dir/1, out_dir/2, ...: the first free number, made here so two runs never share one."""
    os.makedirs(out_dir, exist_ok=True)
    numbers = [int(n) for n in os.listdir(out_dir) if n.isdigit()]
    number_ = max(numbers, default=0) + 1
    while True:
        try:
            os.mkdir(os.path.join(out_dir, str(number_)))
            return os.path.join(out_dir, str(number_))
        except FileExistsError:  # another run took it a moment ago
            number_ += 1


def latest_checkpoint(out_dir: str, name: str = "best.pt") -> str:
    """out_dir/N/name of the newest run that has one."""
    runs = sorted((int(n) for n in os.listdir(out_dir) if n.isdigit()), reverse=True) if os.path.isdir(out_dir) else []
    for run in runs:
        path = os.path.join(out_dir, str(run), name)
        if os.path.exists(path):
            return path
    raise TrainingError(f"no run in {out_dir} has a {name}; train first, or pass --checkpoint")


def remove_stale_temporaries(folder: str) -> None:
    """Removes `*.tmp-PID` files that killed runs left while writing (never a live one's)."""
    for path in glob.glob(os.path.join(glob.escape(folder), "**", "*.tmp-*"), recursive=True):
        pid = path.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            try:
                os.remove(path)
            except OSError:
                pass
        except PermissionError:  # alive, another user's
            pass


def atomic_write(path: str, write) -> None:
    """`write(tmp)` to a file beside `path`, then one rename: `path` is never half written."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        raise TrainingError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(state: dict, path: str) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def write_history(history: list, folder: str) -> None:
    """history.csv and history.json: one row per epoch (NaN and inf are null in the json)."""
    import csv
    import io

    names = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    # A figure missing from a row (the test row has no train_loss) is an empty cell.
    csv.writer(buffer, lineterminator="\n").writerows([names] + [[row.get(n, "") for n in names] for row in history])
    rows = [{k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in r.items()} for r in history]
    atomic_write(os.path.join(folder, "history.csv"), lambda tmp: _write_text(tmp, buffer.getvalue()))
    atomic_write(os.path.join(folder, "history.json"), lambda tmp: _write_text(tmp, json.dumps({"epochs": rows}, indent=1)))


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def checked_weights(model: torch.nn.Module, epoch: int) -> dict:
    """The model's state dict, unless a tensor holds NaN or inf: then a TrainingError."""
    state = model.state_dict()
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise TrainingError(
                f"`{name}` has NaN or infinite values after epoch {epoch}; not saving a broken "
                "checkpoint: lower --lr or set --grad_clip 1"
            )
    return state


def load_checkpoint(path: str) -> dict:
    """A checkpoint this script wrote; anything else is a TrainingError naming the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{path}: no such checkpoint") from None
    except IsADirectoryError:
        raise TrainingError(f"{path}: is a folder, not a checkpoint") from None
    except Exception as error:  # unpickling errors come in many types
        raise TrainingError(f"{path}: not a readable checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict) or "cfg" not in state or "model" not in state:
        raise TrainingError(f"{path}: not a checkpoint of this training script")
    return state


# --------------------------------------------------------------------------- random state


def get_rng() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "cuda": None}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def write_csv(path: str, header: list, rows: list) -> None:
    """A csv file with a header row, written atomically."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header] + rows)
    atomic_write(path, lambda tmp: _write_text(tmp, buffer.getvalue()))


def log_scalars(folder: str, figures: dict) -> None:
    """This epoch's figures as TensorBoard scalars in folder/tensorboard, when it is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; history.csv has the same figures
        return
    with SummaryWriter(os.path.join(folder, "tensorboard")) as writer:
        for name, value in figures.items():
            if name != "epoch" and isinstance(value, (int, float)):
                writer.add_scalar(name, value, figures["epoch"])


def precision(text: str) -> str:
    """fp32, bf16 or fp16."""
    if text not in ("fp32", "bf16", "fp16"):
        raise argparse.ArgumentTypeError(f"must be fp32, bf16 or fp16, not {text!r}")
    return text
