"""The cluster's hosts as network namespaces (infra/stackctl/netns.py, docs/cluster.md): the
commands that make and delete them, the choice between namespaces and loopback addresses, and
what the cluster renders either way: the hosts' programs inside their namespaces with every
server at the bridge address, the servers listening there too, nginx and Prometheus on the
namespaces' addresses. Checked without making a namespace (NETNS_RUN_DIR is a temporary folder)."""

import re
import sys
from pathlib import Path

import pytest
from stackctl import __main__ as stackctl_main
from stackctl import checks, cluster, config, netns, render, supervisor
from stackctl.config import StackSettings

CHAOS = str(Path(__file__).resolve().parents[2] / "infra")
sys.path.insert(0, CHAOS)
try:
    from chaos.cluster_scenarios import cut_off_method
finally:
    sys.path.remove(CHAOS)

pytestmark = pytest.mark.unit

ENV = (
    "STACK_PROFILE",
    "CLUSTER_HOSTS",
    "CLUSTER_NETNS",
    "CLUSTER_NETNS_PREFIX",
    "CLUSTER_SUBNET",
    "KAFKA_BOOTSTRAP_SERVERS",
    "POSTGRES_DSN",
    "CLICKHOUSE_URL",
    "REDIS_URL",
    "REDIS_REPLICA_URL",
    "REDIS_SENTINELS",
    "REDIRECT_HOST",
    "REDIRECT_TRUSTED_PROXIES",
)


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "netns"
    folder.mkdir()
    monkeypatch.setattr(config, "NETNS_RUN_DIR", folder)
    return folder


def _settings(tmp_path: Path, **extra: str) -> StackSettings:
    values = {"cluster_netns_prefix": "tst", "cluster_subnet": "10.99.0.0/24", **extra}
    return StackSettings(stack_profile="cluster", local_dir=tmp_path / "cluster", **values)  # type: ignore[arg-type]


@pytest.fixture
def ns(tmp_path: Path, run_dir: Path) -> StackSettings:
    """The cluster with its three namespaces made."""
    for i in (1, 2, 3):
        (run_dir / f"tst-h{i}").touch()
    return _settings(tmp_path)


@pytest.fixture
def lo(tmp_path: Path, run_dir: Path) -> StackSettings:
    """The cluster without namespaces (they could not be made)."""
    return _settings(tmp_path)


def _section(conf: str, program: str) -> str:
    return conf.split(f"[program:{program}]", 1)[1].split("[program:", 1)[0]


def _env(section: str, name: str) -> str:
    found = re.search(rf'\b{name}="([^"]*)"', section)
    assert found is not None, f"{name} not in {section}"
    return found.group(1)


# -- names and addresses -------------------------------------------------------------------------


def test_names_and_addresses_come_from_the_prefix_and_the_subnet(ns: StackSettings) -> None:
    assert ns.netns_names == ["tst-h1", "tst-h2", "tst-h3"]
    assert ns.netns_veths == ["tst-v1", "tst-v2", "tst-v3"]
    assert ns.netns_bridge == "tst-br"
    assert ns.netns_bridge_address == "10.99.0.1"
    assert ns.hosts == ns.netns_addresses == ["10.99.0.11", "10.99.0.12", "10.99.0.13"]
    assert ns.hosts_gateway == "10.99.0.1"
    assert ns.infra_addresses == ["127.0.0.1", "10.99.0.1"]
    assert [ns.netns_of(i) for i in (1, 2, 3, 4)] == ["tst-h1", "tst-h2", "tst-h3", "tst-h1"]
    assert all(len(name) <= 15 for name in (*ns.netns_veths, ns.netns_bridge))  # Linux interface names


def test_main_and_a_worktree_default_to_different_names_and_subnets(tmp_path: Path, run_dir: Path) -> None:
    main = StackSettings(stack_profile="cluster", local_dir=tmp_path)
    other = _settings(tmp_path)
    assert main.netns_bridge != other.netns_bridge and main.netns_names != other.netns_names
    assert main.netns_subnet != other.netns_subnet
    assert main.netns_bridge_address == "10.231.0.1"  # main's default


@pytest.mark.parametrize("prefix", ["", "Upper", "a-very-long-prefix", "1abc"])
def test_a_prefix_that_would_make_bad_interface_names_is_refused(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ValueError):
        StackSettings(stack_profile="cluster", local_dir=tmp_path, cluster_netns_prefix=prefix)


def test_a_subnet_too_small_for_the_hosts_is_refused(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(ValueError, match="CLUSTER_SUBNET"):
        _ = _settings(tmp_path, cluster_subnet="10.99.0.0/30").netns_addresses


def test_without_namespaces_the_hosts_are_the_loopback_addresses(lo: StackSettings) -> None:
    assert lo.hosts == ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
    assert lo.hosts_gateway == "127.0.0.1" and lo.infra_addresses == ["127.0.0.1"]
    assert lo.netns_of(1) is None


def test_only_some_namespaces_present_is_no_namespaces(tmp_path: Path, run_dir: Path) -> None:
    (run_dir / "tst-h1").touch()
    assert not _settings(tmp_path).netns_in_use


def test_cluster_netns_off_ignores_namespaces_that_exist(ns: StackSettings, tmp_path: Path) -> None:
    off = _settings(tmp_path, cluster_netns="off")
    assert ns.netns_in_use and not off.netns_in_use
    assert off.hosts == off.loopback_hosts


def test_the_default_profile_never_uses_namespaces(tmp_path: Path, run_dir: Path) -> None:
    for name in StackSettings().netns_names:
        (run_dir / name).touch()
    d = StackSettings(local_dir=tmp_path / ".local")
    assert not d.netns_in_use and d.hosts == ["127.0.0.1"]
    conf = render.supervisor_conf(d)
    assert "ip netns" not in conf


# -- making and deleting them --------------------------------------------------------------------


def test_a_first_setup_adds_the_bridge_the_namespaces_and_the_veth_pairs(lo: StackSettings) -> None:
    cmds = [" ".join(c) for c in netns.setup_commands(lo, set(), set())]
    assert cmds[:3] == [
        "ip link add tst-br type bridge",
        "ip addr replace 10.99.0.1/24 dev tst-br",
        "ip link set tst-br up",
    ]
    for i in (1, 2, 3):
        assert f"ip netns add tst-h{i}" in cmds
        assert f"ip link add tst-v{i} type veth peer name eth0 netns tst-h{i}" in cmds
        assert f"ip link set tst-v{i} master tst-br" in cmds
        assert f"ip link set tst-v{i} up" in cmds
        assert f"ip -n tst-h{i} link set lo up" in cmds
        assert f"ip -n tst-h{i} addr replace 10.99.0.1{i}/24 dev eth0" in cmds
        assert f"ip -n tst-h{i} link set eth0 up" in cmds
        # the namespace before its veth pair, the pair before it is put on the bridge
        assert (
            cmds.index(f"ip netns add tst-h{i}")
            < cmds.index(f"ip link add tst-v{i} type veth peer name eth0 netns tst-h{i}")
            < cmds.index(f"ip link set tst-v{i} master tst-br")
        )


def test_a_second_setup_adds_nothing_and_sets_every_link_up_again(lo: StackSettings) -> None:
    cmds = [" ".join(c) for c in netns.setup_commands(lo, set(lo.netns_names), {*lo.netns_veths, lo.netns_bridge})]
    assert not [c for c in cmds if " add " in c]
    assert "ip link set tst-v2 up" in cmds  # a host left cut off comes back


def test_teardown_deletes_what_exists_of_this_cluster_only(lo: StackSettings) -> None:
    cmds = netns.teardown_commands(lo, {"tst-h1", "tst-h3", "shl-h1"}, {"tst-br", "tst-v3", "shl-br", "eth0"})
    assert cmds == [
        ["ip", "link", "delete", "tst-v3"],
        ["ip", "netns", "delete", "tst-h1"],
        ["ip", "netns", "delete", "tst-h3"],
        ["ip", "link", "delete", "tst-br"],
    ]
    assert netns.teardown_commands(lo, set(), set()) == []


def test_namespaces_are_used_when_they_can_be_made(lo: StackSettings) -> None:
    assert netns.choose(lo, lambda: None) is None


def test_without_cap_net_admin_the_cluster_falls_back_to_loopback_addresses(lo: StackSettings) -> None:
    error = "ip netns add tst-h1: mount --make-shared /run/netns failed: Operation not permitted"
    assert netns.choose(lo, lambda: error) == error


def test_cluster_netns_on_fails_when_namespaces_cannot_be_made(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(SystemExit, match="could not be made"):
        netns.choose(_settings(tmp_path, cluster_netns="on"), lambda: "Operation not permitted")


def test_cluster_netns_off_does_not_try(tmp_path: Path, run_dir: Path) -> None:
    def make() -> str | None:
        raise AssertionError("tried to make namespaces")

    assert netns.choose(_settings(tmp_path, cluster_netns="off"), make) == "CLUSTER_NETNS=off"


def test_ensure_says_which_hosts_the_cluster_has(lo: StackSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(netns, "make", lambda s: "Operation not permitted")
    assert netns.ensure(lo, said.append) is False
    assert said == [
        "cluster hosts: NO network namespaces (Operation not permitted); "
        "loopback addresses 127.0.0.21,127.0.0.22,127.0.0.23 instead"
    ]


# -- the cut-off -----------------------------------------------------------------------------------


def test_a_host_is_cut_off_by_its_link_with_namespaces_and_frozen_without(ns: StackSettings, tmp_path: Path) -> None:
    assert cut_off_method(ns) == "link"
    assert cut_off_method(_settings(tmp_path, cluster_netns_prefix="oth")) == "freeze"  # its namespaces: none
    assert netns.link_command(ns, 2, "down") == ["ip", "link", "set", "tst-v2", "down"]


# -- what the cluster renders ----------------------------------------------------------------------


def test_the_hosts_programs_run_inside_their_namespace_and_reach_the_servers_on_the_bridge(
    ns: StackSettings,
) -> None:
    conf = render.supervisor_conf(ns)
    gw = "10.99.0.1"
    kafka = ",".join(f"{gw}:{p}" for p in ns.kafka_hosts_ports)
    for i in (1, 2, 3):
        for program in (f"redirect-{i}", f"aggregator-{i}"):
            section = _section(conf, program)
            command = re.search(r"^command=(.*)$", section, re.MULTILINE)
            assert command is not None and command.group(1).startswith(f"ip netns exec tst-h{i} ")
            assert _env(section, "KAFKA_BOOTSTRAP_SERVERS") == kafka
            assert (
                _env(section, "POSTGRES_DSN") == f"postgresql://shortlink:shortlink@{gw}:{ns.pgbouncer_port}/shortlink"
            )
            assert _env(section, "CLICKHOUSE_URL") == f"http://{gw}:{ns.clickhouse_lb_port}"
            assert _env(section, "REDIS_SENTINELS") == ",".join(f"{gw}:{p}" for p in ns.sentinel_ports)
            assert _env(section, "REDIS_URL") == f"redis://{gw}:{ns.redis_port}/0"
        assert _env(_section(conf, f"redirect-{i}"), "REDIRECT_HOST") == f"10.99.0.1{i}"
        assert _env(_section(conf, f"aggregator-{i}"), "AGGREGATOR_WEB_HOST") == f"10.99.0.1{i}"
        # nginx connects from the bridge address: the replicas believe its X-Forwarded-For
        assert _env(_section(conf, f"redirect-{i}"), "REDIRECT_TRUSTED_PROXIES") == f"127.0.0.1,::1,{gw}"
    # The root namespace's programs keep 127.0.0.1.
    for program in ("shorten-1", "shorten-relay", "analytics", "retention", "stackcheck", "nginx", "kafka-1"):
        section = _section(conf, program)
        assert "ip netns" not in section and gw not in section.replace(f"--bind 127.0.0.1 {gw}", "")
    assert _env(_section(conf, "analytics"), "KAFKA_BOOTSTRAP_SERVERS") == ns.kafka_bootstrap


def test_background_nice_still_execs_the_namespaced_program(tmp_path: Path, run_dir: Path) -> None:
    for i in (1, 2, 3):
        (run_dir / f"tst-h{i}").touch()
    conf = render.supervisor_conf(_settings(tmp_path, background_nice="10"))
    command = re.search(r"^command=(.*)$", _section(conf, "aggregator-2"), re.MULTILINE)
    assert command is not None and command.group(1).startswith("nice -n 10 ip netns exec tst-h2 ")


def test_without_namespaces_the_hosts_programs_run_as_before(lo: StackSettings) -> None:
    conf = render.supervisor_conf(lo)
    assert "ip netns" not in conf
    section = _section(conf, "redirect-2")
    assert _env(section, "REDIRECT_HOST") == "127.0.0.22"
    assert _env(section, "KAFKA_BOOTSTRAP_SERVERS") == lo.kafka_bootstrap
    assert "REDIRECT_TRUSTED_PROXIES" not in section
    assert cluster.host_overrides(lo, "redirect-1") == {}


def _kafka(s: StackSettings, broker: int) -> dict[str, str]:
    base = render.render_text((render.TEMPLATES / "kafka-server.properties").read_text(), render.template_values(s))
    text = cluster.kafka_properties(s, broker, base)
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def test_each_broker_has_a_second_listener_on_the_bridge_advertised_there(ns: StackSettings) -> None:
    for broker in (1, 2, 3):
        props = _kafka(ns, broker)
        port, hosts_port = ns.kafka_broker_ports[broker - 1], ns.kafka_hosts_ports[broker - 1]
        controller = ns.kafka_controller_ports[broker - 1]
        assert props["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{port},HOSTS://10.99.0.1:{hosts_port},CONTROLLER://127.0.0.1:{controller}"
        )
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port},HOSTS://10.99.0.1:{hosts_port}"
        assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,HOSTS:PLAINTEXT,CONTROLLER:PLAINTEXT"
        assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert len({*ns.kafka_hosts_ports, *checks.stack_ports(ns).values()}) == len(ns.kafka_hosts_ports) + len(
        checks.stack_ports(ns)
    )


def test_without_namespaces_kafka_has_its_one_listener(lo: StackSettings) -> None:
    props = _kafka(lo, 1)
    assert "HOSTS" not in props["listeners"] and "HOSTS" not in props["listener.security.protocol.map"]


def test_pgbouncer_redis_and_the_clickhouse_balancer_listen_on_the_bridge_too(ns: StackSettings) -> None:
    assert "listen_addr = 127.0.0.1,10.99.0.1" in cluster.pgbouncer_ini(ns)
    nginx = render.render_text((render.TEMPLATES / "nginx.conf").read_text(), render.template_values(ns))
    assert f"listen 127.0.0.1:{ns.clickhouse_lb_port};" in nginx
    assert f"listen 10.99.0.1:{ns.clickhouse_lb_port};" in nginx
    conf = render.supervisor_conf(ns)
    for program in ("redis", "redis-replica"):
        section = _section(conf, program)
        assert "--bind 127.0.0.1 10.99.0.1 " in section and "--replica-announce-ip 10.99.0.1" in section


def test_nginx_balances_and_prometheus_scrapes_the_namespaces_addresses(ns: StackSettings) -> None:
    values = render.template_values(ns)
    nginx = render.render_text((render.TEMPLATES / "nginx.conf").read_text(), values)
    upstream = re.search(r"upstream redirect \{([^}]*)\}", nginx)
    assert upstream is not None
    assert re.findall(r"server ([\d.]+):", upstream.group(1)) == ["10.99.0.11", "10.99.0.12", "10.99.0.13"]
    prometheus = render.render_text((render.TEMPLATES / "prometheus.yml").read_text(), values)
    for i, port in enumerate(ns.aggregator_ports, start=1):
        assert f'"10.99.0.1{i}:{port}"' in prometheus
    for i, port in enumerate(ns.redirect_ports, start=1):
        assert f'"10.99.0.1{i}:{port}"' in prometheus
    assert checks.service_endpoints(ns)["redirect-3"] == f"http://10.99.0.13:{ns.redirect_ports[2]}"


def test_sentinels_monitor_and_announce_the_bridge_address(ns: StackSettings) -> None:
    render.render_redis_configs(ns)
    for port in ns.sentinel_ports:
        text = render.sentinel_conf_path(ns, port).read_text()
        assert f"sentinel monitor shortlink 10.99.0.1 {ns.redis_port} 2" in text
        assert "\nbind 127.0.0.1 10.99.0.1\n" in text
    assert f"replicaof 10.99.0.1 {ns.redis_port}" in render.redis_conf_path(ns, "replica").read_text()


def test_sentinel_files_follow_the_hosts_when_namespaces_come_or_go(
    lo: StackSettings, run_dir: Path, tmp_path: Path
) -> None:
    render.render_redis_configs(lo)
    sentinel = render.sentinel_conf_path(lo, lo.sentinel_ports[0])
    assert f"sentinel monitor shortlink 127.0.0.1 {lo.redis_port} 2" in sentinel.read_text()
    for i in (1, 2, 3):
        (run_dir / f"tst-h{i}").touch()
    with_ns = _settings(tmp_path)
    render.render_redis_configs(with_ns)
    assert f"sentinel monitor shortlink 10.99.0.1 {lo.redis_port} 2" in sentinel.read_text()
    # Sentinel's own rewrite (after a failover: the other server, the same address) is kept.
    failed_over = sentinel.read_text().replace(f"10.99.0.1 {lo.redis_port} 2", f"10.99.0.1 {lo.redis_replica_port} 2")
    sentinel.write_text(failed_over)
    render.render_redis_configs(with_ns)
    assert sentinel.read_text() == failed_over


def _down_with(monkeypatch: pytest.MonkeyPatch, left: list[str]) -> list[str]:
    """`stackctl down` on a stopped stack whose namespaces `left` survive their deletion; the
    deletions it asked for."""
    deleted: list[str] = []
    monkeypatch.setattr(supervisor, "supervisord_pid", lambda s: None)
    monkeypatch.setattr(supervisor, "leftover_processes", lambda s: [])
    monkeypatch.setattr(checks, "stack_ports", lambda s: {})
    monkeypatch.setattr(netns, "delete", lambda s: deleted.append(s.stack_profile) or [])
    monkeypatch.setattr(netns, "leftovers", lambda s: left)
    return deleted


def test_down_deletes_the_namespaces_and_fails_if_one_is_left(
    ns: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted = _down_with(monkeypatch, ["tst-h2"])
    with pytest.raises(SystemExit, match=r"namespaces/links \['tst-h2'\]"):
        stackctl_main.down(ns)
    assert deleted == ["cluster"]
    _down_with(monkeypatch, [])
    stackctl_main.down(ns)  # nothing left: down succeeds


def test_the_default_profiles_down_leaves_namespaces_alone(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted = _down_with(monkeypatch, ["shl-h1"])
    stackctl_main.down(StackSettings(local_dir=tmp_path / ".local"))
    assert deleted == []
