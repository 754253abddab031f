"""The stack's generated secrets (API key, visitor-key secret): made once, owner-only, kept
across starts, and given to every service through the supervisor's program environment."""

import stat
from pathlib import Path

import pytest
from stackctl import bootstrap, render
from stackctl.config import StackSettings

pytestmark = pytest.mark.unit


def test_secrets_are_generated_once_owner_only_and_reach_every_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SHORTEN_API_KEYS", "REDIRECT_VISITOR_KEY_SECRET"):  # a user's own value would win
        monkeypatch.delenv(name, raising=False)
    s = StackSettings(local_dir=tmp_path / ".local")
    key, secret = bootstrap.ensure_api_key(s), bootstrap.ensure_visitor_key_secret(s)
    assert key.startswith("sk_local_") and len(secret) >= 32 and key != secret
    for path in (s.api_key_file, s.visitor_key_secret_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A second start keeps them (links, visitor keys and clients' keys stay valid).
    assert (bootstrap.ensure_api_key(s), bootstrap.ensure_visitor_key_secret(s)) == (key, secret)

    conf = render.supervisor_conf(s)
    for program in render.service_programs(s):
        section = conf.split(f"[program:{program}]", 1)[1].split("[program:", 1)[0]
        assert f'SHORTEN_API_KEYS="{key}"' in section, program
        assert f'REDIRECT_VISITOR_KEY_SECRET="{secret}"' in section, program


def test_an_empty_secret_file_is_filled(tmp_path: Path) -> None:
    s = StackSettings(local_dir=tmp_path / ".local")
    s.local_dir.mkdir()
    s.visitor_key_secret_file.write_text("\n")
    assert bootstrap.ensure_visitor_key_secret(s).strip() != ""
    assert s.visitor_key_secret_file.read_text().strip() == bootstrap.ensure_visitor_key_secret(s)
