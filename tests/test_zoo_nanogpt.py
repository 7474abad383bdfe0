"""Zoo: nanoGPT (examples/zoo/nanogpt.tg) against a plain-PyTorch reference written here after
Karpathy's nanoGPT model.py: `transformer` (wte, wpe, drop, h, ln_f) and `lm_head`, with
`transformer.wte.weight = lm_head.weight`; each Block is ln_1, attn, ln_2, mlp (c_fc, GELU, c_proj,
dropout). nanoGPT's CausalSelfAttention (c_attn, c_proj) is nn.MultiheadAttention here, called
with a causal mask the way one writes it by hand (need_weights=False, is_causal=True), which is
also the layout of the emitted module (in_proj_weight, in_proj_bias, out_proj), so weights copy by
order. GPT-2 small: 124,439,808 parameters (tied weight once); nanoGPT's printed 123.65M is that
without the 1024 x 768 position embeddings.
"""

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

NAME = "nanogpt.tg"
GPT2_SMALL = dict(vocab=50257, block_size=1024, d=768, heads=12, layers=12)


# --- reference ----------------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self, d: int, p: float = 0.0) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * d, d)
        self.dropout = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, d: int, heads: int, p: float = 0.0) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.resid_dropout = nn.Dropout(p)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = MLP(d, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.ln_1(x)
        t = x.shape[1]
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)  # True: not attended
        a = self.attn(n, n, n, attn_mask=mask, need_weights=False, is_causal=True)[0]
        x = x + self.resid_dropout(a)
        return x + self.mlp(self.ln_2(x))


class GPTReference(nn.Module):
    def __init__(self, vocab: int = 65, block_size: int = 64, d: int = 128, heads: int = 4,
                 layers: int = 4, p: float = 0.0) -> None:
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, d),
            wpe=nn.Embedding(block_size, d),
            drop=nn.Dropout(p),
            h=nn.ModuleList([Block(d, heads, p) for _ in range(layers)]),
            ln_f=nn.LayerNorm(d),
        ))
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying, as nanoGPT

    def get_num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        assert t <= self.block_size
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt_cls():
    cls, _ = compile_zoo(NAME)
    return cls


def ids(vocab: int, batch: int = 2, length: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def randomise_layernorms(module: nn.Module, seed: int = 3) -> None:
    """Layer norms start at weight 1, bias 0: random affine parameters so a swapped ln shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


# --- tests --------------------------------------------------------------------------------------


def test_parameter_count_small(gpt_cls):
    torch.manual_seed(0)
    emitted, reference = gpt_cls(), GPTReference()
    # 65*128 + 64*128 + 4 * (2*2*128 + 3*128*128 + 3*128 + 128*128 + 128 + 128*512 + 512 + 512*128
    # + 128) + 2*128, the tied [65, 128] weight once
    assert trainable(emitted) == trainable(reference) == 809_856


def test_gpt2_small_parameter_count(gpt_cls):
    with torch.device("meta"):
        emitted, reference = gpt_cls(**GPT2_SMALL), GPTReference(**GPT2_SMALL)
    assert trainable(emitted) == trainable(reference) == 124_439_808
    # nanoGPT's "number of parameters: 123.65M" leaves out the position embeddings
    assert reference.get_num_params() == trainable(emitted) - emitted.wpe.weight.numel() == 123_653_376


def test_lm_head_weight_is_wte_weight(gpt_cls):
    emitted = gpt_cls()
    assert emitted.lm_head.weight is emitted.wte.weight
    assert emitted.lm_head.bias is None
    names = [n for n, _ in emitted.named_parameters()]
    assert "wte.weight" in names and "lm_head.weight" not in names  # counted once
    assert {"wte.weight", "lm_head.weight"} <= set(emitted.state_dict())
    # still one tensor after loading a state dict and after a move
    copy_by_order(GPTReference(), emitted)
    emitted = emitted.to(torch.float64)
    assert emitted.lm_head.weight is emitted.wte.weight
    # a gradient through the head reaches the embedding
    emitted.zero_grad()
    emitted(ids(65, length=4)).sum().backward()
    assert emitted.wte.weight.grad is not None and emitted.wte.weight.grad.abs().sum() > 0


def test_same_logits(gpt_cls):
    torch.manual_seed(0)
    reference, emitted = GPTReference(), gpt_cls()
    randomise_layernorms(reference)
    assert_same_outputs(reference, emitted, ids(65))


def test_same_logits_other_sizes_full_context(gpt_cls):
    torch.manual_seed(1)
    sizes = dict(vocab=50, block_size=12, d=48, heads=6, layers=2)
    reference, emitted = GPTReference(**sizes), gpt_cls(**sizes)
    randomise_layernorms(reference)
    assert trainable(emitted) == trainable(reference)
    assert_same_outputs(reference, emitted, ids(50, length=12, seed=1))  # T == block_size


def test_causal(gpt_cls):
    torch.manual_seed(0)
    emitted = gpt_cls().eval()
    a = ids(65, length=10)
    b = a.clone()
    b[:, 6:] = (b[:, 6:] + 1) % 65  # change the future only
    with torch.no_grad():
        la, lb = emitted(a), emitted(b)
    torch.testing.assert_close(la[:, :6], lb[:, :6])
    assert not torch.allclose(la[:, 6:], lb[:, 6:])


@pytest.mark.slow
def test_compiles_without_graph_breaks(gpt_cls):
    assert_compiles_without_graph_breaks(gpt_cls().eval(), ids(65))


def test_check_clean_and_compile(tmp_path, capsys):
    assert main(["check", "--werror", zoo_path(NAME)]) == 0
    out = capsys.readouterr()
    assert "warning" not in (out.out + out.err).lower(), out.out + out.err
    assert main([zoo_path(NAME), "-o", str(tmp_path / "x.py")]) == 0, capsys.readouterr().err
    assert (tmp_path / "x.py").exists()
