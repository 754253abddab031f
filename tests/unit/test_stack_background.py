"""BACKGROUND_NICE: the pipeline's consumers and stores yield the CPU to the request path."""

from pathlib import Path

import pytest
from stackctl.config import StackSettings

pytestmark = pytest.mark.unit


def test_background_programs_run_niced_when_asked(tmp_path: Path) -> None:
    from stackctl.render import supervisor_conf

    def commands(nice: int) -> dict[str, str]:
        conf = supervisor_conf(StackSettings(local_dir=tmp_path, background_nice=nice))  # type: ignore[call-arg]
        return {
            section.split("]", 1)[0]: section.split("command=", 1)[1].split("\n", 1)[0]
            for section in conf.split("[program:")[1:]
        }

    niced = {name for name, command in commands(10).items() if command.startswith("nice -n 10 ")}
    assert niced == {"aggregator-1", "aggregator-2", "aggregator-3", "clickhouse", "retention", "prometheus"}
    assert not any(command.startswith("nice") for command in commands(0).values())
