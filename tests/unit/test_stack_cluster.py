"""The cluster profile's rendering (issue 11 item 1): what `just up --profile cluster` writes and
runs, checked without starting it; the default profile stays as it was."""

import re
from pathlib import Path

import pytest
from stackctl import checks, cluster, config, render
from stackctl.clickhouse_cluster import cluster_statements
from stackctl.config import REPO_ROOT, StackSettings
from stackctl.migrate import clickhouse_statements

pytestmark = pytest.mark.unit

SCHEMA = REPO_ROOT / "services/aggregator/adapters/sql/clickhouse/010_clicks.sql"


@pytest.fixture
def s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackSettings:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_DSN", "CLICKHOUSE_URL", "REDIRECT_HOST", "STACK_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "NETNS_RUN_DIR", tmp_path / "netns")  # no namespaces: CLUSTER_HOSTS
    return StackSettings(stack_profile="cluster", local_dir=tmp_path / "cluster")


def _section(conf: str, program: str) -> str:
    return conf.split(f"[program:{program}]", 1)[1].split("[program:", 1)[0]


def test_every_schema_table_becomes_a_replicated_local_table_and_a_distributed_table_of_its_name() -> None:
    default = clickhouse_statements(SCHEMA.read_text())
    out = cluster_statements(default, database="shortlink")
    tables = [m.group(1) for st in default if (m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", st))]
    assert tables  # the schema has tables
    for name in tables:
        local = next(st for st in out if st.startswith(f"CREATE TABLE IF NOT EXISTS {name}_local"))
        path = "'/clickhouse/tables/{shard}/shortlink/" + name + "_local', '{replica}'"
        assert "ENGINE = Null" in local or "AS " in local.split("(")[0] or ("Replicated" in local and path in local)
        assert (
            f"CREATE TABLE IF NOT EXISTS {name} AS {name}_local "
            f"ENGINE = Distributed(shortlink, shortlink, {name}_local, cityHash64(code))"
        ) in out
    # Every MergeTree engine got its replicated form; views read and fill the node's local tables.
    assert not [st for st in out if re.search(r"ENGINE = (Replacing|Summing)?MergeTree", st)]
    views = [st for st in out if st.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == 3
    for view in views:
        assert re.search(r"TO \w+_local AS", view) and re.search(r"FROM \w+_local\b", view)


def test_the_cluster_runs_three_brokers_two_postgres_pgbouncer_zookeeper_and_four_clickhouse_nodes(
    s: StackSettings,
) -> None:
    conf = render.supervisor_conf(s)
    programs = set(re.findall(r"^\[program:([\w-]+)\]", conf, re.MULTILINE))
    assert {
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "postgres",
        "postgres-replica",
        "pgbouncer",
        "zookeeper",
        "clickhouse-1",
        "clickhouse-2",
        "clickhouse-3",
        "clickhouse-4",
    } <= programs
    assert not {"kafka", "clickhouse"} & programs  # the single-node ones are the default profile's
    assert set(render.infra_programs(s)) == programs - {"postgres-replica"} - set(render.service_programs(s))


def test_services_use_pgbouncer_all_brokers_and_the_clickhouse_balancer_the_relay_the_primary(
    s: StackSettings,
) -> None:
    conf = render.supervisor_conf(s)
    brokers = ",".join(f"127.0.0.1:{p}" for p in s.kafka_broker_ports)
    for program in ("shorten-1", "aggregator-1", "analytics"):
        section = _section(conf, program)
        assert f'POSTGRES_DSN="{s.pgbouncer_dsn}"' in section
        assert 'POSTGRES_STATEMENT_CACHE_SIZE="0"' in section
        assert f'KAFKA_BOOTSTRAP_SERVERS="{brokers}"' in section
        assert f'CLICKHOUSE_URL="http://127.0.0.1:{s.clickhouse_lb_port}"' in section
    assert f'ANALYTICS_POSTGRES_READ_DSN="{s.pgbouncer_read_dsn}"' in _section(conf, "analytics")
    assert f'POSTGRES_DSN="{s.postgres_dsn}"' in _section(conf, "shorten-relay")  # its advisory lock needs a session
    assert 'AGGREGATOR_TOPIC_REPLICATION_FACTOR="3"' in _section(conf, "aggregator-2")


def test_redirect_replicas_and_aggregator_workers_spread_over_the_three_hosts(s: StackSettings) -> None:
    conf = render.supervisor_conf(s)
    hosts = s.hosts
    assert len(hosts) == 3
    for i in (1, 2, 3):
        assert f'REDIRECT_HOST="{hosts[i - 1]}"' in _section(conf, f"redirect-{i}")
        assert f'AGGREGATOR_WEB_HOST="{hosts[i - 1]}"' in _section(conf, f"aggregator-{i}")
    nginx = render.render_text((render.TEMPLATES / "nginx.conf").read_text(), render.template_values(s))
    upstream = re.search(r"upstream redirect \{([^}]*)\}", nginx)
    assert upstream is not None
    assert re.findall(r"server ([\d.]+):", upstream.group(1)) == hosts
    assert f"listen 127.0.0.1:{s.clickhouse_lb_port};" in nginx
    assert checks.service_endpoints(s)["redirect-2"] == f"http://{hosts[1]}:{s.redirect_ports[1]}"


def test_kafka_brokers_form_one_quorum_with_three_copies_and_two_in_sync(s: StackSettings) -> None:
    base = render.render_text((render.TEMPLATES / "kafka-server.properties").read_text(), render.template_values(s))
    voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in enumerate(s.kafka_controller_ports, start=1))
    for broker in (1, 2, 3):
        props = dict(
            line.split("=", 1)
            for line in cluster.kafka_properties(s, broker, base).splitlines()
            if "=" in line and not line.startswith("#")
        )
        assert props["node.id"] == str(broker)
        assert props["controller.quorum.voters"] == voters
        assert props["default.replication.factor"] == props["offsets.topic.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["unclean.leader.election.enable"] == "false"


def test_pgbouncer_pools_transactions_of_the_primary_and_of_the_replica(s: StackSettings) -> None:
    ini = cluster.pgbouncer_ini(s)
    assert "pool_mode = transaction" in ini
    assert f"default_pool_size = {s.cluster_pgbouncer_pool_size}" in ini
    assert f"shortlink = host=127.0.0.1 port={s.postgres_port} dbname=shortlink" in ini
    assert f"shortlink_replica = host=127.0.0.1 port={s.postgres_replica_port} dbname=shortlink" in ini


def test_cluster_ports_are_distinct_and_apart_from_the_default_stacks(s: StackSettings) -> None:
    ports = checks.stack_ports(s)
    assert len(set(ports.values())) == len(ports)
    default = checks.stack_ports(StackSettings(local_dir=s.local_dir))
    own = set(cluster.ports(s).values())
    assert not own & set(default.values())


def test_the_default_profile_renders_no_cluster_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACK_PROFILE", raising=False)
    d = StackSettings(local_dir=tmp_path / ".local")
    conf = render.supervisor_conf(d)
    assert "[program:kafka]" in conf and "[program:clickhouse]" in conf
    assert not re.search(r"\[program:(kafka-\d|pgbouncer|zookeeper|postgres-replica|clickhouse-\d)\]", conf)
    assert "REDIRECT_HOST" not in conf and "POSTGRES_STATEMENT_CACHE_SIZE" not in conf
    assert d.hosts == ["127.0.0.1"] and d.kafka_bootstrap == f"127.0.0.1:{d.kafka_port}"
