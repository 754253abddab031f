"""One error model: domain failures (no HTTP in them) get their status from the service's one
table; StoreUnavailable is one class everywhere and answers 503 with Retry-After."""

import pytest
from platformkit.errors import install_error_handlers
from platformkit.failures import DomainError, StoreUnavailable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

pytestmark = pytest.mark.unit


class Missing(DomainError):
    code = "thing_not_found"


class MissingAlias(Missing):
    code = "alias_not_found"


def app_raising(exc: Exception) -> TestClient:
    async def endpoint(_: Request) -> None:
        raise exc

    app = Starlette(routes=[Route("/", endpoint)])
    install_error_handlers(app, {Missing: 404})
    return TestClient(app, raise_server_exceptions=False)


def test_a_failure_gets_the_status_of_its_nearest_class_in_the_table() -> None:
    answer = app_raising(MissingAlias("no such alias", field="alias")).get("/")
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "alias_not_found", "message": "no such alias", "field": "alias"}}


def test_store_unavailable_is_503_with_retry_after_in_every_service() -> None:
    from analytics.domain import errors as analytics_errors
    from redirect import ports as redirect_ports
    from shorten.domain import errors as shorten_errors

    assert shorten_errors.StoreUnavailable is analytics_errors.StoreUnavailable is redirect_ports.StoreUnavailable
    answer = app_raising(StoreUnavailable("PostgreSQL is unavailable")).get("/")
    assert (answer.status_code, answer.headers["retry-after"], answer.json()["error"]["code"]) == (
        503,
        "1",
        "store_unavailable",
    )


def test_a_failure_missing_from_the_table_is_a_500_not_a_guess() -> None:
    assert app_raising(DomainError("unmapped")).get("/").status_code == 500


def test_no_domain_module_imports_a_web_framework_or_a_driver() -> None:
    """domain/ is pure: importing every domain module of every service loads no web framework,
    stream processor or store driver (checked in a fresh interpreter)."""
    import subprocess
    import sys
    from pathlib import Path

    services = Path(__file__).resolve().parents[2] / "services"
    modules = sorted(
        f"{p.parent.parent.name}.domain.{p.stem}" for p in services.glob("*/domain/*.py") if p.stem != "__init__"
    )
    assert len(modules) >= 20
    forbidden = ("starlette", "faust", "aiokafka", "asyncpg", "redis", "sqlalchemy", "httpx")
    probe = (
        f"import sys\nfor m in {modules!r}: __import__(m)\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({forbidden!r})))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
