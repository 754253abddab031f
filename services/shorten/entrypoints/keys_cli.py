"""`python -m shorten keys ...` (`just keys ...`): manage the API keys of workspaces.

    create --workspace acme --scopes links:write,stats:read [--name N] [--expires-in 90d]
    list [--workspace acme]
    rotate <key id> [--grace 1h]
    revoke <key id>
    republish            (every stored key again, after the `keys` topic lost its data)

A command that changes a key returns once its event is in the `keys` topic: every service
accepts (or refuses) the key from then on. The secret of a new key is printed once, here, and
stored nowhere (only its SHA-256 digest). No command takes a secret as an argument (argv is
visible to every local user); `ensure-local-admin` reads it from a file.
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from contracts.keys import SCOPES, KeyEvent
from platformkit.apikeys import parse_scopes
from platformkit.failures import DomainError
from platformkit.keys_log import KeysLog

from shorten.adapters.asyncpg_keys import AsyncpgKeyStore
from shorten.bootstrap import wait_published
from shorten.domain.errors import InvalidInput
from shorten.domain.keys import LOCAL_ADMIN_KEY_ID, LOCAL_ADMIN_WORKSPACE, ApiKey, parse_duration
from shorten.service_layer.key_service import IssuedKey, KeyService
from shorten.service_layer.link_service import utcnow
from shorten.settings import ShortenSettings

PUBLISH_TIMEOUT_S = 30.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="just keys", description="Manage the API keys of workspaces.")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a key (and its workspace if new); prints the secret ONCE")
    create.add_argument("--workspace", required=True, help="slug: a-z 0-9 -, up to 40 characters")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {', '.join(SCOPES)}")
    create.add_argument("--name", default="", help="what the key is for (shown by list)")
    create.add_argument("--expires-in", help="refused after this long: 90d, 12h, 30m, 2w")
    create.add_argument("--json", action="store_true", help="print JSON")
    listing = sub.add_parser("list", help="every key (never a secret or digest)")
    listing.add_argument("--workspace")
    listing.add_argument("--json", action="store_true", help="print JSON")
    rotate = sub.add_parser("rotate", help="a new secret for the same workspace and scopes; prints it ONCE")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", default="0", help="how long the old secret keeps working (default 0: revoked now)")
    rotate.add_argument("--json", action="store_true", help="print JSON")
    revoke = sub.add_parser("revoke", help="refuse the key from now on")
    revoke.add_argument("key_id")
    sub.add_parser("republish", help="publish every stored key again (after the keys topic lost its data)")
    local = sub.add_parser("ensure-local-admin", help="(just up) the local admin key from a secret file")
    local.add_argument("--secret-file", type=Path, required=True)
    return parser


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _described(key: ApiKey, now: datetime) -> dict[str, Any]:
    """What `list` shows of a key: never its digest (a digest is what a stolen log would need
    to recognise the secret) and never a secret (none is stored)."""
    return {
        "key_id": key.key_id,
        "workspace": key.workspace,
        "scopes": list(key.scopes),
        "name": key.name,
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "replaced_by": key.replaced_by,
        "state": key.state(now),
    }


def _print_issued(issued: IssuedKey, *, as_json: bool, verb: str) -> None:
    key = issued.key
    if as_json:
        print(json.dumps({**_described(key, utcnow()), "secret": issued.secret}))
        return
    print(
        f"{verb} key {key.key_id} (workspace {key.workspace}, scopes {','.join(key.scopes)}"
        f"{', expires ' + str(_iso(key.expires_at)) if key.expires_at else ''})"
    )
    print("secret (shown once, stored nowhere; use it as Authorization: Bearer <secret>):")
    print(issued.secret)


def _print_list(keys: Sequence[ApiKey], *, as_json: bool) -> None:
    now = utcnow()
    rows = [_described(key, now) for key in keys]
    if as_json:
        print(json.dumps(rows))
        return
    columns = ("key_id", "workspace", "scopes", "name", "created_at", "expires_at", "revoked_at", "state")
    table = [
        columns,
        *(tuple(",".join(v) if isinstance(v := r[c], list) else str(v or "-") for c in columns) for r in rows),
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


async def _published(settings: ShortenSettings, events: Sequence[KeyEvent]) -> None:
    if events:
        await wait_published(settings, [e.event_id for e in events], timeout_s=PUBLISH_TIMEOUT_S)


async def local_admin_on_topic(settings: ShortenSettings, secret: str) -> bool:
    """Whether the `keys` topic accepts `secret` as the local admin key (read from offset 0)."""
    log = KeysLog(
        bootstrap_servers=settings.kafka_bootstrap_servers, topic=settings.topic_keys, client_id="shorten-keys-check"
    )
    await log.start()
    try:
        principal = log.book.find(secret)
    finally:
        await log.stop()
    return (
        principal is not None
        and principal.key_id == LOCAL_ADMIN_KEY_ID
        and principal.workspace == LOCAL_ADMIN_WORKSPACE
        and "admin" in principal.scopes
    )


async def ensure_local_admin(settings: ShortenSettings, secret: str) -> bool:
    """Make `k_local_admin` the key of `secret` (the content of .local/api-key), in the store and
    on the topic; True when it had to be (re-)issued. Idempotent."""
    on_topic = await local_admin_on_topic(settings, secret)
    async with AsyncpgKeyStore.open(settings.postgres_dsn_asyncpg()) as store:
        events = await KeyService(store=store).ensure_local_admin(secret, republish=not on_topic)
    await _published(settings, events)
    return bool(events)


async def run(args: argparse.Namespace, settings: ShortenSettings) -> None:
    if args.action == "ensure-local-admin":
        changed = await ensure_local_admin(settings, args.secret)
        print(f"local admin key {LOCAL_ADMIN_KEY_ID} ({args.secret_file}): {'issued' if changed else 'in place'}")
        return
    async with AsyncpgKeyStore.open(settings.postgres_dsn_asyncpg()) as store:
        keys = KeyService(store=store)
        if args.action == "create":
            try:
                scopes = parse_scopes(args.scopes)
            except ValueError as exc:
                raise InvalidInput(str(exc), code="scope_invalid", field="scopes") from None
            expires_in = None if args.expires_in is None else parse_duration(args.expires_in, field="--expires-in")
            issued = await keys.create(workspace=args.workspace, scopes=scopes, name=args.name, expires_in=expires_in)
            await _published(settings, issued.events)
            _print_issued(issued, as_json=args.json, verb="created")
        elif args.action == "list":
            _print_list(await keys.list(args.workspace), as_json=args.json)
        elif args.action == "rotate":
            grace = parse_duration(args.grace, field="--grace", allow_zero=True)
            issued = await keys.rotate(args.key_id, grace=grace)
            await _published(settings, issued.events)
            _print_issued(issued, as_json=args.json, verb="rotated: new")
            old = "revoked now" if not grace else f"keeps working for {args.grace}"
            print(f"the old key {args.key_id} {old}", file=sys.stderr)
        elif args.action == "republish":
            events = await keys.republish()
            await _published(settings, events)
            print(f"republished {len(events)} keys to the keys topic")
        elif args.action == "revoke":
            events = await keys.revoke(args.key_id)
            await _published(settings, events)
            print(f"revoked {args.key_id}" if events else f"{args.key_id} was revoked already")


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if args.action == "ensure-local-admin":
        args.secret = args.secret_file.read_text().strip()
    try:
        asyncio.run(run(args, ShortenSettings()))
    except DomainError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        print(
            f"error: the change is stored but not yet in the keys topic: {exc}; the relay publishes it "
            "when Kafka is reachable",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:  # `just keys list | head`: the reader is gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
