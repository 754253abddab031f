"""The pure parts of `just bench notfound` (infra/bench/notfound.py, issue 9 item 1): the request
mix it sends, the CPU lists it pins the background programs to, and its percentiles."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.bench import bench_on_path

with bench_on_path():
    from notfound import cpu_set, pct, pin, write_targets

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("cpu_list", "cpus"), [("0", {0}), ("0-2", {0, 1, 2}), ("0,3", {0, 3}), ("1-2,5,7-8", {1, 2, 5, 7, 8})]
)
def test_cpu_lists_read_as_taskset_writes_them(cpu_list: str, cpus: set[int]) -> None:
    assert cpu_set(cpu_list) == cpus


def test_the_mix_has_fresh_unknown_codes_bench_links_and_creates_in_their_shares(tmp_path: Path) -> None:
    targets = tmp_path / "targets"
    codes = [f"bench-redirect-{i:04d}" for i in range(10)]
    write_targets(targets, rate=100, seconds=20, codes=codes, unknown_share=0.3, write_every=20, api_key="k", run="r1")
    lines = [json.loads(line) for line in targets.read_text().splitlines()]
    assert len(lines) == 100 * 20 + 100
    creates = [line for line in lines if line["method"] == "POST"]
    unknown = [line["url"] for line in lines if line["method"] == "GET" and "/nfr1" in line["url"]]
    hits = [line["url"] for line in lines if line["method"] == "GET" and "/bench-redirect-" in line["url"]]
    assert len(creates) == len(lines) // 20
    assert len(unknown) == len(set(unknown)), "every unknown code is fresh: none is answered from the L1"
    assert 0.25 < len(unknown) / (len(lines) - len(creates)) < 0.35
    assert len(creates) + len(unknown) + len(hits) == len(lines)
    assert creates[0]["header"]["Authorization"] == ["Bearer k"]
    assert targets.stat().st_mode & 0o777 == 0o600  # the creates carry the API key


def test_percentiles_are_nearest_rank() -> None:
    assert pct([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert pct(list(map(float, range(1, 101))), 0.99) == 99.0


def test_pin_moves_every_thread_of_a_process_and_back() -> None:
    everything = os.sched_getaffinity(0)
    first = {min(everything)}
    script = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 10
        while len(list(Path(f"/proc/{child.pid}/task").iterdir())) < 2:
            assert time.monotonic() < deadline, "the child's thread never started"
            time.sleep(0.01)
        tasks = [int(t.name) for t in Path(f"/proc/{child.pid}/task").iterdir()]
        pin({child.pid}, first)
        assert all(os.sched_getaffinity(t) == first for t in tasks)
        pin({child.pid}, everything)
        assert all(os.sched_getaffinity(t) == everything for t in tasks)
    finally:
        child.kill()
        child.wait()
