"""Domain failures, framework-free: a stable public `code`, a message and the offending field.

Domain code raises these (or its own subclasses); each service's entrypoint maps classes to HTTP
statuses in one table (platformkit.errors.install_error_handlers), so a domain never imports
the web layer and a status is decided in one place.
"""


class DomainError(Exception):
    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class StoreUnavailable(DomainError):
    """A store (PostgreSQL, Redis, ClickHouse) cannot be reached; translated from the driver's
    error at the adapter. Every service answers it with 503 and Retry-After."""

    code = "store_unavailable"
