"""The edge decides the client address: nginx passes on only the address it connected to, or,
behind TRUSTED_PROXIES, the one those proxies named (the rendered config passes `nginx -t`)."""

import subprocess
from pathlib import Path

import pytest
from stackctl.config import StackSettings
from stackctl.render import TEMPLATES, real_ip_directives, render_text, template_values

pytestmark = pytest.mark.unit


def rendered(tmp_path: Path, trusted: str) -> str:
    settings = StackSettings(trusted_proxies=trusted, local_dir=tmp_path)  # type: ignore[call-arg]
    return render_text((TEMPLATES / "nginx.conf").read_text(), template_values(settings))


def test_a_client_forwarded_for_is_never_passed_on(tmp_path: Path) -> None:
    conf = rendered(tmp_path, "")
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "$proxy_add_x_forwarded_for" not in conf and "set_real_ip_from" not in conf


def test_trusted_proxies_become_realip_rules() -> None:
    assert real_ip_directives("10.0.0.0/8, 192.0.2.7,2001:db8::/32").splitlines() == [
        "    set_real_ip_from 10.0.0.0/8;",
        "    set_real_ip_from 192.0.2.7/32;",
        "    set_real_ip_from 2001:db8::/32;",
        "    real_ip_header X-Forwarded-For;",
        "    real_ip_recursive on;",
    ]
    with pytest.raises(ValueError):
        real_ip_directives("10.0.0.0/8; evil")  # never pasted into the config as is


def test_nginx_accepts_the_rendered_realip_rules(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(rendered(tmp_path, "10.0.0.0/8,192.0.2.7"))
    for sub in ("logs", *(f"nginx/tmp/{t}" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["/usr/sbin/nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
