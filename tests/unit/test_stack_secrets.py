"""The stack's generated secrets (API key, visitor-key secret): made once, owner-only, kept
across starts. The visitor-key secret is given to every service by path (`<NAME>_FILE`), never
by value; the API key reaches no service at all (they read its digest from the `keys` topic,
where `just up` issues it): the supervisor's config, the programs' environment and argv hold
no secret."""

import grp
import stat
from pathlib import Path

import pytest
from stackctl import first_start, render
from stackctl.config import StackSettings

pytestmark = pytest.mark.unit


def test_secrets_are_generated_once_owner_only_and_reach_every_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SHORTEN_API_KEYS", "REDIRECT_VISITOR_KEY_SECRET"):  # a user's own value would win
        monkeypatch.delenv(name, raising=False)
    s = StackSettings(local_dir=tmp_path / ".local")
    key, secret = first_start.ensure_api_key(s), first_start.ensure_visitor_key_secret(s)
    assert key.startswith("sk_local_") and len(secret) >= 32 and key != secret
    for path in (s.api_key_file, s.visitor_key_secret_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A second start keeps them (links, visitor keys and clients' keys stay valid).
    assert (first_start.ensure_api_key(s), first_start.ensure_visitor_key_secret(s)) == (key, secret)

    render.render_all(s)
    conf = s.supervisor_conf.read_text()
    assert key not in conf and secret not in conf
    for program in render.service_programs(s):
        section = conf.split(f"[program:{program}]", 1)[1].split("[program:", 1)[0]
        assert "SHORTEN_API_KEYS" not in section and str(s.api_key_file) not in section, program
        assert f'REDIRECT_VISITOR_KEY_SECRET_FILE="{s.visitor_key_secret_file}"' in section, program
    # Owner only; run as root, the postgres account's group may pass through (not list).
    mode = stat.S_IMODE(s.local_dir.stat().st_mode)
    assert mode == 0o700 or (mode == 0o710 and s.local_dir.stat().st_gid == grp.getgrnam("postgres").gr_gid)
    for rendered in (s.supervisor_conf, s.path("nginx", "nginx.conf"), s.path("clickhouse", "users.xml")):
        assert stat.S_IMODE(rendered.stat().st_mode) == 0o600, rendered


def test_a_setting_is_read_from_the_file_its_FILE_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redirect.settings import RedirectSettings
    from shorten.settings import ShortenSettings

    dsn, secret = tmp_path / "postgres-dsn", tmp_path / "visitor-key-secret"
    dsn.write_text("postgresql://u:pw@127.0.0.1:1/db\n")
    secret.write_text("s3cret\n")
    for name in ("POSTGRES_DSN", "REDIRECT_VISITOR_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POSTGRES_DSN_FILE", str(dsn))
    monkeypatch.setenv("REDIRECT_VISITOR_KEY_SECRET_FILE", str(secret))
    assert ShortenSettings().postgres_dsn.get_secret_value() == "postgresql://u:pw@127.0.0.1:1/db"
    assert RedirectSettings().redirect_visitor_key_secret.get_secret_value() == "s3cret"
    monkeypatch.setenv("POSTGRES_DSN", "postgresql://direct")  # a variable set directly wins
    assert ShortenSettings().postgres_dsn.get_secret_value() == "postgresql://direct"


def test_an_empty_secret_file_is_filled(tmp_path: Path) -> None:
    s = StackSettings(local_dir=tmp_path / ".local")
    s.local_dir.mkdir()
    s.visitor_key_secret_file.write_text("\n")
    assert first_start.ensure_visitor_key_secret(s).strip() != ""
    assert s.visitor_key_secret_file.read_text().strip() == first_start.ensure_visitor_key_secret(s)
