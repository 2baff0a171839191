"""The pipeline, one stage a module, pure functions without I/O:
map -> normalise -> block -> compare -> score -> decide -> survivorship."""
