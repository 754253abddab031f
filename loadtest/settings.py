"""Run profiles and their knobs, read once from the environment (names = field names, upper case).

- `default` (`just loadtest`): bounded and modest, sized for a 2-core machine that also runs
  the whole stack. Knobs `LOADTEST_*`.
- `100k` (`just loadtest-100k`): the scaling runbook's 100k-RPS profile, one locust command
  forked into `REQUEST_GENERATOR_PROCESSES_100K` worker processes. Same knob names and defaults
  as the runbook, plus `REQUEST_GENERATOR_DURATION_100K` (the runbook leaves it open).
- `dist` (`just loadtest-dist`): a locust master plus `REQUEST_GENERATOR_WORKERS_DIST` worker
  processes connected over 127.0.0.1 (the runbook's `_DIST` knobs).

Every profile is bounded in time and refuses any host that is not loopback (guard.py).
"""

import re
from dataclasses import dataclass, replace
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

ProfileName = Literal["default", "100k", "dist"]
PROFILES: tuple[ProfileName, ...] = ("default", "100k", "dist")
NATIVE_HOST = "http://127.0.0.1:8080"

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")


def parse_duration(text: str) -> int:
    """Seconds in a locust-style duration: `90`, `90s`, `10m`, `1h30m`, `2m30s`."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None:
        raise ValueError(f"invalid duration {text!r} (examples: 90, 90s, 10m, 1h30m)")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return total


class LoadtestEnv(BaseSettings):
    """Every knob with its default; read once by the CLI."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_file=None)

    # --- default profile (`just loadtest`) ---
    loadtest_host: str = NATIVE_HOST
    loadtest_users: int = 24
    loadtest_spawn_rate: float = 12
    loadtest_duration: str = "90s"
    loadtest_read_users: int = 22
    loadtest_write_users: int = 2
    loadtest_read_rps_per_user: float = 10
    loadtest_write_rps_per_user: float = 2
    # Shared by every profile.
    loadtest_seed_codes: int = 100
    loadtest_zipf_s: float = 1.1
    loadtest_stop_timeout: int = 10
    loadtest_drain_timeout: float = 300
    loadtest_api_key: str = ""  # empty: read .local/api-key

    # --- 100k profile (runbook names and defaults) ---
    request_generator_users_100k: int = 5000
    request_generator_spawn_rate_100k: float = 1000
    request_generator_processes_100k: int = 4
    request_generator_duration_100k: str = "3m"
    target_read_users_100k: int = 4000
    target_write_users_100k: int = 1000
    target_read_rps_per_user_100k: float = 20
    target_write_rps_per_user_100k: float = 20

    # --- dist profile (runbook names; defaults sized for this machine, see docs/loadtest.md) ---
    request_generator_workers_dist: int = 2
    request_generator_users_dist: int = 200
    request_generator_spawn_rate_dist: float = 100
    request_generator_duration_dist: str = "2m"
    target_read_users_dist: int = 195
    target_write_users_dist: int = 5
    target_read_rps_per_user_dist: float = 1
    target_write_rps_per_user_dist: float = 1
    # The runbook's default, http://host.docker.internal:8080, is how a *container* reaches the
    # host; it is not loopback, so the guard refuses it. Natively the stack is on 127.0.0.1.
    request_generator_host_dist: str = NATIVE_HOST


@dataclass(frozen=True)
class Profile:
    """One run's parameters, resolved from the environment and command-line overrides."""

    name: ProfileName
    host: str
    users: int
    spawn_rate: float
    run_time: int  # seconds
    read_users: int
    write_users: int
    read_rps_per_user: float
    write_rps_per_user: float
    processes: int = 0  # 100k: `locust --processes N` (master + N forked workers)
    workers: int = 0  # dist: one `locust --master` and N `locust --worker` commands
    seed_codes: int = 100
    zipf_s: float = 1.1
    stop_timeout: int = 10
    drain_timeout: float = 300

    def validate(self) -> "Profile":
        if self.read_users + self.write_users != self.users:
            raise ValueError(
                f"read users ({self.read_users}) + write users ({self.write_users}) must equal users ({self.users})"
            )
        if self.read_users < 1:
            raise ValueError("at least one reader is needed: the check counts redirects")
        if min(self.write_users, self.seed_codes, self.processes, self.workers) < 0:
            raise ValueError("counts must not be negative")
        if self.seed_codes < 1:
            raise ValueError("at least one seeded code is needed")
        if self.spawn_rate <= 0 or self.read_rps_per_user <= 0 or self.write_rps_per_user <= 0:
            raise ValueError("spawn rate and per-user rates must be positive")
        if self.run_time <= 0 or self.stop_timeout < 0 or self.drain_timeout <= 0:
            raise ValueError("run time and drain timeout must be positive")
        return self


def profile_from_env(name: ProfileName, env: LoadtestEnv) -> Profile:
    if name == "default":
        base = Profile(
            name,
            env.loadtest_host,
            env.loadtest_users,
            env.loadtest_spawn_rate,
            parse_duration(env.loadtest_duration),
            env.loadtest_read_users,
            env.loadtest_write_users,
            env.loadtest_read_rps_per_user,
            env.loadtest_write_rps_per_user,
        )
    elif name == "100k":
        base = Profile(
            name,
            env.loadtest_host,
            env.request_generator_users_100k,
            env.request_generator_spawn_rate_100k,
            parse_duration(env.request_generator_duration_100k),
            env.target_read_users_100k,
            env.target_write_users_100k,
            env.target_read_rps_per_user_100k,
            env.target_write_rps_per_user_100k,
            processes=env.request_generator_processes_100k,
        )
    elif name == "dist":
        if env.request_generator_workers_dist < 1:
            raise ValueError("REQUEST_GENERATOR_WORKERS_DIST must be at least 1")
        base = Profile(
            name,
            env.request_generator_host_dist,
            env.request_generator_users_dist,
            env.request_generator_spawn_rate_dist,
            parse_duration(env.request_generator_duration_dist),
            env.target_read_users_dist,
            env.target_write_users_dist,
            env.target_read_rps_per_user_dist,
            env.target_write_rps_per_user_dist,
            workers=env.request_generator_workers_dist,
        )
    else:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return replace(
        base,
        seed_codes=env.loadtest_seed_codes,
        zipf_s=env.loadtest_zipf_s,
        stop_timeout=env.loadtest_stop_timeout,
        drain_timeout=env.loadtest_drain_timeout,
    )
