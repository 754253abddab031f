"""Entry points: the Starlette app (served by hypercorn) and the CLI."""
