"""The locust command lines of a run (pure: easy to read, easy to test).

- default: one headless locust process;
- 100k: one headless locust command with `--processes N` (a master and N forked workers);
- dist: one `--master` bound to 127.0.0.1 and N `--worker` commands connecting to it.
Every command is bounded: `--run-time` and `--stop-timeout` are always set.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from loadtest.settings import Profile

LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
# Locust's own --run-time is only the outer bound: the locustfile stops the load after the
# profile's run time (--stop-after) and needs time for the graceful stop and the last reports.
OUTER_BOUND_MARGIN = 30


@dataclass(frozen=True)
class RunPaths:
    run_dir: Path

    @property
    def codes_file(self) -> Path:
        return self.run_dir / "codes.json"

    @property
    def tally_dir(self) -> Path:
        return self.run_dir / "tally"

    @property
    def csv_prefix(self) -> Path:
        return self.run_dir / "stats"

    def log_file(self, role: str) -> Path:
        return self.run_dir / f"locust-{role}.log"


@dataclass(frozen=True)
class Command:
    role: str  # "locust", "master" or "worker-<n>"
    argv: tuple[str, ...]


def _user_args(profile: Profile, paths: RunPaths) -> list[str]:
    """Options of our locustfile; every process (master and workers) gets the same ones."""
    return [
        "--read-users",
        str(profile.read_users),
        "--write-users",
        str(profile.write_users),
        "--read-rps",
        str(profile.read_rps_per_user),
        "--write-rps",
        str(profile.write_rps_per_user),
        "--codes-file",
        str(paths.codes_file),
        "--tally-dir",
        str(paths.tally_dir),
        "--zipf-s",
        str(profile.zipf_s),
    ]


def _driver_args(profile: Profile, paths: RunPaths, role: str) -> list[str]:
    """The process that owns the run: users, spawn rate, time bound, CSV stats."""
    return [
        "--headless",
        "--host",
        profile.host,
        "--users",
        str(profile.users),
        "--spawn-rate",
        str(profile.spawn_rate),
        "--stop-after",
        str(profile.run_time),  # our locustfile's graceful end (see there)
        "--run-time",
        f"{profile.run_time + profile.stop_timeout + OUTER_BOUND_MARGIN}s",  # locust's hard bound
        "--stop-timeout",
        str(profile.stop_timeout),
        "--csv",
        str(paths.csv_prefix),
        "--only-summary",
        "--exit-code-on-error",
        "0",  # request failures are reported by the summary, not the exit code
        "--logfile",
        str(paths.log_file(role)),
    ]


def locust_commands(profile: Profile, paths: RunPaths, *, master_port: int = 0, python: str = "") -> list[Command]:
    """The commands to start, driver first. `master_port` is used by the dist profile only."""
    base = [python or sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    users = _user_args(profile, paths)
    if profile.workers:
        if not master_port:
            raise ValueError("the dist profile needs a master port")
        master = [
            *base,
            *_driver_args(profile, paths, "master"),
            *users,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(profile.workers),
            "--expect-workers-max-wait",
            "60",
        ]
        workers = [
            Command(
                f"worker-{n}",
                (
                    *base,
                    "--worker",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    str(master_port),
                    "--logfile",
                    str(paths.log_file(f"worker-{n}")),
                    *users,
                ),
            )
            for n in range(1, profile.workers + 1)
        ]
        return [Command("master", tuple(master)), *workers]
    argv = [*base, *_driver_args(profile, paths, "locust"), *users]
    if profile.processes:
        argv += ["--processes", str(profile.processes)]
    return [Command("locust", tuple(argv))]


def deadline_seconds(profile: Profile) -> float:
    """How long the locust processes may take in all before they are stopped by force."""
    spawn = profile.users / profile.spawn_rate
    connect = 60 if profile.workers else 0
    return profile.run_time + profile.stop_timeout + OUTER_BOUND_MARGIN + spawn + connect + 60
