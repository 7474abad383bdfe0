"""`tgc check` of a long generated file: it is valid, and checking it does not import torch.

The speed of that check is a benchmark, not a test (timings fail under load):
`python benchmarks/check_speed.py` prints the best-of-N time and the target (benchmarks/README.md).
`generate_model` is shared with that benchmark.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

N_STATEMENTS = 1000  # benchmarks/check_speed.py: `tgc check` of this many in at most 0.3 s


def generate_model(n_statements: int = N_STATEMENTS, seed: int = 0) -> str:
    """A long model: chains of linear/relu/dropout/layernorm/gelu, adds and muls of earlier
    values, calls written both ways, continuation lines and destructuring. Every value is used."""
    rng = random.Random(seed)
    lines = [
        "# a long generated model",
        "model Long(d: int = 64, p: float = 0.1) {",
        "    input x: [batch, feature=d]",
    ]
    statements = 1  # the input line
    values = ["x"]
    i = 0
    while statements < n_statements - 1:
        src = values[-1]  # each value feeds the next one, so none is unused
        earlier = rng.choice(values[-50:])
        name = f"v{i}"
        kind = rng.randrange(8)
        if kind == 0:
            lines.append(f"    {name} = {src} >> linear(d) >> relu >> dropout(p)")
        elif kind == 1:
            lines.append(f"    {name} = {src} >> layernorm >> linear(d) >> gelu")
        elif kind == 2:
            lines.append(f"    {name} = add({src}, {earlier})")
        elif kind == 3 and statements < n_statements - 2:
            lines.append(f"    {name}_a, {name}_b = split({src}, 2, dim=feature)")
            lines.append(f"    {name} = cat({name}_b, {name}_a, dim=feature) >> linear(d)")
            statements += 1
        elif kind == 4:
            lines.append(f"    {name} = linear({src}, d)")
            lines.append("        >> relu")
        elif kind == 5:
            lines.append(f"    {name} = mul({src}, {earlier}) >> layernorm")
        elif kind == 6:
            lines.append(f"    {name} = {src} >> dropout(p=p)")
        else:
            lines.append(f"    {name} = {src} >> linear(d) >> tanh")
        statements += 1
        values.append(name)
        i += 1
    lines.append(f"    output {values[-1]}")
    lines.append("}")
    statements += 1
    assert statements == n_statements
    return "\n".join(lines) + "\n"


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    return env


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("perf") / "long.tg"
    path.write_text(generate_model(), encoding="utf-8")
    return path


def test_generated_model_is_valid(long_file, capsys):
    # in-process, so that a failure shows the diagnostics
    from tgc.compiler import pipeline
    from tgc.compiler.cli import main

    result = pipeline.check(str(long_file))
    assert result.program is not None, result.diagnostics
    assert len(result.program.models[0].nodes) > N_STATEMENTS
    assert result.diagnostics == [], result.diagnostics[:5]
    assert main(["check", str(long_file)]) == 0


def test_check_1000_statements_in_a_fresh_interpreter(long_file, tmp_path):
    """What a user runs (and what the benchmark times): no diagnostics, exit 0."""
    cmd = [sys.executable, "-m", "tgc.compiler.cli", "check", str(long_file), "--format", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert r.returncode == 0, r.stdout[:2000] + r.stderr
    assert json.loads(r.stdout) == [], r.stdout[:2000]


def test_check_does_not_import_torch(long_file, tmp_path):
    code = (
        "import sys\n"
        "from tgc.compiler.cli import main\n"
        f"rc = main(['check', {str(long_file)!r}, '--format', 'json'])\n"
        "print('torch' in sys.modules, rc, file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path),
                       timeout=60)
    torch_imported, rc = r.stderr.strip().splitlines()[-1].split()
    assert rc == "0", r.stderr
    assert torch_imported == "False", "`tgc check` imported torch"
