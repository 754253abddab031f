"""compose/docker-compose.yml holds no secret and no working default: every container that needs
one reads it by path from the volume the one-shot `secrets` service fills (after it completed),
Redis, ClickHouse and Grafana run with credentials, and compose/.env.example sets no secret."""

import importlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

COMPOSE = ROOT / "compose"
SECRETS_DIR = "/run/shortlink-secrets"
# Settings that are or carry a secret (the stores' URLs carry their passwords).
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|CLI_AUTH|_DSN|^(REDIS|REDIS_REPLICA|CLICKHOUSE)_URL$",
                         re.IGNORECASE)
# Containers that hold no secret and reach nothing that asks for one (Kafka has no SASL inside
# the compose network; Prometheus scrapes the services' unauthenticated /metrics ports).
WITHOUT_SECRETS = {"kafka", "nginx", "prometheus", "dozzle"}
# Which directory of the volume each container reads (composectl.secrets.ACCOUNTS).
APP_IMAGE = "shortlink/app:local"
CONSUMER = {"postgres": "postgres", "redis": "redis", "redis-replica": "redis", "clickhouse": "clickhouse",
            "grafana": "grafana"}


def services() -> dict[str, dict[str, Any]]:
    compose: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def consumer(name: str, service: dict[str, Any]) -> str:
    return "app" if service.get("image") == APP_IMAGE else CONSUMER[name]


def secret_paths(service: dict[str, Any]) -> set[str]:
    """Every path into the secrets volume the container's definition names (env, argv, checks)."""
    text = yaml.safe_dump({k: service.get(k) for k in ("environment", "command", "healthcheck")})
    return set(re.findall(rf"{SECRETS_DIR}/[\w./-]+", text))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The files `composectl secrets` writes, as paths in the containers."""
    import sys

    sys.path.insert(0, str(COMPOSE))
    try:
        secrets = importlib.import_module("composectl.secrets")
    finally:
        sys.path.remove(str(COMPOSE))
    root: Path = tmp_path_factory.mktemp("compose-secrets")
    secrets.ensure(root)
    return {f"{SECRETS_DIR}/{p.relative_to(root)}" for p in root.glob("*/*")}


def test_no_secret_value_and_no_default_for_one() -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    # No ${VAR}, with or without a default, for anything secret: Compose would take it from
    # the environment or compose/.env, where a copied example would hold a public value.
    for variable in re.findall(r"\$\{(\w+)", text):
        assert not SECRET_NAME.search(variable), variable
    assert not re.search(r"://[^/\s:@]*:[^/\s@]+@", text), "a URL with credentials"
    for name, service in services().items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                pytest.fail(f"{name}: {key} holds a value; give the path in {key}_FILE instead")
            if key.endswith("_FILE"):
                assert value.startswith(f"{SECRETS_DIR}/"), (name, key, value)


def test_redis_takes_its_password_from_the_generated_config_never_from_argv() -> None:
    for name in ("redis", "redis-replica"):
        service = services()[name]
        command = service["command"]
        assert command[:2] == ["redis-server", f"{SECRETS_DIR}/redis/redis.conf"], name
        flat = " ".join(command)
        assert "--requirepass" not in flat and "--masterauth" not in flat and "--protected-mode" not in flat
        # redis-cli in the healthcheck authenticates through REDISCLI_AUTH, not -a / --pass.
        check = " ".join(service["healthcheck"]["test"])
        assert "REDISCLI_AUTH=" in check and not re.search(r"\s(-a|--pass|--user)\s", check), name


def test_clickhouse_users_come_from_the_generated_file() -> None:
    service = services()["clickhouse"]
    env = environment(service)
    assert "CLICKHOUSE_PASSWORD" not in env and "CLICKHOUSE_DB" not in env
    mounted = {v.split(":")[0]: v.split(":")[1] for v in service["volumes"] if v.startswith("./")}
    override = mounted["./clickhouse/users-from-secrets.xml"]
    assert override.startswith("/etc/clickhouse-server/config.d/")
    tree = ET.parse(COMPOSE / "clickhouse" / "users-from-secrets.xml").getroot()
    directories = tree.find("user_directories")
    assert directories is not None and directories.get("replace") == "replace"
    assert [child.tag for child in directories] == ["users_xml"]  # no other source of users
    assert directories.findtext("users_xml/path") == f"{SECRETS_DIR}/clickhouse/users.xml"
    assert "--password" not in " ".join(service["healthcheck"]["test"])


def test_grafana_has_no_default_admin_password() -> None:
    env = environment(services()["grafana"])
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == f"{SECRETS_DIR}/grafana/admin-password"
    assert env["GF_SECURITY_SECRET_KEY__FILE"] == f"{SECRETS_DIR}/grafana/secret-key"


def test_postgres_and_the_services_read_their_secrets_from_files() -> None:
    s = services()
    assert environment(s["postgres"])["POSTGRES_PASSWORD_FILE"] == f"{SECRETS_DIR}/postgres/password"
    assert "POSTGRES_PASSWORD" not in environment(s["postgres"])
    app = {name: service for name, service in s.items() if service.get("image") == APP_IMAGE and name != "secrets"}
    assert {"init", "shorten", "shorten-relay", "redirect-1", "aggregator-1", "analytics", "stackcheck"} <= set(app)
    for name, service in app.items():
        env = environment(service)
        for setting, file in (("POSTGRES_DSN", "postgres-dsn"), ("REDIS_URL", "redis-url"),
                              ("REDIS_REPLICA_URL", "redis-replica-url"), ("CLICKHOUSE_URL", "clickhouse-url")):
            assert env.get(f"{setting}_FILE") == f"{SECRETS_DIR}/app/{file}", (name, setting)
            assert setting not in env, (name, setting)
    # The API key reaches no service: `init` issues it to the `keys` topic (as a digest).
    assert all("SHORTEN_API_KEYS_FILE" not in environment(service) for service in app.values())
    for name in ("redirect-1", "redirect-2", "redirect-3"):
        assert environment(s[name])["REDIRECT_VISITOR_KEY_SECRET_FILE"] == f"{SECRETS_DIR}/app/visitor-key-secret"


def test_every_named_secret_is_generated_and_in_the_containers_own_directory(generated: set[str]) -> None:
    for name, service in services().items():
        if name == "secrets" or name in WITHOUT_SECRETS:
            continue
        paths = secret_paths(service)
        assert paths, f"{name} reads no secret"
        assert paths <= generated, (name, paths - generated)
        assert {p.split("/")[3] for p in paths} == {consumer(name, service)}, name


def test_the_secrets_service_runs_first_and_everything_that_reads_them_waits_for_it() -> None:
    s = services()
    init = s["secrets"]
    assert init["command"] == ["python", "-m", "composectl", "secrets"]
    assert init["restart"] == "no" and init["network_mode"] == "none"
    assert init["volumes"] == [f"secrets:{SECRETS_DIR}"]  # the only writer
    assert "depends_on" not in init
    for name, service in s.items():
        if name == "secrets":
            continue
        mounts = [v for v in service.get("volumes", []) if v.startswith("secrets:")]
        if name in WITHOUT_SECRETS:
            assert mounts == [], f"{name} needs no secret: it does not mount them"
            continue
        assert mounts == [f"secrets:{SECRETS_DIR}:ro"], name
        assert service["depends_on"]["secrets"] == {"condition": "service_completed_successfully"}, name


def test_the_env_example_sets_no_secret() -> None:
    lines = (COMPOSE / ".env.example").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in lines if re.match(r"^\s*[A-Z][A-Z0-9_]*=", line))
    commented = {m.group(1) for line in lines if (m := re.match(r"^#\s*([A-Z][A-Z0-9_]*)=", line))}
    for key in (*settings, *commented):
        assert not SECRET_NAME.search(key), f"compose/.env.example names {key}"
    assert "sk_" not in "".join(settings.values())


def test_the_services_trust_only_nginx_for_the_client_address() -> None:
    all_services = services()
    nginx_address = all_services["nginx"]["networks"]["default"]["ipv4_address"]
    for name in ("shorten", "redirect-1", "redirect-2", "redirect-3"):
        env = environment(all_services[name])
        assert env["REDIRECT_TRUSTED_PROXIES"] == env["SHORTEN_TRUSTED_PROXIES"] == nginx_address, name
    conf = (COMPOSE / "nginx" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf and "$proxy_add_x_forwarded_for" not in conf
