"""platformkit.openapi: the documented schema accepts exactly what the msgspec decoder accepts
(the document and the validation come from one type, so they cannot drift), and the redirect
service's document describes the codes its router sends to the redirect endpoint."""

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import pytest
from jsonschema_rs import Draft202012Validator
from platformkit.failures import InvalidRequest
from platformkit.openapi import (
    BEARER,
    ErrorBody,
    Operation,
    QueryInvalid,
    Response,
    openapi_document,
    parse_query,
)
from redirect.entrypoints.app import HotPath
from redirect.entrypoints.openapi import build_document
from starlette.datastructures import QueryParams

pytestmark = pytest.mark.unit


class Target(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    weight: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1


class CreateThing(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern="^[a-z]{3,8}$")]
    kind: Literal["a", "b"] = "a"
    targets: list[Target] = []
    # tz=True: RFC 3339 (what format "date-time" says); a bare datetime is documented as a string
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    max_clicks: Annotated[int, msgspec.Meta(ge=1)] | None = None


class Thing(msgspec.Struct):
    name: str
    kind: str
    clicks: int


class ThingPath(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(pattern="^[a-z]{3,8}$")]


class TopQuery(msgspec.Struct, forbid_unknown_fields=True):
    window: Literal["1h", "24h", "7d"] = "24h"
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    include_bots: bool = False
    from_: Annotated[datetime, msgspec.Meta(tz=True)] | None = msgspec.field(name="from", default=None)
    tag: list[Annotated[str, msgspec.Meta(max_length=10)]] = []


def _document() -> dict[str, Any]:
    return openapi_document(
        title="t",
        version="1",
        description="d",
        security_schemes={"apiKey": BEARER},
        operations=[
            Operation(
                method="POST",
                path="/things",
                summary="create",
                body=CreateThing,
                responses={201: Response(description="created", body=Thing)},
                errors={422: ("invalid_input",)},
                security={"apiKey": ["things:write"]},
            ),
            Operation(
                method="GET",
                path="/top",
                summary="top",
                query=TopQuery,
                responses={200: Response(description="top", body=list[Thing])},
            ),
            Operation(
                method="GET",
                path="/things/{name}/stats",
                summary="stats",
                operation_id="thingStats",
                path_params=ThingPath,
                responses={200: Response(description="stats", body=Thing)},
                security={"apiKey": ["stats:read"]},
                anonymous=True,
            ),
        ],
    )


def _local_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    # The schemas refer to "#/components/schemas/X": validate inside a root that has them.
    root = {**schema, "components": document["components"]}
    return Draft202012Validator(root, validate_formats=True)


def _body_schema(document: dict[str, Any]) -> dict[str, Any]:
    return document["paths"]["/things"]["post"]["requestBody"]["content"]["application/json"]["schema"]


def _decodes(raw: bytes) -> bool:
    try:
        msgspec.json.decode(raw, type=CreateThing)
    except msgspec.ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    "example",
    [
        {"name": "abc"},
        {"name": "abcdefgh", "kind": "b", "targets": [{"url": "x", "weight": 100}]},
        {"name": "abc", "expires_at": "2030-01-01T00:00:00Z", "max_clicks": 1},
        {"name": "abc", "expires_at": None, "max_clicks": None},
        {"name": "ab"},  # pattern
        {"name": "abc", "kind": "c"},  # enum
        {"name": "abc", "targets": [{"url": ""}]},  # nested min_length
        {"name": "abc", "targets": [{"url": "x", "weight": 0}]},  # nested ge
        {"name": "abc", "targets": [{"url": "x", "extra": 1}]},  # nested unknown field
        {"name": "abc", "max_clicks": 0},
        {"name": "abc", "max_clicks": "3"},  # strict types
        {"name": "abc", "unknown": 1},
        {"kind": "a"},  # required
        ["abc"],
    ],
)
def test_the_documented_body_accepts_what_the_decoder_accepts(example: Any) -> None:
    document = _document()
    valid_by_document = _local_validator(document, _body_schema(document)).is_valid(example)
    assert valid_by_document == _decodes(msgspec.json.encode(example))


@pytest.mark.parametrize("expires_at", ["tomorrow", "2030-13-01T00:00:00Z", "2030-01-01", "2030-01-01T00:00:00"])
def test_a_date_time_the_decoder_refuses_is_refused_by_the_document_too(expires_at: str) -> None:
    document = _document()
    example = {"name": "abc", "expires_at": expires_at}
    assert not _local_validator(document, _body_schema(document)).is_valid(example)
    assert not _decodes(msgspec.json.encode(example))


def test_query_struct_fields_are_the_documented_parameters() -> None:
    params = {p["name"]: p for p in _document()["paths"]["/top"]["get"]["parameters"]}
    assert set(params) == {"window", "limit", "include_bots", "from", "tag"}
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
    assert params["window"]["schema"]["enum"] == ["1h", "24h", "7d"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "%C2%B2"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"window": "2h"}, "window"),
        ({"include_bots": "maybe"}, "include_bots"),
        ({"from": "9999-99-99"}, "from"),
        ({"other": "1"}, "other"),
        ({"tag": "x" * 11}, "tag"),
    ],
)
def test_parse_query_refuses_what_the_document_refuses(query: dict[str, str], field: str | None) -> None:
    with pytest.raises(QueryInvalid) as refused:
        parse_query(TopQuery, query)
    assert isinstance(refused.value, InvalidRequest) and refused.value.code == "invalid_input"  # 422
    assert refused.value.field == field


def test_parse_query_converts_text_to_the_documented_types() -> None:
    query = parse_query(TopQuery, {"limit": "100", "include_bots": "true", "from": "2026-01-01T00:00:00Z"})
    assert query.limit == 100 and query.include_bots is True and query.window == "24h"
    assert query.from_ is not None and query.from_.year == 2026


def test_parse_query_takes_every_value_of_a_list_field_and_the_last_of_others() -> None:
    query = parse_query(TopQuery, QueryParams("tag=a&tag=b&limit=5&limit=7"))
    assert query.tag == ["a", "b"] and query.limit == 7
    params = {p["name"]: p for p in _document()["paths"]["/top"]["get"]["parameters"]}
    assert params["tag"]["schema"]["type"] == "array"  # form, exploded: OpenAPI's default for query


def test_path_templates_and_path_params_must_agree() -> None:
    with pytest.raises(ValueError, match="path parameters"):
        openapi_document(
            title="t",
            version="1",
            description="d",
            operations=[
                Operation(
                    method="GET", path="/things/{name}", summary="s", responses={200: Response(description="ok")}
                ),
            ],
        )


def test_error_statuses_restrict_the_error_code() -> None:
    document = _document()
    schema = document["paths"]["/things"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    validator = _local_validator(document, schema)
    body = msgspec.to_builtins(ErrorBody(error={"code": "invalid_input", "message": "m", "field": None}))  # type: ignore[arg-type]
    assert validator.is_valid(body)
    assert not validator.is_valid({"error": {"code": "not_found", "message": "m", "field": None}})
    assert not validator.is_valid({"error": {"code": "invalid_input"}})


def test_security_and_responses() -> None:
    document = _document()
    post = document["paths"]["/things"]["post"]
    assert post["security"] == [{"apiKey": ["things:write"]}]
    assert document["components"]["securitySchemes"] == {"apiKey": {"type": "http", "scheme": "bearer"}}
    assert document["paths"]["/top"]["get"]["security"] == []
    stats = document["paths"]["/things/{name}/stats"]["get"]
    assert stats["security"] == [{}, {"apiKey": ["stats:read"]}] and stats["operationId"] == "thingStats"
    assert set(post["responses"]) == {"201", "422"}


@pytest.mark.parametrize(
    "code",
    [
        "abc",
        "A",
        "a-b_c",
        "x" * 64,
        "healthz",
        "readyz",
        "metrics",
        "healthzz",
        "x" * 65,
        "",
        "a.b",
        "a/b",
        "é",
        "open api",
    ],
)
def test_redirect_document_describes_the_codes_the_router_sends_to_the_endpoint(code: str) -> None:
    document = build_document()
    param = document["paths"]["/{code}"]["get"]["parameters"][0]
    assert param["in"] == "path" and param["name"] == "code"
    routed = HotPath(endpoint=None, app=None)  # type: ignore[arg-type]
    documented = Draft202012Validator(param["schema"], validate_formats=True).is_valid(code)
    assert documented == (routed._code("/" + code) is not None)


def test_redirect_document_covers_every_route() -> None:
    document = build_document()
    assert {(path, method) for path, ops in document["paths"].items() for method in ops} == {
        ("/{code}", "get"),
        ("/{code}", "head"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    }
    gone = document["paths"]["/{code}"]["get"]["responses"]["410"]["content"]["application/json"]["schema"]
    assert gone["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"] == [
        "link_deleted",
        "link_expired",
        "link_click_limit_reached",
    ]
