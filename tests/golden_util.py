"""Golden files: `<name>.tg` with the expected `<name>.py` (or `<name>.err`) beside it."""

from __future__ import annotations

import difflib
import pathlib

import pytest

GOLDEN = pathlib.Path(__file__).parent / "golden"


def cases(area: str, suffix: str) -> list[pathlib.Path]:
    return sorted(p for p in (GOLDEN / area).glob("*.tg") if p.with_suffix(suffix).exists() or True)


def compare(request, expected_path: pathlib.Path, actual: str) -> None:
    """Assert `actual` equals the golden file; `--update-goldens` rewrites it instead."""
    if request.config.getoption("--update-goldens"):
        expected_path.write_text(actual, encoding="utf-8", newline="")
        return
    if not expected_path.exists():
        pytest.fail(f"{expected_path} is missing; run pytest --update-goldens to create it")
    expected = expected_path.read_text(encoding="utf-8")
    if expected != actual:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{expected_path} (expected)",
                tofile="(actual)",
            )
        )
        pytest.fail(f"golden mismatch; if the change is intended, run pytest --update-goldens\n{diff}")
