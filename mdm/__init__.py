"""mdm: the canonical person registry."""

__version__ = "0.1.0"
