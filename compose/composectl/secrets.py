"""The compose stack's secrets, generated at its first start by the one-shot `secrets` service.

Nothing secret is committed or has a default: `python -m composectl secrets` makes every
password and key the stack needs the first time it runs and keeps them afterwards (a second run
generates only what is missing), in the `secrets` volume that the other containers mount
read-only at /run/shortlink-secrets. Each consumer reads its own directory, owned by the account
its image runs as and readable by nobody else (0700; every file 0600):

    app/         uid 10001 (compose/Dockerfile): the services, init and stackcheck
                 api-key, visitor-key-secret, postgres-dsn, redis-url, redis-replica-url,
                 clickhouse-url                       (read through <NAME>_FILE settings)
    postgres/    uid 999 (postgres image)          password   (POSTGRES_PASSWORD_FILE)
    redis/       uid 999 (redis image)             redis.conf (requirepass, masterauth), password
    clickhouse/  uid 101 (clickhouse-server image) users.xml (SHA-256 of the password only; the
                 users config compose/clickhouse/users-from-secrets.xml names),
                 client.xml (its healthcheck's clickhouse-client), password
    grafana/     uid 472 (grafana image)           admin-password, secret-key (GF_*__FILE)

The passwords (postgres/, redis/, clickhouse/, grafana/ and app/api-key, app/visitor-key-secret)
are generated once; the files derived from them (URLs, redis.conf, users.xml, client.xml) are
written again at every run, so they follow the code. No secret is ever printed: the log names
the files only.
"""

import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stackctl.first_start import say

# Where the other containers mount the secrets volume (docker-compose.yml).
SECRETS_DIR = Path("/run/shortlink-secrets")


@dataclass(frozen=True)
class Account:
    """The user and group a consumer's image runs its process as."""

    uid: int
    gid: int


# Keep in step with the images pinned in docker-compose.yml.
ACCOUNTS = {
    "app": Account(10001, 10001),  # compose/Dockerfile: useradd --uid 10001
    "postgres": Account(999, 999),  # postgres:15-bookworm: user postgres
    "redis": Account(999, 1000),  # redis:7.4-alpine: user redis, group redis
    "clickhouse": Account(101, 101),  # clickhouse/clickhouse-server:24.8: user clickhouse
    "grafana": Account(472, 0),  # grafana/grafana: user grafana, group root
}

# Compose host names and the identities the services use (docker-compose.yml).
POSTGRES = "shortlink@postgres:5432/shortlink"
REDIS_PRIMARY = "redis:6379"
REDIS_REPLICA = "redis-replica:6379"
CLICKHOUSE = "clickhouse:8123"
CLICKHOUSE_USER = "default"


def _password() -> str:
    # URL-safe alphabet: the value goes into URLs, redis.conf and XML unquoted.
    return secrets.token_urlsafe(32)


class SecretsDir:
    """The volume's layout: one 0700 directory per consumer, 0600 files, owned by the consumer
    when run as root (in the container); run as another user (tests), everything stays its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._chown = os.geteuid() == 0

    def path(self, consumer: str, name: str) -> Path:
        return self.root / consumer / name

    def prepare(self) -> None:
        # The root lists nothing to anyone but root; each consumer may only pass through it.
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)
        for consumer, account in ACCOUNTS.items():
            directory = self.root / consumer
            directory.mkdir(exist_ok=True)
            directory.chmod(0o700)
            self._own(directory, account)

    def _own(self, path: Path, account: Account) -> None:
        if self._chown:
            os.chown(path, account.uid, account.gid)

    def write(self, consumer: str, name: str, content: str) -> None:
        """Replace the file atomically: 0600 and owned by the consumer before it has a name."""
        target = self.path(consumer, name)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            self._own(Path(temporary), ACCOUNTS[consumer])
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def keep_or_generate(self, consumer: str, name: str, generate: Callable[[], str]) -> str:
        """The secret stored in consumer/name, generated and stored first if missing or empty."""
        target = self.path(consumer, name)
        if target.exists():
            stored = target.read_text().strip()
            if stored:
                return stored
        value = generate()
        self.write(consumer, name, value + "\n")
        say(f"secrets: generated {target}")
        return value


def redis_conf(password: str) -> str:
    """The credentials of both Redis servers; their other options stay on the command line."""
    return (
        "# Written by `composectl secrets` at every start of the compose stack.\n"
        "# Clients (and the replica, to its primary) authenticate with the generated password.\n"
        "protected-mode yes\n"
        "bind * -::*\n"
        f"requirepass {password}\n"
        f"masterauth {password}\n"
    )


def clickhouse_users_xml(password: str) -> str:
    """ClickHouse's whole users config (compose/clickhouse/users-from-secrets.xml): `default` with the password's
    SHA-256, reachable from the compose network; profiles and quota as the native stack's."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f"""<?xml version="1.0"?>
<!-- Written by `composectl secrets` at every start of the compose stack. -->
<clickhouse>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <{CLICKHOUSE_USER}>
            <password_sha256_hex>{digest}</password_sha256_hex>
            <networks>
                <ip>::/0</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </{CLICKHOUSE_USER}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</clickhouse>
"""


def clickhouse_client_xml(password: str) -> str:
    """clickhouse-client's config for the container healthcheck (no password on its argv)."""
    return (
        '<?xml version="1.0"?>\n'
        f"<config>\n    <user>{CLICKHOUSE_USER}</user>\n    <password>{password}</password>\n</config>\n"
    )


def ensure(root: Path = SECRETS_DIR) -> SecretsDir:
    """Generate what is missing, rewrite what derives from it. Idempotent."""
    store = SecretsDir(root)
    store.prepare()

    store.keep_or_generate("app", "api-key", lambda: "sk_compose_" + secrets.token_urlsafe(32))
    store.keep_or_generate("app", "visitor-key-secret", _password)

    postgres = store.keep_or_generate("postgres", "password", _password)
    user, at = POSTGRES.split("@", 1)
    store.write("app", "postgres-dsn", f"postgresql://{user}:{postgres}@{at}\n")

    redis = store.keep_or_generate("redis", "password", _password)
    store.write("redis", "redis.conf", redis_conf(redis))
    store.write("app", "redis-url", f"redis://:{redis}@{REDIS_PRIMARY}/0\n")
    store.write("app", "redis-replica-url", f"redis://:{redis}@{REDIS_REPLICA}/0\n")

    clickhouse = store.keep_or_generate("clickhouse", "password", _password)
    store.write("clickhouse", "users.xml", clickhouse_users_xml(clickhouse))
    store.write("clickhouse", "client.xml", clickhouse_client_xml(clickhouse))
    store.write("app", "clickhouse-url", f"http://{CLICKHOUSE_USER}:{clickhouse}@{CLICKHOUSE}\n")

    store.keep_or_generate("grafana", "admin-password", _password)
    store.keep_or_generate("grafana", "secret-key", _password)

    say(f"secrets: ready in {root} (read the API key: cat {store.path('app', 'api-key')} in the shorten container)")
    return store
