"""Analytics errors, each with a stable code and an HTTP status (mapped by platformkit.errors)."""

from platformkit.errors import ApiError


class InvalidParameter(ApiError):
    """A query parameter breaks a rule; `code` names the rule, `field` the parameter."""

    status = 422
    code = "invalid_input"


class UnknownLink(ApiError):
    status = 404
    code = "link_not_found"


class StoreUnavailable(ApiError):
    status = 503
    code = "unavailable"
