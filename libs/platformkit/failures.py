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


class InvalidRequest(DomainError):
    """A request breaks a rule its shape states (a query parameter's type, range or pattern);
    422 unless a service's table says otherwise."""

    code = "invalid_input"


class StoreUnavailable(DomainError):
    """A store (PostgreSQL, Redis, ClickHouse) cannot be reached; translated from the driver's
    error at the adapter. Every service answers it with 503 and Retry-After."""

    code = "store_unavailable"


class ApiError(Exception):
    """An error the web layer answers on purpose with its own status (authentication, rate
    limits, bodies): framework-free too, so the key book and the limits carry no web import."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field
        self.headers = headers
