"""`python -m stackctl <command>`: the native stack's control. The justfile calls these."""

import argparse
import asyncio
import os
import subprocess
import sys
import time

from stackctl import checks, cluster, first_start, localkey, migrate, netns, render, supervisor, topics
from stackctl.config import StackSettings
from stackctl.first_start import say


def _wait(s: StackSettings, probes: dict[str, checks.Probe], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(probes)
    last: dict[str, str | None] = {}
    while pending:
        last = asyncio.run(checks.run_probes(pending, timeout=5.0))
        for name, error in last.items():
            if error is None:
                say(f"{name}: ready")
                pending.pop(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            lines = "\n".join(f"  {n}: {last.get(n)}  (logs: just logs {n})" for n in pending)
            raise SystemExit(f"[stack] {what} not ready after {timeout:.0f}s:\n{lines}")
        time.sleep(0.5)


def refuse_busy_ports(s: StackSettings) -> None:
    """Before a first start: every port must be free. A port another process holds (another
    checkout's stack, a system service) would otherwise make a program crash-loop, or worse,
    let a readiness probe pass against someone else's server."""
    busy = {name: port for name, port in checks.stack_ports(s).items() if checks.port_in_use(port)}
    if busy:
        ports = ", ".join(f"{name} {port}" for name, port in busy.items())
        raise SystemExit(
            f"[stack] ports in use by processes this stack does not run: {ports}. "
            "Stop them (another checkout: `./justw down` there), or choose other ports "
            "in .env (see .env.example)."
        )


def up(s: StackSettings, *, infra_only: bool) -> None:
    if supervisor.supervisord_pid(s) is None:
        refuse_busy_ports(s)
    first_start.ensure_api_key(s)
    first_start.ensure_visitor_key_secret(s)
    if s.is_cluster:  # PgBouncer and ZooKeeper (idempotent: a second run only checks)
        subprocess.run(["bash", str(s.repo_root / "infra" / "scripts" / "install-system.sh"), "cluster"], check=True)
        netns.ensure(s, say)  # before rendering: the servers listen on the bridge too, the hosts' programs run inside
    reload = render.render_all(s)
    first_start.ensure_kafka_libs(s)
    if s.is_cluster:
        cluster.ensure_kafka_storage(s)
    else:
        first_start.ensure_kafka_storage(s)
    first_start.ensure_postgres_cluster(s)
    supervisor.ensure_running(s)
    if s.is_cluster:  # ClickHouse 18.16 does not start (and does not exit) without its ZooKeeper
        supervisor.start(s, "zookeeper")
        _wait(s, {"zookeeper": lambda: cluster.zookeeper(s)}, timeout=120, what="ZooKeeper")
    say("starting infrastructure: " + ", ".join(render.infra_programs(s)))
    supervisor.start(s, *render.infra_programs(s))
    if s.is_cluster:  # the replica is a copy of the running primary
        _wait(s, {"postgres": lambda: checks.postgres_server(s)}, timeout=120, what="PostgreSQL primary")
        cluster.ensure_postgres_replica(s)
        supervisor.start(s, "postgres-replica")
    if reload:  # running ones keep serving and read their new configuration (started ones already have it)
        say("reloading changed configuration: " + ", ".join(sorted(reload)))
        supervisor.ctl(s, "signal", "HUP", *sorted(reload))
    infra = checks.infra_probes(s)
    infra["kafka"] = lambda: checks.kafka_broker(s)  # topics come next
    infra["postgres"] = lambda: checks.postgres_server(s)  # the app role comes next
    infra.pop("pgbouncer", None)  # it logs in as the app role, which comes next
    _wait(s, infra, timeout=120, what="infrastructure")
    asyncio.run(first_start.ensure_postgres_database(s))
    if s.is_cluster:
        _wait(s, {"pgbouncer": lambda: cluster.pgbouncer(s)}, timeout=60, what="PgBouncer")
    asyncio.run(topics.ensure_topics(s.kafka_bootstrap, replication_factor=s.kafka_replication_factor))
    asyncio.run(migrate.migrate_postgres(s))
    asyncio.run(migrate.migrate_clickhouse(s))
    localkey.ensure_local_admin_key(s)
    if infra_only:
        say("infrastructure is up (services not started)")
        return
    programs = render.service_programs(s)
    say("starting services: " + ", ".join(programs))
    supervisor.start(s, *programs)
    _wait(s, checks.service_probes(s), timeout=180, what="services")
    _wait(
        s,
        {"public /readyz": lambda: checks._http_ok(f"http://127.0.0.1:{s.public_http_port}/readyz")},
        timeout=60,
        what="public entry point",
    )
    say(f"stack is up: http://127.0.0.1:{s.public_http_port}  (API key: {s.api_key_file})")


def restart(s: StackSettings, names: list[str]) -> None:
    """Restart programs with the settings of this shell and `.env`: the configuration is rendered
    again first, so a setting changed since `just up` reaches the programs restarted here (and
    only those: other programs keep their running configuration until they are restarted)."""
    if supervisor.supervisord_pid(s) is None:
        raise SystemExit("the stack is not running: `just up` first")
    first_start.ensure_api_key(s)
    first_start.ensure_visitor_key_secret(s)
    render.render_all(s)
    reread = supervisor.ctl(s, "reread").stdout
    changed = {line.split(":", 1)[0] for line in reread.splitlines() if line.endswith(": changed")}
    everything = names == ["all"]
    renewed = sorted(changed) if everything else [n for n in names if n in changed]
    if renewed:  # stop, take the new configuration, start
        say("restarting with changed settings: " + ", ".join(renewed))
        supervisor.ctl(s, "update", *([] if everything else renewed))
        supervisor.start(s, *renewed)  # programs are not autostarted: the stack orders starts
    same = ["all"] if everything else [n for n in names if n not in changed]
    if same:
        result = supervisor.ctl(s, "restart", *same)
        failed = [line for line in result.stdout.splitlines() if "ERROR" in line]
        if failed:
            raise SystemExit("supervisorctl restart failed:\n" + "\n".join(failed))
        print(result.stdout, end="")


def down(s: StackSettings) -> None:
    if supervisor.supervisord_pid(s) is None:
        say("stack is not running")
    else:
        say("stopping every program and supervisord")
        supervisor.shutdown(s)
    deadline = time.monotonic() + 30
    while True:
        busy = {name: port for name, port in checks.stack_ports(s).items() if checks.port_in_use(port)}
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    leftovers = supervisor.leftover_processes(s)
    links: list[str] = []
    if s.is_cluster:  # the hosts' namespaces, their veth pairs and the bridge
        for error in netns.delete(s):
            say(f"deleting the hosts' namespaces: {error}")
        links = netns.leftovers(s)
    if busy or leftovers or links:
        raise SystemExit(
            f"[stack] still running after down: ports {busy}, processes {leftovers}, namespaces/links {links}"
        )
    say("stack is down: no process left, ports free")


def check(s: StackSettings) -> int:
    results = asyncio.run(checks.run_probes({**checks.infra_probes(s), **checks.service_probes(s)}))
    width = max(map(len, results))
    for name, error in results.items():
        print(f"{name:<{width}}  {'ok' if error is None else 'FAIL  ' + error}")
    return 0 if all(e is None for e in results.values()) else 1


def health_server(s: StackSettings) -> None:
    from platformkit.server import serve
    from telemetry.logs import setup_logging

    setup_logging("stackcheck")

    serve(factory="stackctl.healthapp:create_app", server="hypercorn", host="127.0.0.1", port=s.stackcheck_port)


def main(argv: list[str] | None = None) -> int:
    # --profile before or after the command (`just up --profile cluster`): the stack to act on.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--profile",
        choices=("default", "cluster"),
        default=argparse.SUPPRESS,
        help="the stack to act on (STACK_PROFILE; docs/cluster.md)",
    )
    parser = argparse.ArgumentParser(prog="stackctl", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    up_p = sub.add_parser("up", parents=[common], help="start the whole stack and wait until it serves")
    up_p.add_argument("--infra-only", action="store_true")
    sub.add_parser("down", parents=[common], help="stop everything; fail if anything is left running")
    restart_p = sub.add_parser(
        "restart", parents=[common], help="restart programs with the current settings (`all` for every one)"
    )
    restart_p.add_argument("names", nargs="+")
    sub.add_parser("check", parents=[common], help="probe every component (smoke check)")
    sub.add_parser("migrate", parents=[common], help="apply schema files to PostgreSQL and ClickHouse")
    sub.add_parser("topics", parents=[common], help="create/update the declared Kafka topics")
    sub.add_parser("render", parents=[common], help="render configuration files into .local/")
    sub.add_parser("health-server", parents=[common], help="serve the combined /healthz and /readyz")
    sub.add_parser(
        "redis-failback", parents=[common], help="after a Sentinel failover, make the `redis` program the primary again"
    )
    args = parser.parse_args(argv)
    if getattr(args, "profile", None):  # the programs supervisord starts inherit it
        os.environ["STACK_PROFILE"] = args.profile
    s = StackSettings()
    if args.command == "up":
        up(s, infra_only=args.infra_only)
    elif args.command == "down":
        down(s)
    elif args.command == "restart":
        restart(s, args.names)
    elif args.command == "check":
        return check(s)
    elif args.command == "migrate":
        asyncio.run(migrate.migrate_postgres(s))
        asyncio.run(migrate.migrate_clickhouse(s))
    elif args.command == "topics":
        asyncio.run(topics.ensure_topics(s.kafka_bootstrap, replication_factor=s.kafka_replication_factor))
    elif args.command == "render":
        first_start.ensure_api_key(s)
        first_start.ensure_visitor_key_secret(s)
        render.render_all(s)
    elif args.command == "redis-failback":
        from stackctl import sentinel

        moved = asyncio.run(sentinel.fail_back(s))
        say("Redis primary moved back to the redis program" if moved else "Redis primary is the redis program")
    elif args.command == "health-server":
        health_server(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
