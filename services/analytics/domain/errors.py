"""Analytics failures, each with a stable code; the entrypoint maps them to HTTP statuses in one
table (entrypoints/app.py STATUS)."""

from platformkit.failures import DomainError, StoreUnavailable

__all__ = ["InvalidParameter", "StoreUnavailable", "UnknownLink"]


class InvalidParameter(DomainError):
    """A query parameter breaks a rule; `code` names the rule, `field` the parameter."""

    code = "invalid_input"


class UnknownLink(DomainError):
    code = "link_not_found"
