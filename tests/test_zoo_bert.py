"""Zoo: BERT (examples/zoo/bert.tg) against a plain-PyTorch reference written here after
HuggingFace's BertModel + BertForSequenceClassification: embeddings (word_embeddings,
position_embeddings, token_type_embeddings, LayerNorm eps 1e-12, dropout), an encoder of post-norm
BertLayers, a pooler (dense + tanh on the first token) and a classifier (dropout + linear).
HuggingFace's BertSelfAttention (query, key, value) + BertSelfOutput.dense is nn.MultiheadAttention
here, called with a key-padding mask (True = padded, i.e. HuggingFace's `attention_mask == 0`);
that is also the layout of the emitted module (in_proj_weight, in_proj_bias, out_proj), so weights
copy by order. BERT-base: 108,891,648 parameters in embeddings + encoder, 590,592 in the pooler
(109,482,240: HuggingFace's bert-base-uncased BertModel), 1,538 in a 2-class classifier.

Outputs are compared where they are defined: the sequence output at unpadded positions, the pooled
output and the logits (the first token is never padded).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tgc.compiler.cli import main
from zoo_util import assert_compiles_without_graph_breaks, compile_zoo, copy_by_order, trainable, zoo_path

NAME = "bert.tg"
BERT_BASE = dict(vocab=30522, d=768, heads=12, layers=12, max_position=512, type_vocab=2)


# --- reference ----------------------------------------------------------------------------------


class BertEmbeddings(nn.Module):
    def __init__(self, vocab: int, d: int, max_position: int, type_vocab: int, p: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, d)
        self.position_embeddings = nn.Embedding(max_position, d)
        self.token_type_embeddings = nn.Embedding(type_vocab, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(p)
        self.register_buffer("position_ids", torch.arange(max_position).unsqueeze(0), persistent=False)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        position_ids = self.position_ids[:, : input_ids.shape[1]]
        e = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        e = e + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(e))


class BertLayer(nn.Module):
    """attention (HF: attention.self + attention.output.dense), attention.output.LayerNorm,
    intermediate.dense + GELU, output.dense, output.LayerNorm."""

    def __init__(self, d: int, heads: int, p: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.attention_dropout = nn.Dropout(p)
        self.attention_LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.intermediate = nn.Linear(d, 4 * d)
        self.output_dense = nn.Linear(4 * d, d)
        self.output_dropout = nn.Dropout(p)
        self.output_LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
        a = self.attention(x, x, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
        h = self.attention_LayerNorm(x + self.attention_dropout(a))
        f = self.output_dropout(self.output_dense(nn.functional.gelu(self.intermediate(h))))
        return self.output_LayerNorm(h + f)


class BertPooler(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d, d)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


class BertReference(nn.Module):
    def __init__(self, vocab: int = 1000, d: int = 64, heads: int = 4, layers: int = 2,
                 max_position: int = 128, type_vocab: int = 2, n_classes: int = 2, p: float = 0.1) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, d, max_position, type_vocab, p)
        self.encoder = nn.ModuleList([BertLayer(d, heads, p) for _ in range(layers)])
        self.pooler = BertPooler(d)
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(d, n_classes)

    def forward(self, input_ids: torch.Tensor, pad: torch.Tensor, token_type_ids: torch.Tensor):
        h = self.embeddings(input_ids, token_type_ids)
        for layer in self.encoder:
            h = layer(h, pad)
        pooled = self.pooler(h)
        return h, pooled, self.classifier(self.dropout(pooled))


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bert_cls():
    cls, _ = compile_zoo(NAME)
    return cls


def batch(vocab: int = 1000, length: int = 12, padded: int = 5, seed: int = 0):
    """Two sequences: the first unpadded, the second with its last `padded` positions padded
    (their ids are 0, HuggingFace's [PAD]); token types 0 then 1 (two segments)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (2, length), generator=g)
    pad = torch.zeros(2, length, dtype=torch.bool)
    pad[1, length - padded:] = True
    ids[pad] = 0
    token_type = torch.zeros(2, length, dtype=torch.long)
    token_type[:, length // 2:] = 1
    return ids, pad, token_type


def randomise_layernorms(module: nn.Module, seed: int = 3) -> None:
    """Layer norms start at weight 1, bias 0: random affine parameters so a swapped one shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def assert_same_defined_outputs(reference: nn.Module, emitted: nn.Module, ids, pad, token_type,
                                atol: float = 1e-5) -> float:
    """Copy the reference's weights by order; in eval mode equal sequence outputs at unpadded
    positions, equal pooled outputs and logits. Returns the largest absolute difference."""
    randomise_layernorms(reference)
    copy_by_order(reference, emitted)
    reference.eval()
    emitted.eval()
    with torch.no_grad():
        want, got = reference(ids, pad, token_type), emitted(ids, pad, token_type)
    assert len(got) == 3
    keep = ~pad
    pairs = [(got[0][keep], want[0][keep]), (got[1], want[1]), (got[2], want[2])]
    for g, w in pairs:
        assert g.shape == w.shape, (g.shape, w.shape)
        torch.testing.assert_close(g, w, atol=atol, rtol=1e-5)
    return max((g - w).abs().max().item() for g, w in pairs)


# --- tests --------------------------------------------------------------------------------------


def test_parameter_count_small(bert_cls):
    emitted, reference = bert_cls(), BertReference()
    # embeddings (1000 + 128 + 2) * 64 + 2*64; per layer 4*64*64 + 4*64 (attention) + 2*64
    # + 64*256 + 256 + 256*64 + 64 + 2*64; pooler 64*64 + 64; classifier 64*2 + 2
    assert trainable(emitted) == trainable(reference) == 72_448 + 2 * 49_984 + 4_160 + 130 == 176_706


def test_state_dict_layout(bert_cls):
    emitted = bert_cls()
    keys = list(emitted.state_dict())
    assert keys[:5] == ["word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
                        "embeddings.weight", "embeddings.bias"]
    assert "encoder.0.attention.in_proj_weight" in keys and "encoder.1.output_norm.bias" in keys
    assert keys[-4:] == ["pooler.weight", "pooler.bias", "classifier.weight", "classifier.bias"]
    assert len(keys) == len(BertReference().state_dict()) == 5 + 2 * 12 + 4


def test_bert_base_parameter_count(bert_cls):
    with torch.device("meta"):
        emitted, reference = bert_cls(**BERT_BASE), BertReference(**BERT_BASE)
    assert trainable(emitted) == trainable(reference) == 109_483_778
    pooler = sum(p.numel() for p in emitted.pooler.parameters())
    classifier = sum(p.numel() for p in emitted.classifier.parameters())
    assert pooler == 590_592 and classifier == 1_538
    # embeddings + encoder: HuggingFace's BertModel(add_pooling_layer=False) for bert-base-uncased
    assert trainable(emitted) - pooler - classifier == 108_891_648
    assert trainable(emitted) - classifier == 109_482_240  # BertModel with its pooler: "110M"


def test_same_outputs_with_padding(bert_cls):
    torch.manual_seed(0)
    reference, emitted = BertReference(), bert_cls()
    diff = assert_same_defined_outputs(reference, emitted, *batch())
    assert diff < 1e-5


def test_same_outputs_other_sizes(bert_cls):
    torch.manual_seed(1)
    sizes = dict(vocab=50, d=48, heads=6, layers=3, max_position=16, type_vocab=3, n_classes=5)
    reference, emitted = BertReference(**sizes), bert_cls(**sizes)
    assert trainable(emitted) == trainable(reference)
    ids, pad, token_type = batch(vocab=50, length=16, padded=9, seed=1)  # length == max_position
    token_type[0, -3:] = 2
    assert_same_defined_outputs(reference, emitted, ids, pad, token_type)


def test_padding_is_ignored(bert_cls):
    """A padded sequence gives, at its unpadded positions, the outputs of the same sequence cut to
    its unpadded length (positions are not shifted: padding is at the end); and what the padded
    positions hold does not matter."""
    torch.manual_seed(0)
    emitted = bert_cls().eval()
    ids, pad, token_type = batch(length=12, padded=5)
    with torch.no_grad():
        seq, pooled, logits = emitted(ids, pad, token_type)
        short = emitted(ids[1:, :7], pad[1:, :7], token_type[1:, :7])
        other = ids.clone()
        other[pad] = 7  # other tokens under the padding
        seq2, pooled2, logits2 = emitted(other, pad, token_type)
        unmasked = emitted(other, torch.zeros_like(pad), token_type)
    torch.testing.assert_close(seq[1, :7], short[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled[1:], short[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[1:], short[2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(seq2[~pad], seq[~pad])
    torch.testing.assert_close(pooled2, pooled)
    torch.testing.assert_close(logits2, logits)
    # without the mask the padded tokens are attended to and change the unpadded outputs
    assert not torch.allclose(unmasked[1][1], pooled[1], atol=1e-4)
    # the unpadded first sequence does not depend on the second's padding
    torch.testing.assert_close(unmasked[1][0], pooled[0], atol=1e-6, rtol=1e-5)


def test_token_types_matter(bert_cls):
    torch.manual_seed(0)
    emitted = bert_cls().eval()
    ids, pad, token_type = batch()
    with torch.no_grad():
        a = emitted(ids, pad, token_type)[1]
        b = emitted(ids, pad, torch.zeros_like(token_type))[1]
    assert not torch.allclose(a, b, atol=1e-4)


def test_dropout_in_training(bert_cls):
    torch.manual_seed(0)
    emitted = bert_cls(p=0.5)
    ids, pad, token_type = batch()
    emitted.train()
    a, b = emitted(ids, pad, token_type)[2], emitted(ids, pad, token_type)[2]
    assert not torch.allclose(a, b)
    emitted.eval()
    with torch.no_grad():
        torch.testing.assert_close(emitted(ids, pad, token_type)[2], emitted(ids, pad, token_type)[2])


@pytest.mark.slow
def test_compiles_without_graph_breaks(bert_cls):
    assert_compiles_without_graph_breaks(bert_cls().eval(), *batch())


def test_check_clean_and_compile(tmp_path, capsys):
    assert main(["check", "--werror", zoo_path(NAME)]) == 0
    out = capsys.readouterr()
    assert "warning" not in (out.out + out.err).lower(), out.out + out.err
    assert main([zoo_path(NAME), "-o", str(tmp_path / "x.py")]) == 0, capsys.readouterr().err
    assert (tmp_path / "x.py").exists()
