"""shorten: the link management API and its outbox relay.

`python -m shorten serve` runs the REST API (Starlette), `python -m shorten relay` publishes
the transactional outbox to the `links` topic. See README.md in this folder for the decisions.
"""
