"""Control of the native local stack: render configs, supervise, check, create topics, migrate.

`python -m stackctl up|down|status|check|migrate|topics|health-server` — the justfile is the index.
"""
