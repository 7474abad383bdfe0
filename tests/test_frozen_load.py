"""`frozen` and `load` (LANGUAGE.md section 6): frozen parts get no gradient and keep their
batch-norm statistics while the rest trains; `load` reads plain state dicts only, strictly."""

from __future__ import annotations

import importlib.util
import pathlib
import shutil

import pytest
import torch

from tgc.compiler.cli import main

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "models"


def _compile(tmp_path: pathlib.Path, capsys=None) -> pathlib.Path:
    src = tmp_path / "model.tg"
    shutil.copy(GOLDEN / "frozen_load.tg", src)
    return src


def _load(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(f"m_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _encoder_state(width: int = 8, d_in: int = 12, **change) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    state = {
        "y.0.weight": torch.randn(width, d_in),
        "y.0.bias": torch.randn(width),
        "y.1.weight": torch.rand(width) + 0.5,
        "y.1.bias": torch.randn(width),
        "y.1.running_mean": torch.randn(width),
        "y.1.running_var": torch.rand(width) + 0.5,
        "y.1.num_batches_tracked": torch.tensor(10),
    }
    state.update(change)
    return {k: v for k, v in state.items() if v is not None}


def _build(tmp_path, state) -> pathlib.Path:
    src = _compile(tmp_path)
    (tmp_path / "weights").mkdir(exist_ok=True)
    torch.save(state, tmp_path / "weights" / "encoder.pt")
    out = tmp_path / "out" / "model.py"
    assert main([str(src), "-o", str(out)]) == 0
    # the emitted module resolves the path against its own folder
    (out.parent / "weights").mkdir(exist_ok=True)
    torch.save(state, out.parent / "weights" / "encoder.pt")
    return out


def test_load_and_frozen_training_step(tmp_path):
    state = _encoder_state()
    model = _load(_build(tmp_path, state)).Finetune()
    enc = model.enc
    for key, value in state.items():
        torch.testing.assert_close(enc.state_dict()[key], value)
    model.train()
    assert not enc.training and model.training, "a frozen part stays in eval mode"
    frozen = {k: v.clone() for k, v in enc.state_dict().items()}
    frozen_head = {k: v.clone() for k, v in model.h.state_dict().items()}
    head = {k: v.clone() for k, v in model.logits.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(16, 12) * 3 + 1), torch.randint(0, 3, (16,)))
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in enc.parameters())
    assert all(p.grad is None for p in model.h.parameters())
    for key, value in enc.state_dict().items():  # running statistics included
        torch.testing.assert_close(value, frozen[key])
    for key, value in model.h.state_dict().items():
        torch.testing.assert_close(value, frozen_head[key])
    changed = [not torch.equal(model.logits.state_dict()[k], v) for k, v in head.items()]
    assert all(changed), "the trainable head must change"


def test_weights_dir_argument(tmp_path):
    out = _build(tmp_path, _encoder_state())
    other = tmp_path / "elsewhere"
    (other / "weights").mkdir(parents=True)
    special = _encoder_state(**{"y.0.bias": torch.full((8,), 7.0)})
    torch.save(special, other / "weights" / "encoder.pt")
    model = _load(out).Finetune(weights_dir=str(other))
    torch.testing.assert_close(model.enc.y[0].bias, torch.full((8,), 7.0))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"y.0.bias": None}, "lacks the weight `y.0.bias` of `enc`"),
        ({"extra.weight": torch.zeros(2)}, "has the weight `extra.weight` that `enc` does not have"),
        ({"y.0.weight": torch.zeros(8, 5)}, "has weights of other shapes: `y.0.weight` [8, 5] (needs [8, 12])"),
    ],
)
def test_compile_time_check_names_the_key(tmp_path, capsys, change, message):
    src = _compile(tmp_path)
    (tmp_path / "weights").mkdir()
    torch.save(_encoder_state(**change), tmp_path / "weights" / "encoder.pt")
    out = tmp_path / "model.py"
    assert main([str(src), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "E039" in err and message in err
    assert not out.exists()


def test_pickled_objects_are_refused(tmp_path, capsys):
    import datetime

    src = _compile(tmp_path)
    (tmp_path / "weights").mkdir()
    torch.save({"y.0.weight": datetime.date(2020, 1, 1)}, tmp_path / "weights" / "encoder.pt")
    assert main([str(src), "-o", str(tmp_path / "model.py")]) == 1
    assert "pickled objects other than tensors" in capsys.readouterr().err


def test_run_time_errors_without_the_compile_time_file(tmp_path):
    src = _compile(tmp_path)
    out = tmp_path / "out" / "model.py"
    assert main([str(src), "-o", str(out)]) == 0  # no file at compile time: checked at run time
    module = _load(out)
    with pytest.raises(FileNotFoundError):
        module.Finetune()
    (out.parent / "weights").mkdir()
    torch.save(_encoder_state(**{"y.0.weight": torch.zeros(8, 5)}), out.parent / "weights" / "encoder.pt")
    with pytest.raises(RuntimeError, match="y.0.weight"):
        module.Finetune()
    import datetime

    torch.save({"y.0.weight": datetime.date(2020, 1, 1)}, out.parent / "weights" / "encoder.pt")
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        module.Finetune()


def test_a_state_dict_of_another_module_is_a_few_short_diagnostics(tmp_path, capsys):
    # issue 13: one E039 per key, each repeating every expected key (1.1 MB for torchvision's)
    src = _compile(tmp_path)
    (tmp_path / "weights").mkdir()
    other = {f"features.{i}.weight": torch.zeros(3) for i in range(300)}
    torch.save(other, tmp_path / "weights" / "encoder.pt")
    assert main([str(src), "-o", str(tmp_path / "model.py")]) == 1
    err = capsys.readouterr().err
    assert err.count("error[E039]") == 2 and len(err) < 2000
    assert "and 295 more" in err
