"""The fuzz suite: `generate.py` draws programs from seeds, `test_fuzz_programs.py` checks them."""
