"""Every failure the shorten domain names. `code` is stable and public (the API error code);
the entrypoint maps each class to an HTTP status in one table."""

from platformkit.failures import DomainError, StoreUnavailable

__all__ = [
    "AliasTaken",
    "CodeSpaceExhausted",
    "InvalidInput",
    "LinkGone",
    "LinkNotFound",
    "ShortenError",
    "StoreUnavailable",
]


class ShortenError(DomainError):
    code = "shorten_error"


class InvalidInput(ShortenError):
    """A request field breaks a rule; `code` names the rule (url_too_long, alias_reserved, ...)."""

    code = "invalid_input"


class AliasTaken(ShortenError):
    """The alias exists, or existed: deleted codes are never reused."""

    code = "alias_taken"


class LinkNotFound(ShortenError):
    code = "not_found"


class LinkGone(ShortenError):
    """The link was deleted (soft delete: the row stays so its code is never reused)."""

    code = "link_deleted"


class CodeSpaceExhausted(ShortenError):
    """Every generated code collided; with 62^8 codes this means something is wrong."""

    code = "code_generation_failed"
