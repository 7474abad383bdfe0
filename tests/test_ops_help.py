"""`tgc ops`: every op, std block and parameter is documented, listed, and has a help page."""

from __future__ import annotations

import pytest

from tgc.compiler.cli import EXIT_OK, EXIT_USER, main
from tgc.compiler.help import (
    emitted_code,
    help_text,
    list_text,
    missing_block_docs,
    missing_docs,
    split_doc,
    std_blocks,
)
from tgc.compiler.ops.registry import all_ops

OPS = list(all_ops())
BLOCKS = list(std_blocks())


@pytest.mark.parametrize("name", OPS)
def test_every_op_and_parameter_is_documented(name):
    assert missing_docs(all_ops()[name]) == []


@pytest.mark.parametrize("name", BLOCKS)
def test_every_std_block_and_parameter_is_documented(name):
    assert missing_block_docs(std_blocks()[name]) == []


def test_missing_docs_are_found():
    from dataclasses import replace

    from tgc.compiler.ops.registry import HyperParam

    spec = replace(all_ops()["linear"], shape_doc="", params=(HyperParam("out_features", "int"),),
                   params_count=None)
    problems = missing_docs(spec)
    assert any("shape_doc" in p for p in problems)
    assert any("`out_features` has no one-line `doc`" in p for p in problems)
    assert any("params_count" in p for p in problems)
    block = std_blocks()["conv_block"]
    doc = block.block.doc.replace("kernel: ", "kernal: ")
    bad = replace(block, block=replace(block.block, doc=doc))
    assert missing_block_docs(bad) == [
        "parameter `kernel` has no entry under `Parameters:` in the doc comment",
        "`Parameters:` documents `kernal`, which is not a parameter",
    ]


def test_split_doc():
    prose, params = split_doc("Does things.\n\nParameters:\n  a: the first\n    and more.\n  b: second.")
    assert prose == "Does things."
    assert params == {"a": "the first and more.", "b": "second."}


def test_ops_lists_every_op_and_std_block(capsys):
    assert main(["ops"]) == EXIT_OK
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert set(OPS) | set(BLOCKS) <= listed
    assert list_text() == out


@pytest.mark.parametrize("name", OPS)
def test_op_help_page(name):
    spec = all_ops()[name]
    page = help_text(name)
    assert page.startswith(f"{name}(")
    assert spec.doc.split()[0] in page and "Shape:" in page and "Example:" in page
    for p in spec.params:
        assert f"  {p.name}: {p.type}" in page
        for alias in p.aliases:
            assert alias in page
        if p.depends:
            assert "depends: " + " ".join(p.depends.split())[:40] in " ".join(page.split())
    # the PyTorch it emits: compiled from the example (every built-in example compiles)
    emitted = emitted_code(spec)
    assert emitted is not None, f"{name}: the example does not compile; fix it or give `emits`"
    assert "PyTorch (the example compiled" in page
    assert all(line in page for line in emitted[1])


def test_linear_help_page_in_full(capsys):
    assert main(["ops", "linear"]) == EXIT_OK
    page = capsys.readouterr().out
    assert page.startswith("linear(x, out_features=none, bias=true, tie=none) -> out\n")
    assert "  [*, in] -> [*, out_features]" in page
    assert "  out_features: int = none\n" in page and "aliases: out, size" in page
    assert "depends: None (left out) keeps the input's width" in page
    assert "  self.h = nn.Linear(16, 128)\n" in page
    assert "  h = torch.relu(self.h(x))\n" in page
    assert "`in_features` is not a parameter: inferred from the input's last dimension." in page


def test_std_block_help_page(capsys):
    assert main(["ops", "transformer_encoder"]) == EXIT_OK
    page = capsys.readouterr().out
    assert page.startswith("transformer_encoder(d_model: int, heads: int, ff: int, layers: int, p: float = 0.1)")
    assert "  layers: int (required)\n      number of layers, each with its own weights." in page
    assert "Definition:\n  block transformer_encoder(" in page
    assert "Parameters:\n  d_model" in page  # the doc's section is shown per parameter, not in the prose


def test_unknown_name_suggests_the_closest(capsys):
    assert main(["ops", "lineer"]) == EXIT_USER
    err = capsys.readouterr().err
    assert "no op or std block is called `lineer`" in err and "`linear`" in err
    assert main(["ops", "zzzzzz"]) == EXIT_USER
    assert "run `tgc ops` for the list" in capsys.readouterr().err
