"""`tgc graph`: DOT and Mermaid text from checked models (golden files), escaping, depth, files.

`tests/golden/graph/<model>.dot` and `.mmd` hold the diagrams of `tests/golden/models/<model>.tg`;
`pytest --update-goldens` rewrites them. `docs/*.svg` are rendered by `tgc graph` too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from golden_util import GOLDEN, compare

from tgc.compiler.cli import EXIT_OK, EXIT_USAGE, EXIT_USER, main
from tgc.compiler.cli import tools
from tgc.compiler.graph import build, dot_string, mermaid_text, render
from tgc.compiler.pipeline import check

ROOT = Path(__file__).resolve().parent.parent
GRAPH_MODELS = ["causal_attention", "std_transformer_encoder"]
DOCS = {"cnn.svg": "cnn", "std_transformer_encoder.svg": "std_transformer_encoder"}
HAS_DOT = shutil.which("dot") is not None
# CI installs Graphviz and sets TGC_REQUIRE_GRAPHVIZ=1: there a missing `dot` fails these tests
REQUIRE_GRAPHVIZ = os.environ.get("TGC_REQUIRE_GRAPHVIZ") == "1"
needs_dot = pytest.mark.skipif(
    not HAS_DOT and not REQUIRE_GRAPHVIZ,
    reason="needs Graphviz's `dot` on PATH (apt-get install graphviz); "
    "TGC_REQUIRE_GRAPHVIZ=1 makes this a failure instead of a skip",
)


def _checked(name: str, monkeypatch):
    monkeypatch.chdir(GOLDEN / "models")
    result = check(f"{name}.tg")
    assert result.ok, result.diagnostics
    return result.checked


@pytest.mark.parametrize("fmt, suffix", [("dot", ".dot"), ("mermaid", ".mmd")])
@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_graph_golden(request, monkeypatch, name, fmt, suffix):
    checked = _checked(name, monkeypatch)
    text = render(checked, f"{name}.tg", fmt)
    assert render(checked, f"{name}.tg", fmt) == text, "graph output is not deterministic"
    compare(request, GOLDEN / "graph" / f"{name}{suffix}", text)


def test_every_edge_has_a_shape_and_ports_name_their_inputs(monkeypatch):
    checked = _checked("causal_attention", monkeypatch)
    scene = build(checked, "causal_attention.tg")
    assert scene.edges and all(e.shape.startswith(("[", "int64[", "bool[")) for e in scene.edges)
    into_attention = [e for e in scene.edges if e.dst_name in ("q", "k", "v", "mask")]
    assert sorted(e.dst_name for e in into_attention) == ["k", "mask", "q", "v"]
    mask = next(e for e in into_attention if e.dst_name == "mask")
    assert mask.shape == "bool[batch, token=12]"
    assert any(e.src_name == "out" for e in scene.edges)  # attention's first output, by name
    mermaid = render(checked, "causal_attention.tg", "mermaid")
    assert '|"q: [batch, token=12, feature=d]"|' in mermaid
    dot = render(checked, "causal_attention.tg", "dot")
    assert 'port="i3"' in dot and ">mask<" in dot and ">weights<" in dot


def test_blocks_are_clusters_and_depth_collapses_them(monkeypatch):
    checked = _checked("std_transformer_encoder", monkeypatch)
    full = render(checked, "m.tg", "dot")
    assert full.count("subgraph") == 4  # the model, transformer_encoder, its repeat, the layer
    assert "<b>attention</b>" in full
    one = render(checked, "m.tg", "dot", depth=1)
    assert one.count("subgraph") == 2 and "<b>repeat(layers)</b>" in one and "<b>attention</b>" not in one
    none = render(checked, "m.tg", "dot", depth=0)
    assert none.count("subgraph") == 1 and "<b>transformer_encoder</b>" in none
    assert "[batch, token=16, feature=d_model]" in none


def test_escaping(tmp_path):
    assert dot_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert mermaid_text('say "hi" <b> & #1 | {x}') == (
        "say #quot;hi#quot; #lt;b#gt; #amp; #35;1 #124; #123;x#125;")
    src = tmp_path / "odd.tg"
    src.write_text('block tag(s: str = "x") (x) -> y {\n    y = x >> relu\n}\n'
                   'model Odd {\n    input x: [batch, feature=4]\n'
                   '    y = x >> tag(s="q\\"<&>|#{}\\\\")\n}\n', encoding="utf-8")
    result = check(str(src))
    assert result.ok, result.diagnostics
    dot = render(result.checked, str(src), "dot", depth=0)
    assert '&quot;q\\&quot;&lt;&amp;&gt;|#{}\\\\&quot;' in dot  # HTML-escaped inside the label
    mermaid = render(result.checked, str(src), "mermaid", depth=0)
    for line in mermaid.splitlines():
        inner = re.findall(r'"([^"]*)"', line)
        for label in inner:
            assert not re.search(r"<(?!br/>)|(?<!<br/)>|[{}|]", label), line
    if HAS_DOT:
        done = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True)
        assert done.returncode == 0, done.stderr.decode()


# ------------------------------------------------------------------------------ the command


def test_graph_command_writes_dot_and_mermaid(tmp_path, capsys):
    src = GOLDEN / "models" / "cnn.tg"
    assert main(["graph", str(src), "-o", str(tmp_path / "m.dot")]) == EXIT_OK
    assert (tmp_path / "m.dot").read_text(encoding="utf-8").startswith('digraph "CNN" {')
    assert main(["graph", str(src), "-o", str(tmp_path / "m.mmd")]) == EXIT_OK
    assert (tmp_path / "m.mmd").read_text(encoding="utf-8").startswith("flowchart TB")
    capsys.readouterr()
    assert main(["graph", str(src), "-o", "-", "--as", "mermaid", "--param", "channels=8"]) == EXIT_OK
    assert "[batch, channels=channels, height=28, width=28]" in capsys.readouterr().out
    assert main(["graph", str(src), "-o", str(tmp_path / "m.txt")]) == EXIT_USAGE
    assert "--as" in capsys.readouterr().err


def test_graph_command_reports_errors(tmp_path, capsys):
    bad = tmp_path / "bad.tg"
    bad.write_text("a = x >> lineer(3)\n", encoding="utf-8")
    assert main(["graph", str(bad), "-o", str(tmp_path / "g.dot")]) == EXIT_USER
    assert "E012" in capsys.readouterr().err and not (tmp_path / "g.dot").exists()


def test_svg_without_graphviz_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    out = tmp_path / "m.svg"
    assert main(["graph", str(GOLDEN / "models" / "cnn.tg"), "-o", str(out)]) == EXIT_USER
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err and "-o model.dot" in err and not out.exists()


@needs_dot
@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_svg_and_png_with_graphviz(tmp_path, suffix):
    assert HAS_DOT, ("TGC_REQUIRE_GRAPHVIZ=1 and Graphviz's `dot` is not on PATH "
                     "(.ci/run installs it: apt-get install graphviz)")
    out = tmp_path / f"m{suffix}"
    assert main(["graph", str(GOLDEN / "models" / "causal_attention.tg"), "-o", str(out)]) == EXIT_OK
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    else:
        texts = {t.text for t in ET.fromstring(data).iter("{http://www.w3.org/2000/svg}text")}
        assert "[batch, token=12, feature=d]" in texts and "mask" in texts


@pytest.mark.parametrize("svg, model", sorted(DOCS.items()))
def test_docs_svgs_show_the_current_shapes(svg, model, monkeypatch):
    """docs/*.svg are `tgc graph` renderings: valid SVG with every edge's shape of today's model."""
    data = (ROOT / "docs" / svg).read_bytes()
    texts = {t.text for t in ET.fromstring(data).iter("{http://www.w3.org/2000/svg}text")}
    scene = build(_checked(model, monkeypatch), f"{model}.tg")
    missing = {e.shape for e in scene.edges} - texts
    assert not missing, (f"docs/{svg} is out of date; regenerate it with "
                         f"`tgc graph tests/golden/models/{model}.tg -o docs/{svg}`: {sorted(missing)}")


def test_nodes_show_values_names_and_frozen_only_where_there_are_weights(tmp_path, capsys):
    # issue 13: no value names on nodes, argument expressions instead of values, "frozen" on
    # ops without weights, no left-to-right layout
    src = tmp_path / "m.tg"
    src.write_text(
        "model M(hidden: int = 16, p: float = 0.25) {\n"
        "    input x: [batch, feature=8]\n"
        "    enc = x >> frozen linear(hidden)\n"
        "    h = enc >> relu >> dropout(p)\n"
        "    logits = h >> linear(3)\n"
        "}\n"
    )
    assert main(["graph", str(src), "-o", "-"]) == 0
    dot = capsys.readouterr().out
    assert "<b>linear</b><br/><font point-size=\"9\">16</font>" in dot  # hidden's value
    assert "<font point-size=\"9\">0.25</font>" in dot  # p's value
    assert dot.count(">= h</font>") == 1 and dot.count(">= logits</font>") == 1
    assert dot.count("frozen</font>") == 1  # the frozen linear; relu and dropout have no weights
    assert "rankdir=TB" in dot
    assert main(["graph", str(src), "-o", "-", "--rankdir", "LR"]) == 0
    assert "rankdir=LR" in capsys.readouterr().out
    out = tmp_path / "m.mmd"
    assert main(["graph", str(src), "-o", str(out), "--rankdir", "LR"]) == 0
    assert out.read_text().startswith("flowchart LR") and "= logits" in out.read_text()
