"""Locust command lines: bounded, headless, loopback master, the same user options everywhere."""

from pathlib import Path

import pytest

from loadtest.commands import RunPaths, deadline_seconds, locust_commands
from loadtest.settings import LoadtestEnv, Profile, ProfileName, profile_from_env

pytestmark = pytest.mark.unit

PATHS = RunPaths(Path("/tmp/run"))


def _value(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _profile(name: ProfileName) -> Profile:
    return profile_from_env(name, LoadtestEnv())


def test_default_is_one_bounded_headless_process() -> None:
    [command] = locust_commands(_profile("default"), PATHS, python="py")
    argv = command.argv
    assert argv[:3] == ("py", "-m", "locust") and "--headless" in argv
    # The locustfile ends the load after the run time; locust's --run-time is the outer bound.
    assert _value(argv, "--stop-after") == "90" and _value(argv, "--stop-timeout") == "10"
    assert _value(argv, "--run-time") == "130s"
    assert _value(argv, "--host") == "http://127.0.0.1:8080"
    assert _value(argv, "--csv") == "/tmp/run/stats"
    assert _value(argv, "--tally-dir") == "/tmp/run/tally" and _value(argv, "--codes-file") == "/tmp/run/codes.json"
    assert "--processes" not in argv and "--master" not in argv


def test_100k_forks_worker_processes() -> None:
    [command] = locust_commands(_profile("100k"), PATHS, python="py")
    assert _value(command.argv, "--processes") == "4"
    assert _value(command.argv, "--users") == "5000" and _value(command.argv, "--spawn-rate") == "1000.0"
    assert _value(command.argv, "--read-users") == "4000" and _value(command.argv, "--write-rps") == "20.0"


def test_dist_is_a_loopback_master_and_its_workers() -> None:
    profile = _profile("dist")
    master, *workers = locust_commands(profile, PATHS, master_port=5557, python="py")
    assert master.role == "master" and "--master" in master.argv
    assert _value(master.argv, "--master-bind-host") == "127.0.0.1"
    assert _value(master.argv, "--expect-workers") == str(profile.workers) == str(len(workers))
    assert "--run-time" in master.argv and "--stop-after" in master.argv
    for worker in workers:
        assert "--worker" in worker.argv and _value(worker.argv, "--master-host") == "127.0.0.1"
        assert _value(worker.argv, "--master-port") == "5557"
        for flag in ("--read-users", "--write-users", "--read-rps", "--write-rps", "--codes-file", "--tally-dir"):
            assert _value(worker.argv, flag) == _value(master.argv, flag)
    with pytest.raises(ValueError):
        locust_commands(profile, PATHS)


def test_the_force_stop_deadline_covers_run_spawn_and_stop() -> None:
    profile = _profile("100k")
    assert deadline_seconds(profile) >= profile.run_time + profile.stop_timeout + profile.users / profile.spawn_rate
