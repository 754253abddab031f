"""schemathesis hooks of tests/e2e/test_api_contract.py (the CLI loads this file through
SCHEMATHESIS_HOOKS)."""

from typing import Any

import schemathesis


@schemathesis.hook
def filter_case(context: Any, case: schemathesis.Case) -> bool:
    """Drop a case whose templated path, filled in, spells a concrete path of the same document
    (e.g. GET /{code} with code "metrics" is GET /metrics): OpenAPI matches concrete paths before
    templated ones, so that request belongs to the other operation and is tested there."""
    if not case.path_parameters:
        return True
    concrete = {path for path in case.operation.schema.raw_schema.get("paths", {}) if "{" not in path}
    return case.formatted_path not in concrete
