"""Device and bot classification of a User-Agent, from ua-parser's maintained regexes.

ua-parser names crawlers and link-preview fetchers (Slackbot, facebookexternalhit,
Twitterbot, WhatsApp, Discordbot, LinkedInBot, TelegramBot, Googlebot, ...) with the device
family "Spider": those clicks are flagged (is_bot=True, device="bot"), never dropped.
A parse costs 10-400 us, so results are kept per UA string in an LRU (the UA mix of real
traffic has a heavy head). Runs off the request path, in the click builder.
"""

from collections.abc import Callable
from functools import lru_cache

import ua_parser
from contracts.clicks import Device
from ua_parser import Domain

MOBILE_OS = frozenset(
    {
        "iOS",
        "Android",
        "Windows Phone",
        "BlackBerry OS",
        "Firefox OS",
        "KaiOS",
        "Symbian OS",
        "Tizen",
        "HarmonyOS",
        "Sailfish",
        "webOS",
        "Windows Mobile",
    }
)
DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "macOS",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "Fedora",
        "Debian",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Mint",
        "Arch Linux",
        "Gentoo",
        "Red Hat",
        "SUSE",
        "openSUSE",
        "Solaris",
        "Mandriva",
        "Slackware",
    }
)
TABLET_FAMILIES = ("ipad", "tablet", "kindle", "nexus 7", "nexus 9", "nexus 10", "galaxy tab", "surface")


def _classify(ua: str) -> tuple[Device, bool]:
    if not ua:
        return "other", False
    result = ua_parser.parser(ua, Domain.DEVICE | Domain.OS)
    device = result.device
    os_family = result.os.family if result.os is not None else ""
    if device is not None and device.family == "Spider":
        return "bot", True
    family = device.family.lower() if device is not None else ""
    brand = (device.brand or "") if device is not None else ""
    if brand == "Generic_Android_Tablet" or any(t in family for t in TABLET_FAMILIES):
        return "tablet", False
    if os_family == "Android" and "Mobile" not in ua:
        return "tablet", False  # Android's convention: phones say "Mobile", tablets do not
    if os_family in MOBILE_OS:
        return "mobile", False
    if os_family in DESKTOP_OS or family == "mac":
        return "desktop", False
    return "other", False


def make_classifier(cache_size: int = 10_000) -> Callable[[str], tuple[Device, bool]]:
    """A classifier `ua -> (device, is_bot)` with its own LRU of `cache_size` UA strings."""
    return lru_cache(maxsize=cache_size)(_classify)


def warm_up() -> None:
    """Load ua-parser's matchers now (the first parse takes ~100 ms), not on the first click."""
    _classify("Mozilla/5.0 (X11; Linux x86_64)")
