"""Compile-time checks of emitted code (verification, per-op autotest); never shipped to users."""

import warnings

# torch warns "Failed to initialize NumPy" on import where numpy is missing; tgc does not use
# numpy, so the warning only puzzles users of every compile.
warnings.filterwarnings("ignore", message=".*Failed to initialize NumPy.*", category=UserWarning)
