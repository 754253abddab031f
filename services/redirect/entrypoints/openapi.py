"""The redirect service's OpenAPI document (served at /openapi.json on the replica's port)."""

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
            "required": ["code", "message"],
        }
    },
}


def _redirect_operation(method: str) -> dict[str, Any]:
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "summary": f"{method} a short code: redirect to its target",
        "description": "GET publishes one click event (LinkClicked) to the clicks topic; HEAD does not.",
        "parameters": [
            {"name": "code", "in": "path", "required": True,
             "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}},
        ],
        "responses": {
            "301": {"description": "Permanent redirect (Location); cacheable, see Cache-Control"},
            "302": {"description": "Temporary redirect (Location); not cached"},
            "404": {"description": "Unknown code (code not_found)", "content": json_error},
            "410": {"description": "link_deleted, link_expired or link_click_limit_reached", "content": json_error},
            "503": {"description": "The read model is unavailable (code unavailable)", "content": json_error},
        },
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "redirect", "version": "1.0.0", "description": "Short code redirects (the hot path)."},
    "components": {"schemas": {"Error": _ERROR}},
    "paths": {
        "/{code}": {"get": _redirect_operation("GET"), "head": _redirect_operation("HEAD")},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
        "/readyz": {"get": {"summary": "Readiness (Redis, links consumer caught up)",
                            "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
    },
}
