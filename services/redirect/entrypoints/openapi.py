"""The redirect service's OpenAPI document (served at /openapi.json on the replica's port), built
by platformkit.openapi from the types below. The hot path does not decode with them (it matches
one regex, `CodeConvertor`); `CodePath` documents that same pattern, and the unit tests check the
document accepts what the convertor routes to the endpoint and refuses the rest."""

from typing import Annotated, Any

import msgspec
from contracts.links import CODE_PATTERN
from platformkit.openapi import Header, Operation, Response, openapi_document, ops_operations

# Paths the app routes to its own endpoints, never to a code (app.CodeConvertor excludes them).
OPS_ROUTES = ("healthz", "readyz", "metrics")


class CodePath(msgspec.Struct, frozen=True):
    code: Annotated[
        str,
        msgspec.Meta(
            pattern=f"^{CODE_PATTERN}$",
            description="a short code or alias (not one of the ops routes)",
            extra_json_schema={"not": {"enum": list(OPS_ROUTES)}},
        ),
    ]


_LOCATION = {"Location": Header(type=str, description="the target URL (absent on HEAD of a link with max_clicks)")}
_CACHE = {"Cache-Control": Header(type=str, description="301: public, max-age bounded by expiry; 302: no-cache")}
_RETRY = {"Retry-After": Header(type=int, description="seconds")}


def _redirect(method: str, description: str) -> Operation:
    return Operation(
        method=method,
        path="/{code}",
        summary=f"{method} a short code: redirect to its target",
        description=description,
        path_params=CodePath,
        tags=("redirect",),
        responses={
            301: Response(description="Permanent redirect; cacheable, see Cache-Control", headers=_LOCATION | _CACHE),
            302: Response(description="Temporary redirect; not cached", headers=_LOCATION | _CACHE),
        },
        errors={
            404: ("not_found",),
            410: ("link_deleted", "link_expired", "link_click_limit_reached"),
            503: ("unavailable",),
        },
        error_headers={503: _RETRY},
    )


def build_document() -> dict[str, Any]:
    return openapi_document(
        title="redirect",
        version="1.0.0",
        description="Short code redirects (the hot path).",
        operations=[
            _redirect(
                "GET",
                "Publishes one click event (LinkClicked) to the clicks topic; a link with "
                "max_clicks counts the click atomically (410 once used up).",
            ),
            _redirect(
                "HEAD",
                "A safe method: no click event, does not count toward max_clicks, and "
                "answers without Location for a link with max_clicks.",
            ),
            *ops_operations(readiness="Redis answers and the links consumer caught up"),
        ],
    )
