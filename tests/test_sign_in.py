"""Where the console sends a browser after sign-in: only to its own pages, judged the way a
browser parses the ``next`` target (the WHATWG URL parser, checked in Debian's Chromium)."""

from __future__ import annotations

import asyncio
import html
import re
import string
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagaworks.client.api import ApiSettings, create_app
from sagaworks.client.api.console import build_router, sign_in_target
from tests.apiserver import RunningApi, api_server
from tests.test_ui import CHROMIUM, CHROMIUM_ARGS

TOKEN = "t" * 32
PAGES = build_router().routes

OFFSITE = [
    # What a browser follows to another site (or runs as a script) if handed over raw.
    "/\t\\evil.example/",
    "/\n\\evil.example/",
    "/\r\\evil.example/",
    "/\t/evil.example/",
    "/\r\n/evil.example/",
    "/\\\tevil.example/",
    "\t//evil.example/",
    " //evil.example/",
    "\x01//evil.example/",
    "\x1f/\\evil.example/",
    "//evil.example/\x00",
    "//evil.example/ ",
    "//evil.example/x",
    "///evil.example/",
    "////evil.example/",
    "/\\evil.example/x",
    "\\\\evil.example/",
    "\\/evil.example/",
    "/\\/evil.example/",
    "//\\evil.example/",
    "//user:pass@evil.example/",
    "/\\user@evil.example/",
    "//127.0.0.1@evil.example/",
    "//evil.example%2F@x/",
    "//evil\u3002example/",
    "//\uff45vil.example/",
    "//EVIL.example./",
    "https://evil.example/",
    "HTTPS://evil.example/",
    "https:evil.example/",
    "https:/evil.example/",
    "https:\\\\evil.example/",
    "ftp://evil.example/",
    "ws://evil.example/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "\tjavascript:alert(1)",
    "java\nscript:alert(1)",
    " javascript:alert(1)",
    "javascript://%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "blob:http://evil.example/x",
]
"""Each of these leaves the console's origin when a browser resolves it against a console
page; ``test_the_offsite_cases_really_leave_in_chromium`` keeps that true."""

SIGNED_IN_TOWARDS = [
    "/\t\\evil.example/",
    "/\n\\evil.example/",
    "/\r\n/evil.example/",
    " //evil.example/",
    "//evil.example/x",
    "/\\evil.example/x",
    "\\\\evil.example/",
    "//user:pass@evil.example/",
    "https:evil.example/",
    "\tjavascript:alert(1)",
]
"""The offsite targets signed in towards in Chromium, one of each kind (the server's answer to
every other one is checked without a browser, and is the same ``/``)."""

REFUSED_SAME_SITE = [
    # Same site in a browser, but not a console page or not plainly written: back to "/".
    "",
    "runs",
    "%2F%2Fevil.example/",
    "/%5Cevil.example/",
    "/%09/evil.example/",
    "/\uff0fevil.example/",
    "\uff0f\uff0fevil.example/",
    "/runs/\u00e9",
    "/ runs",
    "/runs ",
    "/api/catalog",
    "/static/console.js",
    "/no-such-page",
    "http:evil.example",
    "/runs/a/b",
    "/runs/a%2Fb",
    '/runs"onmouseover=alert(1)',
    "/runs<script>",
]

CONSOLE_PAGES = [
    "/",
    "/runs",
    "/runs?status=RUNNING&family_name=order",
    "/runs/order-42",
    "/runs/order%2042",
    "/runs/order-42#result",
    "/families/order",
    "/schedules",
    "/tickets?priority=high",
    "/login",
]


@pytest.mark.parametrize("target", OFFSITE + REFUSED_SAME_SITE)
def test_anything_but_a_console_page_signs_in_to_the_catalog(target: str) -> None:
    assert sign_in_target(target, PAGES) == "/"


@pytest.mark.parametrize("target", CONSOLE_PAGES)
def test_a_console_page_is_kept(target: str) -> None:
    assert sign_in_target(target, PAGES) == target


def _as_a_browser_reads_it(target: str) -> str:
    """The WHATWG URL parser's rewrites before it looks at a relative URL's shape."""
    stripped = target.strip("".join(map(chr, range(0x21))))
    return "".join(c for c in stripped if c not in "\t\n\r").replace("\\", "/")


TRICKY = st.text(
    alphabet=st.sampled_from(list("/\\\t\n\r .%:@?#") + list("ab09") + ["\x00", "\u3002", "\uff0f", "\u00e9"]),
    max_size=12,
)

URLISH = st.text(alphabet=string.ascii_letters + string.digits + "-._~:?#[]@!$&'()*+,;=%\\\t ", max_size=12)


@settings(max_examples=400, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.one_of(TRICKY, st.text(max_size=12)).map(lambda rest: "/runs" + rest))
def test_an_accepted_target_is_what_a_browser_reads(target: str) -> None:
    kept = sign_in_target(target, PAGES)
    assert kept in (target, "/")
    assert _as_a_browser_reads_it(kept) == kept and kept.startswith("/") and not kept.startswith("//")


def _offline_app() -> TestClient:
    return TestClient(base_url="http://127.0.0.1", app=create_app(ApiSettings(token=TOKEN), client=object()))  # type: ignore[arg-type]  # the offline app never calls Temporal


def test_the_login_page_carries_only_a_console_target() -> None:
    app = _offline_app()
    assert 'data-next="/"' in app.get("/login", params={"next": "/\t\\evil.example/"}).text
    assert 'data-next="/runs?status=RUNNING"' in app.get("/login", params={"next": "/runs?status=RUNNING"}).text


def test_a_page_asked_for_before_sign_in_comes_back_whole() -> None:
    # Path and query survive the trip through ?next= (a "?" in a run id is its path, not a query).
    answer = _offline_app().get("/runs/a%3Fb c", params={"status": "RUNNING"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/runs/a%253Fb%2520c%3Fstatus%3DRUNNING"
    page = _offline_app().get(answer.headers["location"]).text
    assert 'data-next="/runs/a%3Fb%20c?status=RUNNING"' in page


LOGIN_PAGE = re.compile(r"/login\?")
chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def api() -> Iterator[RunningApi]:
    # Sign-in needs no Temporal: a stand-in client keeps this test free of servers.
    with api_server(ApiSettings(token=TOKEN, database_url=None), client=object()) as running:
        yield running


@pytest_asyncio.fixture
async def browser(api: RunningApi) -> AsyncIterator[Any]:
    """A browser context whose pages are served by ``api`` for sign-in and by a stub for the
    rest: nothing leaves the machine, offsite URLs included."""
    from playwright.async_api import async_playwright

    async def land(route: Any) -> None:
        if route.request.url.startswith((f"{api.url}/login", f"{api.url}/static/")):
            await route.continue_()
        else:
            await route.fulfill(status=200, content_type="text/html", body="<title>landed</title>")

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await chromium.new_context(base_url=api.url)
        context.set_default_timeout(15_000)
        await context.route("**/*", land)
        try:
            yield context
        finally:
            await chromium.close()


async def _sign_in_towards(browser: Any, targets: list[str], tabs: int = 4) -> dict[str, str]:
    """Sign in at ``/login?next=target`` for each target (a few tabs at once): where each lands."""
    landed: dict[str, str] = {}

    async def tab(mine: list[str]) -> None:
        page = await browser.new_page()
        for target in mine:
            await page.goto("/login?" + urlencode({"next": target}), wait_until="domcontentloaded")
            await page.fill("input[name=token]", TOKEN)
            await page.click("button[type=submit]")
            await page.wait_for_url(lambda url: "/login" not in url)
            landed[target] = str(page.url)

    await asyncio.gather(*(tab(targets[i::tabs]) for i in range(tabs)))
    return landed


async def _origins_in_chromium(browser: Any, targets: list[str]) -> list[str]:
    """The origin Chromium's URL parser gives each target resolved against a console page."""
    page = await browser.new_page()
    await page.goto("/login")
    return list(await page.evaluate("ts => ts.map(t => new URL(t, location.href).origin)", targets))


@chromium
async def test_the_offsite_cases_really_leave_in_chromium(browser: Any, api: RunningApi) -> None:
    origins = await _origins_in_chromium(browser, OFFSITE)
    assert [t for t, origin in zip(OFFSITE, origins, strict=True) if origin == api.url] == []


@chromium
async def test_sign_in_lands_on_the_console_in_chromium(browser: Any, api: RunningApi) -> None:
    assert set(SIGNED_IN_TOWARDS) <= set(OFFSITE)
    landed = await _sign_in_towards(browser, SIGNED_IN_TOWARDS)
    assert {t: url for t, url in landed.items() if url != f"{api.url}/"} == {}
    pages = [t for t in CONSOLE_PAGES if t != "/login"]
    assert await _sign_in_towards(browser, pages) == {t: api.url + t for t in pages}


@chromium
async def test_targets_the_server_accepts_stay_on_the_site_in_chromium(browser: Any, api: RunningApi) -> None:
    # Many generated targets: whatever the server keeps, Chromium's own parser reads as a path here.
    kept: list[str] = []

    @settings(max_examples=600, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["/runs", "/", "/runs/x", "/families/order", ""]), st.one_of(TRICKY, URLISH))
    def collect(head: str, tail: str) -> None:
        if sign_in_target(head + tail, PAGES) != "/":
            kept.append(head + tail)

    collect()
    assert len(kept) > 100
    origins = await _origins_in_chromium(browser, kept)
    assert {t for t, origin in zip(kept, origins, strict=True) if origin != api.url} == set()


@chromium
async def test_the_console_script_stays_on_its_origin_whatever_the_page_says(browser: Any, api: RunningApi) -> None:
    # The second guard, on its own: the login page is rewritten to carry an offsite target.
    page = await browser.new_page()

    def towards(target: str) -> Any:
        async def offsite(route: Any) -> None:
            original = await route.fetch()
            body = (await original.text()).replace('data-next="/runs"', f'data-next="{html.escape(target)}"')
            await route.fulfill(response=original, body=body)

        return offsite

    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/", "javascript:alert(1)"):
        await page.route(LOGIN_PAGE, towards(target))
        await page.goto("/login?next=/runs")
        assert await page.get_attribute("#login-form", "data-next") == target
        await page.fill("input[name=token]", TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url(lambda url: "/login" not in url)
        assert page.url == f"{api.url}/", target
        await page.unroute(LOGIN_PAGE)
