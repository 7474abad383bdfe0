"""tgc: compile the tg graph language to standalone, readable PyTorch source."""

__version__ = "0.1.0"
