"""The cluster with N of its hosts carrying traffic, for `just bench scale-out` (scale_out.py).

On the cluster profile (docs/cluster.md) redirect replica i and aggregator worker i run on host
i (CLUSTER_HOSTS). "N hosts" means hosts 1..N run their redirect replicas and aggregator
workers and the others run none of theirs:

- the other hosts' programs are stopped through the cluster's supervisorctl (an aggregator
  worker leaves its consumer group on SIGTERM: the live workers take its `clicks` partitions);
- nginx sends redirects to the live hosts only: the stopped replicas' `server` lines of the
  rendered `upstream redirect` are marked `down` and nginx reloads (SIGHUP). Passive health
  checks alone would also skip a stopped replica, but by trying it first (a refused connect
  per replica every fail_timeout, and its cost in nginx's CPU), which is not what an operator
  running N hosts has;
- the next step waits until every live worker owns a `clicks` partition, the live workers own
  all of them, and their lag is 0.

`host_plan` and `mark_redirect_servers` are pure (tests/unit/test_bench_scale_out.py); the rest
acts on the running cluster. `restore` puts back every program and the rendered nginx.conf as
`just up --profile cluster` left them.
"""

import asyncio
import re
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from capacity_stack import worker_lags
from redirect_bench_support import CTL
from stackctl import checks
from stackctl.config import StackSettings


@dataclass(frozen=True)
class HostPlan:
    """What runs when the first `n` of the cluster's hosts carry redirect and aggregator processes."""

    n: int
    hosts: tuple[str, ...]  # the live host addresses
    running: tuple[str, ...]  # redirect-i / aggregator-i on the live hosts
    stopped: tuple[str, ...]  # the same on the other hosts
    redirect_servers: tuple[str, ...]  # host:port of the live replicas (nginx's upstream)
    lag_endpoints: tuple[str, ...]  # host:port of the live workers' /metrics

    def describe(self) -> str:
        return f"{self.n} host{'s' if self.n > 1 else ''} ({', '.join(self.hosts)}): {', '.join(self.running)}"


def host_plan(s: StackSettings, n: int) -> HostPlan:
    """The programs of hosts 1..n (program i runs on s.host_of(i), as the cluster renders them)."""
    if not s.is_cluster:
        raise ValueError("the scale-out plan needs the cluster profile (STACK_PROFILE=cluster)")
    if not 1 <= n <= len(s.hosts):
        raise ValueError(f"{n} hosts: the cluster has {len(s.hosts)} (CLUSTER_HOSTS)")
    live = tuple(s.hosts[:n])
    redirect = [(f"redirect-{i}", s.host_of(i), port) for i, port in enumerate(s.redirect_ports, start=1)]
    aggregator = [(f"aggregator-{i}", s.host_of(i), port) for i, port in enumerate(s.aggregator_ports, start=1)]
    processes = redirect + aggregator
    plan = HostPlan(
        n=n,
        hosts=live,
        running=tuple(name for name, host, _ in processes if host in live),
        stopped=tuple(name for name, host, _ in processes if host not in live),
        redirect_servers=tuple(f"{host}:{port}" for _, host, port in redirect if host in live),
        lag_endpoints=tuple(f"{host}:{port}" for _, host, port in aggregator if host in live),
    )
    if not plan.redirect_servers or not plan.lag_endpoints:
        raise ValueError(f"{n} hosts run no redirect replica or no aggregator worker")
    return plan


_UPSTREAM_REDIRECT = re.compile(r"(^\s*upstream redirect \{\n)(.*?)(^\s*\})", re.S | re.M)
_SERVER = re.compile(r"^(\s*server )(\S+)(.*?)( down)?;$")


def mark_redirect_servers(conf: str, live: Iterable[str]) -> str:
    """nginx.conf with the `upstream redirect` servers not in `live` (host:port) marked `down`
    and those in it unmarked; nothing else changes. Raises when a live server is not in the
    block (the conf was rendered for other ports or hosts)."""
    live = set(live)
    block = _UPSTREAM_REDIRECT.search(conf)
    if block is None:
        raise ValueError("no `upstream redirect { ... }` block in nginx.conf")
    seen: set[str] = set()
    lines = []
    for line in block.group(2).splitlines(keepends=True):
        server = _SERVER.match(line.rstrip("\n"))
        if server is None:
            lines.append(line)
            continue
        address = server.group(2)
        seen.add(address)
        mark = "" if address in live else " down"
        lines.append(f"{server.group(1)}{address}{server.group(3)}{mark};" + ("\n" if line.endswith("\n") else ""))
    if missing := live - seen:
        raise ValueError(f"redirect servers {sorted(missing)} are not in nginx's upstream redirect ({sorted(seen)})")
    return conf[: block.start(2)] + "".join(lines) + conf[block.end(2) :]


# -- acting on the running cluster ---------------------------------------------------------------


def _ctl(*args: str) -> str:
    done = subprocess.run([*CTL, *args], capture_output=True, text=True, timeout=120, check=False)
    return (done.stdout + done.stderr).strip()


def running_programs() -> set[str]:
    out = _ctl("status")
    return {line.split()[0] for line in out.splitlines() if len(line.split()) > 1 and line.split()[1] == "RUNNING"}


def reload_nginx(s: StackSettings, conf: str) -> None:
    """Write the rendered nginx.conf with `conf`, check it (`nginx -t`: a reload with a broken
    file would keep the old one silently) and reload nginx (SIGHUP: new workers, no dropped
    connection)."""
    path = s.path("nginx", "nginx.conf")
    if path.read_text() == conf:
        return
    path.write_text(conf)
    test = subprocess.run(
        ["/usr/sbin/nginx", "-t", "-q", "-p", str(s.path("nginx")), "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if test.returncode != 0:
        raise RuntimeError(f"nginx -t refused the marked configuration: {test.stderr.strip()[-500:]}")
    out = _ctl("signal", "HUP", "nginx")
    if "ERROR" in out:
        raise RuntimeError(f"supervisorctl signal HUP nginx: {out}")


async def wait_ready(s: StackSettings, programs: Iterable[str], deadline_s: float) -> None:
    """Until each program's readiness probe (stackctl's /readyz probes) passes."""
    probes = checks.service_probes(s)
    pending = [p for p in programs if p in probes]
    started = time.monotonic()
    while pending:
        results = await checks.run_probes({p: probes[p] for p in pending}, timeout=3.0)
        pending = [p for p, error in results.items() if error]
        if pending and time.monotonic() - started > deadline_s:
            failing = ", ".join(f"{p}: {results[p]}" for p in pending)
            raise RuntimeError(f"not ready after {deadline_s:.0f}s: {failing}")
        await asyncio.sleep(0.5)


def balanced(lags: dict[str, dict[int, float]], partitions: int) -> bool:
    """Every live worker owns a partition, together they own all `partitions`, none is behind."""
    owned = [set(worker) for worker in lags.values()]
    covered = set().union(*owned) if owned else set()
    return all(owned) and covered == set(range(partitions)) and not any(any(w.values()) for w in lags.values())


async def wait_balanced(plan: HostPlan, partitions: int, deadline_s: float) -> float:
    """Until the live workers' consumer group has rebalanced (`balanced`, three polls in a row);
    the seconds it took."""
    started, calm = time.monotonic(), 0
    last: dict[str, dict[int, float]] | None = None
    async with httpx.AsyncClient(timeout=2) as http:
        while calm < 3:
            last = await worker_lags(http, plan.lag_endpoints)
            calm = calm + 1 if last is not None and balanced(last, partitions) else 0
            if calm < 3 and time.monotonic() - started > deadline_s:
                raise RuntimeError(
                    f"the aggregator workers of {plan.describe()} did not take all {partitions} clicks partitions "
                    f"with lag 0 within {deadline_s:.0f}s (last seen: {last})"
                )
            await asyncio.sleep(0.5)
    return time.monotonic() - started


async def apply(s: StackSettings, plan: HostPlan, original_nginx: str, partitions: int, deadline_s: float) -> float:
    """Bring the cluster to `plan`: start the live hosts' programs that are stopped and wait for
    them, send nginx to the live replicas only, stop the other hosts' programs, then wait for the
    aggregator's rebalance. Returns the seconds it took."""
    started = time.monotonic()
    running = running_programs()
    if starting := [p for p in plan.running if p not in running]:
        out = _ctl("start", *starting)
        if "ERROR" in out and "already started" not in out:
            raise RuntimeError(f"supervisorctl start {' '.join(starting)}: {out}")
        await wait_ready(s, starting, deadline_s)
    reload_nginx(s, mark_redirect_servers(original_nginx, plan.redirect_servers))
    if stopping := [p for p in plan.stopped if p in running]:
        await asyncio.sleep(1.0)  # the old nginx workers finish what they had in flight
        out = _ctl("stop", *stopping)
        if "ERROR" in out and "not running" not in out:
            raise RuntimeError(f"supervisorctl stop {' '.join(stopping)}: {out}")
    await wait_balanced(plan, partitions, deadline_s)
    return time.monotonic() - started


def restore(s: StackSettings, original_nginx: str) -> None:
    """Every host's programs running again and nginx.conf as rendered (the state `just up` left)."""
    every = [f"redirect-{i}" for i in range(1, len(s.redirect_ports) + 1)]
    every += [f"aggregator-{i}" for i in range(1, len(s.aggregator_ports) + 1)]
    stopped = [p for p in every if p not in running_programs()]
    if stopped:
        _ctl("start", *stopped)
    reload_nginx(s, original_nginx)
