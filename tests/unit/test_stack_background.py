"""BACKGROUND_NICE and BACKGROUND_CPUS: the pipeline's consumers and stores yield the CPU to the
redirect path."""

import os
from pathlib import Path

import pytest
from stackctl.config import StackSettings
from stackctl.render import supervisor_conf

pytestmark = pytest.mark.unit

REDIRECT_PATH = {
    "nginx",
    "redirect-1",
    "redirect-2",
    "redirect-3",
    "redis",
    "redis-replica",
    "redis-sentinel-1",
    "redis-sentinel-2",
    "redis-sentinel-3",
}


def _commands(tmp_path: Path, **settings: object) -> dict[str, str]:
    conf = supervisor_conf(StackSettings(local_dir=tmp_path, **settings))  # type: ignore[arg-type]
    return {
        section.split("]", 1)[0]: section.split("command=", 1)[1].split("\n", 1)[0]
        for section in conf.split("[program:")[1:]
    }


def test_background_programs_run_niced_when_asked(tmp_path: Path) -> None:
    niced = {
        name
        for name, command in _commands(tmp_path, background_nice=10, background_cpus="").items()
        if command.startswith("nice -n 10 ")
    }
    assert niced == {"aggregator-1", "aggregator-2", "aggregator-3", "clickhouse", "retention", "prometheus"}
    assert not any("nice" in command.split()[:3] for command in _commands(tmp_path, background_cpus="").values())


def test_every_program_but_the_redirect_path_runs_on_the_background_cpus(tmp_path: Path) -> None:
    commands = _commands(tmp_path, background_cpus="0", background_nice=10)
    pinned = {name for name, command in commands.items() if command.startswith("taskset -c 0 ")}
    assert REDIRECT_PATH <= set(commands)
    assert pinned == set(commands) - REDIRECT_PATH
    assert {"kafka", "postgres", "clickhouse", "aggregator-1", "shorten-relay", "shorten-1"} <= pinned
    # taskset execs what follows (the pid supervisord signals is the program's); nice comes after.
    assert commands["aggregator-2"].startswith("taskset -c 0 nice -n 10 ")
    assert not any("taskset" in command for command in _commands(tmp_path, background_cpus="").values())


def test_auto_keeps_the_last_cpu_for_the_redirect_path(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    expected = ",".join(map(str, cpus[:-1])) if len(cpus) > 1 else ""
    assert StackSettings(local_dir=tmp_path).background_cpu_list == expected  # type: ignore[call-arg]
    assert StackSettings(local_dir=tmp_path, background_cpus="1-3").background_cpu_list == "1-3"  # type: ignore[call-arg]
    # The cluster's hosts keep every CPU: its benchmarks measure what each tier costs.
    cluster = StackSettings(local_dir=tmp_path, stack_profile="cluster")  # type: ignore[call-arg]
    assert cluster.background_cpu_list == ""


@pytest.mark.parametrize("bad", ["all", "0;rm -rf /", "-1", "0,"])
def test_a_cpu_list_taskset_would_not_take_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        StackSettings(local_dir=tmp_path, background_cpus=bad)  # type: ignore[call-arg]
