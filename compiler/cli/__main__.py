"""`python -m tgc.compiler.cli ...`: the same as the `tgc` command."""

import sys

from . import main

sys.exit(main())
