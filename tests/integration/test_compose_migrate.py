"""`python -m composectl migrate` (the Kubernetes `migrate` Job, infra/k8s/base/app/jobs.yaml) waits
for PostgreSQL and ClickHouse and applies the schema files, as `init` does, but creates no topic:
on Kubernetes the topics are Strimzi KafkaTopic resources. Run here against the native stack's
stores (the files are idempotent, so re-applying them changes nothing)."""

import os
import subprocess
import sys

import pytest
from stackctl.config import StackSettings

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_migrate_applies_the_schemas_and_creates_no_topic() -> None:
    stack = StackSettings()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "compose"),
        "POSTGRES_DSN": stack.postgres_dsn,
        "CLICKHOUSE_URL": stack.clickhouse_url,
        "CLICKHOUSE_DATABASE": stack.clickhouse_database,
        # No broker at this address: a command that reached for Kafka would fail.
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "COMPOSE_INIT_TIMEOUT": "30",
    }
    done = subprocess.run(
        [sys.executable, "-m", "composectl", "migrate"], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "schemas migrated" in done.stdout + done.stderr
    assert "topic" not in (done.stdout + done.stderr).lower()
