"""OpenAPI 3.1 documents built from the msgspec types the code decodes and encodes with.

A service declares its operations (`Operation`: path, method, parameters, body, responses, error
codes, security) with the same `msgspec.Struct` types its handlers use; `openapi_document` turns
them into the document, every schema coming from `msgspec.json.schema_components`. No schema is
written by hand, so the document cannot say one thing while the decoder accepts another.

Query strings: a Struct per query (`parse_query`) is both the parser and the documented parameter
list, e.g.

    class TopQuery(msgspec.Struct, forbid_unknown_fields=True):
        window: Literal["1h", "24h", "7d"] = "24h"
        limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10

    query = parse_query(TopQuery, request.query_params)   # 422 invalid_input, field = "limit"
    Operation("GET", "/api/v1/top", query=TopQuery, ...)   # documents window and limit

Error responses share one shape (`ErrorBody`, what platformkit.errors writes); `errors={422:
("invalid_input",)}` documents that status with `error.code` restricted to the listed values, so a
response with an undocumented code fails the contract test too.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import msgspec
import msgspec.inspect

from platformkit.failures import InvalidRequest

REF_TEMPLATE = "#/components/schemas/{name}"
JSON = "application/json"

Q = TypeVar("Q", bound=msgspec.Struct)


class ErrorDetail(msgspec.Struct, frozen=True):
    """`error` in every error response: a stable `code`, a message, the offending field if any."""

    code: str
    message: str
    field: str | None


class ErrorBody(msgspec.Struct, frozen=True):
    """The JSON error shape of every API (platformkit.errors.error_body)."""

    error: ErrorDetail


@dataclass(frozen=True, kw_only=True)
class Header:
    """A response header: its type (a msgspec-encodable type) and what it means."""

    type: Any
    description: str = ""
    required: bool = False


@dataclass(frozen=True, kw_only=True)
class Response:
    """One documented response. `body` is a type msgspec can describe (a Struct, `str`, ...);
    None: no body (redirects, 204)."""

    description: str
    body: Any = None
    media_type: str = JSON
    headers: Mapping[str, Header] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One method on one path. `path_params` and `query` are Structs whose fields are the
    parameters (names, types, constraints, defaults, docstrings of the fields' Meta)."""

    method: str
    path: str
    summary: str
    description: str = ""
    path_params: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    body: Any = None
    body_media_type: str = JSON
    responses: Mapping[int, Response] = field(default_factory=dict)
    # status -> the error codes answered with it (body ErrorBody, error.code one of them)
    errors: Mapping[int, Sequence[str]] = field(default_factory=dict)
    error_headers: Mapping[int, Mapping[str, Header]] = field(default_factory=dict)
    # One security requirement: scheme name -> scopes (None: no authentication). With
    # `anonymous`, a request without credentials is answered too (e.g. public stats).
    security: Mapping[str, Sequence[str]] | None = None
    anonymous: bool = False
    operation_id: str | None = None
    tags: Sequence[str] = ()


class _Schemas:
    """Collects the types of a document, then resolves them in one schema_components call."""

    def __init__(self) -> None:
        self.types: list[Any] = [ErrorBody]

    def add(self, type_: Any) -> int:
        self.types.append(type_)
        return len(self.types) - 1

    def resolve(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        schemas, components = msgspec.json.schema_components(self.types, ref_template=REF_TEMPLATE)
        return list(schemas), dict(components)


def _parameters(
    struct: type[msgspec.Struct], where: str, schema: dict[str, Any], components: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One parameter per field of `struct` (its schema is a $ref into `components`)."""
    name = schema["$ref"].rsplit("/", 1)[-1]
    object_schema = components[name]
    required = set(object_schema.get("required", ()))
    params = []
    for param_name, param_schema in object_schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": param_name, "in": where, "required": where == "path" or param_name in required}
        description = param_schema.get("description")
        if description:
            param["description"] = description
        param["schema"] = param_schema
        params.append(param)
    return params


def _error_schema(codes: Sequence[str]) -> dict[str, Any]:
    restriction = {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}}
    return {"allOf": [{"$ref": REF_TEMPLATE.format(name="ErrorBody")}, restriction]}


def _headers(headers: Mapping[str, Header]) -> dict[str, Any]:
    out = {}
    for name, header in headers.items():
        spec: dict[str, Any] = {"schema": msgspec.json.schema(header.type), "required": header.required}
        if header.description:
            spec["description"] = header.description
        out[name] = spec
    return out


def openapi_document(
    *,
    title: str,
    version: str,
    description: str,
    operations: Iterable[Operation],
    security_schemes: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations` (build it once, at app creation)."""
    ops = list(operations)
    for op in ops:
        _check_operation(op)
    registry = _Schemas()
    slots = []  # per operation: index of path_params, query, body, {status: response body index}
    for op in ops:
        slots.append(
            (
                registry.add(op.path_params) if op.path_params is not None else None,
                registry.add(op.query) if op.query is not None else None,
                registry.add(op.body) if op.body is not None else None,
                {status: registry.add(r.body) for status, r in op.responses.items() if r.body is not None},
            )
        )
    schemas, components = registry.resolve()

    paths: dict[str, dict[str, Any]] = {}
    for op, (path_i, query_i, body_i, response_i) in zip(ops, slots, strict=True):
        spec: dict[str, Any] = {"summary": op.summary, "operationId": op.operation_id or _operation_id(op)}
        if op.description:
            spec["description"] = op.description
        if op.tags:
            spec["tags"] = list(op.tags)
        params = []
        if path_i is not None and op.path_params is not None:
            params += _parameters(op.path_params, "path", schemas[path_i], components)
        if query_i is not None and op.query is not None:
            params += _parameters(op.query, "query", schemas[query_i], components)
        if params:
            spec["parameters"] = params
        if body_i is not None:
            spec["requestBody"] = {"required": True, "content": {op.body_media_type: {"schema": schemas[body_i]}}}
        responses: dict[str, Any] = {}
        for status, response in sorted(op.responses.items()):
            doc: dict[str, Any] = {"description": response.description}
            if response.headers:
                doc["headers"] = _headers(response.headers)
            if status in response_i:
                doc["content"] = {response.media_type: {"schema": schemas[response_i[status]]}}
            responses[str(status)] = doc
        for status, codes in sorted(op.errors.items()):
            doc = {"description": "codes: " + ", ".join(codes), "content": {JSON: {"schema": _error_schema(codes)}}}
            if status in op.error_headers:
                doc["headers"] = _headers(op.error_headers[status])
            responses[str(status)] = doc
        spec["responses"] = responses
        requirements: list[dict[str, list[str]]] = [] if op.security is None or not op.anonymous else [{}]
        if op.security is not None:
            requirements.append({scheme: list(scopes) for scheme, scopes in op.security.items()})
        spec["security"] = requirements
        paths.setdefault(op.path, {})[op.method.lower()] = spec

    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": components},
    }
    if security_schemes:
        document["components"]["securitySchemes"] = {k: dict(v) for k, v in security_schemes.items()}
    return document


def _check_operation(op: Operation) -> None:
    """The path's {names} and the fields of `path_params` are the same set; a status is
    described once."""
    in_path = set(re.findall(r"\{([^}]+)\}", op.path))
    declared = set()
    if op.path_params is not None:
        info = msgspec.inspect.type_info(op.path_params)
        assert isinstance(info, msgspec.inspect.StructType)
        declared = {f.encode_name for f in info.fields}
    if in_path != declared:
        raise ValueError(f"{op.method} {op.path}: path parameters {sorted(in_path)}, path_params {sorted(declared)}")
    if both := set(op.responses) & set(op.errors):
        raise ValueError(f"{op.method} {op.path}: statuses {sorted(both)} in both responses and errors")


def _operation_id(op: Operation) -> str:
    words = re.findall(r"[A-Za-z0-9]+", op.path)
    return op.method.lower() + "".join(w.capitalize() for w in words) if words else op.method.lower() + "Root"


BEARER = {"type": "http", "scheme": "bearer"}
"""The security scheme of a bearer API key (`Authorization: Bearer <key>`)."""

# Where msgspec's message names the offending field: "... - at `$.limit`", "missing required
# field `code`", "unknown field `other`".
_FIELD = re.compile(r" - at `\$\.([^`\[]+)|(?:missing required|unknown) field `([^`]+)`")
_SEQUENCES = (
    msgspec.inspect.ListType,
    msgspec.inspect.VarTupleType,
    msgspec.inspect.SetType,
    msgspec.inspect.FrozenSetType,
)


class QueryInvalid(InvalidRequest):
    """A query string that does not fit its Struct (framework-free: domain parsers raise it)."""


class MultiItems(Protocol):
    """A query string with repeated names kept (Starlette's QueryParams)."""

    def multi_items(self) -> list[tuple[str, str]]: ...


def _repeatable(struct: type[msgspec.Struct]) -> frozenset[str]:
    """Names of the fields that take a list (`?tag=a&tag=b`, OpenAPI's default form/explode)."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    names = set()
    for field_info in info.fields:
        types = field_info.type.types if isinstance(field_info.type, msgspec.inspect.UnionType) else (field_info.type,)
        if any(isinstance(t, _SEQUENCES) for t in types):
            names.add(field_info.encode_name)
    return frozenset(names)


def parse_query(struct: type[Q], query_params: Mapping[str, str] | MultiItems) -> Q:
    """Decode a query string into `struct`, the same Struct the operation documents as `query`:
    numbers, booleans, dates and enums are converted from their text (strict=False); a field
    typed as a list takes every value of its name, any other field the last one. A value that
    does not fit the field's type or constraints -> 422 invalid_input naming the parameter."""
    items = query_params.multi_items() if hasattr(query_params, "multi_items") else list(query_params.items())
    repeatable = _repeatable(struct)
    values: dict[str, Any] = {}
    for name, value in items:
        if name in repeatable:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    try:
        return msgspec.convert(values, struct, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        at = _FIELD.search(message)
        raise QueryInvalid(message.split(" - at ")[0], field=(at[1] or at[2]) if at else None) from None


class Liveness(msgspec.Struct, frozen=True):
    """GET /healthz: the process answers."""

    status: str


class Readiness(msgspec.Struct, frozen=True):
    """GET /readyz: whether the dependencies answer (detail per check, where it is shown)."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = {}


def ops_operations(*, readiness: str, tags: Sequence[str] = ("ops",)) -> list[Operation]:
    """/healthz, /readyz, /metrics and /openapi.json, as every service's app serves them
    (platformkit.health, telemetry.metrics). `readiness` says what /readyz probes."""
    return [
        Operation(
            method="GET",
            path="/healthz",
            summary="Liveness",
            tags=tags,
            responses={200: Response(description="alive", body=Liveness)},
        ),
        Operation(
            method="GET",
            path="/readyz",
            summary=f"Readiness: {readiness}",
            tags=tags,
            responses={
                200: Response(description="ready", body=Readiness),
                503: Response(description="not ready", body=Readiness),
            },
        ),
        Operation(
            method="GET",
            path="/metrics",
            summary="Prometheus metrics (text exposition format)",
            tags=tags,
            responses={200: Response(description="metrics", body=str, media_type="text/plain")},
        ),
        Operation(
            method="GET",
            path="/openapi.json",
            summary="This document",
            tags=tags,
            responses={200: Response(description="OpenAPI 3.1", body=dict[str, Any])},
        ),
    ]
