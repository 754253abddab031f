"""The web app (/app/) in a real browser: Debian's chromium, headless, driven by Playwright.

Never `playwright install`: the browser is the system's (/usr/bin/chromium, from
infra/scripts/install-system.sh). Screenshots of every page go to WEBAPP_SCREENSHOTS
(default .local/screenshots; `just screenshots` writes docs/screenshots/).
Waits are Playwright's own (an expectation polled until its timeout), never sleeps.
"""

import asyncio
import io
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Browser, BrowserContext, Locator, Page, async_playwright, expect

from tests.conftest import ROOT, public_url

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("WEBAPP_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("WEBAPP_SCREENSHOTS", str(ROOT / ".local" / "screenshots")))
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 740}
# Stats arrive through Kafka, the aggregator and ClickHouse: generous, and polled.
STATS_TIMEOUT_MS = 90_000
# A live update (the stats page's open stream, GET /api/v1/links/{code}/live) after a redirect:
# the click's path to analytics (see tests/e2e/test_live_stats.py) plus the page's own work.
LIVE_TIMEOUT_MS = int(os.environ.get("WEBAPP_LIVE_TIMEOUT_MS", "5000"))


def app_url(route: str = "") -> str:
    return f"{public_url()}/app/{'#' + route if route else ''}"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


class Console:
    """Every console error and uncaught exception of a page: a CSP violation shows up here."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def unexpected(self) -> list[str]:
        # A failed API call is logged by the browser as a failed resource; the page shows those.
        return [e for e in self.errors if "Failed to load resource" not in e]


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
    await ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=public_url())
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    opened = await context.new_page()
    console = Console(opened)
    yield opened
    assert console.unexpected() == []


@pytest.fixture
async def api(api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=public_url(), headers=headers, timeout=10) as client:
        yield client


async def shot(page: Page, name: str) -> None:
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


async def sign_in(page: Page, key: str) -> None:
    await page.goto(app_url())
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def create_link(api: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    created = await api.post("/api/v1/links", json=fields)
    assert created.status_code == 201, created.text
    link: dict[str, object] = created.json()
    return link


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def marker() -> str:
    return f"webapp-{uuid.uuid4().hex[:10]}"


async def test_sign_in_refuses_a_wrong_key_and_signs_out(page: Page, api_key: str) -> None:
    await page.goto(app_url())
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await shot(page, "sign-in")
    await page.get_by_label("API key").fill("not-" + uuid.uuid4().hex)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("api_key_invalid")

    await page.get_by_label("API key").fill(api_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Shorten a link")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('shortlink.apiKey')") == api_key
    await page.reload()  # the session survives a reload (same tab)
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('shortlink.apiKey')") is None


async def test_shorten_copy_and_a_qr_code_that_scans(page: Page, api_key: str, api: httpx.AsyncClient) -> None:
    await sign_in(page, api_key)
    alias = marker()
    await page.get_by_label("Long URL").fill("https://example.com/from-the-browser?x=1")
    await page.get_by_label("Custom alias (optional)").fill(alias)
    await page.get_by_label("Max clicks (optional)").fill("50")
    await page.get_by_label("Redirect type").select_option("301")
    await page.get_by_role("button", name="Shorten").click()

    short_url = f"{public_url()}/{alias}"
    await expect(page.get_by_test_id("short-url")).to_have_text(short_url)
    await page.get_by_role("button", name=f"Copy {short_url}").click()
    await expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == short_url

    qr_image = page.get_by_role("img", name=f"QR code of {short_url}")
    await expect(qr_image).to_be_visible()
    await expect(page.get_by_role("link", name="Download PNG")).to_be_visible()
    # The QR code as the browser drew it decodes back to the short URL.
    drawn = Image.open(io.BytesIO(await qr_image.screenshot()))
    assert [r.text for r in zxingcpp.read_barcodes(drawn)] == [short_url]
    await shot(page, "shorten")

    stored = (await api.get(f"/api/v1/links/{alias}")).json()
    assert (stored["url"], stored["max_clicks"], stored["redirect_type"]) == (
        "https://example.com/from-the-browser?x=1",
        50,
        301,
    )


async def test_a_refused_link_names_the_field(page: Page, api_key: str) -> None:
    await sign_in(page, api_key)
    await page.get_by_label("Long URL").fill("https://example.com/x")
    await page.get_by_label("Custom alias (optional)").fill("app")  # reserved: the web app's own path
    await page.get_by_role("button", name="Shorten").click()
    alias = page.get_by_label("Custom alias (optional)")
    await expect(alias).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#alias-error")).to_be_visible()


async def test_edit_a_link(page: Page, api_key: str, api: httpx.AsyncClient) -> None:
    link = await create_link(api, url="https://example.com/before")
    code = str(link["code"])
    await sign_in(page, api_key)
    await page.goto(app_url(f"/links/{code}/edit"))
    await expect(page.get_by_role("heading", name=f"Edit {code}")).to_be_visible()
    await expect(page.get_by_label("Long URL")).to_have_value("https://example.com/before")
    await page.get_by_label("Long URL").fill("https://example.com/after")
    await page.get_by_label("Max clicks (optional)").fill("7")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    await shot(page, "edit")
    stored = (await api.get(f"/api/v1/links/{code}")).json()
    assert (stored["url"], stored["max_clicks"]) == ("https://example.com/after", 7)

    await page.get_by_role("button", name=f"Delete {code}").click()
    await page.get_by_role("button", name="Confirm delete").click()
    await expect(page.get_by_role("heading", name="My links")).to_be_visible()
    assert (await api.get(f"/api/v1/links/{code}")).status_code == 410


async def test_my_links_search_page_copy_and_delete(page: Page, api_key: str, api: httpx.AsyncClient) -> None:
    """Needs GET /api/v1/links (search, cursor paging): 21 links with one marker (in the alias and
    the URL, whichever `q` searches), 20 per page."""
    token = marker()
    codes = [
        str((await create_link(api, url=f"https://example.com/{token}/{i}", alias=f"{token}-{i}"))["code"])
        for i in range(21)
    ]
    await sign_in(page, api_key)
    await nav(page, "My links").click()
    await page.get_by_label("Search").fill(token)
    await page.get_by_role("button", name="Search").click()
    cards = page.locator(".link-card")
    await expect(cards.first.or_(page.get_by_role("alert"))).to_be_visible()
    await shot(page, "links")
    await expect(cards).to_have_count(20)
    # Newest first.
    await expect(cards.first).to_have_attribute("data-code", codes[-1])
    await page.get_by_role("button", name="Next page").click()
    await expect(cards).to_have_count(1)
    await expect(cards.first).to_have_attribute("data-code", codes[0])
    await page.get_by_role("button", name="Previous page").click()
    await expect(cards).to_have_count(20)

    newest = cards.first
    short_url = f"{public_url()}/{codes[-1]}"
    await newest.get_by_role("button", name=f"Copy {short_url}").click()
    assert await page.evaluate("navigator.clipboard.readText()") == short_url
    await newest.get_by_role("button", name=f"Delete {codes[-1]}").click()
    await newest.get_by_role("button", name="Confirm delete").click()
    await expect(page.get_by_role("status").filter(has_text=f"Deleted {codes[-1]}.")).to_be_visible()
    await expect(page.locator(f'.link-card[data-code="{codes[-1]}"]')).to_have_count(0)
    assert (await api.get(f"/api/v1/links/{codes[-1]}")).status_code == 410


async def test_tags_filter_links_and_top_links(page: Page, api_key: str, api: httpx.AsyncClient) -> None:
    """Needs tags and public_stats on links, GET /api/v1/links?tag= and /api/v1/top?tag=."""
    tag = marker()
    await sign_in(page, api_key)
    await page.get_by_label("Long URL").fill(f"https://example.com/{tag}")
    await page.get_by_label("Tags (optional)").fill(f"{tag}, spring")
    await page.get_by_label("Public stats").check()
    await page.get_by_role("button", name="Shorten").click()
    result = page.get_by_role("region", name="Your short link")
    await expect(result.get_by_role("list", name="Tags")).to_have_text(re.compile(f"{tag}.*spring"))
    short_url = await page.get_by_test_id("short-url").inner_text()
    code = short_url.rsplit("/", 1)[1]

    await nav(page, "My links").click()
    await page.get_by_label("Tag", exact=True).fill(tag)
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator(".link-card")).to_have_count(1)
    await expect(page.locator(".link-card").first).to_contain_text("public stats")

    async with httpx.AsyncClient(timeout=10) as visitor:
        assert (await visitor.get(short_url)).status_code == 302
    await nav(page, "Top links").click()
    await page.get_by_label("Window").select_option("1h")
    await page.get_by_label("Tag", exact=True).fill(tag)
    await page.get_by_role("button", name="Apply").click()
    await expect(page.get_by_role("link", name=code)).to_be_visible(timeout=STATS_TIMEOUT_MS)
    await shot(page, "top-by-tag")


async def test_stats_page_shows_a_click_arriving(page: Page, api_key: str, api: httpx.AsyncClient) -> None:
    link = await create_link(api, url="https://example.com/stats")
    code, short_url = str(link["code"]), str(link["short_url"])
    await sign_in(page, api_key)
    await page.goto(app_url(f"/stats/{code}"))
    await expect(page.get_by_role("heading", name=f"Stats of {code}")).to_be_visible()
    await page.get_by_label("Range").select_option("1h")
    await expect(page.get_by_label("Interval")).to_have_value("minute")
    # The live stream is open (the page reads no stats on a timer: only a live event or the user
    # makes the numbers change) and the link is known to analytics.
    await expect(page.get_by_test_id("live-state")).to_have_text("Live", timeout=STATS_TIMEOUT_MS)
    await expect(page.get_by_test_id("total-clicks")).to_have_text("0", timeout=STATS_TIMEOUT_MS)

    async with httpx.AsyncClient(timeout=10) as visitor:
        headers = {
            "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
            "Referer": "https://news.example.org/post",
        }
        assert (await visitor.get(short_url, headers=headers)).status_code == 302
    # The live event raises the counters in place: no reload, no poll.
    await expect(page.get_by_test_id("total-clicks")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    await expect(page.get_by_test_id("lifetime-clicks")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    # Then the page reads /stats again for what live events do not carry (unique visitors...).
    await expect(page.get_by_test_id("unique-visitors")).to_have_text("1", timeout=STATS_TIMEOUT_MS)
    chart = page.get_by_role("img", name=re.compile(r"^Clicks per minute, .*: 1 clicks, 1 unique"))
    await expect(chart).to_be_visible()
    await expect(page.locator(".share").filter(has_text="Referrers")).to_contain_text("news.example.org")
    await expect(page.locator(".share").filter(has_text="Devices")).to_contain_text("1")
    await expect(page.locator(".share").filter(has_text="Countries")).to_contain_text("100%")

    await page.get_by_label("Show bot clicks").check()
    await expect(page.get_by_test_id("bot-clicks")).to_have_text("0")
    await page.get_by_label("Range").select_option("7d")
    await expect(page.get_by_label("Interval")).to_have_value("day")
    await expect(page.get_by_test_id("total-clicks")).to_have_text("1")
    await page.get_by_label("Range").select_option("1h")
    await expect(page.get_by_role("img", name=re.compile(r"^Clicks per minute, .*: 1 clicks"))).to_be_visible()
    await expect(page.get_by_test_id("total-clicks")).to_have_text("1")
    await shot(page, "stats")


async def test_top_links_page(page: Page, api_key: str) -> None:
    await sign_in(page, api_key)
    await nav(page, "Top links").click()
    await expect(page.get_by_role("heading", name="Top links")).to_be_visible()
    await expect(page.get_by_role("table").or_(page.get_by_text("No clicks in this window."))).to_be_visible()
    await expect(page.get_by_role("alert")).to_have_count(0)
    await shot(page, "top")


async def test_usable_at_phone_width_and_by_keyboard(browser: Browser, api_key: str, api: httpx.AsyncClient) -> None:
    link = await create_link(api, url="https://example.com/a/very/long/path/" + "segment/" * 20)
    ctx = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB")
    try:
        page = await ctx.new_page()
        console = Console(page)
        await sign_in(page, api_key)
        loaded = {  # what each page shows once its API calls have answered
            "/": page.get_by_label("Long URL"),
            f"/links/{link['code']}/edit": page.get_by_role("button", name="Save changes"),
            f"/stats/{link['code']}": page.get_by_test_id("total-clicks").or_(page.get_by_role("alert")),
            "/top": page.get_by_role("table").or_(page.get_by_text("No clicks in this window.")),
        }
        for (route, ready), name in zip(
            loaded.items(), ["phone-shorten", "phone-edit", "phone-stats", "phone-top"], strict=True
        ):
            await page.goto(app_url(route))
            await expect(ready).to_be_visible(timeout=STATS_TIMEOUT_MS)
            await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{route} is {overflow}px wider than a 375px screen"
            await shot(page, name)

        # Keyboard only: a page starts focused on its title, the next Tab is its first field, and
        # the form is filled and sent with keys.
        await page.goto(app_url("/"))
        await expect(page.get_by_role("heading", name="Shorten a link")).to_be_focused()
        await page.keyboard.press("Tab")
        await expect(page.get_by_label("Long URL")).to_be_focused()
        await page.keyboard.type("https://example.com/keyboard")
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("short-url")).to_be_visible()
        assert console.unexpected() == []
    finally:
        await ctx.close()


async def test_served_with_a_strict_csp_and_cache_headers() -> None:
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as client:
        index = await client.get("/app/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        assert index.headers["cache-control"] == "no-cache"
        csp = index.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        asset = re.search(r'src="(/app/assets/[^"]+\.js)"', index.text)
        assert asset, index.text
        script = await client.get(asset.group(1))
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert "immutable" in script.headers["cache-control"] and "max-age=31536000" in script.headers["cache-control"]
        assert (await client.get("/app", follow_redirects=False)).headers["location"].endswith("/app/")
