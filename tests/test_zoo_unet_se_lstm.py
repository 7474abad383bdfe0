"""Zoo models: U-Net (examples/zoo/unet.tg), SE-ResNet-20 (examples/zoo/se_resnet.tg) and a
bidirectional LSTM classifier (examples/zoo/bilstm.tg).

Each emitted module is compared with a hand-written PyTorch reference of the implementation its
comment names (milesial/Pytorch-UNet's UNet; akamaster/pytorch_resnet_cifar10's ResNet-20 with
moskomule/senet.pytorch's SE layer; bentrevett/pytorch-sentiment-analysis' RNN), written with the
same module structure and registration order: equal trainable parameter counts, the reference
numbers as literals, equal outputs in eval mode after copying the weights by order (batch-norm
statistics randomised), `torch.compile(fullgraph=True)` without graph breaks, and a clean
`tgc check` and `tgc FILE -o x.py` (which verifies the module with torch.fx).
"""

from __future__ import annotations

import pytest

import torch
import torch.nn.functional as F
from torch import nn

from tgc.compiler.cli import EXIT_OK, main
from zoo_util import assert_compiles_without_graph_breaks, assert_same_outputs, compile_zoo, trainable, zoo_path

BATCH = 2


# --- U-Net: milesial/Pytorch-UNet (unet/unet_parts.py, unet/unet_model.py), bilinear=False --------


class DoubleConv(nn.Module):
    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diff_y = x2.size()[2] - x1.size()[2]
        diff_x = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class RefUNet(nn.Module):
    """milesial's UNet(n_channels, n_classes, bilinear=False), its widths 64..1024 as base..16 * base."""

    def __init__(self, n_channels=3, n_classes=2, base=64):
        super().__init__()
        self.inc = DoubleConv(n_channels, base)
        self.down1 = Down(base, 2 * base)
        self.down2 = Down(2 * base, 4 * base)
        self.down3 = Down(4 * base, 8 * base)
        self.down4 = Down(8 * base, 16 * base)
        self.up1 = Up(16 * base, 8 * base)
        self.up2 = Up(8 * base, 4 * base)
        self.up3 = Up(4 * base, 2 * base)
        self.up4 = Up(2 * base, base)
        self.outc = OutConv(base, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


# --- SE-ResNet-20: akamaster/pytorch_resnet_cifar10 (resnet.py, option A) + senet.pytorch's SELayer --


class SELayer(nn.Module):
    def __init__(self, channel, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class SEBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, reduction=16, se=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SELayer(planes, reduction) if se else nn.Identity()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            # option A: subsample, pad the channels with zeros (the CIFAR ResNets of the paper)
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        out += self.shortcut(x)
        return F.relu(out)


class RefSEResNet(nn.Module):
    def __init__(self, num_blocks=(3, 3, 3), num_classes=10, reduction=16, se=True):
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, num_blocks[0], 1, reduction, se)
        self.layer2 = self._make_layer(32, num_blocks[1], 2, reduction, se)
        self.layer3 = self._make_layer(64, num_blocks[2], 2, reduction, se)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes, num_blocks, stride, reduction, se):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(SEBasicBlock(self.in_planes, planes, s, reduction, se))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return self.linear(out.view(out.size(0), -1))


# --- Bi-LSTM: bentrevett/pytorch-sentiment-analysis, "2 - Upgraded Sentiment Analysis" -----------


class RefBiLSTM(nn.Module):
    """The tutorial's RNN, without packing: text comes batch first and is transposed to its
    sequence-first LSTM."""

    def __init__(self, vocab_size=25002, embedding_dim=100, hidden_dim=256, output_dim=1, n_layers=2,
                 bidirectional=True, dropout=0.5, pad_idx=1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_idx)
        self.rnn = nn.LSTM(embedding_dim, hidden_dim, num_layers=n_layers, bidirectional=bidirectional,
                           dropout=dropout)
        self.fc = nn.Linear(hidden_dim * 2, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text):
        embedded = self.dropout(self.embedding(text.t()))  # [sent len, batch, emb dim]
        _, (hidden, _) = self.rnn(embedded)
        hidden = self.dropout(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1))
        return self.fc(hidden)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unet_cls():
    return compile_zoo("unet.tg")[0]


@pytest.fixture(scope="module")
def se_resnet_cls():
    return compile_zoo("se_resnet.tg")[0]


@pytest.fixture(scope="module")
def bilstm_cls():
    return compile_zoo("bilstm.tg")[0]


def image(channels: int, side: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(BATCH, channels, side, side, generator=torch.Generator().manual_seed(seed))


def tokens(vocab: int, length: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (BATCH, length), generator=torch.Generator().manual_seed(seed))


# --- U-Net --------------------------------------------------------------------------------------


def test_unet_parameter_count(unet_cls):
    assert trainable(unet_cls()) == trainable(RefUNet(3, 2, base=16)) == 1_942_594


def test_unet_full_size_parameter_count(unet_cls):
    # milesial's UNet(n_channels=3, n_classes=2, bilinear=False): 31,037,698 parameters.
    assert trainable(unet_cls(base=64)) == trainable(RefUNet(3, 2, base=64)) == 31_037_698


def test_unet_same_outputs(unet_cls):
    torch.manual_seed(0)
    reference, emitted = RefUNet(3, 2, base=16), unet_cls()
    assert_same_outputs(reference, emitted, image(3, 64))


def test_unet_other_widths(unet_cls):
    torch.manual_seed(1)
    reference, emitted = RefUNet(1, 3, base=8), unet_cls(in_channels=1, n_classes=3, base=8)
    assert trainable(emitted) == trainable(reference)
    assert_same_outputs(reference, emitted, image(1, 64))


@pytest.mark.slow
def test_unet_compiles_without_graph_breaks(unet_cls):
    assert_compiles_without_graph_breaks(unet_cls().eval(), image(3, 64))


# --- SE-ResNet-20 ------------------------------------------------------------------------------


def test_se_resnet_parameter_count(se_resnet_cls):
    # ResNet-20: 0.27M (He et al. 2016, table 6), 269,722 exactly; the SE layers add 2,016.
    assert trainable(RefSEResNet(se=False)) == 269_722
    assert trainable(se_resnet_cls()) == trainable(RefSEResNet()) == 271_738


def test_se_resnet_same_outputs(se_resnet_cls):
    torch.manual_seed(0)
    reference, emitted = RefSEResNet(), se_resnet_cls()
    assert_same_outputs(reference, emitted, image(3, 32))


def test_se_resnet_deeper_parameter_count(se_resnet_cls):
    # more=4: SE-ResNet-32 (ResNet-32: 0.46M in He et al. 2016, table 6; 464,154 exactly).
    assert trainable(RefSEResNet((5, 5, 5), se=False)) == 464_154
    assert trainable(se_resnet_cls(more=4)) == trainable(RefSEResNet((5, 5, 5)))


def test_se_resnet_other_depth_reduction_classes(se_resnet_cls):
    # more=1 (SE-ResNet-14), reduction 8, 100 classes.
    torch.manual_seed(1)
    reference = RefSEResNet((2, 2, 2), num_classes=100, reduction=8)
    emitted = se_resnet_cls(n_classes=100, reduction=8, more=1)
    assert trainable(emitted) == trainable(reference)
    assert_same_outputs(reference, emitted, image(3, 32))


@pytest.mark.slow
def test_se_resnet_compiles_without_graph_breaks(se_resnet_cls):
    assert_compiles_without_graph_breaks(se_resnet_cls().eval(), image(3, 32))


# --- Bi-LSTM classifier ------------------------------------------------------------------------


def test_bilstm_parameter_count(bilstm_cls):
    # The count bentrevett's tutorial prints: "The model has 4,810,857 trainable parameters".
    assert trainable(bilstm_cls()) == trainable(RefBiLSTM()) == 4_810_857


def test_bilstm_same_outputs(bilstm_cls):
    torch.manual_seed(0)
    reference, emitted = RefBiLSTM(), bilstm_cls()
    assert_same_outputs(reference, emitted, tokens(25002))


def test_bilstm_other_sizes(bilstm_cls):
    # Three layers (the last layer's states are h_n[-2] and h_n[-1]), four classes.
    torch.manual_seed(1)
    sizes = dict(vocab=500, embedding_dim=32, hidden_dim=24, n_layers=3, n_classes=4, pad_idx=0)
    reference = RefBiLSTM(500, 32, 24, 4, n_layers=3, pad_idx=0)
    emitted = bilstm_cls(**sizes)
    assert trainable(emitted) == trainable(reference)
    assert_same_outputs(reference, emitted, tokens(500, length=7))


@pytest.mark.slow
def test_bilstm_compiles_without_graph_breaks(bilstm_cls):
    # Dynamo treats nn.LSTM as a graph break unless its (experimental) RNN support is switched on;
    # that is torch's limit, not the emitted code's: with it, the whole forward is one graph.
    import torch._dynamo

    with torch._dynamo.config.patch(allow_rnn=True):
        assert_compiles_without_graph_breaks(bilstm_cls().eval(), tokens(25002))


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["unet.tg", "se_resnet.tg", "bilstm.tg"])
def test_check_is_clean_and_builds(name, tmp_path, capsys):
    assert main(["check", "--werror", zoo_path(name)]) == EXIT_OK
    out = capsys.readouterr()
    assert out.err == "" and "warning" not in out.out.lower(), out.out + out.err
    target = tmp_path / "x.py"
    assert main([zoo_path(name), "-o", str(target)]) == EXIT_OK  # verifies the module with torch.fx
    out = capsys.readouterr()
    assert "warning" not in (out.out + out.err).lower(), out.out + out.err
    assert target.exists()
