"""Who may read what. Pure: the link's owner and the caller are passed in.

A link's stats are its workspace's: a key of that workspace with `stats:read` reads them; a link
created with `public_stats` shows them to anyone, key or not. Every other caller gets exactly the
answer an unknown code gets (404 link_not_found, same body): whether a code exists in another
workspace is not something a caller may learn. A key of the right workspace without the scope is
told so (403 scope_missing): it already knows the link is there.

/top ranks the caller's workspace's links and needs `stats:read`.
"""

from dataclasses import dataclass

from platformkit.apikeys import Principal

from analytics.domain.errors import UnknownLink


@dataclass(frozen=True, kw_only=True)
class LinkOwner:
    workspace: str
    public_stats: bool


def unknown_link(code: str) -> UnknownLink:
    """The one answer for a code the caller may not see, whether it exists or not."""
    return UnknownLink(f"no link {code!r}", field="code")


def check_stats_access(code: str, owner: LinkOwner | None, caller: Principal | None) -> None:
    """Return if `caller` (None: no key sent) may read the stats of `code`; else raise 404 or 403."""
    if owner is None:
        raise unknown_link(code)
    if owner.public_stats:
        return
    if caller is None or caller.workspace != owner.workspace:
        raise unknown_link(code)
    caller.require("stats:read")


def check_top_access(caller: Principal) -> str:
    """The workspace whose links /top ranks for `caller` (403 without `stats:read`)."""
    caller.require("stats:read")
    return caller.workspace
