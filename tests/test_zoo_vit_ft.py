"""Zoo: ViT-Tiny/16 (examples/zoo/vit_tiny.tg) and the FT-Transformer with a [CLS] token
(examples/zoo/ft_transformer_cls.tg), each against a plain-PyTorch reference written here with
nn.MultiheadAttention / nn.LayerNorm / nn.Linear in the emitted module's registration order.

ViT: timm's vit_tiny_patch16_224 structure (patch_embed conv, cls_token, pos_embed, blocks of
norm1 / attn / norm2 / mlp, norm, head); timm's published count is 5,717,416 parameters.
FT-Transformer: Gorishniy et al. 2021 (rtdl's FTTransformer): numerical feature tokenizer, [CLS]
appended last, the first layer without its attention layernorm, ReGLU feed-forward, head
layernorm >> relu >> linear on the [CLS] token.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tgc.compiler.cli import main
from zoo_util import assert_compiles_without_graph_breaks, assert_same_outputs, compile_zoo, trainable, zoo_path

VIT = "vit_tiny.tg"
FT = "ft_transformer_cls.tg"


# --- references ---------------------------------------------------------------------------------


class ViTBlock(nn.Module):
    """timm's Block with nn.MultiheadAttention in place of timm's Attention (same qkv layout)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm1(x)
        x = x + self.attn(n, n, n, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViTReference(nn.Module):
    """timm's VisionTransformer (class-token pooling, no dropout, no fc_norm)."""

    def __init__(self, image_size: int = 224, patch: int = 16, channels: int = 3, d: int = 192,
                 layers: int = 12, heads: int = 3, mlp_ratio: int = 4, n_classes: int = 1000) -> None:
        super().__init__()
        n_patches = (image_size // patch) ** 2
        self.patch_embed = nn.Conv2d(channels, d, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 1e-6)
        self.pos_embed = nn.Parameter(torch.randn(1, n_patches + 1, d) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(d, heads, mlp_ratio) for _ in range(layers)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, n_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(image).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class NumericalFeatureTokenizer(nn.Module):
    def __init__(self, features: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features, d))
        self.bias = nn.Parameter(torch.randn(features, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight[None] * x[..., None] + self.bias[None]


class FTLayer(nn.Module):
    """rtdl's Transformer block (prenormalization; `first` drops the attention layernorm)."""

    def __init__(self, d: int, heads: int, ff: int, first: bool, attention_dropout: float = 0.2,
                 ffn_dropout: float = 0.1, residual_dropout: float = 0.0) -> None:
        super().__init__()
        self.attention_normalization = nn.Identity() if first else nn.LayerNorm(d)
        self.attention = nn.MultiheadAttention(d, heads, dropout=attention_dropout, batch_first=True)
        self.attention_residual_dropout = nn.Dropout(residual_dropout)
        self.ffn_normalization = nn.LayerNorm(d)
        self.linear_first = nn.Linear(d, 2 * ff)
        self.ffn_dropout = nn.Dropout(ffn_dropout)
        self.linear_second = nn.Linear(ff, d)
        self.ffn_residual_dropout = nn.Dropout(residual_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.attention_normalization(x)
        x = x + self.attention_residual_dropout(self.attention(n, n, n, need_weights=False)[0])
        a, b = self.linear_first(self.ffn_normalization(x)).chunk(2, dim=-1)
        f = self.linear_second(self.ffn_dropout(a * torch.relu(b)))
        return x + self.ffn_residual_dropout(f)


class FTReference(nn.Module):
    def __init__(self, features: int = 8, d_out: int = 1, d_model: int = 192, heads: int = 8,
                 ff: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, d_model))
        self.feature_tokenizer = NumericalFeatureTokenizer(features, d_model)
        self.blocks = nn.Sequential(*[FTLayer(d_model, heads, ff, first=i == 0) for i in range(layers)])
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.ReLU(), nn.Linear(d_model, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.feature_tokenizer(x)
        t = torch.cat([t, self.cls_token.expand(t.shape[0], -1, -1)], dim=1)  # [CLS] appended last
        return self.head(self.blocks(t)[:, -1])


# --- ViT-Tiny -----------------------------------------------------------------------------------


def _vit_small(cls):
    return cls(image_size=32, patch=16, layers=2, n_classes=10)


def test_vit_parameter_count_full_size():
    cls, _ = compile_zoo(VIT)
    torch.manual_seed(0)
    emitted, reference = cls(), ViTReference()
    assert trainable(emitted) == trainable(reference) == 5_717_416  # timm vit_tiny_patch16_224


def test_vit_same_outputs():
    cls, _ = compile_zoo(VIT)
    torch.manual_seed(0)
    reference, emitted = _vit_small(ViTReference), _vit_small(cls)
    assert trainable(emitted) == trainable(reference)
    # position embeddings of a random size so a wrong order of cls and patches shows
    with torch.no_grad():
        reference.pos_embed.normal_()
        reference.cls_token.normal_()
    image = torch.randn(2, 3, 32, 32)
    assert_same_outputs(reference, emitted, image)


def test_vit_other_image_size_and_patch():
    cls, _ = compile_zoo(VIT)
    torch.manual_seed(1)
    args = dict(image_size=24, patch=8, d=48, layers=1, heads=4, n_classes=5)
    reference, emitted = ViTReference(**args), cls(**args)
    assert_same_outputs(reference, emitted, torch.randn(2, 3, 24, 24))


@pytest.mark.slow
def test_vit_compiles_without_graph_breaks():
    cls, _ = compile_zoo(VIT)
    assert_compiles_without_graph_breaks(_vit_small(cls).eval(), torch.randn(2, 3, 32, 32))


# --- FT-Transformer with [CLS] ------------------------------------------------------------------


def test_ft_parameter_count():
    cls, _ = compile_zoo(FT)
    emitted, reference = cls(), FTReference()
    # the paper's default configuration on 8 features, 1 output; counted by hand (no published figure)
    assert trainable(emitted) == trainable(reference) == 894_913


def test_ft_same_outputs():
    cls, _ = compile_zoo(FT)
    torch.manual_seed(0)
    reference, emitted = FTReference(features=5, d_out=3), cls(features=5, d_out=3)
    assert trainable(emitted) == trainable(reference)
    assert_same_outputs(reference, emitted, torch.randn(2, 5))


@pytest.mark.slow
def test_ft_compiles_without_graph_breaks():
    cls, _ = compile_zoo(FT)
    assert_compiles_without_graph_breaks(cls(features=5, d_out=3).eval(), torch.randn(2, 5))


# --- command line -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [VIT, FT])
def test_check_clean_and_compile(name, tmp_path, capsys):
    assert main(["check", zoo_path(name)]) == 0
    out = capsys.readouterr()
    assert "warning" not in (out.out + out.err).lower(), out.out + out.err
    assert main([zoo_path(name), "-o", str(tmp_path / "x.py")]) == 0
    assert (tmp_path / "x.py").exists()
