"""API keys of workspaces, as shorten manages them (`just keys`): the rules and the events.

A key is stored as the SHA-256 digest of its secret (platformkit.apikeys.digest): the secret is
printed once, when the key is created or rotated, and kept nowhere. Every change of a key is a
`keys` topic event (contracts.keys), which is what the services authenticate against.
"""

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from contracts.keys import KeyIssued, KeyRevoked, Scope
from contracts.links import DEFAULT_WORKSPACE

from shorten.domain.errors import InvalidInput, ShortenError

# The stack's own key (`.local/api-key`, made by `just up`): reserved, admin of `default`.
LOCAL_ADMIN_KEY_ID = "k_local_admin"
LOCAL_ADMIN_WORKSPACE = DEFAULT_WORKSPACE
LOCAL_ADMIN_SCOPES: tuple[Scope, ...] = ("admin",)

MAX_NAME_LENGTH = 100
_WORKSPACE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # contracts.links.Workspace
_DURATION_RE = re.compile(r"(\d{1,6})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class KeyNotFound(ShortenError):
    code = "key_not_found"


class KeyRevokedAlready(ShortenError):
    """The key is revoked (or expired): it cannot be rotated."""

    code = "key_revoked"


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    key_id: str
    workspace: str
    scopes: tuple[Scope, ...]
    digest: str
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    replaced_by: str | None = None  # the key a rotation issued in its place

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def validate_workspace(value: str) -> str:
    if not _WORKSPACE_RE.fullmatch(value):
        raise InvalidInput(
            f"workspace {value[:60]!r} is not a slug: 1-40 characters of a-z 0-9 -, starting with a letter or digit",
            code="workspace_invalid",
            field="workspace",
        )
    return value


def validate_name(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidInput(
            f"name must be at most {MAX_NAME_LENGTH} characters without control characters",
            code="name_invalid",
            field="name",
        )
    return value


def parse_duration(text: str, *, field: str, allow_zero: bool = False) -> timedelta:
    """`90d`, `12h`, `30m`, `45s`, `2w` (and `0` where allowed) -> timedelta."""
    if allow_zero and text.strip() == "0":
        return timedelta(0)
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        zero = "0 or " if allow_zero else ""
        raise InvalidInput(
            f"{field} must be {zero}a positive number followed by s, m, h, d or w (e.g. 90d, 12h)",
            code="duration_invalid",
            field=field,
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def key_issued(key: ApiKey, *, event_id: str, now: datetime) -> KeyIssued:
    return KeyIssued(
        event_id=event_id,
        occurred_at=now,
        key_id=key.key_id,
        workspace=key.workspace,
        scopes=key.scopes,
        digest=key.digest,
        name=key.name,
        expires_at=key.expires_at,
    )


def key_revoked(key: ApiKey, *, event_id: str, now: datetime) -> KeyRevoked:
    return KeyRevoked(event_id=event_id, occurred_at=now, key_id=key.key_id, workspace=key.workspace)


def retire(key: ApiKey, *, replaced_by: str, now: datetime, grace: timedelta) -> ApiKey:
    """The old key of a rotation: refused from now + grace on (revoked at once when grace is 0)."""
    if key.state(now) != "active":
        raise KeyRevokedAlready(f"key {key.key_id!r} is {key.state(now)}: nothing to rotate", field="key_id")
    if not grace:
        return replace(key, revoked_at=now, replaced_by=replaced_by)
    ends = now + grace
    expires_at = ends if key.expires_at is None else min(key.expires_at, ends)
    return replace(key, expires_at=expires_at, replaced_by=replaced_by)
