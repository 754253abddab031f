"""Load tests of the shortlink stack: locust users, a bounded runner and a click-count check.

Run with `python -m loadtest run --profile default|100k|dist` and `python -m loadtest boards`
(wired as `just loadtest`, `just loadtest-100k`, `just loadtest-dist`, `just boards`).
See docs/loadtest.md.
"""
