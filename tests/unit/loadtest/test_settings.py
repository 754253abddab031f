"""Profiles: the runbook's knob names and defaults, env overrides, validation, durations."""

import pytest

from loadtest.settings import LoadtestEnv, parse_duration, profile_from_env

pytestmark = pytest.mark.unit

RUNBOOK_100K = {
    "REQUEST_GENERATOR_USERS_100K": 5000,
    "REQUEST_GENERATOR_SPAWN_RATE_100K": 1000,
    "REQUEST_GENERATOR_PROCESSES_100K": 4,
    "TARGET_READ_USERS_100K": 4000,
    "TARGET_WRITE_USERS_100K": 1000,
    "TARGET_READ_RPS_PER_USER_100K": 20,
    "TARGET_WRITE_RPS_PER_USER_100K": 20,
}
DIST_KNOBS = (
    "REQUEST_GENERATOR_WORKERS_DIST",
    "REQUEST_GENERATOR_USERS_DIST",
    "REQUEST_GENERATOR_SPAWN_RATE_DIST",
    "REQUEST_GENERATOR_DURATION_DIST",
    "TARGET_READ_USERS_DIST",
    "TARGET_WRITE_USERS_DIST",
    "TARGET_READ_RPS_PER_USER_DIST",
    "TARGET_WRITE_RPS_PER_USER_DIST",
    "REQUEST_GENERATOR_HOST_DIST",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*RUNBOOK_100K, *DIST_KNOBS]:
        monkeypatch.delenv(name, raising=False)


def test_100k_defaults_are_the_runbooks() -> None:
    env = LoadtestEnv()
    for name, value in RUNBOOK_100K.items():
        assert getattr(env, name.lower()) == value, name
    profile = profile_from_env("100k", env).validate()
    assert (profile.users, profile.processes, profile.read_users, profile.write_users) == (5000, 4, 4000, 1000)


def test_every_dist_knob_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "REQUEST_GENERATOR_WORKERS_DIST": "8",
        "REQUEST_GENERATOR_USERS_DIST": "100000",
        "REQUEST_GENERATOR_SPAWN_RATE_DIST": "5000",
        "REQUEST_GENERATOR_DURATION_DIST": "10m",
        "TARGET_READ_USERS_DIST": "95000",
        "TARGET_WRITE_USERS_DIST": "5000",
        "TARGET_READ_RPS_PER_USER_DIST": "1",
        "TARGET_WRITE_RPS_PER_USER_DIST": "1",
        "REQUEST_GENERATOR_HOST_DIST": "http://localhost:8080",
    }
    assert set(values) == set(DIST_KNOBS)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    profile = profile_from_env("dist", LoadtestEnv()).validate()
    assert (profile.workers, profile.users, profile.spawn_rate, profile.run_time) == (8, 100000, 5000, 600)
    assert (profile.read_users, profile.write_users, profile.host) == (95000, 5000, "http://localhost:8080")


def test_native_dist_host_defaults_to_loopback() -> None:
    assert LoadtestEnv().request_generator_host_dist == "http://127.0.0.1:8080"


def test_default_profile_is_bounded_and_modest() -> None:
    profile = profile_from_env("default", LoadtestEnv()).validate()
    assert profile.run_time <= 120 and profile.users <= 50
    assert profile.processes == 0 and profile.workers == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TARGET_READ_USERS_100K": "10"}, "must equal users"),
        ({"REQUEST_GENERATOR_DURATION_100K": "0s"}, "positive"),
        ({"REQUEST_GENERATOR_DURATION_100K": "forever"}, "invalid duration"),
    ],
)
def test_inconsistent_knobs_are_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        profile_from_env("100k", LoadtestEnv()).validate()


def test_dist_needs_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUEST_GENERATOR_WORKERS_DIST", "0")
    with pytest.raises(ValueError, match="at least 1"):
        profile_from_env("dist", LoadtestEnv())


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2m30s", 150)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "-5", "0"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
