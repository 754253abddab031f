"""Query rules and result shapes: pure, no I/O imports."""
