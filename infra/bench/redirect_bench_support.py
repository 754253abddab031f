"""Helpers of `just bench redirect` (infra/bench/redirect.py): processes, CPU accounting, the
bench links, a throwaway topic, a baseline revision's code, the click pipeline's cost, machine notes.

Where the stack is comes from the same settings as the stack and the services (StackSettings,
InfraSettings: environment variables, which `just` loads from .env)."""

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from platformkit.settings import InfraSettings
from stackctl.config import StackSettings

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = str(ROOT / ".venv/bin/python")
BENCH = ROOT / ".local" / "bench"
STACK = StackSettings()  # the running stack's settings (STACK_PROFILE: default or cluster)
KAFKA = InfraSettings().kafka_bootstrap_servers
PUBLIC_HTTP_PORT = STACK.public_http_port
PUBLIC = f"http://127.0.0.1:{PUBLIC_HTTP_PORT}"
CTL = [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(STACK.supervisor_conf)]
ALIAS = "bench-redirect-{:04d}"


def say(msg: str) -> None:
    print(f"[bench redirect] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                out.setdefault(ppid, []).append(int(entry.name))
    return out


def descendants(roots: set[int]) -> set[int]:
    children, out, todo = _children(), set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def cpu_ticks(pids: set[int]) -> int:
    """utime + stime (all threads) of these processes, in clock ticks."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


def supervised_pids() -> set[int]:
    """The stack's redirect replicas and nginx, with their children (workers)."""
    roots = set()
    for name in ("redirect-1", "redirect-2", "redirect-3", "nginx"):
        out = subprocess.run([*CTL, "pid", name], capture_output=True, text=True, check=False).stdout.strip()
        if out.isdigit() and int(out) > 0:
            roots.add(int(out))
    return descendants(roots)


@dataclass
class Proc:
    """A throwaway process in its own session; its log goes to .local/bench/<pid>.log."""

    popen: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, cmd: list[str], env: Mapping[str, str], logdir: Path) -> "Proc":
        logdir.mkdir(parents=True, exist_ok=True)
        log = logdir / f"proc-{time.time_ns()}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return cls(popen, log)

    def tree(self) -> set[int]:
        return descendants({self.popen.pid})

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.log.unlink(missing_ok=True)


def wait_http(url: str, *, expect: int, timeout: float, proc: Proc | None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.popen.args!r} exited: {proc.log.read_text()[-2000:]}")
        try:
            status = httpx.head(url, timeout=2).status_code
            if status == expect:
                return
            last = f"status {status}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer {expect} in {timeout}s ({last})")


async def ensure_codes(count: int) -> dict[str, str]:
    """The bench links bench-redirect-0000.., created through the shorten API when missing."""
    key = STACK.api_key_file.read_text().strip()
    links = {ALIAS.format(i): f"https://bench.example/target/{i}" for i in range(count)}
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=PUBLIC, headers={"Authorization": f"Bearer {key}"}, timeout=10) as api:

        async def one(alias: str, url: str) -> None:
            async with sem:
                r = await api.post("/api/v1/links", json={"url": url, "alias": alias})
                if r.status_code not in (201, 409):
                    raise RuntimeError(f"creating {alias}: {r.status_code} {r.text}")

        await asyncio.gather(*(one(a, u) for a, u in links.items()))
        deadline = time.monotonic() + 30
        for alias in links:
            while (status := (await api.head(f"/{alias}")).status_code) != 302:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bench link {alias} answers {status}, not 302")
                await asyncio.sleep(0.05)
    say(f"{count} bench links ready ({ALIAS.format(0)} ..)")
    return links


@contextlib.contextmanager
def temp_topic(name: str, partitions: int = 3) -> Iterator[str]:
    """A throwaway topic for the throwaway replicas' click events, deleted afterwards."""

    async def admin(create: bool) -> None:
        client = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await client.start()
        try:
            if create:
                await client.create_topics([NewTopic(name, partitions, 1, topic_configs={"retention.ms": "3600000"})])
            else:
                await client.delete_topics([name])
        finally:
            await client.close()

    asyncio.run(admin(True))
    try:
        yield name
    finally:
        asyncio.run(admin(False))


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "?"


def machine_notes() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    packages = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("granian", "uvicorn", "hypercorn", "starlette", "aiokafka", "redis", "uvloop", "httptools")
    )
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": _version(["wrk", "-v"]),
        "nginx": _version(["/usr/sbin/nginx", "-v"]),
        "packages": packages,
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def baseline_tree(ref: str) -> Path:
    """`services/` and `libs/` of git revision `ref`, extracted under .local/bench (no checkout)."""
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True)
    tree = BENCH / f"baseline-{sha.stdout.strip()}"
    if not tree.exists():
        partial = tree.with_name(tree.name + ".partial")
        subprocess.run(["rm", "-rf", str(partial)], check=True)
        partial.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", ref, "services", "libs"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive.stdout, check=True)
        partial.rename(tree)
    say(f"baseline: {ref} extracted in {tree.relative_to(ROOT)}")
    return tree


def click_cost(rps: float, codes: Path, topic: str) -> dict[str, float]:
    """The click pipeline's CPU per click, in a child (redirect_click_cost.py), with flushes of
    the size the redirect case formed: its req/s x the flush interval."""
    code = "from redirect.settings import RedirectSettings as S; print(S().redirect_click_flush_interval_seconds)"
    interval = float(subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    per_flush = max(1, round(rps * interval))
    # -P: not infra/bench first on sys.path (its redirect.py would shadow the service package)
    cmd = [PY, "-P", str(HERE / "redirect_click_cost.py"), "--per-flush", str(per_flush), "--codes", str(codes)]
    out = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, "TOPIC_CLICKS": topic},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    cost: dict[str, float] = json.loads(out.splitlines()[-1])
    say(
        f"{'click pipeline':<22} {cost['total']:6.2f} us CPU/click (build {cost['build']:.2f}, form {cost['form']:.2f},"
        f" publish {cost['publish']:.2f}) in flushes of {per_flush}"
    )
    return cost


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_bench(main: Coroutine[Any, Any, None], *, on_interrupt: str, say: Callable[[str], None] = say) -> None:
    """Run a bench's main coroutine as a script: Ctrl-C and SIGTERM both unwind through its
    `finally` blocks (attack()'s stops vegeta, which runs in its own session, so a signal to this
    process alone must not leave it behind); a RuntimeError is the bench's own failure."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        say(f"interrupted: {on_interrupt}")
        sys.exit(130)
    except RuntimeError as exc:
        say(f"failed: {exc}")
        sys.exit(1)
