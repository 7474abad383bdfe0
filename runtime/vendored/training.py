"""Training runtime of tgc-generated scripts: command line, fit loop, callbacks, checkpoints, prediction.

A generated `train.py` holds a `CONFIG` dict and calls `run(CONFIG, ModelClass, __file__)`; all
the generic machinery lives here. This file is vendored into `out/tgc_runtime.py` after data.py
and metrics.py, so: module-level imports are the standard library and torch only (tqdm is
imported lazily and is optional), never tgc, no `from __future__` import, the sibling imports
carry the `# tgc: vendored-import` marker (those lines are dropped when concatenating, so the
names are then plain globals), and private helpers carry the `_tr_` prefix.

Exit codes of `run`: 0 done, 1 a problem with the data or the run (`error: ...` on stderr, no
traceback), 2 a bad command line or config, 130 interrupted.
"""

import copy
import csv
import difflib
import inspect
import json
import math
import os
import random
import sys
import time
from typing import Any, Callable

import torch
from torch import nn

from .data import DataError, Standardizer, batches, count_batches, shard, split_indices  # tgc: vendored-import
from .data import load_predict_source, load_source  # tgc: vendored-import
from .metrics import METRICS  # tgc: vendored-import


class ConfigError(Exception):
    """A bad command line or config value; the message is one line (exit status 2)."""


class TrainingError(Exception):
    """A run that cannot go on (diverged loss, unreadable checkpoint); one line (exit status 1)."""


# Every config key with its default. The generated CONFIG normally lists them all.
DEFAULT_CONFIG: dict = {
    "model": {},  # keyword arguments of the model's constructor
    "data": None,  # a data source: {"kind": "csv", "path": ..., "target": ...}, npz or sklearn
    "task": "classification",  # or "regression"
    "loss": None,  # {"name": ..., **kwargs}; None: cross_entropy or mse by task
    "optimizer": {"name": "adam", "lr": 1e-3},  # {"name": ..., **kwargs of the torch optimizer}
    "scheduler": None,  # {"name": "step" | "cosine" | "onecycle" | "plateau", **kwargs} or None
    "epochs": 10,
    "batch_size": 32,
    "valid": None,  # fraction of the data held out, a second data source, or None
    "test": None,  # the same, evaluated once after training
    "metrics": [],  # names from METRICS
    "callbacks": [],  # [{"name": "early_stopping" | "checkpoint" | "unfreeze" | ..., **kwargs}]
    "seed": 0,
    "device": "auto",  # "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
    "deterministic": False,  # torch.use_deterministic_algorithms(True) and friends
    "drop_last": False,  # drop any incomplete last batch (a last batch of 1 is always dropped)
    "grad_clip": None,  # max gradient norm, or None
    "out_dir": "runs",  # checkpoints and history; relative to the training script's folder
    "standardize": True,  # (x - mean) / std per feature, statistics of the training part
    "num_workers": 0,  # accepted for compatibility; the data stays in memory, no loader workers
    "input_sizes": {},  # model argument -> "n_features" | "n_classes", filled in from the data
}

_TR_CHECKPOINT_FORMAT = "tgc-checkpoint-1"


# ============================================================================ losses

def _tr_cross_entropy(weight: list | None = None, label_smoothing: float = 0.0, **kwargs: Any) -> nn.Module:
    w = torch.tensor(weight, dtype=torch.float32) if weight is not None else None
    return nn.CrossEntropyLoss(weight=w, label_smoothing=float(label_smoothing), **kwargs)


def _tr_bce(pos_weight: Any = None, **kwargs: Any) -> nn.Module:
    pw = torch.as_tensor(pos_weight, dtype=torch.float32) if pos_weight is not None else None
    return nn.BCEWithLogitsLoss(pos_weight=pw, **kwargs)


# name -> (factory(**kwargs) -> loss module, task it is for)
LOSSES: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "cross_entropy": (_tr_cross_entropy, "classification"),
    "bce_with_logits": (_tr_bce, "classification"),
    "mse": (nn.MSELoss, "regression"),
    "l1": (nn.L1Loss, "regression"),
    "huber": (nn.HuberLoss, "regression"),
}


def _tr_loss_inputs(name: str, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shapes the model output and targets for loss `name`.

    A [n, 1] output against [n] targets is squeezed; bce_with_logits takes float targets, and
    for several outputs one-hot class targets (one-vs-rest).
    """
    if name != "cross_entropy" and out.dim() == y.dim() + 1 and out.shape[-1] == 1:
        out = out.squeeze(-1)
    if name == "bce_with_logits":
        if out.dim() == y.dim() + 1 and not y.is_floating_point():
            y = nn.functional.one_hot(y, out.shape[-1])
        return out, y.to(out.dtype)
    if name in ("mse", "l1", "huber"):
        return out, y.to(out.dtype)
    return out, y


# ============================================================================ optimizers, schedulers

OPTIMIZERS: dict[str, type] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


def _tr_step_lr(optimizer: torch.optim.Optimizer, kwargs: dict, trainer: "Trainer") -> Any:
    if "step_size" not in kwargs:
        raise ConfigError("scheduler `step` needs step_size (epochs between decays), e.g. step(step_size=10, gamma=0.1)")
    return torch.optim.lr_scheduler.StepLR(optimizer, **kwargs)


def _tr_cosine(optimizer: torch.optim.Optimizer, kwargs: dict, trainer: "Trainer") -> Any:
    kwargs = dict(kwargs)
    t_max = kwargs.pop("T_max", kwargs.pop("t_max", trainer.epochs))
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, **kwargs)


def _tr_onecycle(optimizer: torch.optim.Optimizer, kwargs: dict, trainer: "Trainer") -> Any:
    kwargs = dict(kwargs)
    max_lr = kwargs.pop("max_lr", optimizer.param_groups[0]["lr"])
    kwargs.setdefault("total_steps", trainer.epochs * trainer.steps_per_epoch)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, **kwargs)


def _tr_plateau(optimizer: torch.optim.Optimizer, kwargs: dict, trainer: "Trainer") -> Any:
    kwargs = dict(kwargs)
    kwargs.pop("monitor", None)
    kwargs.setdefault("mode", trainer.monitor_mode(trainer.scheduler_monitor))
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)


# name -> (factory(optimizer, kwargs, trainer), when it steps: "batch" or "epoch")
SCHEDULERS: dict[str, tuple[Callable[..., Any], str]] = {
    "step": (_tr_step_lr, "epoch"),
    "cosine": (_tr_cosine, "epoch"),
    "onecycle": (_tr_onecycle, "batch"),
    "plateau": (_tr_plateau, "epoch"),
}


# ============================================================================ callbacks

class Callback:
    """Hooks of the fit loop; each gets the Trainer. Lower `order` runs first."""

    order = 100
    key = "callback"  # name of its state in checkpoints

    def on_fit_begin(self, trainer: "Trainer") -> None: ...
    def on_epoch_begin(self, trainer: "Trainer") -> None: ...
    def on_batch_begin(self, trainer: "Trainer") -> None: ...
    def on_after_backward(self, trainer: "Trainer") -> None: ...
    def on_batch_end(self, trainer: "Trainer") -> None: ...
    def on_validation_end(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer") -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...
    def on_test_end(self, trainer: "Trainer") -> None: ...

    def state_dict(self) -> dict:
        """What a resumed run needs to continue exactly (tensors and plain containers only)."""
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class Unfreeze(Callback):
    """Makes frozen submodules trainable from epoch `epoch` (1-based) on.

    The emitted model lists frozen submodules in `model.frozen_modules` and its `train()` keeps
    them in eval mode; the optimizer already holds their parameters (grad None until now, so it
    skipped them). Recomputed from the epoch on resume, so it keeps no state.
    """

    order = 0
    key = "unfreeze"

    def __init__(self, target: str | list, epoch: int) -> None:
        self.targets = [target] if isinstance(target, str) else list(target)
        self.epoch = int(epoch)
        self.done = False

    def on_fit_begin(self, trainer: "Trainer") -> None:
        names = [name for name, _ in trainer.model.named_modules() if name]
        for target in self.targets:
            if target not in names:
                close = difflib.get_close_matches(target, sorted(getattr(trainer.model, "frozen_modules", ())) or names, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                raise ConfigError(f"unfreeze: the model has no submodule `{target}`{hint}")

    def on_epoch_begin(self, trainer: "Trainer") -> None:
        if self.done or trainer.current_epoch < self.epoch:
            return
        model = trainer.model
        frozen = getattr(model, "frozen_modules", None)
        count = 0
        for target in self.targets:
            if isinstance(frozen, set):
                frozen.discard(target)
            module = model.get_submodule(target)
            module.requires_grad_(True)
            count += sum(p.numel() for p in module.parameters())
        model.train(model.training)  # re-applies train mode now that the names left frozen_modules
        trainer.rewrap()  # DistributedDataParallel registers trainable parameters when built
        self.done = True
        trainer.log(f"epoch {trainer.current_epoch}: unfroze {', '.join(self.targets)} ({count:,} parameters)")


class GradClip(Callback):
    """Clips the global gradient norm to `max_norm` after every backward pass."""

    order = 10
    key = "grad_clip"

    def __init__(self, max_norm: float) -> None:
        self.max_norm = float(max_norm)
        self.last_norm: float | None = None  # norm before clipping, of the last batch

    def on_after_backward(self, trainer: "Trainer") -> None:
        params = [p for p in trainer.model.parameters() if p.grad is not None]
        if params:
            self.last_norm = float(torch.nn.utils.clip_grad_norm_(params, self.max_norm))


class LRScheduler(Callback):
    """Steps the trainer's scheduler per batch (onecycle) or per epoch (plateau on its monitor)."""

    order = 20
    key = "scheduler"  # its state is the checkpoint's top-level "scheduler"

    def __init__(self, interval: str, monitor: str | None = None) -> None:
        self.interval = interval
        self.monitor = monitor

    def on_batch_end(self, trainer: "Trainer") -> None:
        if self.interval == "batch":
            trainer.scheduler.step()

    def on_epoch_end(self, trainer: "Trainer") -> None:
        if self.interval != "epoch":
            return
        if isinstance(trainer.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            trainer.scheduler.step(trainer.logs[self.monitor])
        else:
            trainer.scheduler.step()


class History(Callback):
    """Writes every epoch's losses, metrics and learning rate to history.csv and history.json."""

    order = 30
    key = "history"

    def __init__(self, csv_name: str = "history.csv", json_name: str = "history.json") -> None:
        self.csv_name = csv_name
        self.json_name = json_name
        self.test: dict | None = None

    def on_epoch_end(self, trainer: "Trainer") -> None:
        self.write(trainer)

    def on_test_end(self, trainer: "Trainer") -> None:
        self.test = trainer.test_logs
        self.write(trainer)

    def write(self, trainer: "Trainer") -> None:
        if not trainer.is_main:
            return
        columns: list[str] = []
        for row in trainer.history:
            columns += [k for k in row if k not in columns]
        lines = [",".join(columns)]
        for row in trainer.history:
            lines.append(",".join(_tr_csv_cell(row.get(k, "")) for k in columns))
        _tr_atomic_write_text(os.path.join(trainer.out_dir, self.csv_name), "\n".join(lines) + "\n")
        document: dict = {"epochs": [_tr_json_safe(row) for row in trainer.history]}
        if self.test is not None:
            document["test"] = _tr_json_safe(self.test)
        _tr_atomic_write_text(os.path.join(trainer.out_dir, self.json_name), json.dumps(document, indent=2) + "\n")


class EarlyStopping(Callback):
    """Stops when `monitor` has not improved for `patience` epochs.

    `mode` "auto" means min for losses and the metric's own direction otherwise. With
    `restore_best` the weights of the best epoch are put back at the end of training (whether
    or not it stopped early), so the final model and test figures are the best ones.
    """

    order = 40
    key = "early_stopping"

    def __init__(self, monitor: str | None = None, patience: int = 5, mode: str = "auto",
                 min_delta: float = 0.0, restore_best: bool = True) -> None:
        self.monitor = monitor
        self.patience = int(patience)
        self.mode = mode
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_model: dict | None = None

    def on_fit_begin(self, trainer: "Trainer") -> None:
        self.monitor = trainer.resolve_monitor(self.monitor, "early_stopping")
        self.mode = trainer.monitor_mode(self.monitor) if self.mode == "auto" else _tr_check_mode(self.mode, "early_stopping")

    def on_epoch_end(self, trainer: "Trainer") -> None:
        value = trainer.logs[self.monitor]
        if _tr_improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, trainer.current_epoch, 0
            if self.restore_best:
                self.best_model = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop = True
            trainer.log(
                f"early stopping: {self.monitor} has not improved for {self.wait} epochs "
                f"(best {self.best:.6g} at epoch {self.best_epoch})"
            )

    def on_fit_end(self, trainer: "Trainer") -> None:
        if self.restore_best and self.best_model is not None and self.best_epoch != trainer.epoch:
            trainer.model.load_state_dict(self.best_model)
            trainer.log(f"restored the weights of epoch {self.best_epoch} ({self.monitor} {self.best:.6g})")

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_model": self.best_model}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_model = state["best_model"]


class Checkpoint(Callback):
    """Saves `last.pt` every `every` epochs (and at the end) and `best.pt` when `monitor` improves.

    Files are written to a temporary name and moved into place with os.replace, so a crash
    never leaves a half-written checkpoint; weights that are not finite are never saved.
    """

    order = 50
    key = "checkpoint"

    def __init__(self, every: int = 1, monitor: str | None = None, mode: str = "auto",
                 save_best: bool = True, last: str = "last.pt", best: str = "best.pt") -> None:
        self.every = int(every)
        self.monitor = monitor
        self.mode = mode
        self.save_best = bool(save_best)
        self.last_name = last
        self.best_name = best
        self.best: float | None = None
        self.best_epoch = 0

    def on_fit_begin(self, trainer: "Trainer") -> None:
        self.monitor = trainer.resolve_monitor(self.monitor, "checkpoint")
        self.mode = trainer.monitor_mode(self.monitor) if self.mode == "auto" else _tr_check_mode(self.mode, "checkpoint")

    def on_epoch_end(self, trainer: "Trainer") -> None:
        epoch = trainer.current_epoch
        is_best = self.save_best and _tr_improved(trainer.logs[self.monitor], self.best, self.mode, 0.0)
        if is_best:
            self.best, self.best_epoch = trainer.logs[self.monitor], epoch
        periodic = self.every > 0 and (epoch % self.every == 0 or epoch == trainer.epochs or trainer.stop)
        if not (is_best or periodic):
            return
        state = trainer.checkpoint_state()  # collective under torchrun: every rank gets here
        if periodic:
            trainer.save_checkpoint(state, self.last_name)
        if is_best:
            trainer.save_checkpoint(state, self.best_name)
            trainer.note(f"saved {self.best_name}")

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


class Progress(Callback):
    """A tqdm bar per epoch when tqdm is installed and stderr is a terminal, else one line per
    epoch. While a bar is shown every log line goes through tqdm.write."""

    order = 90
    key = "progress"

    def __init__(self, bar: bool = True) -> None:
        self.bar_wanted = bool(bar)
        self.tqdm: Any = None
        self.bar: Any = None
        self.started = 0.0

    def on_fit_begin(self, trainer: "Trainer") -> None:
        if self.bar_wanted and trainer.is_main and sys.stderr.isatty():
            try:
                from tqdm import tqdm  # optional
                self.tqdm = tqdm
            except ImportError:
                self.tqdm = None
        trainer.log(trainer.describe())

    def on_epoch_begin(self, trainer: "Trainer") -> None:
        self.started = time.perf_counter()
        if self.tqdm is not None:
            self.bar = self.tqdm(total=trainer.steps_per_epoch, desc=f"epoch {trainer.current_epoch}/{trainer.epochs}",
                                 leave=False, dynamic_ncols=True)
            trainer.writer = self.tqdm.write

    def on_batch_end(self, trainer: "Trainer") -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{trainer.batch_loss:.4g}", refresh=False)

    def on_epoch_end(self, trainer: "Trainer") -> None:
        parts = [f"epoch {trainer.current_epoch}/{trainer.epochs}"]
        for name, value in trainer.logs.items():
            if name == "epoch":
                continue
            parts.append(f"{name} {value:.3g}" if name == "lr" else f"{name} {value:.4f}")
        parts.append(f"{time.perf_counter() - self.started:.2f}s")
        parts += trainer.notes
        trainer.log("  ".join(parts))
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            trainer.writer = print

    def on_fit_end(self, trainer: "Trainer") -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            trainer.writer = print

    def on_test_end(self, trainer: "Trainer") -> None:
        trainer.log("test  " + "  ".join(f"{k} {v:.4f}" for k, v in trainer.test_logs.items()))


# Callbacks a config may name, with their keyword arguments.
CALLBACKS: dict[str, type] = {
    "early_stopping": EarlyStopping,
    "checkpoint": Checkpoint,
    "unfreeze": Unfreeze,
    "history": History,
    "progress": Progress,
}


def _tr_check_mode(mode: str, who: str) -> str:
    if mode not in ("min", "max"):
        raise ConfigError(f"{who}: mode must be auto, min or max, got {mode!r}")
    return mode


def _tr_improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


# ============================================================================ the loop

class _TrData:
    """The loaded data: standardised feature tensors per part, plus what prediction needs."""

    def __init__(self) -> None:
        self.x_train = self.y_train = torch.empty(0)
        self.x_valid: torch.Tensor | None = None
        self.y_valid: torch.Tensor | None = None
        self.x_test: torch.Tensor | None = None
        self.y_test: torch.Tensor | None = None
        self.info: dict = {}
        self.standardizer: Standardizer | None = None  # None: features used as they are


class _TrDist:
    """torchrun's environment: rank, world size, local rank; initialised process group or not."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.active = False

    def init(self, device: torch.device) -> None:
        if self.world <= 1:
            return
        import torch.distributed as dist
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        self.active = True

    def close(self) -> None:
        if self.active:
            import torch.distributed as dist
            dist.destroy_process_group()
            self.active = False


class Trainer:
    """The fit loop: fit -> fit_one_epoch -> fit_one_batch, with callback hooks around each.

    State that callbacks read: model (unwrapped), net (what training calls; DDP under
    torchrun), optimizer, scheduler, current_epoch (1-based, during an epoch), epoch (epochs
    completed), logs (this epoch's figures), history (all epochs' logs), stop (set to end
    training after this epoch), batch_loss, output/target of the current batch.
    """

    def __init__(self, config: dict, model: nn.Module, data: _TrData, out_dir: str,
                 device: torch.device, callbacks: list[Callback], dist_env: _TrDist | None = None) -> None:
        self.config = config
        self.model = model
        self.net: nn.Module = model
        self.data = data
        self.out_dir = out_dir
        self.device = device
        self.dist = dist_env or _TrDist()
        self.is_main = self.dist.rank == 0
        self.task = config["task"]
        self.epochs = int(config["epochs"])
        self.batch_size = int(config["batch_size"])
        self.drop_last = bool(config["drop_last"])
        self.seed = int(config["seed"])
        self.metric_names = list(config["metrics"])
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        self.writer: Callable[[str], Any] = print
        self.epoch = 0
        self.current_epoch = 0
        self.batch_index = 0
        self.stop = False
        self.logs: dict = {}
        self.history: list[dict] = []
        self.notes: list[str] = []
        self.test_logs: dict = {}
        self.batch_loss = float("nan")
        self.output: torch.Tensor | None = None
        self.target: torch.Tensor | None = None
        self._singleton_warned = False
        self._rng_to_restore: dict | None = None

        loss_spec = dict(config["loss"])
        self.loss_name = loss_spec.pop("name")
        self.loss_fn = _tr_build(LOSSES, self.loss_name, "loss", lambda f: f[0], loss_spec).to(device)
        n_train = shard(torch.arange(data.x_train.shape[0]), self.dist.rank, self.dist.world).shape[0]
        self.steps_per_epoch = count_batches(n_train, self.batch_size, True, self.drop_last)
        if self.steps_per_epoch == 0:
            raise DataError(
                f"the training part has {data.x_train.shape[0]} samples: not one batch of {self.batch_size}"
                + (" with drop_last" if self.drop_last else "")
            )
        # None means "torch's default" (e.g. betas), so it is left out.
        opt_spec = {k: v for k, v in config["optimizer"].items() if v is not None}
        opt_name = opt_spec.pop("name")
        if "betas" in opt_spec and isinstance(opt_spec["betas"], list):
            opt_spec["betas"] = tuple(opt_spec["betas"])
        # Over ALL parameters, frozen ones included: torch optimizers skip parameters whose grad
        # is None, and an `unfreeze` callback later makes them trainable without a new optimizer.
        self.optimizer = _tr_build(OPTIMIZERS, opt_name, "optimizer", lambda f: f, opt_spec, model.parameters())
        self.scheduler: Any = None
        self.scheduler_monitor: str | None = None
        if config["scheduler"] is not None:
            sched_spec = {k: v for k, v in config["scheduler"].items() if v is not None}
            sched_name = sched_spec.pop("name", None)
            if sched_name not in SCHEDULERS:
                raise ConfigError(_tr_unknown("scheduler", sched_name, SCHEDULERS))
            factory, interval = SCHEDULERS[sched_name]
            if sched_name == "plateau":
                self.scheduler_monitor = self.resolve_monitor(sched_spec.get("monitor"), "scheduler plateau")
            try:
                self.scheduler = factory(self.optimizer, sched_spec, self)
            except (TypeError, ValueError) as error:
                raise ConfigError(f"scheduler `{sched_name}`: {_tr_first_line(error)}") from None
            self.callbacks = sorted(self.callbacks + [LRScheduler(interval, self.scheduler_monitor)], key=lambda cb: cb.order)
        for name in self.metric_names:
            if name not in METRICS:
                raise ConfigError(_tr_unknown("metric", name, METRICS))
            if METRICS[name][1] != self.task:
                raise ConfigError(f"metric `{name}` is for {METRICS[name][1]}, but the task is {self.task}")
        self.rewrap()

    # ------------------------------------------------------------------ helpers for callbacks

    def log(self, message: str) -> None:
        """Prints on the main process only (through the progress bar while one is shown)."""
        if self.is_main:
            self.writer(message)
            sys.stdout.flush()

    def note(self, message: str) -> None:
        """A short remark appended to this epoch's progress line."""
        self.notes.append(message)

    def monitor_names(self) -> list[str]:
        parts = ["train"] + (["valid"] if self.data.x_valid is not None else [])
        return [f"{part}_{name}" for part in parts for name in ["loss"] + self.metric_names]

    def resolve_monitor(self, monitor: str | None, who: str) -> str:
        """The default monitor is valid_loss, or train_loss without a validation part."""
        if monitor is None:
            return "valid_loss" if self.data.x_valid is not None else "train_loss"
        if monitor.startswith("valid_") and self.data.x_valid is None and "train_" + monitor[6:] in self.monitor_names():
            # valid_loss is the default everywhere; without validation data the training figure stands in.
            self.log(f"note: no validation data, so {who} monitors train_{monitor[6:]} instead of {monitor}")
            return "train_" + monitor[6:]
        if monitor not in self.monitor_names():
            raise ConfigError(_tr_unknown(f"{who} monitor", monitor, self.monitor_names()))
        return monitor

    def monitor_mode(self, monitor: str | None) -> str:
        name = (monitor or "loss").split("_", 1)[-1]
        if name == "loss" or name not in METRICS:
            return "min"
        return "max" if METRICS[name][2] else "min"

    def describe(self) -> str:
        d = self.data
        parts = [f"{d.x_train.shape[0]} train"]
        if d.x_valid is not None:
            parts.append(f"{d.x_valid.shape[0]} valid")
        if d.x_test is not None:
            parts.append(f"{d.x_test.shape[0]} test")
        where = f"{self.device}" + (f" x {self.dist.world} processes" if self.dist.world > 1 else "")
        text = (f"training {type(self.model).__name__} on {where}: {' / '.join(parts)} samples, "
                f"{self.steps_per_epoch} batches of {self.batch_size} per epoch, {self.epochs} epochs")
        if self.epoch:
            text += f"; resuming after epoch {self.epoch}"
        return text

    def rewrap(self) -> None:
        """(Re)builds the DistributedDataParallel wrapper under torchrun; a no-op otherwise."""
        if not self.dist.active:
            self.net = self.model
            return
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.net = DistributedDataParallel(self.model, device_ids=ids)

    # ------------------------------------------------------------------ the loop

    def _call(self, hook: str) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self)

    def fit(self) -> None:
        self._call("on_fit_begin")
        if self._rng_to_restore is not None:  # last, after everything that draws random numbers
            _tr_set_rng(self._rng_to_restore)
            self._rng_to_restore = None
        if self.epoch >= self.epochs:
            self.log(f"nothing to do: the checkpoint has {self.epoch} of {self.epochs} epochs")
        for epoch in range(self.epoch + 1, self.epochs + 1):
            self.fit_one_epoch(epoch)
            if self.stop:
                break
        self._call("on_fit_end")

    def fit_one_epoch(self, epoch: int) -> None:
        self.current_epoch = epoch
        self.notes = []
        self.net.train()
        # The data order depends on (seed, epoch) only, so a resumed run sees the same batches.
        # Every rank draws the same permutation and takes its own shard of it.
        generator = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        order = torch.randperm(self.data.x_train.shape[0], generator=generator)
        order = shard(order, self.dist.rank, self.dist.world)
        self._call("on_epoch_begin")
        loss_sum = 0.0
        count = 0
        outputs: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        parts = batches(self.data.x_train, self.data.y_train, self.batch_size, False,
                        drop_last_singleton=True, drop_last=self.drop_last, indices=order)
        for self.batch_index, (xb, yb) in enumerate(parts):
            self.fit_one_batch(xb, yb)
            loss_sum += self.batch_loss * xb.shape[0]
            count += xb.shape[0]
            if self.metric_names:
                outputs.append(self.output)
                targets.append(self.target)
        logs: dict = {"epoch": epoch}
        logs["train_loss"] = self._mean_over_ranks(loss_sum, count)
        # Train metrics come from the predictions made while training (train mode: dropout on,
        # batch-norm on batch statistics, weights changing during the epoch), like the running
        # train_loss; they cost no extra pass. Validation figures are in eval mode.
        if self.metric_names:
            pred, target = self._gather(torch.cat(outputs).cpu(), torch.cat(targets).cpu())
            logs.update(self._metrics(pred, target, "train"))
        self._sync_buffers()
        if self.data.x_valid is not None:
            figures = self.evaluate(self.data.x_valid, self.data.y_valid)
            if not math.isfinite(figures["loss"]):
                raise TrainingError(
                    f"validation loss is {figures['loss']} after epoch {epoch}: the weights diverged; "
                    "lower the learning rate (--lr) or set --grad_clip 1.0 (no checkpoint was written)"
                )
            logs.update({f"valid_{k}": v for k, v in figures.items()})
        logs["lr"] = float(self.optimizer.param_groups[0]["lr"])
        self.logs = self._broadcast(logs)  # every rank takes the same decisions from rank 0's figures
        self._call("on_validation_end")
        self.history.append(dict(self.logs))
        self.epoch = epoch
        self._call("on_epoch_end")

    def fit_one_batch(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        xb = xb.to(self.device, non_blocking=True)
        yb = yb.to(self.device, non_blocking=True)
        self._call("on_batch_begin")
        if xb.shape[0] == 1 and self.model.training:
            # Batch norm cannot take statistics of one sample: its layers use their running
            # statistics for such a batch (batch_size 1), the rest trains as usual.
            if not self._singleton_warned:
                self._singleton_warned = True
                if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules()):
                    self.log("note: batches of one sample; batch-norm layers use their running statistics for them")
            with _TrBatchNormEval(self.model):
                out = self.net(xb)
        else:
            out = self.net(xb)
        loss = self.loss_fn(*_tr_loss_inputs(self.loss_name, out, yb))
        value = float(loss.detach())
        if not self._all_finite(value):
            raise TrainingError(
                f"loss is {value} at epoch {self.current_epoch}, batch {self.batch_index + 1}: training diverged; "
                "lower the learning rate (--lr) or set --grad_clip 1.0 (no checkpoint was written for this epoch)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._call("on_after_backward")
        self.optimizer.step()
        self.batch_loss = value
        self.output = out.detach()
        self.target = yb
        self._call("on_batch_end")

    @torch.no_grad()
    def predict_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Model outputs for `x` in eval mode (on the CPU)."""
        was_training = self.model.training
        self.model.eval()
        try:
            return _tr_outputs(self.model, x, self.batch_size, self.device)
        finally:
            self.model.train(was_training)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """{"loss": ..., metric: ...} in eval mode over the whole part, in one loss computation."""
        out = self.predict_outputs(x)
        with torch.no_grad():
            loss = self.loss_fn(*_tr_loss_inputs(self.loss_name, out.to(self.device), y.to(self.device)))
        figures = {"loss": float(loss)}
        figures.update(self._metrics(out, y, None))
        return figures

    def test(self) -> None:
        if self.data.x_test is None:
            return
        self.test_logs = self.evaluate(self.data.x_test, self.data.y_test)
        self._call("on_test_end")

    def _metrics(self, pred: torch.Tensor, target: torch.Tensor, prefix: str | None) -> dict:
        figures = {}
        for name in self.metric_names:
            figures[f"{prefix}_{name}" if prefix else name] = float(METRICS[name][0](pred, target))
        return figures

    # ------------------------------------------------------------------ torchrun plumbing

    def _all_finite(self, value: float) -> bool:
        bad = not math.isfinite(value)
        if self.dist.active:  # every rank must stop together, or the others hang in all-reduce
            import torch.distributed as dist
            flag = torch.tensor([1.0 if bad else 0.0], device=self.device)
            dist.all_reduce(flag)
            bad = bool(flag.item() > 0)
        return not bad

    def _mean_over_ranks(self, total: float, count: int) -> float:
        if self.dist.active:
            import torch.distributed as dist
            pair = torch.tensor([float(total), float(count)], dtype=torch.float64, device=self.device)
            dist.all_reduce(pair)
            return float(pair[0] / pair[1])
        return float(total / count)

    def _gather(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.dist.active:
            return pred, target
        import torch.distributed as dist
        parts: list = [None] * self.dist.world
        dist.all_gather_object(parts, (pred, target))
        return torch.cat([p for p, _ in parts]), torch.cat([t for _, t in parts])

    def _broadcast(self, obj: Any) -> Any:
        if not self.dist.active:
            return obj
        import torch.distributed as dist
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _sync_buffers(self) -> None:
        """Rank 0's batch-norm running statistics for every rank (each saw its own last batch)."""
        if self.dist.active:
            import torch.distributed as dist
            for buffer in self.model.buffers():
                dist.broadcast(buffer, src=0)

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_state(self) -> dict:
        """Everything to resume exactly and to predict. Tensors and plain containers only, so it
        loads with torch.load(weights_only=True). Collective under torchrun (gathers RNG states)."""
        rng = [_tr_get_rng()]
        if self.dist.active:
            import torch.distributed as dist
            rng = [None] * self.dist.world
            dist.all_gather_object(rng, _tr_get_rng())
        for name, tensor in self.model.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise TrainingError(
                    f"`{name}` has NaN or infinite values after epoch {self.current_epoch}; "
                    "not saving a broken checkpoint: lower the learning rate or set --grad_clip"
                )
        states = {}
        for callback in self.callbacks:
            state = callback.state_dict()
            if state:
                states[_tr_callback_key(callback, self.callbacks)] = state
        info = self.data.info
        return {
            "format": _TR_CHECKPOINT_FORMAT,  # what wrote it
            "model_class": type(self.model).__name__,
            "model": self.model.state_dict(),  # weights and buffers
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,  # epochs completed
            "rng": rng,  # random states per process: {"torch", "cuda", "python"}
            "history": copy.deepcopy(self.history),  # per-epoch figures so far
            "callbacks": states,  # early stopping's counters, the best value so far, ...
            "config": copy.deepcopy(self.config),  # the run's settings (model kwargs rebuild the model)
            # feature mean and std ({"mean", "std"} lists), None when not standardised
            "standardizer": self.data.standardizer.state_dict() if self.data.standardizer is not None else None,
            "label_map": info.get("label_map"),  # original label of class 0, 1, ...; None: indices
            "n_classes": info.get("n_classes"),
            "features": info.get("feature_names"),  # feature column names, in model order
            "target": info.get("target"),  # target column name(s)
        }

    def save_checkpoint(self, state: dict, name: str) -> None:
        if self.is_main:
            _tr_atomic_save(state, os.path.join(self.out_dir, name))

    def load_checkpoint(self, state: dict) -> None:
        """Restores a checkpoint for `--resume` (model, optimizer, scheduler, epoch, history,
        callback states; RNG states at the start of fit)."""
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise TrainingError(f"the checkpoint does not fit this model: {_tr_first_line(error)}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            # The schedule's length follows this run's epochs: resuming with more epochs
            # stretches it instead of stepping past its end.
            lengths = ("total_steps", "_schedule_phases", "T_max")
            fresh = {k: getattr(self.scheduler, k) for k in lengths if hasattr(self.scheduler, k)}
            self.scheduler.load_state_dict(state["scheduler"])
            changed = [k for k, v in fresh.items() if getattr(self.scheduler, k) != v]
            for k in changed:
                setattr(self.scheduler, k, fresh[k])
            if changed:
                self.log(f"note: the learning-rate schedule now spans {self.epochs} epochs")
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        saved = state.get("callbacks", {})
        for callback in self.callbacks:
            key = _tr_callback_key(callback, self.callbacks)
            if key in saved:
                callback.load_state_dict(saved[key])
        rng = state["rng"]
        self._rng_to_restore = rng[self.dist.rank] if self.dist.rank < len(rng) else rng[0]
        self.rewrap()


def _tr_callback_key(callback: Callback, callbacks: list[Callback]) -> str:
    same = [cb for cb in callbacks if cb.key == callback.key]
    return callback.key if len(same) == 1 else f"{callback.key}_{same.index(callback) + 1}"


class _TrBatchNormEval:
    """Puts the batch-norm layers of `model` that are training into eval mode for a block."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]

    def __enter__(self) -> None:
        for layer in self.layers:
            layer.eval()

    def __exit__(self, *exc: Any) -> None:
        for layer in self.layers:
            layer.train()


def _tr_outputs(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    outs = []
    for xb, _ in batches(x, None, batch_size, False, drop_last_singleton=False):
        outs.append(model(xb.to(device)).detach().cpu())
    return torch.cat(outs)


def _tr_get_rng() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "cuda": None}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _tr_set_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tr_atomic(path: str, write: Callable[[str], None]) -> None:
    """`write(tmp)` to a temporary file beside `path`, then os.replace: never a half-written file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        raise TrainingError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _tr_atomic_save(obj: Any, path: str) -> None:
    _tr_atomic(path, lambda tmp: torch.save(obj, tmp))


def _tr_atomic_write_text(path: str, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    _tr_atomic(path, write)


def _tr_load_checkpoint(path: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{path}: no such checkpoint") from None
    except IsADirectoryError:
        raise TrainingError(f"{path}: is a directory, not a checkpoint") from None
    except Exception as error:  # unpickling errors come in many types
        raise TrainingError(f"{path}: not a readable checkpoint ({_tr_first_line(error)})") from None
    if not isinstance(state, dict) or state.get("format") != _TR_CHECKPOINT_FORMAT:
        raise TrainingError(f"{path}: not a checkpoint written by a tgc training script")
    return state


def _tr_csv_cell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _tr_json_safe(row: dict) -> dict:
    """NaN and inf are not JSON; they become null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def _tr_first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _tr_unknown(what: str, name: Any, known: Any) -> str:
    names = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f"; did you mean `{close[0]}`?" if close else f" (known: {', '.join(names)})"
    return f"unknown {what} `{name}`{hint}"


def _tr_no_such(owner: str, kind: str, name: Any, known: Any) -> str:
    """'`owner` has no kind `name`; did you mean ...?' for keyword arguments."""
    names = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f"; did you mean `{close[0]}`?" if close else (f" (it takes {', '.join(names)})" if names else "")
    return f"{owner} has no {kind} `{name}`{hint}"


def _tr_build(table: dict, name: Any, what: str, pick: Callable, kwargs: dict, *args: Any) -> Any:
    """table[name] called with kwargs; an unknown name or keyword is a ConfigError."""
    if name not in table:
        raise ConfigError(_tr_unknown(what, name, table))
    factory = pick(table[name])
    try:
        params = inspect.signature(factory).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        bad = [k for k in kwargs if k not in params] if not takes_any else []
    except (TypeError, ValueError):
        bad = []
    if bad:
        raise ConfigError(_tr_no_such(f"{what} `{name}`", "argument", bad[0], [p for p in params if p not in ("self", "params")]))
    try:
        return factory(*args, **kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{what} `{name}`: {_tr_first_line(error)}") from None


# ============================================================================ command line

_TR_USAGE = """usage:
  python {script} [train] [--key value ...] [--resume CHECKPOINT]
  python {script} predict --data FILE [--checkpoint best.pt] [--out predictions.csv] [--device auto]

Every config key can be set: --epochs 3, --lr 0.01 (optimizer.lr), --data file.csv (data.path),
--device cpu|cuda|auto, --deterministic, dotted names for nested keys (--optimizer.weight_decay 0,
--model.hidden 256, --early_stopping.patience 5). Values keep the type of the config value.
Under torchrun (python -m torch.distributed.run --nproc_per_node=N {script}) training is
data-parallel. Settings now:
"""

# For `--data x.csv` and friends: the field of a source dict that a bare value sets.
_TR_SOURCE_KEYS = ("data", "valid", "test")


def _tr_parse_argv(argv: list[str]) -> tuple[str, list[tuple[str, str | None]]]:
    """(command, [(key, value or None for a bare flag)]); `--key=value` and `--key value`."""
    command = "train"
    if argv and not argv[0].startswith("-"):
        command = argv[0]
        argv = argv[1:]
        if command not in ("train", "predict", "help"):
            raise ConfigError(f"unknown command `{command}`; expected train or predict")
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in ("-h", "--help"):
            return "help", []
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"unexpected argument `{token}`; settings look like --key value")
        key, value = token[2:], None
        if "=" in key:
            key, value = key.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value = argv[i + 1]
            i += 1
        pairs.append((key.replace("-", "_"), value))
        i += 1
    return command, pairs


def _tr_bool(text: str, flag: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{flag} expects true or false, got `{text}`")


def _tr_literal(text: str) -> Any:
    """A value with no config value to take the type from: None, bool, int, float, JSON or text."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.strip()[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _tr_coerce(text: str | None, current: Any, flag: str) -> Any:
    """`text` converted to the type of the config value it replaces."""
    if text is None:
        if isinstance(current, bool):
            return True
        raise ConfigError(f"{flag} needs a value")
    if isinstance(current, bool):
        return _tr_bool(text, flag)
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if value.is_integer():
                return int(value)
            raise ConfigError(f"{flag} expects an integer, got `{text}`") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{flag} expects a number, got `{text}`") from None
    if isinstance(current, str):
        return text
    if isinstance(current, (list, tuple)):
        if text.strip().startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise ConfigError(f"{flag} expects a list, got `{text}`") from None
        items = [t.strip() for t in text.split(",") if t.strip()]
        if len(items) == 1 and items[0].lower() in ("none", "[]"):
            return []
        like = current[0] if current else None
        return [_tr_coerce(t, like, flag) if like is not None else _tr_literal(t) for t in items]
    if isinstance(current, dict):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ConfigError(f"{flag} expects a JSON object, got `{text}`")
        return value
    return _tr_literal(text)


def _tr_source(text: str, data: Any) -> dict:
    """A data source dict from a file name given on the command line (so relative to the working
    directory): kind from the extension, the target of `data`."""
    text = os.path.abspath(text)
    if text.lower().endswith(".npz"):
        return {"kind": "npz", "path": text}
    source: dict = {"kind": "csv", "path": text}
    if isinstance(data, dict) and data.get("target") is not None:
        source["target"] = data["target"]
    return source


def _tr_model_params(model_class: type) -> dict:
    """Constructor parameter -> default (None when it has none)."""
    try:
        params = inspect.signature(model_class).parameters
    except (TypeError, ValueError):
        return {}
    return {
        name: (None if p.default is inspect.Parameter.empty else p.default)
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def _tr_nested(config: dict, model_class: type) -> list[tuple[str, dict, str, Any, bool]]:
    """(dotted name, dict, key, current value, exists) of every nested setting."""
    found: list[tuple[str, dict, str, Any, bool]] = []
    model = config["model"]
    for name, default in _tr_model_params(model_class).items():
        found.append((f"model.{name}", model, name, model.get(name, default), name in model))
    for name in model:
        if not any(f[0] == f"model.{name}" for f in found):
            found.append((f"model.{name}", model, name, model[name], True))
    for head in ("optimizer", "loss", "scheduler", "data", "valid", "test"):
        value = config.get(head)
        if isinstance(value, dict):
            found += [(f"{head}.{k}", value, k, v, True) for k, v in value.items() if k not in ("name", "kind")]
    for callback in config["callbacks"]:
        found += [(f"{callback.get('name')}.{k}", callback, k, v, True) for k, v in callback.items() if k != "name"]
    return found


def _tr_apply_overrides(config: dict, pairs: list[tuple[str, str | None]], model_class: type) -> tuple[dict, str | None]:
    """config with the command line's settings; returns (config, resume path or None)."""
    config = copy.deepcopy(config)
    resume = None
    for key, text in pairs:
        flag = f"--{key}"
        if key == "resume":
            if not text:
                raise ConfigError("--resume needs a checkpoint path")
            resume = text
            continue
        if key in config:
            current = config[key]
            if key in _TR_SOURCE_KEYS and text is not None and not text.strip().startswith("{"):
                if key == "data":
                    source = _tr_source(text, current)
                    if isinstance(current, dict) and source["kind"] == current.get("kind"):
                        source = {**current, "path": source["path"]}
                    config[key] = source
                    continue
                lowered = text.strip().lower()
                if lowered in ("none", "null", "0"):
                    config[key] = None
                    continue
                try:
                    config[key] = float(text)
                except ValueError:
                    config[key] = _tr_source(text, config.get("data"))
                continue
            if key in ("optimizer", "loss", "scheduler") and text is not None and not text.strip().startswith("{"):
                if key == "scheduler" and text.strip().lower() in ("none", "null"):
                    config[key] = None
                elif key == "scheduler" and (current or {}).get("name") != text:
                    config[key] = {"name": text}  # another scheduler's arguments would not fit
                else:
                    config[key] = {**(current or {}), "name": text}
                continue
            if key == "model" and not (text or "").strip().startswith("{"):
                raise ConfigError("set model arguments one by one: --model.NAME value")
            config[key] = _tr_coerce(text, current, flag)
            continue
        nested = _tr_nested(config, model_class)
        if "." in key:
            matches = [n for n in nested if n[0] == key]
            if not matches:
                head, _, field = key.partition(".")
                containers = {"optimizer", "loss", "scheduler", "data", "valid", "test"}
                target = config.get(head) if head in containers else None
                callbacks = [c for c in config["callbacks"] if c.get("name") == head]
                if isinstance(target, dict) and "." not in field:
                    target[field] = _tr_literal(text) if text is not None else True
                    continue
                if len(callbacks) == 1 and "." not in field:
                    callbacks[0][field] = _tr_literal(text) if text is not None else True
                    continue
                if head == "model":
                    names = [n[2] for n in nested if n[0].startswith("model.")]
                    raise ConfigError(_tr_no_such(f"`{model_class.__name__}`", "argument", field, names))
                raise ConfigError(_tr_unknown("setting", flag, _tr_known_flags(config, nested)))
        else:
            # A plain name may stand for an optimizer or model setting (--lr, --weight_decay,
            # --hidden); anything else nested needs its dotted name (--early_stopping.patience).
            if key == "lr" and isinstance(config.get("optimizer"), dict):
                matches = [("optimizer.lr", config["optimizer"], "lr", config["optimizer"].get("lr", 1e-3), True)]
            else:
                matches = [n for n in nested if n[2] == key and n[0].split(".")[0] in ("optimizer", "model")]
            if not matches:
                dotted = [f"--{n[0]}" for n in nested if n[2] == key]
                if dotted:
                    raise ConfigError(f"unknown setting `{flag}`; did you mean `{dotted[0]}`?")
                raise ConfigError(_tr_unknown("setting", flag, _tr_known_flags(config, nested)))
            if len(matches) > 1:
                names = ", ".join(f"--{m[0]}" for m in matches)
                raise ConfigError(f"{flag} is ambiguous: use one of {names}")
        name, container, field, current, _ = matches[0]
        container[field] = _tr_coerce(text, current, flag)
        if name in ("data.path", "valid.path", "test.path") and isinstance(container[field], str):
            container[field] = os.path.abspath(container[field])
    return config, resume


def _tr_known_flags(config: dict, nested: list) -> list[str]:
    return ["--resume", "--lr"] + [f"--{k}" for k in config] + [f"--{n[0]}" for n in nested]


def _tr_merge_defaults(config: dict) -> dict:
    unknown = [k for k in config if k not in DEFAULT_CONFIG]
    if unknown:
        raise ConfigError(_tr_unknown("config key", unknown[0], DEFAULT_CONFIG))
    merged = copy.deepcopy(DEFAULT_CONFIG)
    merged.update(copy.deepcopy(config))
    if merged["loss"] is None:
        merged["loss"] = {"name": "cross_entropy" if merged["task"] == "classification" else "mse"}
    merged["model"] = dict(merged["model"] or {})
    merged["callbacks"] = [dict(c) for c in merged["callbacks"] or []]
    return merged


def _tr_validate(config: dict) -> None:
    if config["task"] not in ("classification", "regression"):
        raise ConfigError(f"task must be classification or regression, got {config['task']!r}")
    if config["data"] is None:
        raise ConfigError("no training data: set data (e.g. --data train.csv)")
    for key in ("epochs", "batch_size"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    for key in ("valid", "test"):
        value = config[key]
        if value is not None and not isinstance(value, dict):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"{key} must be a fraction in [0, 1), a data source or None, got {value!r}")
    loss = config["loss"]
    if not isinstance(loss, dict) or loss.get("name") not in LOSSES:
        raise ConfigError(_tr_unknown("loss", (loss or {}).get("name") if isinstance(loss, dict) else loss, LOSSES))
    if LOSSES[loss["name"]][1] != config["task"]:
        raise ConfigError(f"loss `{loss['name']}` is for {LOSSES[loss['name']][1]}, but the task is {config['task']}")
    if config["grad_clip"] is not None and (isinstance(config["grad_clip"], bool) or not isinstance(config["grad_clip"], (int, float)) or config["grad_clip"] <= 0):
        raise ConfigError(f"grad_clip must be a positive number or None, got {config['grad_clip']!r}")
    for callback in config["callbacks"]:
        if callback.get("name") not in CALLBACKS:
            raise ConfigError(_tr_unknown("callback", callback.get("name"), CALLBACKS))


def _tr_help(config: dict, script_path: str, model_class: type) -> str:
    lines = [_TR_USAGE.format(script=os.path.basename(script_path))]
    for key, value in config.items():
        if key in ("model", "optimizer", "loss", "scheduler", "callbacks") and value:
            continue
        lines.append(f"  --{key} {json.dumps(value)}")
    for name, _, _, value, _ in _tr_nested(config, model_class):
        lines.append(f"  --{name} {json.dumps(value)}")
    return "\n".join(lines)


# ============================================================================ setup

def _tr_device(name: str, dist_env: _TrDist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device `{name}`; use auto, cpu or cuda") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda, but CUDA is not available here; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", dist_env.local_rank if dist_env.world > 1 else torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


def _tr_resolve_path(path: str, base_dir: str) -> str:
    """A relative path as given (from the working directory), else from the script's folder."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    candidate = os.path.join(base_dir, path)
    return candidate if os.path.exists(candidate) else path


def _tr_resolve_source(spec: dict, base_dir: str) -> dict:
    """A relative path in CONFIG is relative to the script's folder (the compiler writes it so);
    paths from the command line are made absolute when parsed."""
    if isinstance(spec, dict) and spec.get("path") and not os.path.isabs(os.fspath(spec["path"])):
        path = os.fspath(spec["path"])
        beside = os.path.join(base_dir, path)
        return {**spec, "path": beside if os.path.exists(beside) or not os.path.exists(path) else path}
    return spec


def _tr_load_data(config: dict, base_dir: str, saved: dict | None) -> _TrData:
    """Loads and splits the data and standardises the features with the training part's statistics."""
    task, seed = config["task"], int(config["seed"])
    x, y, info = load_source(_tr_resolve_source(config["data"], base_dir), task)
    data = _TrData()
    data.info = info
    keep = torch.arange(x.shape[0])
    parts: dict[str, tuple[torch.Tensor, torch.Tensor] | None] = {"valid": None, "test": None}
    test, valid = config["test"], config["valid"]
    if isinstance(test, float) and test > 0:
        rest, held = split_indices(x.shape[0], test, seed + 1)
        parts["test"] = (x[held], y[held])
        keep = rest
    if isinstance(valid, float) and valid > 0:
        # A fraction of the whole data, taken from what the test part left.
        share = min(valid * x.shape[0] / keep.shape[0], 0.99)
        rest, held = split_indices(keep.shape[0], share, seed)
        parts["valid"] = (x[keep[held]], y[keep[held]])
        keep = keep[rest]
    for name, spec in (("valid", valid), ("test", test)):
        if isinstance(spec, dict):
            xs, ys, _ = load_source(_tr_resolve_source(spec, base_dir), task, reference=info)
            parts[name] = (xs, ys)
    data.x_train, data.y_train = x[keep], y[keep]
    if saved is not None:
        data.standardizer = Standardizer.from_state_dict(saved)
    elif config["standardize"]:
        data.standardizer = Standardizer().fit(data.x_train)
    scale = data.standardizer.transform if data.standardizer is not None else (lambda features: features)
    data.x_train = scale(data.x_train)
    if parts["valid"] is not None:
        data.x_valid, data.y_valid = scale(parts["valid"][0]), parts["valid"][1]
    if parts["test"] is not None:
        data.x_test, data.y_test = scale(parts["test"][0]), parts["test"][1]
    return data


def _tr_fill_input_sizes(config: dict, data: _TrData) -> None:
    """Model arguments the compiler left to the data (`input_sizes`), unless set already."""
    for name, what in (config.get("input_sizes") or {}).items():
        if config["model"].get(name) is not None:
            continue
        if what == "n_features":
            if data.x_train.dim() != 2:
                raise ConfigError(
                    f"model argument `{name}` is the number of features, but the features have shape "
                    f"{list(data.x_train.shape[1:])}; set --model.{name}"
                )
            config["model"][name] = int(data.x_train.shape[1])
        elif what == "n_classes" and data.info.get("n_classes"):
            config["model"][name] = int(data.info["n_classes"])
        else:
            raise ConfigError(f"input_sizes: cannot fill model argument `{name}` from {what!r}")


def _tr_build_model(model_class: type, kwargs: dict) -> nn.Module:
    params = _tr_model_params(model_class)
    bad = [k for k in kwargs if k not in params]
    if bad and params:
        raise ConfigError(_tr_no_such(f"`{model_class.__name__}`", "argument", bad[0], params))
    try:
        return model_class(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"cannot build `{model_class.__name__}`: {_tr_first_line(error)}") from None


def _tr_check_model(model: nn.Module, data: _TrData, config: dict, device: torch.device) -> None:
    """One eval-mode forward on two samples: the model takes the features and its outputs fit
    the targets. Draws no random numbers and changes no state."""
    model.eval()
    try:
        with torch.no_grad():
            out = model(data.x_train[:2].to(device))
    except Exception as error:  # the model's own error, e.g. a shape mismatch
        width = list(data.x_train.shape[1:])
        raise ConfigError(
            f"the model cannot run on the data's features {width}: {_tr_first_line(error)}; "
            "do the model's input sizes match the number of feature columns?"
        ) from None
    finally:
        model.train()
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"the model returns {type(out).__name__}; training needs one output tensor")
    y = data.y_train[:2]
    per_sample = out.shape[1:].numel() if out.dim() > 1 else 1
    name = config["loss"]["name"]
    if config["task"] == "classification":
        n_classes = int(data.info.get("n_classes") or 0)
        if name == "cross_entropy" and (out.dim() != 2 or out.shape[1] < n_classes):
            raise ConfigError(
                f"the model outputs {list(out.shape[1:])} scores per sample, but the data has {n_classes} classes; "
                "is the model's number of classes right?"
            )
        if name == "bce_with_logits" and not (per_sample == 1 and n_classes <= 2 or per_sample == n_classes):
            raise ConfigError(
                f"bce_with_logits needs one output (two classes) or one per class, the model has {per_sample} "
                f"for {n_classes} classes"
            )
    else:
        want = y.shape[1:].numel() if y.dim() > 1 else 1
        if per_sample != want:
            raise ConfigError(f"the model outputs {per_sample} values per sample, but there are {want} regression targets")


def _tr_make_callbacks(config: dict, extra: list[Callback]) -> list[Callback]:
    made: list[Callback] = []
    for spec in config["callbacks"]:
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        made.append(_tr_build(CALLBACKS, spec["name"], "callback", lambda f: f, kwargs))
    for kind in (History, Progress, Checkpoint):  # always on; configure them by listing them
        if not any(isinstance(cb, kind) for cb in made):
            made.append(kind())
    if config["grad_clip"] is not None:
        made.append(GradClip(config["grad_clip"]))
    return made + list(extra)


def _tr_train(config: dict, model_class: type, script_path: str, resume: str | None, extra: list[Callback]) -> int:
    base_dir = os.path.dirname(os.path.abspath(script_path))
    dist_env = _TrDist()
    device = _tr_device(str(config["device"]), dist_env)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark)
    try:
        if config["deterministic"]:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        dist_env.init(device)
        saved = None
        if resume is not None:
            out_dir_guess = os.path.join(base_dir, config["out_dir"])
            saved = _tr_load_checkpoint(_tr_resolve_path(resume, out_dir_guess))
        seed = int(config["seed"])
        random.seed(seed)
        torch.manual_seed(seed)
        data = _tr_load_data(config, base_dir, saved["standardizer"] if saved else None)
        _tr_fill_input_sizes(config, data)
        model = _tr_build_model(model_class, config["model"]).to(device)
        _tr_check_model(model, data, config, device)
        if dist_env.world > 1:
            # Same initial weights on every rank (DDP broadcasts rank 0's anyway); different
            # dropout masks per rank from here on.
            torch.manual_seed(seed + 1_000_003 * dist_env.rank)
        out_dir = os.path.join(base_dir, config["out_dir"])
        if dist_env.rank == 0:
            os.makedirs(out_dir, exist_ok=True)
        trainer = Trainer(config, model, data, out_dir, device, _tr_make_callbacks(config, extra), dist_env)
        if saved is not None:
            trainer.load_checkpoint(saved)
        trainer.fit()
        trainer.test()
        return 0
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[1], previous[2]
        dist_env.close()


# ============================================================================ prediction

def _tr_predict(config: dict, model_class: type, script_path: str, pairs: list[tuple[str, str | None]]) -> int:
    known = {"data": None, "checkpoint": "best.pt", "out": "predictions.csv", "device": "auto", "batch_size": None}
    options = dict(known)
    for key, value in pairs:
        if key not in known:
            raise ConfigError(_tr_unknown("predict option", f"--{key}", [f"--{k}" for k in known]))
        if value is None:
            raise ConfigError(f"--{key} needs a value")
        options[key] = value
    if options["data"] is None:
        raise ConfigError("predict needs --data FILE (a csv with the feature columns, or an npz with X)")
    base_dir = os.path.dirname(os.path.abspath(script_path))
    out_dir = os.path.join(base_dir, str(config.get("out_dir", DEFAULT_CONFIG["out_dir"])))
    state = _tr_load_checkpoint(_tr_resolve_path(options["checkpoint"], out_dir))
    saved_config = state["config"]
    device = _tr_device(options["device"], _TrDist())
    model = _tr_build_model(model_class, saved_config["model"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise TrainingError(f"the checkpoint does not fit this model: {_tr_first_line(error)}") from None
    model.to(device).eval()
    info = {"feature_names": state["features"]}
    x = load_predict_source(options["data"], info)
    if state["standardizer"] is not None:
        x = Standardizer.from_state_dict(state["standardizer"]).transform(x)
    batch_size = _tr_coerce(options["batch_size"], 0, "--batch_size") if options["batch_size"] else saved_config["batch_size"]
    with torch.no_grad():
        out = _tr_outputs(model, x, int(batch_size), device)
    header, rows = _tr_prediction_rows(out, saved_config, state)
    lines = [header] + rows
    buffer = _tr_csv_text(lines)
    _tr_atomic_write_text(options["out"], buffer)
    print(f"wrote {len(rows)} predictions to {options['out']}")
    return 0


def _tr_prediction_rows(out: torch.Tensor, config: dict, state: dict) -> tuple[list, list]:
    """CSV header and rows: the original label and class probabilities, or regression values."""
    if config["task"] == "regression":
        values = out.reshape(out.shape[0], -1).double()
        target = state.get("target")
        if values.shape[1] == 1:
            names = ["prediction"]
        elif isinstance(target, list) and len(target) == values.shape[1]:
            names = [f"prediction_{t}" for t in target]
        else:
            names = [f"prediction_{i}" for i in range(values.shape[1])]
        return names, [[repr(float(v)) for v in row] for row in values.tolist()]
    logits = out.double()
    if logits.dim() == 1 or logits.shape[-1] == 1:
        p1 = torch.sigmoid(logits.reshape(-1))
        probs = torch.stack([1 - p1, p1], dim=1)
    elif config["loss"]["name"] == "bce_with_logits":
        probs = torch.sigmoid(logits)  # one-vs-rest: each class on its own
    else:
        probs = torch.softmax(logits, dim=1)
    labels = state.get("label_map") or list(range(probs.shape[1]))
    labels = list(labels) + list(range(len(labels), probs.shape[1]))
    header = ["prediction"] + [f"prob_{label}" for label in labels]
    rows = []
    for row in probs.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        rows.append([str(labels[best])] + [f"{p:.6g}" for p in row])
    return header, rows


def _tr_csv_text(lines: list) -> str:
    import io
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(lines)
    return buffer.getvalue()


# ============================================================================ entry point

def run(config: dict, model_class: type, script_path: str, argv: list[str] | None = None,
        callbacks: list[Callback] = ()) -> int:
    """Entry point of a generated train.py; returns the exit status.

    `python train.py [train] [--key value ...] [--resume CKPT]` trains; `python train.py predict
    --data FILE [--checkpoint best.pt] [--out predictions.csv]` predicts. `callbacks` adds
    callbacks to the configured ones (for tests and custom scripts).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    rank = int(os.environ.get("RANK", "0"))
    try:
        command, pairs = _tr_parse_argv(argv)
        merged = _tr_merge_defaults(config)
        if command == "help":
            print(_tr_help(merged, script_path, model_class))
            return 0
        if command == "predict":
            return _tr_predict(merged, model_class, script_path, pairs)
        merged, resume = _tr_apply_overrides(merged, pairs, model_class)
        _tr_validate(merged)
        return _tr_train(merged, model_class, script_path, resume, list(callbacks))
    except ConfigError as error:
        _tr_report(error, rank)
        return 2
    except (DataError, TrainingError) as error:
        _tr_report(error, rank)
        return 1
    except torch.cuda.OutOfMemoryError:
        _tr_report("out of GPU memory; lower --batch_size", rank)
        return 1
    except KeyboardInterrupt:
        _tr_report("interrupted", rank)
        return 130


def _tr_report(error: Any, rank: int) -> None:
    """One `error: ...` line on stderr, from the main process only (every rank hits the same)."""
    if rank == 0:
        print(f"error: {_tr_first_line(error) if isinstance(error, BaseException) else error}", file=sys.stderr)
