"""Every service setting set in `.env` or the shell reaches the programs' rendered environment
(so `just up` and `just restart` apply it); secrets only by path, in owner-only files."""

import stat
from pathlib import Path

import pytest
from stackctl import render
from stackctl.config import StackSettings

pytestmark = pytest.mark.unit


def _sections(conf: str) -> dict[str, str]:
    return {part.split("]", 1)[0]: part for part in conf.split("[program:")[1:]}


def test_any_service_setting_reaches_every_service_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    monkeypatch.setenv("ANALYTICS_TOP_CACHE_S", "7.5")
    monkeypatch.setenv("NOT_A_SETTING_OF_ANY_SERVICE", "x")
    s = StackSettings(local_dir=tmp_path / ".local")
    render.render_all(s)
    programs = _sections(s.supervisor_conf.read_text())
    for name in render.service_programs(s):
        assert 'OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318/v1/traces"' in programs[name], name
        assert 'ANALYTICS_TOP_CACHE_S="7.5"' in programs[name], name
        assert "NOT_A_SETTING_OF_ANY_SERVICE" not in programs[name]


def test_a_secret_set_by_value_reaches_programs_as_an_owner_only_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIRECT_VISITOR_KEY_SECRET", "a-secret-from-the-shell-0123456789")
    s = StackSettings(local_dir=tmp_path / ".local")
    render.render_all(s)
    conf = s.supervisor_conf.read_text()
    assert "a-secret-from-the-shell" not in conf
    section = _sections(conf)["redirect-1"]
    path = Path(section.split('REDIRECT_VISITOR_KEY_SECRET_FILE="', 1)[1].split('"', 1)[0])
    assert path.read_text() == "a-secret-from-the-shell-0123456789"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    # A changed secret is a changed path (the programs restart) and the old file is gone.
    monkeypatch.setenv("REDIRECT_VISITOR_KEY_SECRET", "another-secret-from-the-shell-987654")
    render.render_all(s)
    section = _sections(s.supervisor_conf.read_text())["redirect-1"]
    new_path = Path(section.split('REDIRECT_VISITOR_KEY_SECRET_FILE="', 1)[1].split('"', 1)[0])
    assert new_path != path and not path.exists()
    assert new_path.read_text() == "another-secret-from-the-shell-987654"
