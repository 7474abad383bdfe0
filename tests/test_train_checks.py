"""Check-time diagnostics of a `train` section against its model and data (issue 12).

`compiler/train_checks.py` reports at `tgc check` time what train.py would otherwise find only
when it runs: a loss that does not fit the task (E060), a trained output of the wrong shape
(E061), a next_token model without token ids (E062), an unknown `head` (E063), and, for csv
sources, a missing target column (E064), a feature count unlike the model input's (E065),
columns that fit no input (E066), a data file that is not there (W020) or cannot be read (W021).

`tests/cases/train/*.tg` are data-driven cases annotated the way `tests/cases/frontend/*.tg`
are (`# E@COL CODE: MESSAGE`, `# H: HINT`; see test_frontend_cases.py), but run through the
whole `check` pipeline (the front-end cases run the front end only), from their own folder,
so data paths (`data/*.csv` beside them) and messages do not depend on the machine. A case
whose first line is `# needs: task next_token` or `# needs: head` waits for that part of the
train schema (compiler/train.py) and is skipped until it is there; the tests below that patch
the plan cover the same rules meanwhile.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tgc.compiler import ast as A
from tgc.compiler import train as train_stage
from tgc.compiler.cli import main
from tgc.compiler.diagnostics import CODES, Diagnostic
from tgc.compiler.pipeline import Options, check
from tgc.compiler.train_checks import HEADER_CAP, check_train

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CASES_DIR = Path(__file__).parent / "cases" / "train"
CASE_FILES = sorted(CASES_DIR.glob("*.tg"))
OUR_CODES = ("E060", "E061", "E062", "E063", "E064", "E065", "E066", "E067", "W020", "W021")

_EXPECT = re.compile(r"#\s*([EW])@(\d+)\s+([EW]\d{3}):\s?(.*?)\s*(?=#\s*[EW]@|$)")
_HINT = re.compile(r"^\s*#\s*H:\s?(.*?)\s*$")
_NEEDS = re.compile(r"^#\s*needs:\s*(.*?)\s*$")


def _schema_has(need: str) -> bool:
    if need == "head":  # a key both the front end (TRAIN_KEYS) and the train stage know
        from tgc.compiler.resolve import program

        return "head" in program.TRAIN_KEYS and ("head" in train_stage.SCALARS or "head" in train_stage.CALLS)
    if need.startswith("task "):
        return need.split()[1] in train_stage.SCALARS["task"][0]
    raise AssertionError(f"unknown `# needs:` {need!r}")


def _expectations(text: str) -> list[tuple]:
    """(line, column, severity, code, message, hint or None) per annotation."""
    out: list[list] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        hint = _HINT.match(line)
        if hint:
            assert out and out[-1][5] is None, f"line {lineno}: `# H:` without an expectation before it"
            out[-1][5] = hint.group(1)
            continue
        for m in _EXPECT.finditer(line):
            sev, col, code, message = m.groups()
            out.append([lineno, int(col), "error" if sev == "E" else "warning", code, message, None])
    return [tuple(e) for e in out]


@pytest.mark.parametrize("case", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case(case: Path, monkeypatch) -> None:
    text = case.read_text(encoding="utf-8")
    needs = _NEEDS.match(text.split("\n", 1)[0])
    if needs:  # the case is about a key or task the schema must know
        assert _schema_has(needs.group(1)), f"the train schema has no `{needs.group(1)}`"
    monkeypatch.chdir(CASES_DIR)
    result = check(case.name)
    expected = _expectations(text)
    got = sorted((d.span.line, d.span.column, d.severity, d.code, d.message) for d in result.diagnostics)
    assert got == sorted(e[:5] for e in expected)
    hints = {(d.span.line, d.span.column, d.code, d.message): d.hint for d in result.diagnostics}
    for line, column, _, code, message, hint in expected:
        if hint is not None:
            assert hints[(line, column, code, message)] == hint
    assert case.stem.startswith("ok_") == (expected == [])


def test_cases_cover_every_code() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in CASE_FILES)
    assert all(code in CODES for code in OUR_CODES)
    assert sorted(c for c in OUR_CODES if c not in text) == []
    assert all(p.stem.startswith(("e06", "w02", "ok_")) for p in CASE_FILES)


# ------------------------------------------------------------------------------ helpers


def _write(tmp_path: Path, source: str, name: str = "m.tg") -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


def _check(path: Path, options: Options = Options()) -> list[Diagnostic]:
    result = check(str(path), options)
    assert result.program is not None
    return result.diagnostics


def _ours(diags: list[Diagnostic]) -> list[tuple]:
    return [(d.code, d.span.line, d.span.column, d.message) for d in diags if d.code in OUR_CODES]


def _cli(capsys, *argv: str) -> tuple[int, list[dict]]:
    code = main(["check", *argv, "--format", "json"])
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    return code, json.loads(out.out)


MODEL = """model M(d_in: int = 4) {
    input x: [batch, feature=d_in]
    logits = x >> linear(3)
}
"""


# ------------------------------------------------------------------------------ loss and task


def test_loss_for_another_task_is_an_error_with_exit_code_1(tmp_path, capsys) -> None:
    path = _write(tmp_path, MODEL + 'train M {\n    data: sklearn("digits")\n    task: regression\n'
                  "    loss: bce_with_logits(pos_weight=2.0)\n}\n")
    code, diags = _cli(capsys, str(path))
    assert code == 1
    [d] = diags
    assert (d["code"], d["severity"], d["line"], d["column"], d["end_column"]) == ("E060", "error", 8, 11, 42)
    assert d["message"] == "`bce_with_logits` is a classification loss, but the task is regression"
    assert d["hint"] == "a regression task trains with `mse`, `l1` or `huber` (or `task: classification`)"


def test_the_default_loss_is_not_the_users_mistake(tmp_path) -> None:
    # no `loss:` written: the train stage picks one that fits the task
    for task in ("classification", "regression"):
        path = _write(tmp_path, MODEL + f'train M {{\n    data: sklearn("digits")\n    task: {task}\n}}\n')
        assert _ours(_check(path)) == []


def test_regression_has_no_rank_rule(tmp_path) -> None:
    source = """model M {
    input x: [batch, token=4, feature=3]
    y = x >> linear(2)
}
train M {
    data: sklearn("diabetes")
    task: regression
    loss: mse
}
"""
    assert _ours(_check(_write(tmp_path, source))) == []


# ------------------------------------------------------------------------------ the trained output


SEQ_MODEL = """model M {
    input x: [batch, token=6, feature=3]
    logits = x >> linear(10)
}
"""


def test_cross_entropy_needs_batch_classes(tmp_path) -> None:
    path = _write(tmp_path, SEQ_MODEL + 'train M {\n    data: sklearn("digits")\n    loss: cross_entropy\n}\n')
    diags = _check(path)
    # without `task:` the diagnostic points at the loss
    assert _ours(diags) == [("E061", 7, 11, "a classifier trained with cross_entropy needs the output "
                             "[batch, classes], but `logits` is [batch, token=6, feature=10]")]
    assert diags[0].hint.startswith("flatten or pool to [batch, classes] first")


def test_cross_entropy_rank_without_any_setting_points_at_the_section(tmp_path) -> None:
    path = _write(tmp_path, SEQ_MODEL + 'train M {\n    data: sklearn("digits")\n}\n')
    [d] = _check(path)
    assert (d.code, d.span.line, d.span.column) == ("E061", 5, 1)


def test_bce_with_logits_takes_rank_1_or_2(tmp_path) -> None:
    cases = (("linear(1) >> squeeze(dim=feature)", True), ("linear(3)", True),
             ("linear(3) >> unsqueeze(dim=1)", False))
    for out, ok in cases:
        source = f"""model M {{
    input x: [batch, feature=4]
    logits = x >> {out}
}}
train M {{
    data: sklearn("digits")
    loss: bce_with_logits
}}
"""
        result = check(str(_write(tmp_path, source)))
        assert result.checked is not None, (out, result.diagnostics)
        assert (_ours(result.diagnostics) == []) == ok, (out, result.diagnostics)


def test_classification_examples_stay_clean(capsys) -> None:
    for name in ("digits.tg", "diabetes.tg", "multi_io.tg", "two_tower.tg"):
        assert _cli(capsys, str(EXAMPLES / name)) == (0, []), name


def test_train_example_only_warns_that_its_data_is_not_there(capsys) -> None:
    # examples/train.tg (LANGUAGE.md section 8) names data/train.csv, which the repository has not
    code, diags = _cli(capsys, str(EXAMPLES / "train.tg"))
    assert code == 0
    assert [(d["code"], d["line"], d["column"]) for d in diags] == [("W020", 8, 15)]


# ------------------------------------------------------------------------------ next_token and head
# These patch the checked plan, so they do not wait for the train schema's `task: next_token`
# and `head:` (compiler/train.py); the `# needs:` cases check the same through the source.


def _plan_with(tmp_path: Path, source: str, **config) -> tuple[list, object, str]:
    path = _write(tmp_path, source)
    result = check(str(path))
    assert result.checked is not None and result.plans, result.diagnostics
    result.plans[0].config.update(config)
    return result.plans, result.checked, str(path)


LM = """model LM(vocab: int = 65) {{
    input idx: {input}
    logits = idx >> {body}
}}
train LM {{
    data: sklearn("digits")
    task: classification
}}
"""


def test_next_token_wants_long_batch_token_and_batch_token_vocab(tmp_path) -> None:
    good = LM.format(input="long[batch, token=8]", body="embedding(vocab, 16) >> linear(vocab)")
    assert check_train(*_plan_with(tmp_path, good, task="next_token")) == []
    int32 = LM.format(input="int32[batch, token=8]", body="embedding(vocab, 16) >> linear(vocab)")
    assert check_train(*_plan_with(tmp_path, int32, task="next_token")) == []

    floats = LM.format(input="[batch, token=8, feature=4]", body="linear(vocab)")
    diags = check_train(*_plan_with(tmp_path, floats, task="next_token"))
    assert _ours(diags) == [("E062", 7, 11, "`task: next_token` needs the model's first input to be "
                             "long[batch, token], but `idx` is [batch, token=8, feature=4]")]
    assert diags[0].hint == "declare the token ids as `input idx: long[batch, token]`"

    pooled = LM.format(input="long[batch, token=8]", body="embedding(vocab, 16) >> mean(dim=token) >> linear(vocab)")
    assert _ours(check_train(*_plan_with(tmp_path, pooled, task="next_token"))) == [
        ("E061", 7, 11, "`task: next_token` needs the output [batch, token, vocab], "
                        "but `logits` is [batch, feature=vocab]")
    ]


TWO_OUTPUTS = """model M {
    input x: [batch, token=6, feature=4]
    h = x >> linear(8)
    pooled = h >> mean(dim=token) >> linear(10)
    output h, pooled
}
train M {
    data: sklearn("digits")
    task: classification
}
"""


def test_head_picks_the_trained_output(tmp_path) -> None:
    # the default is the first output, `h`: [batch, token, feature] is no classifier's output
    plans, checked, path = _plan_with(tmp_path, TWO_OUTPUTS)
    assert [d.code for d in check_train(plans, checked, path)] == ["E061"]
    span = A.Span(path, 9, 11, 9, 15)
    plans[0].spans["head"] = span
    plans[0].config["head"] = "pooled"
    assert check_train(plans, checked, path) == []
    plans[0].config["head"] = "poled"
    [d] = check_train(plans, checked, path)
    assert (d.code, d.span, d.message) == ("E063", span, "`head: poled`: model `M` has no output `poled`")
    assert d.hint == "did you mean `pooled`? (the outputs: `h`, `pooled`)"
    plans[0].config["head"] = "x"
    [d] = check_train(plans, checked, path)
    assert d.message == "`head: x`: `x` is not an output of model `M`"
    plans[0].config["head"] = "nothing_like_it"
    [d] = check_train(plans, checked, path)
    assert d.hint == "the model's outputs: `h`, `pooled`"


# ------------------------------------------------------------------------------ csv data


def _csv_program(tmp_path: Path, header: str, model: str = MODEL, target: str = "label",
                 extra: str = "") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "train.csv").write_text(header + "\n" + ",".join("1" * len(header.split(","))) + "\n")
    return _write(tmp_path, model + f'train M {{\n    data: csv("data/train.csv", target="{target}"){extra}\n}}\n')


def test_feature_count_matches(tmp_path) -> None:
    assert _ours(_check(_csv_program(tmp_path, "a,b,c,d,label"))) == []
    # the target may stand anywhere; spaces around names are dropped, as train.py does
    assert _ours(_check(_csv_program(tmp_path, " a ,label, b,c,d"))) == []


def test_feature_count_mismatch_names_the_columns_and_the_parameter(tmp_path) -> None:
    path = _csv_program(tmp_path, "a,b,c,d,e,label")
    diags = _check(path)
    assert _ours(diags) == [("E065", 6, 15, "`data/train.csv` has 5 feature columns (a, b, c, d, e), "
                             "but `x` takes feature=d_in, which is 4")]
    assert diags[0].hint == "run train.py with `--model.d_in 5`, or change the default of `d_in` to 5"
    # `--param` gives the checked value
    assert _ours(_check(path, Options(params=(("d_in", 5),)))) == []


def test_many_columns_are_listed_briefly(tmp_path) -> None:
    header = ",".join(f"p{i}" for i in range(784)) + ",label"
    [d] = _check(_csv_program(tmp_path, header))
    assert d.message == ("`data/train.csv` has 784 feature columns (p0, p1, p2, p3, p4, p5, p6, p7 and 776 more), "
                         "but `x` takes feature=d_in, which is 4")


def test_size_from_an_expression_of_parameters(tmp_path) -> None:
    model = "model M(k: int = 2) {\n    input x: [batch, feature=k * 2]\n    y = x >> linear(3)\n}\n"
    [d] = _check(_csv_program(tmp_path, "a,b,c,label", model))
    assert d.message == "`data/train.csv` has 3 feature columns (a, b, c), but `x` takes feature=k * 2, which is 4"
    assert d.hint == "change the parameters so that k * 2 is 3, or the data's columns"


def test_a_width_filled_from_the_data_is_not_checked(tmp_path) -> None:
    model = "model M {\n    input x\n    y = x >> linear(3)\n}\n"
    assert _ours(_check(_csv_program(tmp_path, "a,b,c,d,e,f,g,label", model))) == []


def test_inputs_that_read_no_feature_columns_are_not_counted(tmp_path) -> None:
    # a [batch, token, feature] input does not take csv feature columns: nothing to count
    model = "model M {\n    input x: [batch, token=2, feature=3]\n    y = x >> linear(3) >> flatten\n}\n"
    assert _ours(_check(_csv_program(tmp_path, "a,b,label", model))) == []


def test_target_column_missing_with_suggestion(tmp_path) -> None:
    diags = _check(_csv_program(tmp_path, "a,b,c,d,Label", target="label"))
    assert _ours(diags) == [("E064", 6, 40, "`data/train.csv` has no column `label`")]
    assert diags[0].hint == "did you mean `Label`? (the columns: a, b, c, d, Label)"


def test_paths_are_relative_to_the_tg_file(tmp_path, monkeypatch, capsys) -> None:
    path = _csv_program(tmp_path, "a,b,c,d,e,label")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, diags = _cli(capsys, "../m.tg")
    assert code == 1 and [d["code"] for d in diags] == ["E065"]
    # an absolute path works too
    (tmp_path / "m.tg").write_text(path.read_text().replace("data/train.csv", str(tmp_path / "data" / "train.csv")))
    assert [d["code"] for d in _cli(capsys, "../m.tg")[1]] == ["E065"]


def test_a_missing_file_is_a_warning_saying_where_it_was_looked_for(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", MODEL + 'train M {\n    data: csv("train.csv", target="label")\n'
           '    valid: csv("../v.csv", target="label")\n}\n')
    monkeypatch.chdir(tmp_path)
    code, diags = _cli(capsys, "sub/m.tg")
    assert code == 0
    assert [(d["severity"], d["code"], d["line"], d["column"], d["message"]) for d in diags] == [
        ("warning", "W020", 6, 15, "data file `train.csv` not found (looked for sub/train.csv)"),
        ("warning", "W020", 7, 16, "data file `../v.csv` not found (looked for v.csv)"),
    ]
    assert main(["check", "sub/m.tg", "--werror"]) == 1
    capsys.readouterr()


@pytest.mark.parametrize(
    "content, why",
    [
        (b"", "the file is empty"),
        (b"\n\n , \n", "the file is empty"),
        (b"\xef\xbb\xbf", "the file is empty"),
        (b"PK\x03\x04\x00\x00binary", "it is a binary file, not csv text"),
        (b"a,b\xff,label\n", "it is not UTF-8 text (byte 0xff on line 1)"),
        (b"1,2,3,4,5\n", "its first row looks like data, not a header"),
        (b"a,,c,d,label\n", "header column 2 has no name"),
        (b"a,a,c,d,label\n", "column `a` appears twice in the header"),
        (b'"' + b"a" * 200_000 + b'",label\n', "it is not a valid csv file (field larger than field limit (131072))"),
        (b",".join(b"c%d" % i for i in range(200_000)) + b",label\n", "no header row ends in its first 1 MB"),
    ],
    ids=["empty", "blank", "bom", "binary", "latin1", "no_header", "unnamed", "twice", "huge_field", "huge_header"],
)
def test_unreadable_files_are_warnings_never_crashes(tmp_path, capsys, content, why) -> None:
    (tmp_path / "d.csv").write_bytes(content)
    path = _write(tmp_path, MODEL + 'train M {\n    data: csv("d.csv", target="label")\n}\n')
    code, diags = _cli(capsys, str(path))
    assert code == 0
    assert [(d["code"], d["line"], d["column"], d["message"]) for d in diags] == [
        ("W021", 6, 15, f"cannot check `d.csv`: {why}")
    ]


def test_a_directory_is_a_warning(tmp_path, capsys) -> None:
    (tmp_path / "d.csv").mkdir()
    path = _write(tmp_path, MODEL + 'train M {\n    data: csv("d.csv", target="label")\n}\n')
    code, [d] = _cli(capsys, str(path))
    assert (code, d["code"]) == (0, "W021")
    assert d["message"] == f"cannot check `d.csv`: {tmp_path / 'd.csv'} is a directory, not a csv file"


def test_only_the_header_is_read(tmp_path) -> None:
    # a header, then megabytes that are neither UTF-8 nor csv: the header is all that is read
    (tmp_path / "big.csv").write_bytes(b"a,b,c,d,label\r\n" + b"\xff\x00" * (4 * HEADER_CAP))
    path = _write(tmp_path, MODEL + 'train M {\n    data: csv("big.csv", target="label")\n}\n')
    start = time.perf_counter()
    assert _ours(_check(path)) == []
    assert time.perf_counter() - start < 2.0
    # a header cut by the cap in a multi-byte character is still read whole
    cut = b"a,b,c," + b"x" * (HEADER_CAP - 7) + "é".encode() + b",label\n"
    (tmp_path / "big.csv").write_bytes(cut + b"1,2,3,4,5\n")
    [d] = _check(path)
    assert d.code == "W021"


def test_several_inputs_take_their_named_columns(tmp_path) -> None:
    model = """model M {
    input x: [batch, feature=2]
    input y: [batch, feature=d]
    a = x >> linear(3)
    b = y >> linear(3)
    merge add(a, b)
}
""".replace("feature=d]", "feature=3]")
    assert _ours(_check(_csv_program(tmp_path, "x.0,y.a,label,x.1,y.b,y.c", model))) == []
    assert _ours(_check(_csv_program(tmp_path, "x,y.0,y.1,y.2,label", model))) == [
        ("E065", 9, 15, "`data/train.csv` has 1 feature column for `x` (x), but `x` takes feature=2"),
    ]
    assert _ours(_check(_csv_program(tmp_path, "x.0,x.1,y.0,y.1,y.2,xy,label", model))) == [
        ("E066", 9, 15, "`data/train.csv` has column `xy` of no input (the inputs: `x`, `y`)"),
    ]


def test_valid_and_test_sources_are_checked_too(tmp_path) -> None:
    extra = '\n    valid: csv("data/valid.csv", target="label")\n    test: csv("data/missing.csv", target="label")'
    path = _csv_program(tmp_path, "a,b,c,d,label", extra=extra)
    (tmp_path / "data" / "valid.csv").write_text("a,b,c,label\n1,2,3,0\n")
    assert [(c, line, col) for c, line, col, _ in _ours(_check(path))] == [("E066", 7, 16), ("W020", 8, 15)]
    # when the training data is not a csv, a validation file is counted against the model
    path.write_text(path.read_text().replace('csv("data/train.csv", target="label")', 'sklearn("digits")'))
    assert _ours(_check(path))[0] == (
        "E065", 7, 16, "`data/valid.csv` has 3 feature columns (a, b, c), but `x` takes feature=d_in, which is 4")


def test_sections_without_csv_or_train_are_untouched(tmp_path) -> None:
    path = _write(tmp_path, MODEL)
    result = check(str(path))
    assert result.ok and result.plans == [] and result.diagnostics == []
    assert check_train([], result.checked, str(path)) == []


def test_text_given_in_memory_resolves_against_the_given_name(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,0\n")
    source = MODEL + 'train M {\n    data: csv("t.csv", target="label")\n}\n'
    result = check("virtual.tg", text=source)
    assert [d.code for d in result.diagnostics] == ["E065"]


def test_a_valid_file_is_not_counted_when_the_training_csv_is_unusable(tmp_path) -> None:
    # train.py reads the training file's columns from the validation file: unknown here
    extra = '\n    valid: csv("data/valid.csv", target="label")'
    path = _csv_program(tmp_path, "a,b,c,d,y", extra=extra)
    (tmp_path / "data" / "valid.csv").write_text("a,b,label\n1,2,0\n")
    assert [d.code for d in _check(path)] == ["E064"]
