"""compose/docker-compose.yml holds no secret and no working default: every container that needs
one reads it by path from the volume the one-shot `secrets` service fills (after it completed),
Redis, ClickHouse and Grafana run with credentials, and compose/.env.example sets no secret.
The file is valid under the Compose Specification's JSON schema, every variable it gives a
service is read by that service's settings class, every secret setting a service needs is
given, and the app image is built once, by one service."""

import importlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml  # type: ignore[import-untyped]

from tests.conftest import ROOT
from tests.unit.service_settings import all_secret_fields, secret_fields, unknown_variables

pytestmark = pytest.mark.unit

COMPOSE = ROOT / "compose"
SECRETS_DIR = "/run/shortlink-secrets"
# Settings that are or carry a secret (the stores' URLs carry their passwords).
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|API_KEY|TOKEN|CLI_AUTH|_DSN|^(REDIS|REDIS_REPLICA|CLICKHOUSE)_URL$", re.IGNORECASE
)
# Containers that hold no secret and reach nothing that asks for one (Kafka has no SASL inside
# the compose network; Prometheus scrapes the services' unauthenticated /metrics ports).
WITHOUT_SECRETS = {"kafka", "nginx", "prometheus", "dozzle"}
# Which directory of the volume each container reads (composectl.secrets.ACCOUNTS).
APP_IMAGE = "shortlink/app:local"
CONSUMER = {
    "postgres": "postgres",
    "redis": "redis",
    "redis-replica": "redis",
    "clickhouse": "clickhouse",
    "grafana": "grafana",
}


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
        for setting, file in (
            ("POSTGRES_DSN", "postgres-dsn"),
            ("REDIS_URL", "redis-url"),
            ("REDIS_REPLICA_URL", "redis-replica-url"),
            ("CLICKHOUSE_URL", "clickhouse-url"),
        ):
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
    assert environment(all_services["shorten"])["SHORTEN_TRUSTED_PROXIES"] == nginx_address
    for name in ("redirect-1", "redirect-2", "redirect-3"):
        assert environment(all_services[name])["REDIRECT_TRUSTED_PROXIES"] == nginx_address, name
    conf = (COMPOSE / "nginx" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf and "$proxy_add_x_forwarded_for" not in conf


# ---------------------------------------------------------------- the Compose specification

INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^${}]*))?\}")


def interpolated(text: str) -> str:
    """The file as Compose reads it with an empty environment: ${VAR:-default} -> default,
    ${VAR} -> "" (innermost first: defaults nest), $$ -> $."""
    text = text.replace("$$", "\0")
    while (match := INTERPOLATION.search(text)) is not None:
        text = text[: match.start()] + (match.group(2) or "") + text[match.end() :]
    return text.replace("\0", "$")


def schema_errors(document: object) -> list[str]:
    schema = json.loads((COMPOSE / "schema" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_file_is_valid_under_the_compose_specification() -> None:
    document = yaml.safe_load(interpolated((COMPOSE / "docker-compose.yml").read_text()))
    assert schema_errors(document) == []


def test_the_schema_check_rejects_what_compose_would() -> None:
    document = yaml.safe_load(interpolated((COMPOSE / "docker-compose.yml").read_text()))
    document["services"]["redis"]["restart_policy"] = "always"  # not a service key
    document["services"]["nginx"]["ports"] = "8080:8080"  # a list in the specification
    document["services"]["kafka"]["depends_on"] = {"postgres": {"condition": "started"}}
    errors = schema_errors(document)
    assert any(e.startswith("services/redis") and "restart_policy" in e for e in errors), errors
    assert any(e.startswith("services/nginx/ports") for e in errors), errors
    assert any(e.startswith("services/kafka/depends_on") for e in errors), errors


def test_the_interpolation_takes_defaults_and_keeps_escaped_dollars() -> None:
    assert interpolated("a ${X:-1} b ${Y} c $$(cat f) ${Z:-http://h:${P:-80}}") == "a 1 b  c $(cat f) http://h:80"


# ---------------------------------------------------------------- against the settings classes


def app_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if s.get("image") == APP_IMAGE}


def test_every_variable_given_to_a_service_is_read_by_its_settings() -> None:
    checked = 0
    for name, service in app_services().items():
        unknown = unknown_variables(service["command"], set(environment(service)))
        assert unknown == set(), f"{name} ({' '.join(service['command'])}) gets variables no setting reads: {unknown}"
        checked += 1
    assert checked >= 12  # secrets, init, shorten, relay, 3 redirect, 3 aggregator, retention, analytics, stackcheck


def test_the_settings_check_catches_a_misspelt_variable() -> None:
    argv = ["python", "-m", "redirect", "serve"]
    assert unknown_variables(argv, {"REDIRECT_PORT", "REDIRECT_VISITOR_KEY_SECRET_FILE", "PYTHONUNBUFFERED"}) == set()
    assert unknown_variables(argv, {"REDIRECT_PROT", "SHORTEN_PORT"}) == {"REDIRECT_PROT", "SHORTEN_PORT"}


def test_every_secret_a_service_needs_is_given_from_a_generated_file(generated: set[str]) -> None:
    for name, service in app_services().items():
        env = environment(service)
        given = {key.removesuffix("_FILE") for key, path in env.items() if key.endswith("_FILE") and path in generated}
        needed = secret_fields(service["command"])
        assert needed <= given, f"{name}: {needed - given} not given (it would run on a development default)"
        # ... and no secret it does not need (least privilege: the relay holds no API key).
        extra = (given & all_secret_fields(service["command"])) - needed
        assert extra == set(), f"{name} gets secrets it does not use: {extra}"
    # The one that matters most, by name: without it redirect hashes visitors with the public
    # development secret. (API keys are no setting: every service reads their digests from the
    # `keys` topic, which `init` feeds.)
    for replica in ("redirect-1", "redirect-2", "redirect-3"):
        assert "REDIRECT_VISITOR_KEY_SECRET" in secret_fields(services()[replica]["command"])
    assert not any("API_KEY" in field for field in all_secret_fields(services()["shorten"]["command"]))


# ---------------------------------------------------------------- one image, built once


def test_the_app_image_is_built_once_by_one_service() -> None:
    s = services()
    builders = {name: service for name, service in s.items() if "build" in service}
    assert list(builders) == ["secrets"], "exactly one service builds the app image"
    build = builders["secrets"]["build"]
    assert build == {"context": "..", "dockerfile": "compose/Dockerfile"}
    assert builders["secrets"]["image"] == APP_IMAGE and builders["secrets"]["pull_policy"] == "build"
    users = {name: service for name, service in app_services().items() if name != "secrets"}
    assert len(users) >= 11
    for name, service in users.items():
        # Never pulled (the tag is local), never built again: the builder's image is used.
        assert service.get("pull_policy") == "never", name
        # ... and it exists before the container is created: everything waits for `secrets`.
        assert service["depends_on"]["secrets"] == {"condition": "service_completed_successfully"}, name


def test_the_app_runs_under_an_init_as_pid_1() -> None:
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in dockerfile
    assert re.search(r"apt-get install -y --no-install-recommends tini", dockerfile)
    for name, service in app_services().items():
        # A service that set its own entrypoint would drop tini.
        assert "entrypoint" not in service, name


def test_both_redis_have_a_maxmemory() -> None:
    s = services()
    for name in ("redis", "redis-replica"):
        command = s[name]["command"]
        assert command[command.index("--maxmemory") + 1] == "${REDIS_MAXMEMORY:-512mb}", name
        assert command[command.index("--maxmemory-policy") + 1] == "noeviction", name


def build_context_allows(path: str, patterns: list[str]) -> bool:
    """Whether `path` (relative to the repo root) is sent to the builder: .dockerignore rules in
    order, the last match wins, `!` re-includes; a rule naming a directory covers what is in it."""
    from fnmatch import fnmatch

    sent = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        rule = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch(prefix, rule) for prefix in prefixes):
            sent = negated
    return sent


def test_every_file_the_dockerfile_copies_is_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (COMPOSE / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for line in (COMPOSE / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            copied += words[1:-1]
    assert {"requirements-runtime.lock", "pyproject.toml", "libs", "services"} <= set(copied)
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert build_context_allows(source, patterns), f"COPY {source}: excluded by Dockerfile.dockerignore"
    assert not build_context_allows("requirements.lock", patterns)  # the dev/bench lock stays out
    assert not build_context_allows(".local/api-key", patterns) and not build_context_allows(".venv/bin", patterns)
