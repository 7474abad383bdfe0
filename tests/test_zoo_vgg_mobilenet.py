"""Zoo: VGG-11 (examples/zoo/vgg11.tg) and MobileNetV2 (examples/zoo/mobilenet_v2.tg) against
hand-written PyTorch references that keep torchvision's module structure and registration order
(torchvision.models.vgg.VGG with make_layers(cfg "A"), torchvision.models.mobilenetv2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tgc.compiler.cli import main
from zoo_util import (
    assert_compiles_without_graph_breaks,
    assert_same_outputs,
    compile_zoo,
    copy_by_order,
    trainable,
    zoo_path,
)

# --------------------------------------------------------------------------- references


# torchvision.models.vgg: cfgs["A"] is VGG-11; "M" is a 2x2 max pool.
VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg: list, scale: float = 1.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            v = int(v * scale)
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features: nn.Module, num_classes: int = 1000, dropout: float = 0.5,
                 last_channels: int = 512, hidden: int = 4096) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(last_channels * 7 * 7, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """torchvision.ops.misc.Conv2dNormActivation with BatchNorm2d and ReLU6."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = self.stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1))
        layers.extend([
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ])
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        input_channel = 32
        last_channel = 1280
        inverted_residual_setting = [
            # t, c, n, s
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 3, 2],
            [6, 64, 4, 2],
            [6, 96, 3, 1],
            [6, 160, 3, 2],
            [6, 320, 1, 1],
        ]
        input_channel = _make_divisible(input_channel * width_mult, 8)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult), 8)
        features: list[nn.Module] = [Conv2dNormActivation(3, input_channel, stride=2)]
        for t, c, n, s in inverted_residual_setting:
            output_channel = _make_divisible(c * width_mult, 8)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channel, output_channel, stride, expand_ratio=t))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def random_biases(module: nn.Module, seed: int = 1) -> None:
    """Non-zero biases (torchvision-style init zeroes them), so a dropped bias shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


# --------------------------------------------------------------------------- fixtures

VGG_SMALL = dict(base=8, hidden=64, n_classes=10)  # the emitted module's parameters


@pytest.fixture(scope="module")
def vgg11_cls():
    cls, _ = compile_zoo("vgg11.tg")
    return cls


@pytest.fixture(scope="module")
def mobilenet_v2_cls():
    cls, _ = compile_zoo("mobilenet_v2.tg")
    return cls


def small_vgg_reference(cfg: str = "A") -> VGG:
    torch.manual_seed(0)
    ref = VGG(make_layers(VGG_CFGS[cfg], scale=8 / 64), num_classes=10, last_channels=64, hidden=64)
    random_biases(ref)
    return ref


# --------------------------------------------------------------------------- VGG-11


def test_vgg11_published_parameter_count(vgg11_cls):
    with torch.device("meta"):
        emitted, reference = vgg11_cls(), VGG(make_layers(VGG_CFGS["A"]))
    assert trainable(emitted) == trainable(reference) == 132_863_336


@pytest.mark.parametrize("cfg, counts, published", [
    ("B", (2, 2, 2, 2, 2), 133_047_848),  # vgg13
    ("D", (2, 2, 3, 3, 3), 138_357_544),  # vgg16
    ("E", (2, 2, 4, 4, 4), 143_667_240),  # vgg19
])
def test_vgg_reparametrised_to_deeper_configurations(vgg11_cls, cfg, counts, published):
    stages = dict(zip(("n1", "n2", "n3", "n4", "n5"), counts))
    with torch.device("meta"):
        emitted, reference = vgg11_cls(**stages), VGG(make_layers(VGG_CFGS[cfg]))
    assert trainable(emitted) == trainable(reference) == published


def test_vgg11_small_parameter_count_and_order(vgg11_cls):
    emitted, reference = vgg11_cls(**VGG_SMALL), small_vgg_reference()
    assert trainable(emitted) == trainable(reference)
    copy_by_order(reference, emitted)  # same shapes entry by entry


def test_vgg11_same_outputs_32x32(vgg11_cls):
    emitted, reference = vgg11_cls(**VGG_SMALL), small_vgg_reference()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert_same_outputs(reference, emitted, x)


def test_vgg16_same_outputs_48x48(vgg11_cls):
    emitted = vgg11_cls(n1=2, n2=2, n3=3, n4=3, n5=3, **VGG_SMALL)
    reference = small_vgg_reference("D")
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    assert_same_outputs(reference, emitted, x)


@pytest.mark.slow
def test_vgg11_full_size_same_outputs_32x32(vgg11_cls):
    torch.manual_seed(0)
    reference = VGG(make_layers(VGG_CFGS["A"]))
    random_biases(reference)
    emitted = vgg11_cls()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert_same_outputs(reference, emitted, x)


@pytest.mark.slow
def test_vgg11_compiles_without_graph_breaks(vgg11_cls):
    assert_compiles_without_graph_breaks(vgg11_cls(**VGG_SMALL).eval(), torch.randn(2, 3, 32, 32))


# --------------------------------------------------------------------------- MobileNetV2


def test_mobilenet_v2_published_parameter_count(mobilenet_v2_cls):
    emitted, reference = mobilenet_v2_cls(), MobileNetV2()
    assert trainable(emitted) == trainable(reference) == 3_504_872


@pytest.mark.slow
def test_mobilenet_v2_full_size_same_outputs_64x64(mobilenet_v2_cls):
    torch.manual_seed(0)
    reference = MobileNetV2()
    random_biases(reference)
    emitted = mobilenet_v2_cls()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert_same_outputs(reference, emitted, x)


def test_mobilenet_v2_half_width_same_outputs_64x64(mobilenet_v2_cls):
    # width_mult=0.5 in torchvision: every count halved and rounded to a multiple of 8 (12 -> 16;
    # the last convolution keeps 1280). (At 0.25 the stem and stage 1 both have 8 channels and
    # torchvision's first block gains a residual the .tg file does not have: see its comment.)
    torch.manual_seed(0)
    reference = MobileNetV2(num_classes=10, width_mult=0.5)
    random_biases(reference)
    emitted = mobilenet_v2_cls(stem=16, c1=8, c2=16, c3=16, c4=32, c5=48, c6=80, c7=160, n_classes=10)
    assert trainable(emitted) == trainable(reference)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    assert_same_outputs(reference, emitted, x)


def test_mobilenet_v2_residuals_where_torchvision_has_them(mobilenet_v2_cls):
    # Seventeen inverted residual blocks; torchvision adds the input in exactly ten of them, and
    # the emitted module has ten instances of the block with the addition.
    reference = MobileNetV2()
    blocks = [m for m in reference.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17 and sum(b.use_res_connect for b in blocks) == 10
    emitted = mobilenet_v2_cls()
    names = [type(m).__name__ for m in emitted.modules()]
    assert names.count("InvertedResidualAdd") == 10
    assert names.count("DepthwiseProject") == 17  # one in every block


@pytest.mark.slow
def test_mobilenet_v2_compiles_without_graph_breaks(mobilenet_v2_cls):
    assert_compiles_without_graph_breaks(mobilenet_v2_cls().eval(), torch.randn(2, 3, 64, 64))


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("name", ["vgg11.tg", "mobilenet_v2.tg"])
def test_tgc_check_is_clean(name, capsys):
    assert main(["check", "--werror", zoo_path(name)]) == 0
    out = capsys.readouterr()
    assert "warning" not in (out.out + out.err).lower(), out.out + out.err
    assert "error" not in (out.out + out.err).lower(), out.out + out.err


@pytest.mark.parametrize("name", ["vgg11.tg", "mobilenet_v2.tg"])
def test_tgc_build_verifies_with_torch_fx(name, tmp_path, capsys):
    out = tmp_path / "x.py"
    assert main([zoo_path(name), "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.exists()
