"""GraphiQL at /graphql loads from the package's own assets: in Chromium with the network
off but for loopback, the editor appears and nothing was asked of another host."""

import time

from tests.system.conftest import OfflineContext


async def test_graphiql_loads_offline(base_url: str, offline: OfflineContext, tmp_path):
    started = time.monotonic()
    page = await offline.context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    response = await page.goto(f"{base_url}/graphql")
    assert response is not None and response.ok
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    await editor.wait_for(timeout=15_000)
    assert "query OnCall" in await editor.inner_text()
    await page.screenshot(path=str(tmp_path / "graphiql.png"))
    assert offline.refused == []
    assert errors == []
    assert time.monotonic() - started < 15


async def test_root_leads_to_the_explorer(base_url: str, offline: OfflineContext):
    page = await offline.context.new_page()
    await page.goto(f"{base_url}/")
    assert page.url == f"{base_url}/explorer"
