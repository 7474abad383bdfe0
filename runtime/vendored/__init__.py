"""Code vendored into generated output folders: standard library and torch only, never tgc."""
