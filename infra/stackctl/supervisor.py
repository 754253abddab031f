"""Thin wrappers around supervisord/supervisorctl (the maintained supervisor we use)."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from stackctl.config import StackSettings


def _bin(s: StackSettings, name: str) -> str:
    return (
        str(s.repo_root / ".venv" / "bin" / name)
        if (s.repo_root / ".venv" / "bin" / name).exists()
        else (shutil.which(name) or name)
    )


def ctl(s: StackSettings, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bin(s, "supervisorctl"), "-c", str(s.supervisor_conf), *args],
        capture_output=True,
        text=True,
        check=check,
    )


def pidfile(s: StackSettings) -> Path:
    return s.path("run", "supervisord.pid")


def supervisord_pid(s: StackSettings) -> int | None:
    try:
        pid = int(pidfile(s).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def ensure_running(s: StackSettings) -> None:
    if supervisord_pid(s) is not None:
        # Pick up a re-rendered configuration: changed programs restart, others keep running.
        ctl(s, "reread")
        ctl(s, "update")
        return
    subprocess.run([_bin(s, "supervisord"), "-c", str(s.supervisor_conf)], check=True)
    deadline = time.monotonic() + 15
    while ctl(s, "pid").returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("supervisord did not start; see .local/logs/supervisord.log")
        time.sleep(0.1)


def start(s: StackSettings, *programs: str) -> None:
    result = ctl(s, "start", *programs)
    # supervisorctl says "already started" for running programs; real failures say ERROR.
    failed = [line for line in result.stdout.splitlines() if "ERROR" in line and "already started" not in line]
    if failed:
        raise RuntimeError("supervisorctl start failed:\n" + "\n".join(failed))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it only waits to be reaped by its parent.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def shutdown(s: StackSettings, timeout: float = 90) -> None:
    pid = supervisord_pid(s)
    if pid is None:
        return
    ctl(s, "stop", "all")
    ctl(s, "shutdown")
    deadline = time.monotonic() + timeout
    # The pid file goes before the process exits: wait for the process itself.
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.2)


def leftover_processes(s: StackSettings) -> list[tuple[int, str]]:
    """Processes whose command line points into this stack's folder or venv (should be none after down)."""
    marks = (str(s.local_dir), str(s.repo_root / ".venv" / "bin" / "python") + " -m ")
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if any(m in cmd for m in marks) and "stackctl" not in cmd and "pytest" not in cmd:
            found.append((int(entry.name), cmd))
    return found
