"""The faults' hands on the native stack: supervised programs (pid, SIGKILL, stop, start) and
readiness, through stackctl's own supervisor wrapper and probes."""

import asyncio
import os
import signal
import time

from stackctl import checks, supervisor
from stackctl.config import StackSettings


class StackError(RuntimeError):
    pass


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.s = settings
        self.public_url = f"http://127.0.0.1:{settings.public_http_port}"
        self.replica_urls = [
            f"http://{settings.host_of(i)}:{p}" for i, p in enumerate(settings.redirect_ports, start=1)
        ]
        # The cluster's hosts when they are network namespaces on this machine (the load guard
        # accepts them besides loopback).
        self.local_hosts = frozenset(settings.hosts if settings.netns_in_use else ())
        self._probes = {**checks.infra_probes(settings), **checks.service_probes(settings)}

    @property
    def api_key(self) -> str:
        return self.s.api_key_file.read_text().strip()

    async def ctl(self, *args: str) -> str:
        result = await asyncio.to_thread(supervisor.ctl, self.s, *args)
        return result.stdout.strip()

    async def pid(self, program: str) -> int:
        out = await self.ctl("pid", program)
        return int(out) if out.isdigit() else 0

    async def sigkill(self, program: str) -> int:
        """SIGKILL every process of the program (supervisord runs each in its own process group:
        a server's workers die with it, as on a crash of the whole program; killing the parent
        alone lets a worker drain gracefully); supervisord restarts it. Returns the old pid."""
        pid = await self.pid(program)
        if pid <= 0:
            raise StackError(f"{program} is not running")
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        return pid

    async def stop(self, *programs: str) -> None:
        await self.ctl("stop", *programs)

    async def start(self, *programs: str) -> None:
        out = await self.ctl("start", *programs)
        if "ERROR" in out and "already started" not in out:
            raise StackError(out)

    async def restart(self, program: str) -> None:
        await self.ctl("restart", program)

    async def wait_restarted(self, program: str, old_pid: int, *, timeout: float = 90) -> float:
        """Until supervisord runs the program again under a new pid; when (monotonic)."""
        deadline = time.monotonic() + timeout
        while True:
            pid = await self.pid(program)
            if pid not in (0, old_pid):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise StackError(f"{program} was not restarted within {timeout:.0f}s")
            await asyncio.sleep(0.1)

    async def wait_ready(self, *names: str, timeout: float = 120) -> float:
        """Until each named component's probe (stackctl check) passes; when (monotonic)."""
        deadline = time.monotonic() + timeout
        pending = [n for n in names if n in self._probes]
        while pending:
            results = await checks.run_probes({n: self._probes[n] for n in pending}, timeout=3.0)
            pending = [n for n, error in results.items() if error]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise StackError(f"not ready after {timeout:.0f}s: " + ", ".join(f"{n}: {results[n]}" for n in pending))
            await asyncio.sleep(0.2)
        return time.monotonic()

    async def wait_all_ready(self, *, timeout: float = 180) -> float:
        return await self.wait_ready(*self._probes, timeout=timeout)
