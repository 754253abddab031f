"""Field rules of the links API. Each rule raises InvalidInput with its own stable code.

Pure functions: they take the decoded JSON value (any type) and return the normalised value.
"""

import ipaddress
import re
from datetime import UTC, datetime
from typing import Literal, cast
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from contracts.links import CODE_RE

from shorten.domain.codes import is_reserved
from shorten.domain.errors import InvalidInput

RedirectType = Literal[301, 302]

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})
ALIAS_MIN, ALIAS_MAX = 3, 64
# JSON clients (JavaScript) represent integers exactly up to 2^53 - 1.
MAX_CLICKS_LIMIT = 2**53 - 1
_HOST_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# Every printable ASCII character except space is kept as typed; only non-ASCII is %-encoded.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def _invalid(code: str, message: str, field: str) -> InvalidInput:
    return InvalidInput(message, code=code, field=field)


def validate_url(value: object, *, field: str = "url") -> str:
    """An absolute http(s) URL with a host, no credentials, <= 2048 characters.

    Normalised: scheme and host lower case, IDN host in punycode (Python's `idna` codec),
    non-ASCII in path/query/fragment percent-encoded (UTF-8).
    """
    if not isinstance(value, str) or not value:
        raise _invalid("url_invalid", "url must be a non-empty string", field)
    if len(value) > MAX_URL_LENGTH:
        raise _invalid("url_too_long", f"url is longer than {MAX_URL_LENGTH} characters", field)
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise _invalid("url_invalid", "url contains whitespace or control characters", field)
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise _invalid("url_invalid", f"url cannot be parsed: {exc}", field) from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise _invalid("url_scheme_not_allowed", "only http and https URLs are accepted", field)
    if "@" in parts.netloc:
        raise _invalid("url_has_credentials", "url must not contain user:password@", field)
    if not parts.hostname:
        raise _invalid("url_missing_host", "url has no host", field)
    normalised = _rebuild(parts, scheme, field)
    if len(normalised) > MAX_URL_LENGTH:
        raise _invalid("url_too_long", f"url is longer than {MAX_URL_LENGTH} characters", field)
    return normalised


def _rebuild(parts: SplitResult, scheme: str, field: str) -> str:
    try:
        port = parts.port
    except ValueError as exc:
        raise _invalid("url_invalid", "url has an invalid port", field) from exc
    host = normalise_host(cast(str, parts.hostname), field=field)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    path, query, fragment = parts.path, parts.query, parts.fragment
    if not (path.isascii() and query.isascii() and fragment.isascii()):
        # Printable ASCII is kept as typed (validate_url refused whitespace and controls), so
        # only a URL with non-ASCII characters has anything to encode.
        try:
            path, query, fragment = (quote(p, safe=_URL_SAFE) for p in (path, query, fragment))
        except UnicodeEncodeError as exc:
            raise _invalid("url_invalid", "url is not valid Unicode", field) from exc
    return urlunsplit((scheme, netloc, path, query, fragment))


def normalise_host(host: str, *, field: str = "url") -> str:
    """IP literal or DNS name; a non-ASCII (IDN) name becomes punycode via the `idna` codec."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError as exc:
            raise _invalid("url_host_invalid", "url host is not a valid IPv6 address", field) from exc
    if host.isascii():  # nothing to convert; the label rules below check what the codec would
        ascii_host = host.lower()
    else:
        try:
            ascii_host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise _invalid("url_host_invalid", f"url host cannot be encoded: {exc}", field) from exc
    ascii_host = ascii_host.removesuffix(".")
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise _invalid("url_host_invalid", "url host is not a valid host name", field)
    return ascii_host


def validate_alias(value: object, *, field: str = "alias") -> str:
    """3-64 characters of [A-Za-z0-9_-], not a reserved path (case-insensitive)."""
    if not isinstance(value, str):
        raise _invalid("alias_invalid", "alias must be a string", field)
    if is_reserved(value):
        raise _invalid("alias_reserved", f"alias {value!r} is a reserved path", field)
    if not ALIAS_MIN <= len(value) <= ALIAS_MAX or not CODE_RE.fullmatch(value):
        raise _invalid("alias_invalid", f"alias must be {ALIAS_MIN}-{ALIAS_MAX} characters of A-Z a-z 0-9 _ -", field)
    return value


def validate_expires_at(value: object, *, now: datetime, field: str = "expires_at") -> datetime | None:
    """None (never expires) or a timezone-aware ISO 8601 time in the future, returned in UTC."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise _invalid("expires_at_invalid", "expires_at must be an ISO 8601 string", field)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise _invalid("expires_at_invalid", "expires_at must include a timezone offset", field)
        moment = parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _invalid("expires_at_invalid", "expires_at is not an ISO 8601 time", field) from exc
    if moment <= now:
        raise _invalid("expires_at_in_past", "expires_at must be in the future", field)
    return moment


def validate_redirect_type(value: object, *, field: str = "redirect_type") -> RedirectType:
    if type(value) is int and value in (301, 302):
        return cast(RedirectType, value)
    raise _invalid("redirect_type_invalid", "redirect_type must be 301 or 302", field)


def validate_max_clicks(value: object, *, field: str = "max_clicks") -> int | None:
    """None (unlimited) or a positive integer (JSON booleans and floats are refused)."""
    if value is None:
        return None
    if type(value) is int and 1 <= value <= MAX_CLICKS_LIMIT:
        return value
    raise _invalid("max_clicks_invalid", f"max_clicks must be an integer from 1 to {MAX_CLICKS_LIMIT}", field)


MAX_TAGS, MAX_TAG_LENGTH = 20, 40  # contracts.links.Tags


def validate_tag(value: object, *, field: str = "tags") -> str:
    """1-40 characters, no comma (tags are listed comma-separated elsewhere) and no control
    characters; kept as typed (tags are labels the user chose, compared exactly)."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_TAG_LENGTH
        or any(ch == "," or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    ):
        raise _invalid(
            "tag_invalid",
            f"a tag is a string of 1-{MAX_TAG_LENGTH} characters without commas or control characters",
            field,
        )
    return value


def validate_tags(value: object, *, field: str = "tags") -> tuple[str, ...]:
    """A list of at most 20 tags; duplicates dropped, first occurrence's order kept."""
    if not isinstance(value, list):
        raise _invalid("tags_invalid", "tags must be a list of strings", field)
    tags = tuple(dict.fromkeys(validate_tag(tag, field=field) for tag in value))
    if len(tags) > MAX_TAGS:
        raise _invalid("tags_too_many", f"at most {MAX_TAGS} tags", field)
    return tags


def validate_public_stats(value: object, *, field: str = "public_stats") -> bool:
    if type(value) is bool:
        return value
    raise _invalid("public_stats_invalid", "public_stats must be true or false", field)
