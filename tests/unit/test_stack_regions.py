"""The regions drill's rendering (issue 11 item 6, docs/regions.md): what `just regions up`
writes and runs, checked without starting it."""

from pathlib import Path

import pytest
from platformkit.settings import InfraSettings
from stackctl import regions
from stackctl.config import StackSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackSettings:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_DSN", "CLICKHOUSE_URL", "STACK_PROFILE", "ANALYTICS_REGION"):
        monkeypatch.delenv(name, raising=False)
    return StackSettings(local_dir=tmp_path / "local", kafka_port=9092, postgres_port=5433, postgres_db="shortlink")


def _section(conf: str, program: str) -> str:
    return conf.split(f"[program:{program}]", 1)[1].split("[program:", 1)[0]


def test_mirrormaker_mirrors_the_topics_both_ways_with_prefixes(s: StackSettings) -> None:
    props = regions.mirror_properties(s, regions.RegionSettings())
    lines = {
        k.strip(): v.strip()
        for k, v in (ln.split("=", 1) for ln in props.splitlines() if "=" in ln and not ln.startswith("#"))
    }
    assert lines["clusters"] == "A, B"
    assert lines["A.bootstrap.servers"] == "127.0.0.1:9092"
    assert lines["B.bootstrap.servers"] == "127.0.0.1:9792"
    assert lines["A->B.enabled"] == lines["B->A.enabled"] == "true"
    assert lines["A->B.topics"] == lines["B->A.topics"] == "links, clicks, keys"
    # Remote topics are `A.links`, `B.clicks`: never mirrored back, so two flows make no loop.
    assert lines["replication.policy.class"].endswith(".DefaultReplicationPolicy")


def test_region_b_runs_on_its_own_kafka_and_stores_and_reads_region_a_links(s: StackSettings) -> None:
    conf = regions.supervisor_conf(s, regions.RegionSettings())
    redirect = _section(conf, "redirect-b-1")
    assert 'KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9792"' in redirect
    assert 'TOPIC_LINKS_REMOTE="A.links"' in redirect
    assert 'REDIRECT_PORT="8711"' in redirect
    assert "/1" in redirect.split('REDIS_URL="', 1)[1].split('"', 1)[0]  # its own Redis database
    analytics = _section(conf, "analytics-b")
    assert 'TOPIC_KEYS="A.keys"' in analytics and 'ANALYTICS_REGION="B"' in analytics
    assert "shortlink_b_from_a" in analytics.split('ANALYTICS_REMOTE_TOTALS="', 1)[1].split('"', 1)[0]
    assert "kafka.Kafka" in _section(conf, "kafka-b")
    assert "org.apache.kafka.connect.mirror.MirrorMaker" in _section(conf, "mirrormaker")


def test_each_counter_reads_one_regions_clicks_into_its_own_databases(s: StackSettings) -> None:
    conf = regions.supervisor_conf(s, regions.RegionSettings())
    expected = {
        "aggregator-b-1": ("127.0.0.1:9792", "clicks", "aggregator", "shortlink_b"),
        "aggregator-b-from-a": ("127.0.0.1:9792", "A.clicks", "aggregator-from-a", "shortlink_b_from_a"),
        "aggregator-a-from-b": ("127.0.0.1:9092", "B.clicks", "aggregator-from-b", "shortlink_from_b"),
    }
    for program, (kafka, topic, app_id, database) in expected.items():
        section = _section(conf, program)
        assert f'KAFKA_BOOTSTRAP_SERVERS="{kafka}"' in section
        assert f'TOPIC_CLICKS="{topic}"' in section
        assert f'AGGREGATOR_APP_ID="{app_id}"' in section
        assert f'CLICKHOUSE_DATABASE="{database}"' in section
        assert f'/{database}"' in section.split('POSTGRES_DSN="', 1)[1].split(",", 1)[0]


def test_region_a_analytics_gets_its_region_name_and_region_b_totals(s: StackSettings) -> None:
    env = regions.region_a_analytics_env(s)
    assert env["ANALYTICS_REGION"] == "A"
    assert env["ANALYTICS_REMOTE_TOTALS"].startswith("B=postgresql://")
    assert env["ANALYTICS_REMOTE_TOTALS"].endswith("/shortlink_from_b")


def test_links_topics_are_this_regions_then_the_remote_copies() -> None:
    assert InfraSettings().links_topics() == ["links"]
    assert InfraSettings(topic_links_remote=" A.links, C.links ").links_topics() == ["links", "A.links", "C.links"]
