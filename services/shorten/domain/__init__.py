"""The shorten domain: pure Python, no I/O. Validation, code generation, the link model."""
