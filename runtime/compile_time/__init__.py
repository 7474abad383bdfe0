"""Compile-time checks of emitted code (verification, per-op autotest); never shipped to users."""
