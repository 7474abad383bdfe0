"""Zoo: ResNet-18 (examples/zoo/resnet18.tg) and ResNet-50 (examples/zoo/resnet50.tg) against a
hand-written PyTorch reference with torchvision's module structure, attribute names and
registration order (torchvision.models.resnet: BasicBlock, Bottleneck with the stride on the 3x3
convolution (v1.5), `downsample` = conv1x1 >> BatchNorm2d, conv1/bn1/relu/maxpool/layer1..layer4/
avgpool/fc, the same initialisation).

The emitted modules must have torchvision's state_dict keys exactly: they load the reference's
state_dict with strict=True and no key map, then give equal outputs in eval mode (batch-norm
statistics randomised first). Also: the published parameter counts as literals, equal trainable
counts, `torch.compile(fullgraph=True)` without a graph break, a clean `tgc check` and a
successful `tgc FILE -o x.py` (which verifies the module with torch.fx).
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import Tensor, nn

from tgc.compiler.cli import main
from zoo_util import assert_compiles_without_graph_breaks, compile_zoo, randomise_norms, trainable, zoo_path

# --------------------------------------------------------------------------- reference
# torchvision/models/resnet.py (groups=1, width_per_group=64, no dilation, no zero_init_residual),
# with one addition: `base` (64 in torchvision) scales the stem and every stage, for small tests.


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class Bottleneck(nn.Module):
    # ResNet v1.5: the stride is on the 3x3 convolution (conv2), not on conv1.
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block: type, layers: list[int], num_classes: int = 1000, base: int = 64) -> None:
        super().__init__()
        self.inplanes = base
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, 2 * base, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * base, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * base, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * base * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x


def resnet18(**kwargs) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet50(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


# --------------------------------------------------------------------------- helpers

MODELS = {  # file, torchvision-structured reference, published trainable parameter count
    "resnet18": ("resnet18.tg", resnet18, 11_689_512),
    "resnet50": ("resnet50.tg", resnet50, 25_557_032),
}


@functools.cache
def emitted_class(name: str) -> type:
    cls, _ = compile_zoo(MODELS[name][0])
    return cls


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    name = request.param
    _, reference, published = MODELS[name]
    return name, emitted_class(name), reference, published


def randomise_all(module: nn.Module, seed: int = 1) -> None:
    """Random batch-norm statistics and affine weights, and a random classifier bias."""
    randomise_norms(module, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        module.fc.bias.copy_(torch.randn(module.fc.bias.shape, generator=g) * 0.1)


def load_by_key_and_compare(reference: nn.Module, emitted: nn.Module, x: Tensor) -> float:
    """Load the reference's state_dict by key (strict, no key map); equal outputs in eval mode.
    Returns the largest absolute difference."""
    randomise_all(reference)
    emitted.load_state_dict(reference.state_dict(), strict=True)
    reference.eval()
    emitted.eval()
    with torch.no_grad():
        want, got = reference(x), emitted(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    return (got - want).abs().max().item()


def image(size: int = 64, seed: int = 2) -> Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- counts and keys


def test_published_parameter_count(model):
    name, cls, reference, published = model
    with torch.device("meta"):
        emitted, ref = cls(), reference()
    assert trainable(emitted) == trainable(ref) == published
    assert published == {"resnet18": 11_689_512, "resnet50": 25_557_032}[name]
    assert f"{published:,}" in cls.__doc__  # the .tg file's comment block, quoting the figure


def test_state_dict_keys_are_torchvisions(model):
    # The same keys in the same order, with the same shapes (buffers included:
    # running_mean, running_var, num_batches_tracked).
    _, cls, reference, _ = model
    with torch.device("meta"):
        emitted, ref = cls(), reference()
    want = [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    got = [(k, tuple(v.shape)) for k, v in emitted.state_dict().items()]
    assert got == want


def test_a_few_torchvision_keys_literally(model):
    name, cls, _, _ = model
    with torch.device("meta"):
        keys = set(cls().state_dict())
    common = {"conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.num_batches_tracked",
              "layer1.0.conv1.weight", "layer1.1.bn2.running_var", "layer2.0.downsample.0.weight",
              "layer2.0.downsample.1.running_var", "layer4.1.conv2.weight", "fc.weight", "fc.bias"}
    assert common <= keys
    if name == "resnet18":
        assert len(keys) == 122 and "layer1.0.downsample.0.weight" not in keys
    else:
        assert len(keys) == 320
        assert {"layer1.0.downsample.0.weight", "layer3.5.conv3.weight", "layer4.2.bn3.bias"} <= keys


def test_small_parameter_count(model):
    _, cls, reference, _ = model
    assert trainable(cls(n_classes=10, base=16)) == trainable(reference(num_classes=10, base=16))


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("name", ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)])
def test_loads_reference_state_dict_strict_and_same_outputs_64x64(name):
    # Full size (1000 classes); ResNet-50 is slow only for its construction (~3 s).
    cls, reference = emitted_class(name), MODELS[name][1]
    torch.manual_seed(0)
    ref, emitted = reference(), cls()
    load_by_key_and_compare(ref, emitted, image(64))


def test_small_width_same_outputs_other_size(model):
    # base=16 (stages of 16..128 channels, or 64..512 for ResNet-50), 10 classes, a 48x40 image
    # (odd sizes after the stride-2 stages).
    _, cls, reference, _ = model
    torch.manual_seed(0)
    ref, emitted = reference(num_classes=10, base=16), cls(n_classes=10, base=16)
    x = torch.randn(2, 3, 48, 40, generator=torch.Generator().manual_seed(3))
    load_by_key_and_compare(ref, emitted, x)


def test_same_outputs_in_training_mode(model):
    # Batch statistics instead of running ones, and the running statistics update the same way.
    _, cls, reference, _ = model
    torch.manual_seed(0)
    ref, emitted = reference(num_classes=10, base=8), cls(n_classes=10, base=8)
    emitted.load_state_dict(ref.state_dict(), strict=True)
    ref.train()
    emitted.train()
    x = image(64, seed=4)
    with torch.no_grad():
        want, got = ref(x), emitted(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for (k, a), (_, b) in zip(ref.state_dict().items(), emitted.state_dict().items()):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5, msg=k)


@pytest.mark.slow
def test_compiles_without_graph_breaks(model):
    _, cls, _, _ = model
    assert_compiles_without_graph_breaks(cls().eval(), image(64))


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("name", ["resnet18.tg", "resnet50.tg"])
def test_tgc_check_is_clean(name, capsys):
    assert main(["check", "--werror", zoo_path(name)]) == 0
    out = capsys.readouterr()
    text = (out.out + out.err).lower()
    assert "warning" not in text and "error" not in text, out.out + out.err


@pytest.mark.parametrize("name", ["resnet18.tg", "resnet50.tg"])
def test_tgc_build_verifies_with_torch_fx(name, tmp_path, capsys):
    out = tmp_path / "x.py"
    assert main([zoo_path(name), "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.exists()
