"""SHORTEN_PROCESSES: the stack runs that many shorten API processes, each on its own port, all
behind nginx's one `shorten` upstream, all scraped and probed; the relay stays one process."""

import re
from pathlib import Path

import pytest
from stackctl import checks, render
from stackctl.config import StackSettings
from stackctl.render import TEMPLATES, render_text, template_values

pytestmark = pytest.mark.unit


def test_each_shorten_process_is_a_program_on_its_own_port_behind_one_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHORTEN_PORT", raising=False)  # a user's own value would win in the env
    s = StackSettings(local_dir=tmp_path / ".local", shorten_port=8001, shorten_processes=3)
    assert s.shorten_ports == [8001, 8021, 8022]

    programs = render.service_programs(s)
    assert [p for p in programs if p.startswith("shorten")] == ["shorten-1", "shorten-2", "shorten-3", "shorten-relay"]
    conf = render.supervisor_conf(s)
    for i, port in enumerate(s.shorten_ports, start=1):
        section = conf.split(f"[program:shorten-{i}]", 1)[1].split("[program:", 1)[0]
        assert "-m shorten serve" in section and f'SHORTEN_PORT="{port}"' in section

    nginx = render_text((TEMPLATES / "nginx.conf").read_text(), template_values(s))
    upstream = re.search(r"upstream shorten \{([^}]*)\}", nginx)
    assert upstream is not None
    assert re.findall(r"server 127\.0\.0\.1:(\d+)", upstream.group(1)) == ["8001", "8021", "8022"]

    prometheus = render_text((TEMPLATES / "prometheus.yml").read_text(), template_values(s))
    assert '"127.0.0.1:8001", "127.0.0.1:8021", "127.0.0.1:8022"' in prometheus
    assert {n for n in checks.service_probes(s) if n.startswith("shorten")} == {"shorten-1", "shorten-2", "shorten-3"}
    assert {n: p for n, p in checks.stack_ports(s).items() if n.startswith("shorten")} == {
        "shorten-1": 8001,
        "shorten-2": 8021,
        "shorten-3": 8022,
    }


def test_at_least_one_shorten_process() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        StackSettings(shorten_processes=0)
