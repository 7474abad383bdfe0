"""The `tgc` command line: exit codes, output formats and hostile inputs (LANGUAGE.md 11-12).

Exit codes: 0 ok, 1 user errors, 2 usage errors, 3 internal errors (one line; `--debug` shows the
traceback). Whatever the file holds, a user never sees a Python traceback.
Each behaviour is checked in-process (`main([...])`) and, where the process boundary matters
(exit status, stderr, the console entry point), in a subprocess.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tgc import __version__
from tgc.compiler import pipeline
from tgc.compiler.cli import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, EXIT_USER, main

ROOT = Path(__file__).resolve().parent.parent
TWO_TOWER = ROOT / "examples" / "two_tower.tg"

CLEAN = "a = linear(x) >> relu; b = linear(x); merge add(a, b)\n"
TYPO = "a = x >> lineer(3)\n"  # E012 at 1:10
WARNING_ONLY = "model M(h: int = 3) {\n    input x: [batch, feature=4]\n    y = x >> relu\n}\n"  # W003


def _write(tmp_path: Path, text: str | bytes, name: str = "f.tg") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))  # no newline translation
    return path


def run_tgc(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "tgc.compiler.cli", *map(str, args)],
        capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout, env=env,
    )


def check_json(path: Path, capsys, *extra: str) -> tuple[int, list[dict]]:
    code = main(["check", str(path), "--format", "json", *extra])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, json.loads(out.out)


# ------------------------------------------------------------------------------ exit codes


def test_clean_file_exits_0(tmp_path, capsys):
    path = _write(tmp_path, CLEAN)
    assert main(["check", str(path)]) == EXIT_OK
    out = capsys.readouterr()
    assert out.out.strip() == f"{path}: ok (model Model)"
    assert out.err == ""


def test_error_exits_1(tmp_path, capsys):
    path = _write(tmp_path, TYPO)
    assert main(["check", str(path)]) == EXIT_USER
    err = capsys.readouterr().err
    assert "error[E012]: unknown op `lineer`" in err
    assert f"--> {path}:1:10" in err
    assert "did you mean `linear`?" in err


def test_any_error_among_several_files_exits_1(tmp_path, capsys):
    good = _write(tmp_path, CLEAN, "good.tg")
    bad = _write(tmp_path, TYPO, "bad.tg")
    assert main(["check", str(good), str(bad)]) == EXIT_USER
    assert main(["check", str(good), str(good)]) == EXIT_OK


def test_exit_codes_in_a_subprocess(tmp_path):
    good = _write(tmp_path, CLEAN, "good.tg")
    bad = _write(tmp_path, TYPO, "bad.tg")
    assert run_tgc("check", good).returncode == EXIT_OK
    r = run_tgc("check", bad)
    assert r.returncode == EXIT_USER and "E012" in r.stderr and "Traceback" not in r.stderr
    r = run_tgc("frobnicate", good)
    assert r.returncode == EXIT_USAGE and "unknown command" in r.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["frobnicate"], "unknown command"),
        (["chek", "{file}"], "did you mean `check`?"),
        ([], "usage"),
        (["check"], "FILE"),
        (["check", "--input", "x=abc", "{file}"], "--input"),
        (["check", "--input", "x=0", "{file}"], "--input"),
        (["check", "--input", "=16", "{file}"], "--input"),
        (["check", "--param", "nope=1", "{file}"], "nope"),
        (["check", "--param", "novalue", "{file}"], "--param"),
        (["check", "--input", "y=16", "{file}"], "y"),
        (["check", "--format", "xml", "{file}"], "--format"),
        (["check", "--no-such-option", "{file}"], "--no-such-option"),
        (["check", "--plugin", "/nonexistent/plugin.py", "{file}"], "plugin"),
    ],
)
def test_usage_errors_exit_2(argv, message, tmp_path, capsys):
    path = _write(tmp_path, "model M(hidden: int = 4) {\n    input x: [batch, feature=4]\n"
                            "    y = x >> linear(hidden)\n}\n")
    code = main([a.replace("{file}", str(path)) for a in argv])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert message in err
    assert "Traceback" not in err


def test_usage_error_in_a_subprocess(tmp_path):
    path = _write(tmp_path, CLEAN)
    for argv in (["check"], ["check", "--input", "x=abc", path], ["check", "--param", "nope=1", path]):
        r = run_tgc(*argv)
        assert r.returncode == EXIT_USAGE, (argv, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.strip()


def test_usage_errors_of_each_command_module_exit_2_under_python_m(tmp_path):
    """`python -m tgc.compiler.cli` runs `__main__.py`, which imports the package: the command
    modules' UsageError is the one `main` catches (when cli.py ran as `__main__` itself, the
    commands imported a second copy of it, and these were internal errors, exit 3)."""
    for argv, message in ((["graph", TWO_TOWER, "-o", tmp_path / "g.txt"], "cannot tell the format"),
                          (["graph", TWO_TOWER, "-o", "-", "--as", "svg"], "SVG needs an output file"),
                          ([TWO_TOWER, "-o", "-", "--check", "--no-verify"], "--check and --diff need")):
        r = run_tgc(*argv)
        assert r.returncode == EXIT_USAGE, (argv, r.stderr)
        assert message in r.stderr and "internal error" not in r.stderr, (argv, r.stderr)


def test_param_and_input_that_exist_are_accepted(tmp_path, capsys):
    path = _write(tmp_path, "model M(hidden: int = 4) {\n    input x: [batch, feature=4]\n"
                            "    y = x >> linear(hidden)\n}\n")
    assert main(["check", str(path), "--param", "hidden=8"]) == EXIT_OK
    implicit = _write(tmp_path, CLEAN, "card.tg")
    assert main(["check", str(implicit), "--input", "x=16"]) == EXIT_OK


# ------------------------------------------------------------------------------ internal errors


def _boom(*args, **kwargs):
    raise RuntimeError("the resolver fell over\nsecond line of the message")


def test_internal_error_is_one_line_exit_3(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "resolve", _boom)
    path = _write(tmp_path, CLEAN)
    assert main(["check", str(path)]) == EXIT_INTERNAL
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith("tgc: internal error: RuntimeError: the resolver fell over")
    assert "--debug" in lines[0]
    assert "Traceback" not in out.err and "second line" not in out.err


def test_internal_error_with_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "resolve", _boom)
    path = _write(tmp_path, CLEAN)
    assert main(["check", str(path), "--debug"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "_boom" in err
    assert err.strip().splitlines()[-1].startswith("tgc: internal error: RuntimeError")


def test_internal_error_in_a_subprocess(tmp_path):
    # a plugin is ordinary Python run before the check: make it break a stage
    plugin = tmp_path / "break_resolve.py"
    plugin.write_text(
        "import tgc.compiler.pipeline as p\n"
        "def boom(*a, **k):\n    raise KeyError('oops')\n"
        "p.resolve = boom\n",
        encoding="utf-8",
    )
    path = _write(tmp_path, CLEAN)
    r = run_tgc("check", path, "--plugin", plugin)
    assert r.returncode == EXIT_INTERNAL
    assert len(r.stderr.strip().splitlines()) == 1 and "internal error" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_tgc("check", path, "--plugin", plugin, "--debug")
    assert r.returncode == EXIT_INTERNAL and "Traceback" in r.stderr


# ------------------------------------------------------------------------------ formats and flags


def test_json_format(tmp_path, capsys):
    path = _write(tmp_path, "a = x >> lineer(3)\nb = a >> relu(\n")
    code, diags = check_json(path, capsys)
    assert code == EXIT_USER
    assert diags, "no diagnostics"
    for d in diags:
        for key in ("file", "line", "column", "code", "message"):
            assert key in d
        assert d["file"] == str(path)
        assert isinstance(d["line"], int) and isinstance(d["column"], int)
        assert re.fullmatch(r"[EW]\d{3}", d["code"])
        assert d["message"]


def test_json_format_lists_several_errors_and_stays_on_stdout(tmp_path, capsys):
    path = _write(tmp_path, "a = x >> lineer(3)\nb = a >> rellu\nc = b >> linear(out_feature=3)\n")
    code = main(["check", str(path), "--format", "json"])
    out = capsys.readouterr()
    diags = json.loads(out.out)
    assert code == EXIT_USER
    assert [(d["line"], d["column"], d["code"]) for d in diags] == [(1, 10, "E012"), (2, 10, "E012"),
                                                                    (3, 17, "E020")]
    assert out.err == ""


def test_json_format_clean_file_is_an_empty_list(tmp_path, capsys):
    code, diags = check_json(_write(tmp_path, CLEAN), capsys)
    assert code == EXIT_OK and diags == []


def test_json_in_a_subprocess(tmp_path):
    path = _write(tmp_path, TYPO)
    r = run_tgc("check", path, "--format", "json")
    assert r.returncode == EXIT_USER
    (d,) = json.loads(r.stdout)
    assert (d["file"], d["line"], d["column"], d["code"]) == (str(path), 1, 10, "E012")
    assert d["message"] == "unknown op `lineer`"


def test_werror_turns_warnings_into_errors(tmp_path, capsys):
    path = _write(tmp_path, WARNING_ONLY)
    code, diags = check_json(path, capsys)
    assert code == EXIT_OK
    assert [d["code"] for d in diags] == ["W003"]
    assert main(["check", str(path), "--werror"]) == EXIT_USER
    err = capsys.readouterr().err
    assert "W003" in err and "--werror" in err
    assert run_tgc("check", path, "--werror").returncode == EXIT_USER


def test_main_restores_the_gc_threshold(tmp_path, capsys):
    # main() collects garbage rarely while it runs (speed), but leaves the caller's setting alone
    before = gc.get_threshold()
    assert main(["check", str(_write(tmp_path, CLEAN))]) == EXIT_OK
    assert main(["frobnicate"]) == EXIT_USAGE
    assert gc.get_threshold() == before


def test_version(capsys):
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"tgc {__version__}"
    r = run_tgc("--version")
    assert r.returncode == EXIT_OK and r.stdout.strip() == f"tgc {__version__}"


def test_help_exits_0(capsys):
    assert main(["--help"]) == EXIT_OK
    assert "check" in capsys.readouterr().out
    assert main(["check", "--help"]) == EXIT_OK
    assert "--werror" in capsys.readouterr().out


# ------------------------------------------------------------------------------ hostile inputs


def _no_traceback(path: Path, *extra: str, expect: int | None = None) -> subprocess.CompletedProcess:
    r = run_tgc("check", path, *extra)
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode in (EXIT_OK, EXIT_USER), (r.returncode, r.stderr[-2000:])
    if expect is not None:
        assert r.returncode == expect, r.stderr[-2000:]
    return r


def test_binary_junk(tmp_path, capsys):
    path = _write(tmp_path, bytes(range(256)) * 8 + b"\x00\xff\xfe")
    r = _no_traceback(path, expect=EXIT_USER)
    assert "E001" in r.stderr
    # junk that is valid UTF-8 (control characters) is a syntax error, not a crash
    path2 = _write(tmp_path, bytes(range(1, 32)) * 4, "ctrl.tg")
    r = _no_traceback(path2, expect=EXIT_USER)
    assert "E002" in r.stderr


def test_empty_file(tmp_path, capsys):
    path = _write(tmp_path, b"", "empty.tg")
    _no_traceback(path, expect=EXIT_OK)
    code, diags = check_json(path, capsys)
    assert code == EXIT_OK and diags == []


def test_only_comments(tmp_path, capsys):
    path = _write(tmp_path, "# a comment\n\n   # another\n#\n# last, with no newline")
    _no_traceback(path, expect=EXIT_OK)
    code, diags = check_json(path, capsys)
    assert code == EXIT_OK and diags == []


def test_invalid_utf8(tmp_path, capsys):
    path = _write(tmp_path, "a = linear(x)\nb = é".encode("utf-8") + b"\xff\xfe = 1\n")
    r = _no_traceback(path, expect=EXIT_USER)
    assert "E001" in r.stderr and "UTF-8" in r.stderr
    code, diags = check_json(path, capsys)
    (d,) = diags
    # the column counts characters (`b = é` is 5 of them), not bytes
    assert (d["code"], d["line"], d["column"]) == ("E001", 2, 6)


def test_a_folder_is_its_tg_files(tmp_path, capsys):
    # issue 13: `tgc check DIR` failed; like black and ruff, a folder stands for its files
    assert main(["check", str(tmp_path)]) == EXIT_USAGE
    assert "holds no .tg file" in capsys.readouterr().err
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    good = "model M() {\n    input x: [batch, feature=4]\n    y = x >> linear(3)\n}\n"
    (tmp_path / "a.tg").write_text(good)
    (tmp_path / "sub" / "b.tg").write_text(good.replace("linear", "lineer"))
    (tmp_path / ".hidden" / "c.tg").write_text("not tg at all")
    (tmp_path / "notes.txt").write_text("not tg either")
    assert main(["check", str(tmp_path)]) == EXIT_USER
    out, err = capsys.readouterr()
    assert out == f"{tmp_path / 'a.tg'}: ok (model M)\n"
    assert "unknown op `lineer`" in err and err.endswith("2 files: 1 ok, 1 failed (1 error)\n")
    code, diags = check_json(tmp_path, capsys)
    assert code == EXIT_USER and [d["code"] for d in diags] == ["E012"]


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "no_such_file.tg"
    r = _no_traceback(path, expect=EXIT_USER)
    assert "E001" in r.stderr and "no_such_file.tg" in r.stderr
    code, diags = check_json(path, capsys)
    assert code == EXIT_USER and diags[0]["code"] == "E001"


def test_one_megabyte_file(tmp_path, capsys):
    filler = ("# filler " + "-" * 90 + "\n") * 10500  # 1.05 MB of comment lines
    path = _write(tmp_path, filler + TYPO)
    assert path.stat().st_size > 1_000_000
    r = _no_traceback(path, "--format", "json", expect=EXIT_USER)
    (d,) = json.loads(r.stdout)
    assert (d["line"], d["column"], d["code"]) == (10501, 10, "E012")


def test_one_megabyte_line(tmp_path, capsys):
    path = _write(tmp_path, "# " + "c" * (1 << 20) + "\n" + TYPO)
    r = _no_traceback(path, "--format", "json", expect=EXIT_USER)
    (d,) = json.loads(r.stdout)
    assert (d["line"], d["column"]) == (2, 10)


@pytest.mark.parametrize(
    "text, code",
    [
        ("a = f(" + "(" * 5000 + "x" + ")" * 5000 + ")\n", "E012"),  # `f` is no op
        ("a = linear(" + "(" * 5000 + "x" + ")" * 5000 + ")\n", None),
        ("a = linear(x, " + "f(" * 5000 + "1" + ")" * 5000 + ")\n", "E007"),
        ("a = linear(x, " + "[" * 5000 + "1" + "]" * 5000 + ")\n", "E007"),
        ("a = linear(x, " + "-" * 5000 + "1)\n", "E007"),
        ("a = f(" + "(" * 5000 + "x" + ")" * 4999 + "\n", "E005"),  # unclosed
    ],
    ids=["parens-unknown-op", "parens-ok", "calls", "lists", "signs", "unclosed"],
)
def test_deeply_nested_expression(text, code, tmp_path, capsys):
    path = _write(tmp_path, text)
    r = _no_traceback(path)
    got, diags = check_json(path, capsys)
    assert got == r.returncode
    if code is None:
        assert got == EXIT_OK, diags
    else:
        assert code in [d["code"] for d in diags]


def test_lone_cr_in_a_comment_is_not_a_line_break(tmp_path, capsys):
    # if CR ended the comment, `b = lineer(a)` would be line 3 and `tail` would be code
    text = "a = linear(x)  # a comment\r tail of the same comment\nb = lineer(a)\n"
    path = _write(tmp_path, text)
    code, diags = check_json(path, capsys)
    assert [(d["code"], d["line"], d["column"]) for d in diags] == [("E012", 2, 5)]
    # and a statement after a CR stays inside the comment: nothing to report
    path2 = _write(tmp_path, "# comment\rb = lineer(x)\n", "cr2.tg")
    code, diags = check_json(path2, capsys)
    assert code == EXIT_OK and diags == []
    _no_traceback(path)


def test_crlf_line_endings(tmp_path, capsys):
    path = _write(tmp_path, "a = linear(x)\r\n\r\n# comment\r\nb = lineer(a)\r\n")
    code, diags = check_json(path, capsys)
    assert [(d["code"], d["line"], d["column"], d["end_column"]) for d in diags] == [("E012", 4, 5, 11)]
    assert main(["check", str(path)]) == EXIT_USER
    err = capsys.readouterr().err
    assert "4 | b = lineer(a)\n" in err  # the CR is not shown
    ok = _write(tmp_path, CLEAN.replace("; ", "\r\n").replace("\n", "\r\n"), "ok.tg")
    _no_traceback(ok, expect=EXIT_OK)


def test_utf8_bom(tmp_path, capsys):
    path = _write(tmp_path, b"\xef\xbb\xbf" + TYPO.encode())
    code, diags = check_json(path, capsys)
    assert [(d["code"], d["line"], d["column"]) for d in diags] == [("E012", 1, 10)]
    ok = _write(tmp_path, b"\xef\xbb\xbf" + CLEAN.encode(), "ok.tg")
    _no_traceback(ok, expect=EXIT_OK)


def _caret_under(rendered: str, line_no: int) -> tuple[str, str]:
    """The shown source line and the caret line under it, without their gutters."""
    lines = rendered.splitlines()
    for i, text in enumerate(lines):
        m = re.match(rf"^{line_no} \| (.*)$", text)
        if m:
            caret = re.match(r"^\s*\| (.*)$", lines[i + 1])
            assert caret, lines[i + 1]
            return m.group(1), caret.group(1)
    raise AssertionError(rendered)


def test_tabs_before_an_error(tmp_path, capsys):
    path = _write(tmp_path, "model M {\n\t\ta = x >> lineer(3)\n}\n")
    code, diags = check_json(path, capsys)
    assert [(d["code"], d["line"], d["column"]) for d in diags if d["code"] == "E012"] == [("E012", 2, 12)]
    main(["check", str(path)])
    err = capsys.readouterr().err
    source, caret = _caret_under(err, 2)
    start = caret.index("^")
    assert source[start:start + len("lineer")] == "lineer", (source, caret)
    assert caret.strip() == "^" * len("lineer")


def test_non_ascii_before_an_error(tmp_path, capsys):
    # columns count characters: a non-BMP character is one column, as in the caret line
    path = _write(tmp_path, "# \U0001f600\né = 1\n")
    code, diags = check_json(path, capsys)
    assert [(d["code"], d["line"], d["column"]) for d in diags] == [("E002", 2, 1)]
    path = _write(tmp_path, 'a = linear(x, "\U0001f600") >> lineer\n', "b.tg")
    code, diags = check_json(path, capsys)
    assert ("E012", 1, 23) in [(d["code"], d["line"], d["column"]) for d in diags]


def test_control_character_in_a_string(tmp_path, capsys):
    # JSON forbids raw control characters in strings; it is a diagnostic, not a JSONDecodeError
    path = _write(tmp_path, 'import std\nload a from "w\teights.pt"\n')
    code, diags = check_json(path, capsys)
    assert code == EXIT_USER
    assert [(d["code"], d["line"], d["column"]) for d in diags] == [("E003", 2, 15)]
    _no_traceback(path, expect=EXIT_USER)


def test_self_reference_is_a_diagnostic(tmp_path, capsys):
    # `a = a` once made the resolver build a graph the IR lint rejected (an internal error)
    for text in ("a = a\n", "a = linear(a)\n", "h = x >> relu\na = a >> relu\n"):
        path = _write(tmp_path, text)
        code, diags = check_json(path, capsys)
        assert code == EXIT_USER, text
        assert "E013" in [d["code"] for d in diags], (text, diags)


def test_a_huge_line_is_shown_as_a_window_around_the_error():
    from tgc.compiler.ast import Span
    from tgc.compiler.diagnostics import error, render

    line = "a = " + " >> ".join(["relu"] * 20000) + " >> lineer"
    column = line.index("lineer") + 1
    text = render(error(Span("m.tg", 1, column, 1, column + 6), "E012", "unknown op `lineer`"), line)
    source_line, caret_line = text.split("\n")[3:5]
    assert len(source_line) < 200 and source_line.endswith(">> lineer")
    assert source_line[caret_line.index("^") : caret_line.index("^") + 6] == "lineer"


def test_an_unknown_train_key_does_not_hide_the_sections_other_errors(tmp_path, capsys):
    # issue 13: "an unknown train key hides the other train errors"
    path = tmp_path / "m.tg"
    path.write_text("model M() {\n  input x: [batch, feature=4]\n  y = x >> linear(3)\n}\n"
                    'train M {\n  data: sklearn("digits")\n  epochz: 3\n  batch_size: 0\n  optimizer: adamx\n}\n')
    code, diags = check_json(path, capsys)
    assert code == EXIT_USER
    assert [(d["line"], d["code"]) for d in diags] == [(7, "E040"), (8, "E041"), (9, "E041")]
