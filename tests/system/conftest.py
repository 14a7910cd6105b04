"""A headless Chromium for the browser tests: Debian's `chromium`, driven by Playwright,
with the network off but for loopback (the pages must work on a machine without internet)."""

import shutil
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Route, async_playwright

# a host outside loopback resolves to nothing, and the quiet flags keep Chromium from
# calling home on its own
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "chromium is missing: `make test` installs it (Debian package chromium)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable,
                                                   args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class OfflineContext:
    """A browser context whose requests beyond loopback are refused and remembered."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.refused: list[str] = []

    async def refuse_remote(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            await route.continue_()
        else:
            self.refused.append(route.request.url)
            await route.abort("internetdisconnected")


@pytest.fixture
async def offline(browser: Browser) -> AsyncIterator[OfflineContext]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800},
                                        accept_downloads=True)
    offline = OfflineContext(context)
    await context.route("**/*", offline.refuse_remote)
    yield offline
    await context.close()
