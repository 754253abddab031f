"""Targets refused whatever their shape: the service's own hosts (no loops) and the deny-list."""

import pytest
from shorten.domain.commands import parse_changes, parse_create
from shorten.domain.errors import InvalidInput
from shorten.domain.targets import TargetRules
from shorten.settings import ShortenSettings

from tests.unit.shorten.test_commands import NOW

pytestmark = pytest.mark.unit

RULES = TargetRules.from_settings(
    public_base_url="https://sho.rt",
    extra_domains="go.example.com, [2001:db8::1]",
    denied_targets="evil.example, 10.0.0.0/8, 192.168.1.7, fd00::/8",
)


def code_of(url: str, rules: TargetRules = RULES) -> str | None:
    try:
        parse_create({"url": url}, now=NOW, targets=rules)
    except InvalidInput as exc:
        assert exc.field == "url"
        return exc.code
    return None


@pytest.mark.parametrize(
    "url",
    [
        "https://sho.rt/abc",
        "http://sho.rt:8080/abc",  # any port, any scheme: it is still us
        "https://SHO.RT./abc",  # normalised before the check
        "https://go.example.com/x",
        "http://[2001:db8::1]/x",
    ],
)
def test_own_hosts_are_a_self_reference(url: str) -> None:
    assert code_of(url) == "url_self_reference"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/",
        "https://a.b.evil.example/",  # a denied name covers its subdomains
        "http://10.1.2.3/",
        "http://192.168.1.7:81/",
        "http://[fd12::1]/",
        "http://[::ffff:10.0.0.1]/",  # IPv4-mapped IPv6 is checked as IPv4
    ],
)
def test_denied_targets(url: str) -> None:
    assert code_of(url) == "url_host_denied"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "https://sub.sho.rt/",  # a subdomain of ours may be someone else's site
        "https://notevil.example/",
        "http://11.0.0.1/",
        "http://192.168.1.8/",
    ],
)
def test_other_targets_pass(url: str) -> None:
    assert code_of(url) is None


def test_patch_checks_a_new_url_only() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_changes({"url": "https://sho.rt/x"}, now=NOW, targets=RULES)
    assert caught.value.code == "url_self_reference"
    parse_changes({"max_clicks": 3}, now=NOW, targets=RULES)


def test_settings_refuse_a_malformed_entry() -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        ShortenSettings(shorten_denied_targets="10.0.0.0/33")


def test_settings_build_the_rules() -> None:
    rules = ShortenSettings(
        shorten_public_base_url="http://127.0.0.1:8080", shorten_denied_targets="internal.corp"
    ).target_rules()
    assert rules.own_hosts == {"127.0.0.1"}
    assert code_of("http://127.0.0.1:9/x", rules) == "url_self_reference"
    assert code_of("https://db.internal.corp/", rules) == "url_host_denied"
