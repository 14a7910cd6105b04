"""Paging decisions and suppression rules through the API: decided when recorded, silenced
only by an approved rule in force, never for critical anomalies; misuse refused with a
code and nothing written."""

import asyncio
from datetime import UTC, datetime, timedelta

from strawberry import relay

from tests.helpers import codes, outbox, subscription, until
from trustfabric.domain.audit import iso
from trustfabric.domain.auth import Role
from trustfabric.domain.webhooks import Delivery, payload
from trustfabric.runtime.demo import digest

INGEST = "mutation($input: IngestInput!) { ingest(input: $input) { anomalies } }"
DECISIONS = """
query { anomalies(first: 100) { edges { node { anomalyId decision suppressedBy } } } }
"""
PROPOSE = """
mutation($input: ProposeSuppressionInput!) {
  proposeSuppression(input: $input) { id status }
}
"""
APPROVE = "mutation($id: String!) { approveSuppression(id: $id) { status approver } }"


def batch(tenant: str, anomalies: list[dict]) -> dict:
    image = digest(tenant, "image")
    return {"builds": [{"imageDigest": image}],
            "jobRuns": [{"jobId": "nightly-42", "kind": "SCAN", "status": "SUCCEEDED",
                         "imageDigest": image, "pipeline": "billing-api"}],
            "anomalies": [{"jobId": "nightly-42", "severity": "LOW", "kind": "sbom-delta",
                           **a} for a in anomalies]}


async def decisions(gql, token) -> dict[str, tuple[str, str | None]]:
    edges = (await gql(DECISIONS, token))["data"]["anomalies"]["edges"]
    return {e["node"]["anomalyId"]: (e["node"]["decision"], e["node"]["suppressedBy"])
            for e in edges}


def ends(days: float = 3) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def test_every_anomaly_is_decided_when_recorded(gql, make_token, tenant):
    token = await make_token(tenant)
    result = await gql(INGEST, token, input=batch(tenant, [
        {"anomalyId": "a1", "summary": "12 packages changed"},
        {"anomalyId": "a2", "summary": "31 packages changed"},  # a repeat: numbers differ
        {"anomalyId": "a3", "summary": "31 packages changed", "severity": "CRITICAL"}]))
    assert "errors" not in result, result
    assert await decisions(gql, token) == {"a1": ("PAGE", None), "a2": ("DEDUPLICATED", None),
                                           "a3": ("PAGE", None)}


async def test_an_approved_rule_suppresses_and_never_a_critical_one(gql, make_token, tenant,
                                                                    services):
    since = iso(datetime.now(UTC) - timedelta(seconds=5))
    author = await make_token(tenant)
    reviewer = await make_token(tenant, Role.REVIEWER)
    proposed = await gql(PROPOSE, author, input={
        "scope": {"jobPattern": "billing-*", "kind": "sbom-delta"}, "endsAt": ends(),
        "reason": "the nightly scan reports the same vendored packages"})
    rule = proposed["data"]["proposeSuppression"]
    assert rule["status"] == "PROPOSED"
    await gql(INGEST, author, input=batch(tenant, [{"anomalyId": "before"}]))
    # refused: its author, a member, a reviewer of another tenant
    assert codes(await gql(APPROVE, author, id=rule["id"])) == ["FORBIDDEN"]
    assert codes(await gql(APPROVE, await make_token(tenant), id=rule["id"])) == ["FORBIDDEN"]
    assert codes(await gql(APPROVE, await make_token(tenant + "-x", Role.REVIEWER),
                           id=rule["id"])) == ["NOT_FOUND"]
    approved = await gql(APPROVE, reviewer, id=rule["id"])
    assert approved["data"]["approveSuppression"]["status"] == "ACTIVE"
    await gql(INGEST, author, input=batch(tenant, [
        {"anomalyId": "benign", "summary": "vendored"},
        {"anomalyId": "critical", "summary": "vendored", "severity": "CRITICAL"},
        {"anomalyId": "always", "kind": "secret-leak"}]))
    decided = await decisions(gql, author)
    assert decided["before"] == ("PAGE", None)  # proposed rules silence nothing
    assert decided["benign"] == ("SUPPRESSED", rule["id"])
    assert decided["critical"] == ("PAGE", None)
    assert decided["always"] == ("PAGE", None)
    # the rule's life is announced through the outbox: proposed, then approved
    events = await outbox(services, since, [tenant])
    assert [(e.job_id, e.status) for e in events if e.topic == "suppression"] == [
        (rule["id"], "PROPOSED"), (rule["id"], "APPROVED")]


async def test_misuse_is_refused_and_writes_nothing(gql, make_token, tenant):
    token = await make_token(tenant)
    scope = {"kind": "sbom-delta"}
    no_end = await gql(PROPOSE, token, input={"scope": scope, "reason": "r"})
    assert codes(no_end) == ["BAD_USER_INPUT"]
    too_long = await gql(PROPOSE, token, input={"scope": scope, "reason": "r",
                                                "endsAt": ends(days=30)})
    assert codes(too_long) == ["BAD_USER_INPUT"]
    unscoped = await gql(PROPOSE, token, input={"scope": {}, "reason": "r", "endsAt": ends()})
    assert codes(unscoped) == ["BAD_USER_INPUT"]
    # too broad: every recent anomaly of the tenant is of this kind
    await gql(INGEST, token, input=batch(tenant, [{"anomalyId": f"b{n}"} for n in range(5)]))
    broad = await gql(PROPOSE, token, input={"scope": scope, "reason": "r", "endsAt": ends()})
    assert codes(broad) == ["BAD_USER_INPUT"] and "too broad" in broad["errors"][0]["message"]
    rules = await gql("query { suppressionRules { id } }", token)
    assert rules["data"]["suppressionRules"] == []
    other = await make_token(tenant + "-other")
    assert codes(await gql("query($t: String) { suppressionRules(tenant: $t) { id } }", other,
                           t=tenant)) == ["FORBIDDEN"]


async def test_extensions_stop_at_the_maximum(gql, make_token, tenant):
    token = await make_token(tenant)
    rule = (await gql(PROPOSE, token, input={"scope": {"fingerprint": "x:y"}, "reason": "r",
                                             "endsAt": ends()}))["data"]["proposeSuppression"]
    extend = "mutation($id: String!, $at: DateTime!) { extendSuppression(id: $id, endsAt: $at) { endsAt } }"
    assert "errors" not in await gql(extend, token, id=rule["id"], at=ends(days=10))
    assert codes(await gql(extend, token, id=rule["id"], at=ends(days=20))) == ["BAD_USER_INPUT"]


async def test_a_dry_run_shows_the_true_positives_a_rule_would_hide(gql, make_token, tenant):
    token = await make_token(tenant)
    await gql(INGEST, token, input=batch(tenant, [
        {"anomalyId": "looks-benign", "summary": "vendored"},
        {"anomalyId": "was-real", "summary": "vendored!"},
        {"anomalyId": "critical", "summary": "vendored", "severity": "CRITICAL"}]))
    label = "mutation($id: ID!) { labelAnomaly(id: $id, truePositive: true) { verdict } }"
    labelled = await gql(label, token, id=str(relay.GlobalID("Anomaly", f"{tenant}:was-real")))
    assert labelled["data"]["labelAnomaly"] == {"verdict": "TRUE_POSITIVE"}
    run = await gql("""query($s: SuppressionScopeInput!) {
      dryRunSuppression(scope: $s, days: 7) { examined matched truePositives guarded } }""",
                    token, s={"fingerprint": "sbom-delta:vendored", "fuzzyThreshold": 90})
    assert run["data"]["dryRunSuppression"] == {
        "examined": 3, "matched": ["looks-benign", "was-real"], "truePositives": ["was-real"],
        "guarded": 1}


async def test_rules_files_import_as_proposals_and_export(gql, make_token, tenant, services):
    token = await make_token(tenant)
    text = f"""
rules:
  - reason: known flaky config drift on canaries
    ends: "{ends()}"
    match: {{job: "canary-*", kind: config-drift}}
"""
    imported = await gql("mutation($y: String!) { importSuppressions(yaml: $y) { status } }",
                         token, y=text)
    assert imported["data"]["importSuppressions"] == [{"status": "PROPOSED"}]
    exported = (await gql("query { exportSuppressions }", token))["data"]["exportSuppressions"]
    assert "canary-*" in exported and "PROPOSED" in exported
    assert codes(await gql("mutation($y: String!) { importSuppressions(yaml: $y) { status } }",
                           token, y="rules: [1, 2")) == ["BAD_USER_INPUT"]


async def test_decisions_are_told_to_subscribers_and_webhooks(api, base_url, make_token,
                                                              tenant, services, gql):
    """Written to the outbox in the ingest's transaction: the API's subscriber hears them,
    and another process (the fixture's services) reads them as events of topic anomaly."""
    token = await make_token(tenant)
    heard: list[dict] = []
    async with subscription(
            base_url, token,
            "subscription { anomalyEvents(decisions: [PAGE]) { anomalyId decision } }") as ws:
        await until(lambda: api.services.events.subscriptions(tenant) == 1,
                    what="the subscription")
        before = iso(datetime.now(UTC) - timedelta(seconds=5))
        await gql(INGEST, token, input=batch(tenant, [
            {"anomalyId": "first", "summary": "7 packages changed"},
            {"anomalyId": "repeat", "summary": "8 packages changed"}]))
        async with asyncio.timeout(10.0):
            async for message in ws:
                frame = message.json()
                if frame["type"] == "next":
                    heard.append(frame["payload"]["data"]["anomalyEvents"])
                    break
    assert heard == [{"anomalyId": "first", "decision": "PAGE"}]  # the repeat: not a PAGE
    assert sorted((e.topic, e.job_id, e.status) for e in await outbox(services, before,
                                                                      [tenant])) == [
        ("anomaly", "first", "PAGE"), ("anomaly", "repeat", "DEDUPLICATED")]
    rule_change = Delivery("d", "w", tenant, "e2", "sr_1", "APPROVED",
                           "2026-12-07T10:00:00+00:00", "PENDING", 0, topic="suppression")
    assert payload(rule_change)["type"] == "suppression.approved"
    assert payload(rule_change)["ruleId"] == "sr_1"
    delivery = Delivery("d", "w", tenant, "e1", "first", "PAGE", "2026-12-07T10:00:00+00:00",
                        "PENDING", 0, topic="anomaly")
    assert payload(delivery) == {"id": "e1", "type": "anomaly.page", "tenant": tenant,
                                 "anomalyId": "first", "status": "PAGE",
                                 "at": "2026-12-07T10:00:00+00:00"}
