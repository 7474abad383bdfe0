"""The torch side of tgc, in two parts that never mix.

- `vendored/`: code copied into users' output folders (data sources, metrics, the training
  loop); it imports only the standard library and torch, never tgc.
- `compile_time/`: verification of emitted code and the per-op autotest; it imports the
  compiler and torch, and never ships.
"""
