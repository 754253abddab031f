"""Entry points: the Starlette app (`serve`) and the outbox relay process (`relay`)."""
