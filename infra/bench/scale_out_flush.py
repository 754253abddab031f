"""The flush mode for `just bench scale-out --flush-modes` (scale_out.py).

"group" (the default of AGGREGATOR_FLUSH_SHARED_BY_GROUP): a worker owning 1/N of the `clicks`
partitions flushes light traffic every N x AGGREGATOR_FLUSH_MIN_S, so the group writes about once
a second however many hosts carry it. "worker" (the code before it, kept runnable): every worker
flushes every AGGREGATOR_FLUSH_MIN_S. Running both at each host count puts the before and the
after in one run. "records": "group", and the replicas' click flush interval times the live
replicas (see REPLICA_FLUSH_ENV). "group", "worker" and "records" run the replicas without their
light-traffic batch floor (REDIRECT_CLICK_FLUSH_MIN_CLICKS=0: one flush per interval, the code
before it); "batched" is the group's flush with the replicas' default floor (the code after it).

A mode is set by adding the variable to the aggregator programs' `environment=` lines of the
cluster's rendered supervisord.conf and `supervisorctl reread` + `update` of those programs (they
stop; the next configuration starts the live ones); `restore` writes the rendered file back.
`with_program_env` and `configurations` are pure (tests/unit/test_bench_scale_out.py).
"""

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from redirect_bench_support import CTL

FLUSH_ENV = "AGGREGATOR_FLUSH_SHARED_BY_GROUP"
REPLICA_FLOOR_ENV = "REDIRECT_CLICK_FLUSH_MIN_CLICKS"
REPLICA_FLUSH_ENV = "REDIRECT_CLICK_FLUSH_INTERVAL_SECONDS"


@dataclass(frozen=True)
class FlushMode:
    shared_by_group: str  # the workers' AGGREGATOR_FLUSH_SHARED_BY_GROUP
    replica_floor: str | None  # the replicas' REDIRECT_CLICK_FLUSH_MIN_CLICKS (None: their default)
    # Each of the N live replicas sends its clicks every N x its interval, so the replicas together
    # make one replica's `clicks` records per second (a diagnostic of what the records cost).
    stretch_replica_interval: bool
    # The mode of its configuration at 1 host: with one worker owning every partition and one
    # replica, "worker", "group" and "records" are one rule; "batched" differs (the floor).
    one_host: str
    name: str  # a configuration's name in the tables, "{n}" the host count


FLUSH_MODES = {
    "group": FlushMode("true", "0", False, "group", "{n}"),
    "worker": FlushMode("false", "0", False, "group", "{n} per-worker"),
    "records": FlushMode("true", "0", True, "group", "{n} replicas x{n}"),
    "batched": FlushMode("true", None, False, "batched", "{n} batched"),
}
_SECTION = re.compile(r"^\[program:([^\]]+)\]\s*$")
_ENTRY = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def with_program_env(conf: str, programs: Iterable[str], key: str, value: str | None) -> str:
    """supervisord.conf with `key="value"` in the `environment=` line of each of `programs`
    (replacing the key's earlier value there; None: the key removed); other sections and lines
    are unchanged. Raises if a program has no section or no environment line."""
    wanted, done = set(programs), set()
    section = None
    lines = []
    for line in conf.splitlines(keepends=True):
        header = _SECTION.match(line)
        if header:
            section = header.group(1)
        elif section in wanted and line.startswith("environment="):
            entries = [(k, v) for k, v in _ENTRY.findall(line[len("environment=") :]) if k != key]
            if value is not None:
                entries.append((key, value))
            line = "environment=" + ",".join(f'{k}="{v}"' for k, v in entries) + "\n"
            done.add(section)
        lines.append(line)
    if missing := wanted - done:
        raise ValueError(f"no [program:...] section with an environment line for {sorted(missing)}")
    return "".join(lines)


def _ctl(*args: str) -> str:
    done = subprocess.run([*CTL, *args], capture_output=True, text=True, timeout=180, check=False)
    return (done.stdout + done.stderr).strip()


def apply_conf(path: Path, text: str, programs: Iterable[str]) -> bool:
    """Write `text` to the supervisord.conf at `path` and have supervisord take the changed
    programs (stopped, re-added); False when nothing changed."""
    if path.read_text() == text:
        return False
    path.write_text(text)
    _ctl("reread")
    out = _ctl("update", *programs)
    if "ERROR" in out:
        raise RuntimeError(f"supervisorctl update: {out}")
    return True


def as_rendered(conf: str, aggregators: Iterable[str], replicas: Iterable[str]) -> str:
    """The conf without any flush mode of ours (as `just up` renders it -- the stack sets neither
    variable -- also after an interrupted run that could not restore it)."""
    replicas = list(replicas)
    text = with_program_env(with_program_env(conf, aggregators, FLUSH_ENV, None), replicas, REPLICA_FLUSH_ENV, None)
    return with_program_env(text, replicas, REPLICA_FLOOR_ENV, None)


def mode_conf(
    rendered: str, mode: str | None, n: int, aggregators: Iterable[str], replicas: Iterable[str], replica_flush_s: float
) -> str:
    """The conf of `mode` at `n` live hosts (None: as rendered)."""
    replicas = list(replicas)
    if mode is None:
        return as_rendered(rendered, aggregators, replicas)
    m = FLUSH_MODES[mode]
    text = with_program_env(rendered, aggregators, FLUSH_ENV, m.shared_by_group)
    value = f"{replica_flush_s * n:g}" if m.stretch_replica_interval else None
    text = with_program_env(text, replicas, REPLICA_FLUSH_ENV, value)
    return with_program_env(text, replicas, REPLICA_FLOOR_ENV, m.replica_floor)


def set_flush_mode(
    path: Path,
    rendered: str,
    mode: str | None,
    n: int,
    aggregators: Iterable[str],
    replicas: Iterable[str],
    replica_flush_s: float,
) -> bool:
    """The programs in `mode` at `n` hosts from their next start; True when some had to be
    stopped for it."""
    aggregators, replicas = list(aggregators), list(replicas)
    text = mode_conf(rendered, mode, n, aggregators, replicas, replica_flush_s)
    return apply_conf(path, text, [*aggregators, *replicas])


def configurations(hosts: list[int], modes: list[str]) -> list[tuple[int, str]]:
    """(host count, flush mode) in the order measured: every mode at each host count, except at
    1 host, where "worker", "group" and "records" are one rule (a worker owning every partition,
    one replica): that runs once, in the group mode if it (or "records") is asked for; "batched"
    runs there as well when asked (its replica floor differs)."""
    out: list[tuple[int, str]] = []
    for n in hosts:
        if n == 1:
            old = [m for m in modes if FLUSH_MODES[m].one_host == "group"]
            if old:
                out.append((1, "group" if {"group", "records"} & set(old) else old[0]))
            if "batched" in modes:
                out.append((1, "batched"))
        else:
            out += [(n, mode) for mode in modes]
    return out
