"""Render the stack's configuration files into .local/ from infra/templates and settings."""

import functools
import grp
import hashlib
import ipaddress
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from stackctl import cluster, netns
from stackctl.config import StackSettings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def render_text(text: str, values: dict[str, object]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template value {name!r} missing")
        return str(values[name])

    return _PLACEHOLDER.sub(sub, text)


def postgres_bin_dir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return candidates[0].parent


def real_ip_directives(trusted_proxies: str) -> str:
    """nginx's realip settings for TRUSTED_PROXIES: behind them, $remote_addr becomes the last
    address of X-Forwarded-For that is not one of them; without them, the connecting address."""
    networks = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies.split(",") if p.strip()]
    if not networks:
        return "    # TRUSTED_PROXIES is empty: the client is the connecting address."
    lines = [f"    set_real_ip_from {n};" for n in networks]
    return "\n".join([*lines, "    real_ip_header X-Forwarded-For;", "    real_ip_recursive on;"])


# The web app's Content-Security-Policy: its own files and API calls only; no inline script or
# style, no eval, no frames; QR images come from blob: URLs (fetched with the API key).
WEBAPP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def template_values(s: StackSettings) -> dict[str, object]:
    return {
        "repo_root": s.repo_root,
        "log_dir": s.log_dir,
        "kafka_port": s.kafka_port,
        "kafka_controller_port": s.kafka_controller_port,
        "kafka_data_dir": s.path("kafka", "data"),
        "clickhouse_http_port": s.clickhouse_http_port,
        "clickhouse_tcp_port": s.clickhouse_tcp_port,
        "clickhouse_interserver_port": s.clickhouse_interserver_port,
        "clickhouse_data_dir": s.path("clickhouse", "data"),
        "clickhouse_users_config": s.path("clickhouse", "users.xml"),
        "nginx_prefix": s.path("nginx"),
        "nginx_user_directive": "user root;" if os.geteuid() == 0 else "",
        "public_http_port": s.public_http_port,
        "shorten_port": s.shorten_port,
        "analytics_port": s.analytics_port,
        "stackcheck_port": s.stackcheck_port,
        "redirect_upstream_servers": "\n".join(
            f"        server {s.host_of(i)}:{p} max_fails=1 fail_timeout=2s;"
            for i, p in enumerate(s.redirect_ports, start=1)
        ),
        "shorten_upstream_servers": "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in s.shorten_ports
        ),
        "prometheus_port": s.prometheus_port,
        "webapp_dir": s.repo_root / "infra" / "webapp" / "dist",
        "webapp_csp": WEBAPP_CSP,
        "real_ip_directives": real_ip_directives(s.trusted_proxies),
        "shorten_targets": ", ".join(f'"127.0.0.1:{p}"' for p in s.shorten_ports),
        "redirect_targets": ", ".join(f'"{s.host_of(i)}:{p}"' for i, p in enumerate(s.redirect_ports, start=1)),
        "aggregator_targets": ", ".join(f'"{s.host_of(i)}:{p}"' for i, p in enumerate(s.aggregator_ports, start=1)),
        "extra_servers": cluster.nginx_clickhouse_server(s) if s.is_cluster else "",
        "redirect_location_extra": cluster.NGINX_REDIRECT_TIMEOUTS if s.is_cluster else "",
        "redirect_read_timeout": f"{s.redirect_read_timeout:g}",
    }


def _write(path: Path, text: str) -> bool:
    """Write `text` (owner-only) unless the file holds it already; True when the file changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = not path.exists() or path.read_text() != text
    if changed:
        path.write_text(text)
    path.chmod(0o600)
    return changed


# Programs that reload their configuration file on SIGHUP without dropping connections.
RELOAD_ON_HUP = {"nginx.conf": "nginx", "prometheus.yml": "prometheus"}


def lock_down(local_dir: Path) -> None:
    """Keys, secrets, data and logs live in `local_dir`: owner only (0700). Run as root, the
    stack starts PostgreSQL as the `postgres` account, which must pass through to its data
    directory: then the directory is root:postgres 0710 (that group may traverse it, not list
    it; every secret file in it is 0600 root's)."""
    local_dir.mkdir(parents=True, exist_ok=True)
    try:
        postgres_gid = grp.getgrnam("postgres").gr_gid if os.geteuid() == 0 else None
    except KeyError:
        postgres_gid = None
    if postgres_gid is None:
        local_dir.chmod(0o700)
        return
    os.chown(local_dir, 0, postgres_gid)
    local_dir.chmod(0o710)


def _write_once(path: Path, text: str, *, still_valid: Callable[[str], bool]) -> None:
    """A file its program rewrites itself (Redis and Sentinel after a failover): written when
    absent, or when it no longer fits the settings (`still_valid` says no: ports changed), never
    on every render, which would undo the failover on the next restart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or not still_valid(path.read_text()):
        path.write_text(text)


_REPLICAOF = re.compile(r"^(?:replicaof|slaveof)\s+(\S+)\s+(\d+)", re.MULTILINE)
_MONITOR = re.compile(r"^sentinel monitor (\S+) (\S+) (\d+)", re.MULTILINE)


def redis_conf_path(s: StackSettings, role: str) -> Path:
    return s.path("redis", role, "redis.conf")


def sentinel_conf_path(s: StackSettings, port: int) -> Path:
    return s.path("redis", f"sentinel-{port}", "sentinel.conf")


def render_redis_configs(s: StackSettings) -> None:
    """Each Redis server's own config file (which primary it replicates, if any) and each
    Sentinel's. Everything else is on the command line, so a port change applies at once."""
    ours = {s.redis_port, s.redis_replica_port}
    # The address Redis and the Sentinels know each other by, and the one the Sentinels name to
    # clients: the bridge's when the cluster's hosts are namespaces (reachable from them and
    # from the root namespace alike), else 127.0.0.1.
    address = s.hosts_gateway

    def redis_valid(text: str) -> bool:
        return all(host == address and int(port) in ours for host, port in _REPLICAOF.findall(text))

    def sentinel_valid(port: int) -> Callable[[str], bool]:
        def valid(text: str) -> bool:
            monitors = _MONITOR.findall(text)
            return (
                re.search(rf"^port {port}$", text, re.MULTILINE) is not None
                and len(monitors) == 1
                and monitors[0][0] == s.redis_sentinel_master
                and monitors[0][1] == address
                and int(monitors[0][2]) in ours
                and re.search(rf"^bind {re.escape(' '.join(s.infra_addresses))}$", text, re.MULTILINE) is not None
            )

        return valid

    header = "# Written once by stackctl (render.py); Redis Sentinel rewrites it after a failover.\n"
    _write_once(redis_conf_path(s, "primary"), header, still_valid=redis_valid)
    _write_once(
        redis_conf_path(s, "replica"), header + f"replicaof {address} {s.redis_port}\n", still_valid=redis_valid
    )
    master = s.redis_sentinel_master
    for port in s.sentinel_ports:
        path = sentinel_conf_path(s, port)
        _write_once(
            path,
            header
            + f"port {port}\nbind {' '.join(s.infra_addresses)}\nprotected-mode no\ndaemonize no\ndir {path.parent}\n"
            + "sentinel resolve-hostnames no\n"
            + f"sentinel monitor {master} {address} {s.redis_port} 2\n"
            + f"sentinel down-after-milliseconds {master} {s.redis_sentinel_down_after_ms}\n"
            + f"sentinel failover-timeout {master} 10000\n"
            + f"sentinel parallel-syncs {master} 1\n",
            still_valid=sentinel_valid(port),
        )


def render_all(s: StackSettings) -> set[str]:
    """Render every configuration file; the programs of RELOAD_ON_HUP whose file changed."""
    lock_down(s.local_dir)
    if s.is_cluster:
        lock_down(s.local_dir.parent)  # .local/: the postgres account passes through it too
    values = template_values(s)
    reload: set[str] = set()
    rendered: dict[str, str] = {}
    for template, target in [
        ("kafka-server.properties", s.path("kafka", "server.properties")),
        ("kafka-log4j.properties", s.path("kafka", "log4j.properties")),
        ("clickhouse-config.xml", s.path("clickhouse", "config.xml")),
        ("clickhouse-users.xml", s.path("clickhouse", "users.xml")),
        ("nginx.conf", s.path("nginx", "nginx.conf")),
        ("prometheus.yml", s.path("prometheus", "prometheus.yml")),
    ]:
        rendered[template] = render_text((TEMPLATES / template).read_text(), values)
        if _write(target, rendered[template]) and template in RELOAD_ON_HUP:
            reload.add(RELOAD_ON_HUP[template])
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        s.path("nginx", "tmp", sub).mkdir(parents=True, exist_ok=True)
    for sub in ("data", "data/tmp", "data/user_files", "data/format_schemas"):
        s.path("clickhouse", sub).mkdir(parents=True, exist_ok=True)
    for sub in ("redis/primary", "redis/replica", "prometheus/data", "logs", "run"):
        s.path(*sub.split("/")).mkdir(parents=True, exist_ok=True)
    render_redis_configs(s)
    if s.is_cluster:
        cluster.render(s, rendered)
    _write(s.supervisor_conf, supervisor_conf(s))
    return reload


def _env(values: dict[str, str]) -> str:
    # supervisord expands %(name)s in values: a literal % must be doubled.
    return ",".join(f'{k}="{v.replace("%", "%%")}"' for k, v in values.items())


def service_environment(s: StackSettings) -> dict[str, str]:
    """Environment every service process gets: where the stack's components are.

    A variable already set by the user wins, so `.env` or the shell can override any of them.
    """
    env = {
        "PYTHONUNBUFFERED": "1",
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap,
        "POSTGRES_DSN": s.postgres_dsn,
        "REDIS_URL": f"redis://127.0.0.1:{s.redis_port}/0",
        "REDIS_REPLICA_URL": f"redis://127.0.0.1:{s.redis_replica_port}/0",
        "REDIS_SENTINELS": s.redis_sentinels,
        "REDIS_SENTINEL_MASTER": s.redis_sentinel_master,
        "REDIS_SENTINEL_PORTS": s.redis_sentinel_ports,  # stackcheck probes the sentinels
        "CLICKHOUSE_URL": s.clickhouse_url,
        "CLICKHOUSE_DATABASE": s.clickhouse_database,
        "SHORTEN_PORT": str(s.shorten_port),
        "ANALYTICS_PORT": str(s.analytics_port),
        "PUBLIC_HTTP_PORT": str(s.public_http_port),
        "SHORTEN_PUBLIC_BASE_URL": f"http://127.0.0.1:{s.public_http_port}",
        # Secrets by path (owner-only files), never by value: this environment is written into
        # supervisord.conf and is readable in /proc/<pid>/environ. (API keys are not here at all:
        # services read them from the `keys` topic, as digests.)
        "REDIRECT_VISITOR_KEY_SECRET_FILE": str(s.visitor_key_secret_file),
        # Every client of the local stack (tests, load tests, curl) is 127.0.0.1: the service's
        # default (30 failed authentications a minute per address) would lock them all out when
        # the suite tries wrong keys. An explicit variable wins, as for the others.
        "SHORTEN_AUTH_FAILURE_LIMIT": "600/minute",
        # Analytics likewise: failed authentications per address, and per key (the suite, the
        # load test, the chaos runs and the benchmarks all read stats with the one local admin
        # key). Reads without a key keep the service's default per address (tests that exhaust
        # it connect from their own 127.x.y.z address).
        "ANALYTICS_AUTH_FAILURE_LIMIT": "600/minute",
        "ANALYTICS_KEY_RATE_LIMIT": "100000/minute",
        "REDIRECT_REPLICA_PORTS": s.redirect_replica_ports,
        "AGGREGATOR_WEB_PORTS": s.aggregator_web_ports,
    }
    for key in list(env):
        if key in os.environ and key != "PYTHONUNBUFFERED":
            env[key] = os.environ[key]
    if s.is_cluster:  # over .env's addresses, which are the default stack's (KAFKA_BOOTSTRAP_SERVERS, ...)
        env.update(cluster.service_overrides(s))
    env.update(user_settings(s, fixed=set(env)))
    return env


def service_setting_names() -> tuple[frozenset[str], frozenset[str]]:
    """(every variable name a service reads, the names among them that hold secrets)."""
    from aggregator.settings import AggregatorSettings
    from analytics.settings import AnalyticsSettings
    from pydantic import SecretStr
    from redirect.settings import RedirectSettings
    from shorten.settings import ShortenSettings

    names: set[str] = set()
    secrets: set[str] = set()
    for cls in (ShortenSettings, RedirectSettings, AggregatorSettings, AnalyticsSettings):
        for name, field in cls.model_fields.items():
            names.add(name.upper())
            if field.annotation is SecretStr:
                secrets.add(name.upper())
    return frozenset(names), frozenset(secrets)


def user_settings(s: StackSettings, *, fixed: set[str]) -> dict[str, str]:
    """Every service setting set in `.env` or the shell, for the programs' environment.

    supervisord's programs otherwise see only the environment supervisord started with: a
    setting added later would reach nothing on `just up` or `just restart`. Written into the
    rendered config, so the stack restarts exactly the programs whose setting changed. A secret
    set by value goes into an owner-only file under `.local/settings/` and reaches the programs
    as `<NAME>_FILE` (the config and /proc/<pid>/environ never hold it).
    """
    names, secrets = service_setting_names()
    env: dict[str, str] = {}
    for name in sorted(names - fixed):
        if f"{name}_FILE" in os.environ:
            env[f"{name}_FILE"] = os.environ[f"{name}_FILE"]
        if name not in os.environ:
            continue
        if name in secrets:
            # Named by a digest of the value: a changed secret is a changed path, so the
            # programs that read it are restarted like for any changed setting.
            value = os.environ[name]
            tag = hashlib.sha256(value.encode()).hexdigest()[:12]
            folder = s.path("settings")
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            for stale in folder.glob(f"{name.lower()}-*"):
                if stale.name != f"{name.lower()}-{tag}":
                    stale.unlink()
            path = folder / f"{name.lower()}-{tag}"
            _write(path, value)
            env[f"{name}_FILE"] = str(path)
        else:
            env[name] = os.environ[name]
    return env


INFRA_PROGRAMS = ("kafka", "postgres", "redis", "redis-replica", "clickhouse", "nginx", "prometheus")


def sentinel_programs(s: StackSettings) -> list[str]:
    return [f"redis-sentinel-{i}" for i in range(1, len(s.sentinel_ports) + 1)]


def infra_programs(s: StackSettings) -> list[str]:
    if s.is_cluster:
        return cluster.infra_programs(s, sentinel_programs(s))
    return [*INFRA_PROGRAMS, *sentinel_programs(s)]


def service_programs(s: StackSettings) -> list[str]:
    return [
        *(f"shorten-{i}" for i in range(1, len(s.shorten_ports) + 1)),
        "shorten-relay",
        *(f"redirect-{i}" for i in range(1, len(s.redirect_ports) + 1)),
        *(f"aggregator-{i}" for i in range(1, len(s.aggregator_ports) + 1)),
        "retention",
        "analytics",
        "stackcheck",
    ]


def is_background(name: str) -> bool:
    """Programs that work behind the requests (the click pipeline's consumers and stores,
    retention, metrics): with BACKGROUND_NICE they yield the CPU to nginx, the redirect
    replicas and the APIs when both want it, and catch up from Kafka when it is free."""
    return name.startswith(("aggregator-", "clickhouse")) or name in ("retention", "prometheus")


def on_redirect_path(name: str) -> bool:
    """Programs a redirect waits for: with BACKGROUND_CPUS every other program stays off the
    last CPU, so a replica woken by a request finds a CPU free. The Sentinels go with Redis: a
    starved Sentinel misses the primary's pings and a failover starts for nothing."""
    return name == "nginx" or name.startswith(("redirect-", "redis"))


def _program(s: StackSettings, name: str, command: str, **extra: str) -> str:
    if s.background_nice and is_background(name):
        command = f"nice -n {s.background_nice} {command}"  # nice execs it: same pid, same signals
    cpus = s.background_cpu_list
    if cpus and not on_redirect_path(name):
        # taskset execs it too; threads and children (PostgreSQL's backends) inherit the mask.
        command = f"taskset -c {cpus} {command}"
    lines = [
        f"[program:{name}]",
        f"command={command}",
        f"directory={s.repo_root}",
        "autostart=false",
        "autorestart=true",
        "startsecs=2",
        "startretries=20",
        "stopasgroup=true",
        "killasgroup=true",
        "stopwaitsecs=30",
        "redirect_stderr=true",
        f"stdout_logfile={s.log_dir}/{name}.log",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=2",
    ]
    lines += [f"{k}={v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def supervisord_header(s: StackSettings, generated_by: str) -> list[str]:
    """supervisord's own sections for a stack whose run and log files live under `s`."""
    run = s.path("run")
    return [
        f"; Generated by {generated_by}. Edit the generator, not this file.\n",
        "[unix_http_server]",
        f"file={run}/supervisor.sock",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={s.log_dir}/supervisord.log",
        f"pidfile={run}/supervisord.pid",
        f"childlogdir={s.log_dir}",
        "nodaemon=false",
        "minfds=16384",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{run}/supervisor.sock",
        "",
    ]


def supervisor_conf(s: StackSettings) -> str:
    py = shutil.which("python", path=str(s.repo_root / ".venv" / "bin")) or "python"
    redis_server = shutil.which("redis-server") or "redis-server"
    pg = postgres_bin_dir()
    parts = [
        *supervisord_header(s, "`just up` (infra/stackctl/render.py)"),
    ]
    if s.is_cluster:
        parts += cluster.programs(s, functools.partial(_program, s))
    else:
        parts.append(
            _program(
                s,
                "kafka",
                f"java {s.kafka_heap} -XX:+UseG1GC -Djava.awt.headless=true "
                f"-Dlog4j.configuration=file:{s.path('kafka', 'log4j.properties')} "
                f"-cp {s.path('kafka', 'libs')}/* kafka.Kafka {s.path('kafka', 'server.properties')}",
                stopsignal="TERM",
                stopwaitsecs="60",
            )
        )
    parts.append(
        _program(
            s,
            "postgres",
            f"{pg}/postgres -D {s.path('postgres', 'data')} -p {s.postgres_port} "
            f"-k {s.path('postgres', 'run')} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c shared_buffers=256MB -c synchronous_commit=on -c fsync=on",
            user="postgres",
            stopsignal="INT",
        )
    )
    # Both servers alike (AOF on): either may be the primary after a failover. Which one
    # replicates which is in each server's own config file, which Sentinel rewrites.
    # With the cluster's hosts in namespaces: what the primary and the Sentinels know a server by
    # (a replica's address is otherwise the one it connects from).
    announce = f" --replica-announce-ip {s.hosts_gateway}" if s.netns_in_use else ""
    for name, role, port in (("redis", "primary", s.redis_port), ("redis-replica", "replica", s.redis_replica_port)):
        parts.append(
            _program(
                s,
                name,
                f"{redis_server} {redis_conf_path(s, role)} --bind {' '.join(s.infra_addresses)} --port {port} "
                f"--dir {s.path('redis', role)} --appendonly yes --appendfsync everysec --save '' "
                f"--maxmemory {s.redis_maxmemory} --maxmemory-policy noeviction --replica-read-only yes "
                f"--protected-mode no{announce}",
            )
        )
    for name, port in zip(sentinel_programs(s), s.sentinel_ports, strict=True):
        parts.append(_program(s, name, f"{redis_server} {sentinel_conf_path(s, port)} --sentinel"))
    if not s.is_cluster:
        parts.append(
            _program(
                s,
                "clickhouse",
                f"/usr/sbin/clickhouse-server --config-file={s.path('clickhouse', 'config.xml')}",
            )
        )
    parts.append(_program(s, "nginx", f"/usr/sbin/nginx -p {s.path('nginx')} -c {s.path('nginx', 'nginx.conf')}"))
    parts.append(
        _program(
            s,
            "prometheus",
            f"/usr/bin/prometheus --config.file={s.path('prometheus', 'prometheus.yml')} "
            f"--storage.tsdb.path={s.path('prometheus', 'data')} "
            f"--web.listen-address=127.0.0.1:{s.prometheus_port} --storage.tsdb.retention.time=2d",
        )
    )
    common = service_environment(s)

    def env(**extra: str) -> str:
        return _env({**common, **extra})

    for i, port in enumerate(s.shorten_ports, start=1):
        parts.append(_program(s, f"shorten-{i}", f"{py} -m shorten serve", environment=env(SHORTEN_PORT=str(port))))
    relay_env = cluster.relay_overrides(s) if s.is_cluster else {}
    parts.append(_program(s, "shorten-relay", f"{py} -m shorten relay", environment=env(**relay_env)))
    for i, port in enumerate(s.redirect_ports, start=1):
        parts.append(
            _program(
                s,
                f"redirect-{i}",
                f"{netns.exec_prefix(s.netns_of(i))}{py} -m redirect serve",
                environment=env(
                    REDIRECT_PORT=str(port),
                    REDIRECT_REPLICA_ID=str(i),
                    REDIRECT_PROXY_READ_TIMEOUT_SECONDS=f"{s.redirect_read_timeout:g}",
                    **({"REDIRECT_HOST": s.host_of(i)} if s.is_cluster else {}),
                    **cluster.host_overrides(s, f"redirect-{i}"),
                ),
            )
        )
    for i, port in enumerate(s.aggregator_ports, start=1):
        parts.append(
            _program(
                s,
                f"aggregator-{i}",
                f"{netns.exec_prefix(s.netns_of(i))}{py} -m aggregator worker",
                environment=env(
                    AGGREGATOR_WEB_PORT=str(port),
                    **({"AGGREGATOR_WEB_HOST": s.host_of(i)} if s.is_cluster else {}),
                    AGGREGATOR_WORKER_ID=str(i),
                    AGGREGATOR_DATA_DIR=str(s.path(f"aggregator-{i}")),
                    **cluster.host_overrides(s, f"aggregator-{i}"),
                ),
            )
        )
    # The retention job at each AGGREGATOR_RETENTION_SCHEDULE time (daily); one process, so
    # the job never runs twice at once.
    parts.append(_program(s, "retention", f"{py} -m aggregator retention --scheduled", environment=env()))
    parts.append(_program(s, "analytics", f"{py} -m analytics serve", environment=env()))
    parts.append(_program(s, "stackcheck", f"{py} -m stackctl health-server", environment=env()))
    return "\n".join(parts)
