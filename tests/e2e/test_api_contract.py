"""The API contract, fuzzed: schemathesis sends generated requests (valid and invalid) to every
operation of every service's OpenAPI document on the live stack; every response must be no 5xx,
a documented status, a documented content type, and a body that matches the documented schema.
The documents are fetched from the running services: what is checked is what is served.

Where each document is exercised: its /api/ operations through the public entry point (nginx, as
clients reach them), its ops routes (/healthz, /readyz, /metrics, /openapi.json) on the service's
own port (nginx maps the public ones elsewhere), redirect's /{code} both ways.

Bounded and repeatable: at most MAX_EXAMPLES generated cases per operation plus schemathesis's
coverage cases (boundaries, missing and wrong-typed values), deterministic generation (no seed,
no example database), a timeout per document. Run it alone: `just test-contract`.

schemathesis runs as its CLI (`schemathesis run`), the interface it documents for CI: its pytest
plugin does not run under pytest 9.2 (it writes the removed `Item._nodeid`).
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import analytics_url, public_url, redirect_replica_urls, shorten_url

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "25"))
TIMEOUT_SECONDS = 120
# The contract; CONTRACT_CHECKS=all (or a list) runs more of schemathesis's checks, for exploring.
CHECKS = os.environ.get(
    "CONTRACT_CHECKS",
    ",".join(
        [
            "not_a_server_error",
            "status_code_conformance",
            "content_type_conformance",
            "response_schema_conformance",
            "response_headers_conformance",
        ]
    ),
)
HOOKS = Path(__file__).with_name("contract_hooks.py")
OPS_PATHS = "^/(healthz|readyz|metrics|openapi.json)$"


@dataclass(frozen=True)
class Target:
    document_url: str
    base_url: str
    include_paths: str | None = None
    exclude_paths: str | None = None


def targets() -> dict[str, Target]:
    redirect = redirect_replica_urls()[0]
    aggregator = f"http://127.0.0.1:{os.environ.get('AGGREGATOR_WEB_PORTS', '6061').split(',')[0].strip()}"
    return {
        # The bulk import answers once every row's link is served by every replica (up to 10 s
        # per request): fuzzed bodies of thousands of rows outlast the checker's timeout and
        # queue the other operations behind them. Its contract is tested in
        # tests/e2e/test_bulk_import.py (per-row results, every refusal's code).
        "shorten-through-nginx": Target(
            public_url() + "/api/v1/openapi/shorten.json", public_url(), "^/api/", exclude_paths="/bulk$"
        ),
        "shorten-ops": Target(shorten_url() + "/openapi.json", shorten_url(), OPS_PATHS),
        # The live stream is endless by design (a request/response checker would time out on
        # every 200): its refusals and events are tested in tests/e2e/test_live_stats.py.
        "analytics-through-nginx": Target(
            public_url() + "/api/v1/openapi/analytics.json", public_url(), "^/api/", exclude_paths="/live$"
        ),
        "analytics-ops": Target(analytics_url() + "/openapi.json", analytics_url(), OPS_PATHS),
        "redirect-replica": Target(redirect + "/openapi.json", redirect),
        "redirect-through-nginx": Target(redirect + "/openapi.json", public_url(), exclude_paths=OPS_PATHS),
        "aggregator-worker": Target(aggregator + "/openapi.json", aggregator),
    }


def schemathesis_command(target: Target, config_file: Path) -> list[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config_file),
        "--no-color",
        "run",
        target.document_url,
        "--url",
        target.base_url,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        # Deterministic: the same cases on every run (a failure reproduces), no example database.
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        # The key goes in the Authorization header from the config file, never generated.
        "--generation-with-security-parameters",
        "false",
        # A redirect is the redirect service's answer, not a fuzzed target to follow.
        "--max-redirects",
        "0",
        # One worker: with two, schemathesis's coverage phase crashes on Python 3.11 while walking
        # schemas in both threads at once (linecache KeyError, "AST constructor recursion depth
        # mismatch") -- a runtime error of the tool, not of the API.
        "--request-timeout",
        "10",
        "--workers",
        "1",
    ]
    if target.include_paths:
        command += ["--include-path-regex", target.include_paths]
    if target.exclude_paths:
        command += ["--exclude-path-regex", target.exclude_paths]
    return command


@pytest.fixture(scope="module")
def existing_codes(api_key: str) -> list[str]:
    """Links in each state the APIs answer differently for (live, permanent, one click left,
    deleted): half the generated cases use one of them instead of a generated code, so 200s,
    redirects and 410s are checked against the document too, not only 404s."""
    auth = {"Authorization": f"Bearer {api_key}"}
    bodies = [
        {"url": "https://example.com/contract"},
        {"url": "https://example.com/contract-301", "redirect_type": 301},
        {"url": "https://example.com/contract-once", "max_clicks": 1},
        {"url": "https://example.com/contract-deleted"},
    ]
    with httpx.Client(base_url=public_url(), headers=auth, timeout=10) as client:
        codes = []
        for body in bodies:
            created = client.post("/api/v1/links", json=body)
            assert created.status_code == 201, created.text
            codes.append(created.json()["code"])
        assert client.delete(f"/api/v1/links/{codes[-1]}").status_code == 204
    return codes


@pytest.fixture
def config_file(api_key: str, existing_codes: list[str], tmp_path: Path) -> Path:
    """The API key in an owner-only file (not in the subprocess's argv), and the existing codes."""
    path = tmp_path / "schemathesis.toml"
    path.touch(mode=0o600)
    path.write_text(
        f'headers = {{ Authorization = "Bearer {api_key}" }}\n'
        f"[dictionaries.codes]\nvalues = {json.dumps(existing_codes)}\n"
        '[parameters]\n"path.code" = { dictionary = "codes", probability = 0.5 }\n'
    )
    return path


@pytest.mark.parametrize("name", list(targets()))
def test_every_operation_keeps_its_contract(name: str, config_file: Path, tmp_path: Path) -> None:
    target = targets()[name]
    run = subprocess.run(
        schemathesis_command(target, config_file),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        check=False,
    )
    out = run.stdout if len(run.stdout) <= 30_000 else run.stdout[:20_000] + "\n[...]\n" + run.stdout[-10_000:]
    report = out + run.stderr[-5_000:]
    status = run.returncode
    assert status == 0, f"schemathesis found contract violations on {name}:\n{report}"
    # An empty selection would pass vacuously: something must have been tested.
    assert "API Operations" in run.stdout and " 0 selected" not in run.stdout, report
