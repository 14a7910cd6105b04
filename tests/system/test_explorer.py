"""The anomaly explorer in headless Chromium against the real service and database, with
the network off but for loopback: sign in, find an anomaly by its readable id, reach the
root in at most five clicks, see the policy version, export CSV, follow a permalink, see
a live event arrive, and see refusals."""

import csv
import io
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from tests.conftest import GraphQLClient, TokenFactory
from tests.helpers import ROOT
from tests.system.conftest import OfflineContext
from trustfabric.client.psi import PsiClient
from trustfabric.domain.auth import Role
from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.runtime.demo import demo_batch, seed_demo_policies
from trustfabric.runtime.services import Services

# the README's picture, taken again when TF_UPDATE_SCREENSHOT=1
SCREENSHOT = ROOT / "docs" / "pcq" / "explorer.png"
INGEST = "mutation($input: IngestInput!) { ingest(input: $input) { anomalies } }"
PROPOSE = "mutation($input: ProposeSuppressionInput!) { proposeSuppression(input: $input) { id } }"
APPROVE = "mutation($id: String!) { approveSuppression(id: $id) { status } }"


async def sign_in(page: Page, url: str, token: str) -> None:
    await page.goto(url)
    await page.fill("#token", token)
    await page.keyboard.press("Enter")  # the form submits on Enter: no click
    await expect(page.locator("#viewer")).not_to_be_empty()


async def test_on_call_traces_an_anomaly_to_its_root(
        base_url: str, offline: OfflineContext, demo_tenant: str, services: Services,
        make_token: TokenFactory, client: PsiClient, psi_pair: dict, gql: GraphQLClient,
        tmp_path: Path):
    started = time.monotonic()
    await seed_demo_policies(services.policy, (demo_tenant,))
    token = await make_token(demo_tenant)
    page = await offline.context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    await sign_in(page, f"{base_url}/explorer", token)
    await expect(page.locator("table.anomalies")).to_be_visible()
    assert token not in page.url
    await page.screenshot(path=str(tmp_path / "list.png"))

    # find by the id an alert shows, then the root: every click is counted
    clicks = 0
    readable = f"{demo_tenant}-anomaly-0-5-1"
    await page.fill("#search", readable)
    await page.click("form.search button")
    clicks += 1
    await expect(page.locator("#policy-version")).to_have_text("promotion-gate v2")
    await page.click(".path li:last-child button")
    clicks += 1
    panel = page.locator("#hop")
    await expect(panel.locator("h3")).to_have_text("Repo — the root")
    await expect(panel).to_contain_text(f"https://git.example.com/{demo_tenant}/service-0")
    assert clicks <= 5
    await page.screenshot(path=str(tmp_path / "root.png"), full_page=True)

    # a hop's context: the commit's impact, one click back along the path
    await page.click(".path button[data-kind=Commit]")
    await expect(panel.locator(".impact")).to_contain_text("Open anomalies after it")
    await expect(panel).to_contain_text("Neighbours")
    # the image's promotions: the demo's denied one, why, what to do, and coaching hints
    await page.locator(".path button[data-kind=Image]").first.click()
    await expect(panel).to_contain_text("demo-fail")
    await expect(panel).to_contain_text("Cause: policy change")
    await expect(panel).to_contain_text("Coaching hints")

    # CSV of the lineage and of the list
    async with page.expect_download() as downloading:
        await page.click("text=Export lineage CSV")
    lineage = (await downloading.value).path()
    rows = list(csv.reader(io.StringIO(Path(await lineage).read_text())))
    assert any(readable in cell for row in rows for cell in row)

    # the permalink, in a new tab (no token there: it signs in and lands on the same view)
    permalink = page.url
    assert "#/anomaly/" in permalink and token not in permalink
    other_tab = await offline.context.new_page()
    await sign_in(other_tab, permalink, token)
    await expect(other_tab.locator("#policy-version")).to_have_text("promotion-gate v2")
    await other_tab.close()

    # keyboard only: / to search, Enter to open, r to the root
    await page.keyboard.press("Escape")
    await expect(page.locator("#search")).to_be_visible()
    await page.keyboard.press("/")
    await page.keyboard.type(f"{demo_tenant}-anomaly-1-0-0")
    await page.keyboard.press("Enter")
    await expect(page.locator("#to-root")).to_be_visible()
    await page.keyboard.press("r")
    await expect(panel.locator("h3")).to_have_text("Repo — the root")

    async with page.expect_download() as downloading:
        await page.keyboard.press("Escape")
        await page.click("text=Export CSV")
    listed = Path(await (await downloading.value).path()).read_text()
    assert f"{demo_tenant}-anomaly-0-0-0" in listed

    # live: a PSI job of this tenant shows up without a reload
    await expect(page.locator("#live-state")).to_have_text("● live")
    await client.intersect(psi_pair["dataset"], [f"customer-{n}@example.com" for n in range(8)])
    await expect(page.locator("#events li").first).to_contain_text("DONE", timeout=15_000)

    # anomalies recorded through the API carry their paging decision, and the suppression
    # rule that silenced one, with its reason: the page says so
    proposed = await gql(PROPOSE, token, input={
        "scope": {"jobPattern": f"{demo_tenant}-job-*", "kind": "config-drift"},
        "endsAt": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        "reason": "staging config drifts on purpose this week"})
    rule = proposed["data"]["proposeSuppression"]["id"]
    await gql(APPROVE, await make_token(demo_tenant, Role.REVIEWER), id=rule)
    job = f"{demo_tenant}-job-0-5-deploy"
    recorded = await gql(INGEST, token, input={"anomalies": [
        {"anomalyId": f"{demo_tenant}-new-cve", "jobId": job, "kind": "cve-introduced",
         "severity": "HIGH", "summary": "CVE-2026-0001 in openssl"},
        {"anomalyId": f"{demo_tenant}-new-drift", "jobId": job, "kind": "config-drift",
         "severity": "LOW", "summary": "replicas 3 → 2"}]})
    assert recorded["data"]["ingest"]["anomalies"] == 2
    # live: the new anomalies arrive without a reload, with their decision, as links
    live = page.locator("#events li", has_text=f"{demo_tenant}-new-cve")
    await expect(live).to_contain_text("page", timeout=15_000)
    await expect(page.locator("#events li", has_text=f"{demo_tenant}-new-drift")).to_contain_text(
        "suppressed")
    await page.fill("#search", f"{demo_tenant}-new-cve")
    await page.keyboard.press("Enter")
    await expect(page.locator(".suppression")).to_contain_text("Paging: page")
    await page.keyboard.press("Escape")
    await page.fill("#search", f"{demo_tenant}-new-drift")
    await page.keyboard.press("Enter")
    await expect(page.locator(".suppression")).to_contain_text(
        f"silenced by suppression rule {rule} (“staging config drifts on purpose this week”")

    await page.goto(f"{base_url}/explorer#/anomaly/{_global_id(demo_tenant, readable)}")
    await expect(page.locator("#to-root")).to_be_visible()
    await page.keyboard.press("r")
    await expect(panel.locator("h3")).to_have_text("Repo — the root")
    await page.screenshot(path=str(tmp_path / "explorer.png"))
    if os.environ.get("TF_UPDATE_SCREENSHOT") == "1":
        await page.screenshot(path=str(SCREENSHOT))

    # a phone's width: one column, nothing wider than the screen
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.locator("#policy-version")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)

    assert offline.refused == [] and errors == []
    assert time.monotonic() - started < 30


async def test_refusals(base_url: str, offline: OfflineContext, demo_tenant: str,
                        services: Services, make_token: TokenFactory):
    other = f"{demo_tenant}x"
    await services.repos.ingest.apply(plan_batch(demo_batch(other), other, 10_000))
    page = await offline.context.new_page()

    await page.goto(f"{base_url}/explorer")
    await page.fill("#token", "tf_not-a-token")
    await page.keyboard.press("Enter")
    await expect(page.locator("#signin-problem")).to_have_text(
        "This token was refused: it is unknown, revoked or mistyped.")

    await page.fill("#token", await make_token(demo_tenant))
    await page.keyboard.press("Enter")
    await expect(page.locator("table.anomalies")).to_be_visible()
    assert other not in await page.locator("table.anomalies").inner_text()

    # another tenant's anomaly, by its readable id and by its permalink: not found
    await page.fill("#search", f"{other}-anomaly-0-0-0")
    await page.keyboard.press("Enter")
    await expect(page.locator("main h2")).to_have_text("Not found")
    await page.goto(f"{base_url}/explorer#/anomaly/{_global_id(other, f'{other}-anomaly-0-0-0')}")
    await page.reload()
    await expect(page.locator("main h2")).to_have_text("Not found")
    assert offline.refused == []


def _global_id(tenant: str, readable: str) -> str:
    from strawberry import relay
    return str(relay.GlobalID("Anomaly", f"{tenant}:{readable}"))
