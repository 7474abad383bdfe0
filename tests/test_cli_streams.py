"""Issue 13, first command-line cases: stdout holds only the command's output; -o is checked."""

from __future__ import annotations

import json
import pathlib

from tgc.compiler.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
TWO_TOWER = str(ROOT / "examples" / "two_tower.tg")


def test_json_diagnostics_leave_stdout_to_the_summary_and_the_python(capsys):
    assert main(["summary", TWO_TOWER, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("model TwoTower") and json.loads(err) == []
    assert main([TWO_TOWER, "-o", "-", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith('"""TwoTower') and json.loads(err) == []
    assert main(["check", TWO_TOWER, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # check's own output is the JSON


def test_an_empty_or_self_output_is_a_usage_error(tmp_path, capsys):
    src = tmp_path / "m.tg"
    src.write_text(pathlib.Path(TWO_TOWER).read_text())
    assert main([str(src), "-o", ""]) == 2
    assert main([str(src), "-o", str(src)]) == 2
    assert src.read_text() == pathlib.Path(TWO_TOWER).read_text()  # the source is intact
    assert "source file itself" in capsys.readouterr().err
