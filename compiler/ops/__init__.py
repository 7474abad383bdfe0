"""The op registry and the built-in op families; importing this package registers them.

Each family module (`linear.py`, `conv.py`, ...) declares its ops, each in one `register(OpSpec(...))`
call; `registry.py` is the table every stage reads, `context.py` the contexts the rules receive,
`common.py` helpers shared by families, `drawing.py` the autotest's drawing kit.
"""

from . import builtin  # noqa: F401  (registers every built-in family)
from .registry import REGISTRY, Emission, HyperParam, OpSpec, all_ops, lookup, register  # noqa: F401
