"""Metrics stay bounded: a client that invents HTTP methods and paths adds no series to any
service's /metrics (every series is kept for the life of the process, so a label taking a value
from the request would let any client grow every process's memory and Prometheus's storage).
Unknown methods fold into `_OTHER` and unmatched paths into `unmatched` (telemetry.metrics); the
redirect hot path labels by status only."""

import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from stackctl.config import StackSettings

from tests.conftest import analytics_url, redirect_replica_urls

pytestmark = pytest.mark.e2e

SETTINGS = StackSettings()
ROUNDS = 100
# Labels a request could set the value of, were it not folded.
REQUEST_LABELS = {"method", "route", "path", "handler", "status", "code", "endpoint", "url"}

Series = frozenset[tuple[str, tuple[tuple[str, str], ...]]]


def services() -> dict[str, str]:
    urls = {f"shorten-{i}": f"http://127.0.0.1:{p}" for i, p in enumerate(SETTINGS.shorten_ports, start=1)}
    urls["analytics"] = analytics_url()
    urls |= {f"redirect-{i}": url for i, url in enumerate(redirect_replica_urls(), start=1)}
    urls |= {f"aggregator-{i}": f"http://127.0.0.1:{p}" for i, p in enumerate(SETTINGS.aggregator_ports, start=1)}
    urls["stackcheck"] = f"http://127.0.0.1:{SETTINGS.stackcheck_port}"
    return urls


def series(client: httpx.Client) -> Series:
    response = client.get("/metrics")
    assert response.status_code == 200
    return frozenset(
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    )


def invent(client: httpx.Client, token: str) -> None:
    """One invented method on a known route and on an unmatched path, and GET of unmatched paths."""
    for method, path in [
        (f"INVENTED{token}", "/healthz"),
        (f"x-{token}", f"/nowhere/{token}"),
        ("GET", f"/api/v1/{token}/{token}"),
        ("POST", f"/{token}/{token}.json"),
    ]:
        client.request(method, path)


@pytest.mark.parametrize("name", list(services()))
def test_invented_methods_and_paths_add_no_series(name: str) -> None:
    with httpx.Client(base_url=services()[name], timeout=10) as client:
        for i in range(3):  # warm: the folded series exist once one odd request was seen
            invent(client, f"warm{i}")
        series(client)  # and the series of GET /metrics itself
        before = series(client)
        tokens = [uuid.uuid4().hex[:12] for _ in range(ROUNDS)]
        for token in tokens:
            invent(client, token)
        after = series(client)

    request_series = {s for s in after - before if {key for key, _ in s[1]} & REQUEST_LABELS}
    assert request_series == set(), (
        f"{name}: {len(before)} series before, {len(after)} after {ROUNDS} invented methods and paths; "
        f"new: {sorted(request_series)[:10]}"
    )
    # case-insensitively: servers may upper-case the method they pass on
    leaked = {s for s in after for _, value in s[1] if any(token in value.lower() for token in tokens)}
    assert leaked == set(), f"{name}: label values taken from requests"
