"""Decoded JSON request bodies -> commands. The first broken rule is reported (one error)."""

from collections.abc import Mapping
from datetime import datetime

from contracts.links import DEFAULT_WORKSPACE

from shorten.domain.errors import InvalidInput
from shorten.domain.model import UNSET, CreateLink, LinkChanges
from shorten.domain.targets import NO_RULES, TargetRules
from shorten.domain.validation import (
    validate_alias,
    validate_expires_at,
    validate_max_clicks,
    validate_public_stats,
    validate_redirect_type,
    validate_tags,
    validate_url,
)

CREATE_FIELDS = ("url", "alias", "expires_at", "redirect_type", "max_clicks", "public_stats", "tags")
UPDATE_FIELDS = ("url", "expires_at", "redirect_type", "max_clicks", "public_stats", "tags")


def _object(payload: object, allowed: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(payload, dict):
        raise InvalidInput("the request body must be a JSON object", code="body_not_object")
    for name in payload:
        if name not in allowed:
            shown = name[:64]  # the name is client input: echo a bounded prefix
            raise InvalidInput(
                f"unknown field {shown!r}; allowed: {', '.join(allowed)}", code="unknown_field", field=shown
            )
    return payload


def parse_create(
    payload: object, *, now: datetime, targets: TargetRules = NO_RULES, workspace: str = DEFAULT_WORKSPACE
) -> CreateLink:
    """POST /api/v1/links body: {url, alias?, expires_at?, redirect_type?, max_clicks?,
    public_stats?, tags?}; the link belongs to `workspace` (the caller's key's)."""
    body = _object(payload, CREATE_FIELDS)
    if "url" not in body:
        raise InvalidInput("url is required", code="url_required", field="url")
    alias = body.get("alias")
    redirect_type = body.get("redirect_type", 302)
    url = validate_url(body["url"])
    targets.check(url)
    return CreateLink(
        url=url,
        alias=None if alias is None else validate_alias(alias),
        expires_at=validate_expires_at(body.get("expires_at"), now=now),
        redirect_type=validate_redirect_type(redirect_type),
        max_clicks=validate_max_clicks(body.get("max_clicks")),
        workspace=workspace,
        public_stats=validate_public_stats(body.get("public_stats", False)),
        tags=validate_tags(body.get("tags", [])),
    )


def parse_changes(payload: object, *, now: datetime, targets: TargetRules = NO_RULES) -> LinkChanges:
    """PATCH body: any of url, expires_at, redirect_type, max_clicks (null clears these two),
    public_stats, tags (the full new list; [] clears)."""
    body = _object(payload, UPDATE_FIELDS)
    if not body:
        raise InvalidInput(f"nothing to change; send one of {', '.join(UPDATE_FIELDS)}", code="no_changes")
    url = validate_url(body["url"]) if "url" in body else None
    if url is not None:
        targets.check(url)
    return LinkChanges(
        url=url,
        redirect_type=validate_redirect_type(body["redirect_type"]) if "redirect_type" in body else None,
        expires_at=validate_expires_at(body["expires_at"], now=now) if "expires_at" in body else UNSET,
        max_clicks=validate_max_clicks(body["max_clicks"]) if "max_clicks" in body else UNSET,
        public_stats=validate_public_stats(body["public_stats"]) if "public_stats" in body else None,
        tags=validate_tags(body["tags"]) if "tags" in body else None,
    )
