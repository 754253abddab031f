"""Short codes: random base62 strings from the OS CSPRNG (`secrets`), never sequential.

With 8 characters there are 62^8 ~ 2.2e14 codes; collisions are handled by the store's
unique constraint and a retry with a fresh code (see LinkService.create).
"""

import secrets
import string

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
MIN_LENGTH = 7
DEFAULT_LENGTH = 8

# Paths the public entry point serves itself (or may serve one day): never a code or alias.
RESERVED = frozenset(
    {
        "api", "app", "healthz", "readyz", "livez", "health", "status", "metrics", "static", "assets",
        "openapi.json", "docs", "redoc", "swagger", "favicon.ico", "robots.txt", "sitemap.xml",
        "humans.txt", "security.txt", ".well-known", "well-known", "admin", "login", "logout",
        "signup", "register", "account", "dashboard", "stats", "top", "links", "link", "v1",
        "index.html", "manifest.json", "apple-touch-icon.png", "ads.txt", "null", "undefined",
    }
)  # fmt: skip


def is_reserved(candidate: str) -> bool:
    return candidate.lower() in RESERVED


def generate_code(length: int = DEFAULT_LENGTH) -> str:
    """A fresh random code of `length` base62 characters (at least MIN_LENGTH)."""
    if length < MIN_LENGTH:
        raise ValueError(f"codes have at least {MIN_LENGTH} characters, not {length}")
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if not is_reserved(code):
            return code
