"""Differential soundness testing of tgc: random tg programs (`generate`) checked by the compiler
and compared with what PyTorch computes for them (`harness`); `tests/test_differential.py` runs it."""
