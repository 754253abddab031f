"""The OpenAPI 3.1 description served at /openapi.json (kept beside the routes it describes;
tests/unit/analytics checks that every route is described)."""

from typing import Any

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message", "field"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]},
    }}},
}
_SHARES = {"type": "array", "items": {"type": "object", "properties": {
    "value": {"type": "string"}, "clicks": {"type": "integer"}}}}
_INCLUDE_BOTS = {"name": "include_bots", "in": "query", "schema": {"type": "boolean", "default": False},
                 "description": "count bot clicks too (they are always counted apart)"}
_JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_RETRY_AFTER = {"Retry-After": {"description": "seconds until the window admits another request",
                                "schema": {"type": "integer", "minimum": 1}}}
_ERRORS = {
    "401": {"description": "the API key is missing (only where one is required), malformed, unknown, revoked "
                           "or expired (codes: api_key_missing, api_key_invalid)",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}, "content": _JSON_ERROR},
    "403": {"description": "the key belongs to the workspace but lacks the scope stats:read (code: scope_missing)",
            "content": _JSON_ERROR},
    "422": {"description": "bad parameter (code names the rule, field the parameter)", "content": _JSON_ERROR},
    "429": {"description": "rate limited (codes: rate_limited per API key, public_rate_limited per client "
                           "address for reads without a key, auth_rate_limited per client address after "
                           "failed authentications)",
            "headers": _RETRY_AFTER, "content": _JSON_ERROR},
    "503": {"description": "a store is unavailable", "content": _JSON_ERROR},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "shortlink analytics", "version": "1.0.0",
             "description": "Click statistics computed by the aggregator (exact, deduplicated counts)."},
    "paths": {
        "/api/v1/links/{code}/stats": {"get": {
            "summary": "Stats of one link over a time range",
            "description": "Range [from, to) aligned to the interval; at most 24 h of minutes, 31 days "
                           "of hours, 366 days of days. Needs a key of the link's workspace with "
                           "stats:read, except for a link created with public_stats (anyone, no key; a "
                           "key sent anyway must be valid). Every caller who may not read the stats "
                           "(another workspace, no key on a private link) gets the same 404 as an "
                           "unknown code.",
            "security": [{"bearer": []}, {}],
            "parameters": [
                {"name": "code", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}},
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"},
                 "description": "default: 1 h (minute), 24 h (hour) or 30 days (day) before to"},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"},
                 "description": "default: now"},
                {"name": "interval", "in": "query",
                 "schema": {"type": "string", "enum": ["minute", "hour", "day"], "default": "hour"}},
                _INCLUDE_BOTS,
            ],
            "responses": {
                "200": {"description": "stats", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "code": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
                        "interval": {"type": "string"}, "include_bots": {"type": "boolean"},
                        "totals": {"type": "object", "properties": {
                            "clicks": {"type": "integer"}, "unique_visitors": {"type": "integer"}}},
                        "lifetime": {"type": "object", "properties": {
                            "clicks": {"type": "integer"}, "bot_clicks": {"type": "integer"},
                            "first_click_at": {"type": ["string", "null"]},
                            "last_click_at": {"type": ["string", "null"]}}},
                        "series": {"type": "array", "items": {"type": "object", "properties": {
                            "t": {"type": "string"}, "clicks": {"type": "integer"},
                            "unique_visitors": {"type": "integer"}}}},
                        "top_referrers": _SHARES, "countries": _SHARES, "devices": _SHARES,
                    }}}}},
                "404": {"description": "unknown code, or a link the caller may not see (code: link_not_found)",
                        "content": _JSON_ERROR},
                **_ERRORS,
            },
        }},
        "/api/v1/top": {"get": {
            "summary": "Top links of the caller's workspace by clicks in a window",
            "description": "Needs a key with stats:read; ranks only the links of the key's workspace "
                           "(deleted links left out), optionally only those with one tag.",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "tag", "in": "query", "description": "only links with this tag",
                 "schema": {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[^\\x00-\\x1f,]+$"}},
                {"name": "window", "in": "query",
                 "schema": {"type": "string", "enum": ["1h", "24h", "7d"], "default": "24h"}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
                _INCLUDE_BOTS,
            ],
            "responses": {"200": {"description": "top links", "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "workspace": {"type": "string"}, "tag": {"type": ["string", "null"]},
                    "window": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
                    "include_bots": {"type": "boolean"},
                    "links": {"type": "array", "items": {"type": "object", "properties": {
                        "code": {"type": "string"}, "clicks": {"type": "integer"},
                        "unique_visitors": {"type": "integer"}}}}}}}}}, **_ERRORS},
        }},
        "/healthz": {"get": {"summary": "the process answers", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "PostgreSQL and ClickHouse answer",
                            "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
        "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "json"}}}},
    },
    "components": {
        "schemas": {"Error": _ERROR},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "an API key of a workspace (`just keys create`)"}},
    },
}
