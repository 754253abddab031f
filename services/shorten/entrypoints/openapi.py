"""The OpenAPI 3.1 document of the shorten API, hand-written in one place (served at /openapi.json)."""

from typing import Any

from contracts.keys import SCOPES

from shorten.domain.codes import RESERVED
from shorten.domain.listing import DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY_LENGTH
from shorten.domain.validation import (
    ALIAS_MAX,
    ALIAS_MIN,
    MAX_CLICKS_LIMIT,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_URL_LENGTH,
)
from shorten.entrypoints.qr import openapi_path as qr_openapi_path

ERROR_CODES = {
    400: ["malformed_json", "invalid_content_length"],
    401: ["api_key_missing", "api_key_invalid"],
    403: ["scope_missing"],
    404: ["not_found"],
    409: ["alias_taken"],
    410: ["link_deleted"],
    413: ["payload_too_large"],
    415: ["unsupported_media_type"],
    422: [
        "body_not_object", "unknown_field", "no_changes", "url_required", "url_invalid",
        "url_scheme_not_allowed", "url_missing_host", "url_too_long", "url_has_credentials",
        "url_host_invalid", "url_self_reference", "url_host_denied", "alias_invalid", "alias_reserved",
        "expires_at_invalid", "expires_at_in_past", "redirect_type_invalid", "max_clicks_invalid",
        "public_stats_invalid", "tags_invalid", "tag_invalid", "tags_too_many",
    ],
    # GET /api/v1/links
    4220: ["q_invalid", "tag_invalid", "cursor_invalid", "limit_invalid"],
    429: ["rate_limited", "auth_rate_limited"],
    503: ["store_unavailable", "code_generation_failed"],
}  # fmt: skip


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(status: int, description: str, codes: int | None = None) -> dict[str, Any]:
    headers = {"Retry-After": {"schema": {"type": "integer"}}} if status == 429 else {}
    return {
        "description": f"{description} (codes: {', '.join(ERROR_CODES[codes or status])})",
        "headers": headers,
        "content": {"application/json": {"schema": _ref("Error")}},
    }


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


_LINK_FIELDS: dict[str, Any] = {
    "url": {"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH, "description": "http(s) only"},
    "expires_at": {"type": ["string", "null"], "format": "date-time", "description": "with offset, future"},
    "redirect_type": {"type": "integer", "enum": [301, 302], "default": 302},
    "max_clicks": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_CLICKS_LIMIT},
    "public_stats": {"type": "boolean", "default": False, "description": "anyone may read the link's stats"},
    "tags": {
        "type": "array", "maxItems": MAX_TAGS, "default": [],
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_LENGTH, "pattern": "^[^\\x00-\\x1f,]+$"},
    },
}

SCHEMAS: dict[str, Any] = {
    "CreateLink": {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            **_LINK_FIELDS,
            "alias": {
                "type": ["string", "null"],
                "pattern": f"^[A-Za-z0-9_-]{{{ALIAS_MIN},{ALIAS_MAX}}}$",
                "not": {"enum": sorted(RESERVED)},
            },
        },
    },
    "UpdateLink": {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": _LINK_FIELDS},
    "Link": {
        "type": "object",
        "required": [
            "code", "short_url", "url", "expires_at", "redirect_type", "max_clicks", "created_at", "workspace",
            "public_stats", "tags",
        ],
        "properties": {
            "code": {"type": "string"},
            "short_url": {"type": "string", "format": "uri"},
            **_LINK_FIELDS,
            "created_at": {"type": "string", "format": "date-time"},
            "workspace": {"type": "string", "description": "the workspace of the key that created the link"},
        },
    },
    "LinkPage": {
        "type": "object",
        "required": ["links", "next_cursor"],
        "properties": {
            "links": {"type": "array", "items": _ref("Link"), "description": "newest first"},
            "next_cursor": {"type": ["string", "null"], "description": "null on the last page"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                },
            }
        },
    },
}

_SCOPE = f"scopes: {', '.join(SCOPES)} (admin implies every scope, links:write implies links:read)"
_WRITE_ERRORS = {
    "401": _error(401, "missing or invalid API key"),
    "403": _error(403, "the key lacks links:write"),
    "413": _error(413, "body over 16 KiB"),
    "415": _error(415, "not application/json"),
    "400": _error(400, "malformed JSON"),
    "422": _error(422, "invalid input"),
    "429": _error(429, "rate limited per API key, or too many failed authentications per address"),
    "503": _error(503, "the link store is unavailable"),
}
_NOT_YOURS = "unknown code, or a link of another workspace (the two answers are the same)"
_LIST_PARAMS = [
    {"name": "q", "in": "query", "required": False, "description": "case-insensitive substring of the code or URL",
     "schema": {"type": "string", "maxLength": MAX_QUERY_LENGTH}},
    {"name": "tag", "in": "query", "required": False, "description": "links with exactly this tag",
     "schema": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_LENGTH}},
    {"name": "cursor", "in": "query", "required": False, "description": "next_cursor of the previous page",
     "schema": {"type": "string"}},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
]
_CODE_PARAM = [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}]
_PAGE_RESPONSE = {"content": {"application/json": {"schema": _ref("LinkPage")}}}
_LINK_RESPONSE = {"content": {"application/json": {"schema": _ref("Link")}}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "shorten", "version": "1.0.0", "description": "Create and manage short links."},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": f"an API key of a workspace; {_SCOPE}"}
            },
        },
        "paths": {
            "/api/v1/links": {
                "get": {
                    "summary": "The caller's workspace's links, newest first (needs links:read)",
                    "security": [{"apiKey": []}],
                    "parameters": _LIST_PARAMS,
                    "responses": {
                        "200": {"description": "one page", **_PAGE_RESPONSE},
                        "401": _error(401, "missing or invalid API key"),
                        "403": _error(403, "the key lacks links:read"),
                        "422": _error(422, "bad query parameter", codes=4220),
                        "429": _error(429, "too many failed authentications from this address"),
                        "503": _error(503, "the link store is unavailable"),
                    },
                },
                "post": {
                    "summary": "Create a short link in the caller's workspace (needs links:write)",
                    "security": [{"apiKey": []}],
                    "requestBody": _json_body("CreateLink"),
                    "responses": {
                        "201": {"description": "created", **_LINK_RESPONSE},
                        "409": _error(409, "alias taken (aliases are never reused)"),
                        **_WRITE_ERRORS,
                    },
                }
            },
            "/api/v1/links/{code}": {
                "parameters": _CODE_PARAM,
                "get": {
                    "summary": "Read a link of the caller's workspace (needs links:read)",
                    "security": [{"apiKey": []}],
                    "responses": {
                        "200": {"description": "the link", **_LINK_RESPONSE},
                        "401": _error(401, "missing or invalid API key"),
                        "403": _error(403, "the key lacks links:read"),
                        "429": _error(429, "too many failed authentications from this address"),
                        "404": _error(404, _NOT_YOURS),
                        "503": _error(503, "the link store is unavailable"),
                        "410": _error(410, "the link was deleted"),
                    },
                },
                "patch": {
                    "summary": "Change url, expires_at, redirect_type, max_clicks, public_stats or tags (links:write)",
                    "security": [{"apiKey": []}],
                    "requestBody": _json_body("UpdateLink"),
                    "responses": {
                        "200": {"description": "the updated link", **_LINK_RESPONSE},
                        "404": _error(404, _NOT_YOURS),
                        "410": _error(410, "the link was deleted"),
                        **_WRITE_ERRORS,
                    },
                },
                "delete": {
                    "summary": "Delete a link (its code is never reused; needs links:write)",
                    "security": [{"apiKey": []}],
                    "responses": {
                        "204": {"description": "deleted"},
                        "401": _error(401, "missing or invalid API key"),
                        "403": _error(403, "the key lacks links:write"),
                        "404": _error(404, _NOT_YOURS),
                        "503": _error(503, "the link store is unavailable"),
                        "410": _error(410, "already deleted"),
                        "429": _error(429, "rate limited per API key, or too many failed authentications per address"),
                    },
                },
            },
            "/api/v1/links/{code}/qr": qr_openapi_path(),
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {
                "get": {
                    "summary": "PostgreSQL and Redis reachable",
                    "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
                }
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
        },
    }
