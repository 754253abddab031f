"""The stack's local admin key (`.local/api-key`) as a real key: `k_local_admin`, admin of the
`default` workspace, in shorten's key store and on the `keys` topic, which is what every
service authenticates against. Idempotent: nothing is written when the store and the topic
already hold this secret's digest; a changed file re-issues the key with the new digest."""

import asyncio

from stackctl.config import StackSettings, read_secret
from stackctl.first_start import say
from stackctl.render import service_environment


def ensure_local_admin_key(s: StackSettings) -> None:
    """After migrations and topics, before the services start (the relay may not run yet: the
    key's event is then published by this process, see shorten's wait_published)."""
    from shorten.entrypoints.keys_cli import ensure_local_admin
    from shorten.settings import ShortenSettings

    env = service_environment(s)
    settings = ShortenSettings(
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        postgres_dsn=env["POSTGRES_DSN"],  # type: ignore[arg-type]  # pydantic makes it a SecretStr
    )
    if asyncio.run(ensure_local_admin(settings, read_secret(s.api_key_file))):
        say(f"issued the local admin key k_local_admin (workspace default, scope admin) for {s.api_key_file}")
