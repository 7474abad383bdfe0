"""Shared pytest options: `--update-goldens` rewrites the expected files of golden tests."""


def pytest_addoption(parser):
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/golden/**/*.py and *.err from the current compiler output",
    )
