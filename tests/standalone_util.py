"""Running code in a fresh interpreter where numpy, scikit-learn and tgc cannot be imported:
the vendored runtime must import (and fail clearly) without them."""

from __future__ import annotations

import subprocess
import sys

BLOCKER = """
import importlib.util, sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numpy", "sklearn", "scipy", "pandas", "tgc"):
            # ModuleNotFoundError, which torch's optional numpy import catches
            raise ModuleNotFoundError("blocked " + name, name=name)
        return None
sys.meta_path.insert(0, _Block())
import warnings
warnings.simplefilter("ignore")
"""


def run_blocked(code: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter where numpy, scikit-learn and tgc cannot be imported."""
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, timeout=60)
