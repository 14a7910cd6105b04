"""Weekly rollups through the API: the week's figures, made once, read and acted on,
walled off by tenant."""

from datetime import UTC, datetime, timedelta

from strawberry import relay

from tests.helpers import codes, outbox, raw_job
from trustfabric.domain.audit import audit_event, iso
from trustfabric.domain.auth import Role
from trustfabric.domain.rollups.digest import week_of
from trustfabric.runtime.demo import digest

ROLLUP = """
query($week: String!, $tenant: String) {
  rollup(week: $week, tenant: $tenant) {
    week hash kpis readers markdown csv actionItems { id text carried done }
  }
}
"""
GENERATE = "mutation($week: String!) { generateRollup(week: $week) { hash kpis } }"
INGEST = "mutation($input: IngestInput!) { ingest(input: $input) { anomalies } }"


async def test_a_weeks_digest_is_made_once_read_and_acted_on(gql, make_token, tenant,
                                                               services):
    token = await make_token(tenant)
    now = datetime.now(UTC)
    image = digest(tenant, "img")
    await gql(INGEST, token, input={
        "builds": [{"imageDigest": image}],
        "jobRuns": [{"jobId": "j1", "kind": "BUILD", "status": "SUCCEEDED",
                     "imageDigest": image}],
        "anomalies": [
            {"anomalyId": "hot", "jobId": "j1", "kind": "cve-introduced", "severity": "HIGH",
             "summary": "3 new CVEs", "observedAt": now.isoformat()},
            {"anomalyId": "again", "jobId": "j1", "kind": "cve-introduced", "severity": "HIGH",
             "summary": "5 new CVEs", "observedAt": now.isoformat()}]})
    week = week_of(now)
    made = await gql(GENERATE, token, week=week)
    assert "errors" not in made, made
    kpis = made["data"]["generateRollup"]["kpis"]
    assert (kpis["anomaliesPaged"], kpis["anomaliesDeduplicated"]) == (1, 1)
    # announced once, through the outbox (its webhook delivery)
    events = await outbox(services, iso(now - timedelta(seconds=5)), [tenant])
    assert [(e.topic, e.job_id, e.status) for e in events if e.topic == "rollup"] == [
        ("rollup", week, "GENERATED")]
    again = await gql(GENERATE, token, week=week)  # immutable: the same digest
    assert again["data"]["generateRollup"]["hash"] == made["data"]["generateRollup"]["hash"]
    read = (await gql(ROLLUP, token, week=week))["data"]["rollup"]
    assert read["readers"] == 0  # counted from the next read on
    # the repeat was deduplicated: one of the two paged, and asks to be traced
    [item] = [i for i in read["actionItems"] if ":anomaly:" in i["id"]]
    assert item["text"] in read["markdown"] and "anomaliesPaged" in read["csv"]
    # the top anomaly links to its lineage in the explorer, by its global id
    top = (await gql("query($w: String!) { rollup(week: $w) { topAnomalies } }", token,
                     w=week))["data"]["rollup"]["topAnomalies"][0]
    assert top["lineage"] == "/explorer#/anomaly/" + str(
        relay.GlobalID("Anomaly", f"{tenant}:{top['anomalyId']}"))
    done = await gql("mutation($w: String!, $i: String!) { completeRollupAction(week: $w, "
                     "item: $i) { readers actionItems { id done } } }", token, w=week,
                     i=item["id"])
    body = done["data"]["completeRollupAction"]
    assert body["readers"] == 1 and {"id": item["id"], "done": True} in body["actionItems"]
    operator = await make_token(tenant, Role.OPERATOR)
    seen = await gql("query($w: String!) { rollupReadership(week: $w) { tenant read } }",
                     operator, w=week)
    assert {"tenant": tenant, "read": True} in seen["data"]["rollupReadership"]


async def test_rollups_are_walled_off_and_weeks_checked(gql, make_token, tenant):
    token = await make_token(tenant)
    week = week_of(datetime.now(UTC))
    await gql(GENERATE, token, week=week)
    other = await make_token(tenant + "-other")
    assert codes(await gql(ROLLUP, other, week=week, tenant=tenant)) == ["FORBIDDEN"]
    assert codes(await gql(ROLLUP, other, week=week)) == ["NOT_FOUND"]
    assert codes(await gql("query($w: String!) { rollupReadership(week: $w) { tenant } }",
                           token, w=week)) == ["FORBIDDEN"]
    future = week_of(datetime.now(UTC) + timedelta(days=21))
    assert codes(await gql(GENERATE, token, week=future)) == ["BAD_USER_INPUT"]
    assert codes(await gql(GENERATE, token, week="2026-W99")) == ["BAD_USER_INPUT"]


async def test_a_weeks_demand_is_counted_from_its_tenants_audit_events(services, tenant):
    """Accepted requests one an event, shed ones by their count, from batches of mixed
    actions; not a neighbour's whose name puts its events in the tenant's range."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    neighbour = f"{tenant}|{iso(datetime.now(UTC))}"
    await services.repos.audit.record(*(audit_event(
        tenant=who, actor="test", action=action, subject="d", outcome=outcome, **details)
        for who in (tenant, neighbour)
        for action, outcome, details in [
            ("psi.request", "accepted", {}), ("psi.run", "done", {}),
            ("psi.request", "refused", {"reason": "OVERLOADED", "count": 3}),
            ("psi.request", "refused", {"reason": "FORBIDDEN"}),
            ("psi.request", "accepted", {})]))
    found = await services.repos.rollups.figures(
        tenant, iso(start), iso(datetime.now(UTC) + timedelta(minutes=1)))
    assert (found.requests_accepted, found.requests_shed) == (2, 3)


async def test_a_weeks_proofs_are_the_jobs_it_finished(services, tenant):
    """Counted by the week they finished in, whenever in the week before they were
    created; not a job finished after the week, nor a neighbour's."""
    start = datetime(2026, 3, 2, tzinfo=UTC)
    end = start + timedelta(days=7)
    for key, who, created, finished, status in [
            ("early", tenant, start - timedelta(days=2), start + timedelta(hours=1), "DONE"),
            ("done", tenant, start + timedelta(days=1), start + timedelta(days=1), "DONE"),
            ("failed", tenant, end - timedelta(hours=1), end - timedelta(minutes=1), "FAILED"),
            ("late", tenant, end - timedelta(seconds=1), end + timedelta(seconds=1), "DONE"),
            ("next", tenant, end, end, "DONE"),
            ("other", tenant + "x", start, start + timedelta(hours=1), "DONE")]:
        await services.repos.jobs.create_many([raw_job(
            who, key, createdAt=iso(created), completedAt=iso(finished), status=status)])
    found = await services.repos.rollups.figures(tenant, iso(start), iso(end))
    assert found.proofs == {"DONE": 2, "FAILED": 1}
