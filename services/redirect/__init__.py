"""redirect: the public redirect service (3 replicas behind nginx).

`python -m redirect serve` runs a replica (Starlette): GET/HEAD /{code} from an in-process L1
and the Redis read model built from the `links` topic, publishing a LinkClicked per redirect.
`python -m redirect replay-links` rebuilds the Redis read model from the topic.
See README.md in this folder for the decisions.
"""
