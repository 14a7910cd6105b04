"""Policies as code through the API: versions checked before they are written, promotions
decided by the declared version and explained when denied, drift assessed, tenants
walled off."""

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from tests.helpers import codes, outbox, polled
from trustfabric.domain.audit import iso
from trustfabric.domain.auth import Role
from trustfabric.runtime.demo import digest, seed_demo_policies

INGEST = """
mutation($input: IngestInput!) { ingest(input: $input) { builds } }
"""
SUBMIT = """
mutation($input: SubmitPolicyVersionInput!) {
  submitPolicyVersion(input: $input) {
    definition { id policyId version hash rules { id mode } }
    hints { ruleId kind hint template }
  }
}
"""
SET_ENV = """
mutation($input: SetEnvironmentInput!) {
  setEnvironment(input: $input) { name declared deployed drifted }
}
"""
PROMOTE = """
mutation($input: PromoteInput!) {
  promote(input: $input) {
    id allowed to results { ruleId passed values }
    insight {
      cause decidingRule decidingFact baselinePromotion links { image commit baselineImage }
      constraints { ruleId values expected cause }
      ruleChanges { ruleId kind oldExpression newExpression }
      factChanges { fact old new }
      mitigations { rank ruleId action change }
    }
    insightMarkdown
  }
}
"""
SHA = "c" * 40

V1 = [{"id": "signed", "expression": "signed", "severity": "HIGH",
       "message": "sign the image", "template": "signature"},
      {"id": "criticals", "expression": "vulns_critical <= 2", "severity": "CRITICAL",
       "message": "no critical vulnerabilities", "template": "vulnerabilities"}]
V2 = [V1[0], {**V1[1], "expression": "vulns_critical <= 0"}]


async def record(gql, token, tenant: str, name: str, facts: dict) -> str:
    image = digest(tenant, name)
    result = await gql(INGEST, token, input={
        "builds": [{"imageDigest": image, "repoUrl": "https://git.example.com/t/svc",
                    "commitSha": SHA}],
        "snapshots": [{"imageDigest": image, "facts": facts}]})
    assert "errors" not in result, result
    return image


async def submit(gql, token, version: str, rules: list[dict]) -> dict:
    return await gql(SUBMIT, token, input={"policyId": "gate", "version": version,
                                           "rules": rules})


async def promote(gql, token, image: str, key: str) -> dict:
    result = await gql(PROMOTE, token, input={"image": image, "from": "staging", "to": "prod",
                                              "idempotencyKey": key})
    assert "errors" not in result, result
    return result["data"]["promote"]


async def test_a_denied_promotion_says_which_change_failed_it(gql, make_token, tenant):
    token = await make_token(tenant)
    assert "errors" not in await submit(gql, token, "v1", V1)
    assert "errors" not in await submit(gql, token, "v2", V2)
    env = await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate",
                                           "declared": "v1"})
    assert env["data"]["setEnvironment"]["declared"].endswith("gate@v1")
    passing = await record(gql, token, tenant, "one", {"signed": True, "vulns_critical": 1})
    first = await promote(gql, token, passing, "p1")
    assert first["allowed"] and first["insight"] is None
    # the policy tightens: the same facts now fail the changed rule, and only it
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "declared": "v2"})
    denied = await promote(gql, token, passing, "p2")
    assert not denied["allowed"]
    insight = denied["insight"]
    assert insight["cause"] == "POLICY_CHANGE" and insight["decidingRule"] == "criticals"
    assert insight["baselinePromotion"] == "p1"
    assert insight["constraints"] == [{"ruleId": "criticals", "values": {"vulns_critical": 1},
                                       "expected": {"vulns_critical": 0},
                                       "cause": "POLICY_CHANGE"}]
    assert insight["ruleChanges"] == [{"ruleId": "criticals", "kind": "CHANGED",
                                       "oldExpression": "vulns_critical <= 2",
                                       "newExpression": "vulns_critical <= 0"}]
    assert insight["mitigations"][0]["change"] == {"vulns_critical": 0}
    assert "criticals" in denied["insightMarkdown"]
    links = insight["links"]
    assert links["image"] == links["baselineImage"]  # the same image passed under v1
    node = await gql("query($id: ID!) { node(id: $id) { ... on Commit { sha } } }", token,
                     id=links["commit"])
    assert node["data"]["node"] == {"sha": SHA}
    # a later image of the same repository loses its signature: the data changed
    unsigned = await record(gql, token, tenant, "two", {"signed": False, "vulns_critical": 0})
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "declared": "v1"})
    data = (await promote(gql, token, unsigned, "p3"))["insight"]
    assert data["cause"] == "DATA_CHANGE" and data["decidingFact"] == "signed"
    assert {"fact": "signed", "old": True, "new": False} in data["factChanges"]
    # the same key again is the same promotion, whatever changed since
    assert (await promote(gql, token, passing, "p2"))["allowed"] is False
    # the image's promotions, newest first, as its lineage hop shows them
    listed = await gql("query($i: String!) { promotions(image: $i) { id allowed } }", token,
                       i=passing)
    assert listed["data"]["promotions"] == [{"id": "p2", "allowed": False},
                                            {"id": "p1", "allowed": True}]
    # its lineage walks past its promotions and snapshots: they have their own queries
    around = await gql("query($id: ID!) { neighbors(id: $id, depth: 2) { nodes { __typename } } }",
                       token, id=links["image"])
    assert "errors" not in around, around
    assert {n["__typename"] for n in around["data"]["neighbors"]["nodes"]} <= {
        "Image", "Commit", "Repo", "Job", "PolicyVersion", "Policy", "Anomaly"}


async def test_a_version_that_does_not_check_is_refused_with_hints(gql, make_token, tenant):
    token = await make_token(tenant)
    refused = await submit(gql, token, "v1", [
        {"id": "crit", "expression": "vuln_critical <= 0", "severity": "HIGH", "message": "m"},
        {"id": "syntax", "expression": "signed &&", "severity": "LOW", "message": "m"},
        {"id": "typed", "expression": 'vulns_high < "3"', "severity": "LOW", "message": "m"}])
    assert codes(refused) == ["BAD_USER_INPUT"]
    extensions = refused["errors"][0]["extensions"]
    kinds = {(p["path"], p["kind"]) for p in extensions["problems"]}
    assert kinds == {("rules.crit", "UNKNOWN_FACT"), ("rules.syntax", "SYNTAX"),
                     ("rules.typed", "TYPE")}
    assert any("vulns_critical" in h["hint"] for h in extensions["hints"])
    # nothing was written: the version can still be submitted, correctly
    assert "errors" not in await submit(gql, token, "v1", V1)
    # and it is immutable afterwards
    assert codes(await submit(gql, token, "v1", V2)) == ["BAD_USER_INPUT"]


async def test_drift_is_assessed_by_replaying_recent_decisions(gql, make_token, tenant,
                                                               services):
    token = await make_token(tenant)
    await submit(gql, token, "v1", V1)
    await submit(gql, token, "v2", V2)
    image = await record(gql, token, tenant, "one", {"signed": True, "vulns_critical": 1})
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "declared": "v1"})
    await promote(gql, token, image, "p1")
    # the deployed policy is v1 while v2 is declared: v2 would deny the recorded image
    env = await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate",
                                           "declared": "v2", "deployed": "v1"})
    assert env["data"]["setEnvironment"]["drifted"]
    drift = await gql("query { policyDrift { environment { name } risk reasons replayed "
                      "flips { before after } } }", token)
    [found] = drift["data"]["policyDrift"]
    assert found["risk"] == "HIGH" and found["replayed"] == 1
    assert found["flips"] == [{"before": True, "after": False}]
    # and the drift metric the PolicyDrifted alert reads counts it, until it is resolved
    await services.policy.report_drift()
    assert REGISTRY.get_sample_value("tf_policy_drifted_environments", {"tenant": tenant}) == 1
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "deployed": "v2"})
    await services.policy.report_drift()
    assert REGISTRY.get_sample_value("tf_policy_drifted_environments", {"tenant": tenant}) == 0


async def test_another_tenants_policies_are_out_of_reach(gql, make_token, tenant):
    token = await make_token(tenant)
    await submit(gql, token, "v1", V1)
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "declared": "v1"})
    image = await record(gql, token, tenant, "one", {"signed": True})
    await promote(gql, token, image, "p1")
    other = await make_token(tenant + "-other")
    assert codes(await gql("query { promotion(id: \"p1\") { id } }", other)) == ["NOT_FOUND"]
    assert codes(await gql("query($t: String) { environments(tenant: $t) { name } }", other,
                           t=tenant)) == ["FORBIDDEN"]
    crossing = await gql(PROMOTE, other, input={"image": image, "from": "staging", "to": "prod",
                                                "idempotencyKey": "x", "tenant": tenant})
    assert codes(crossing) == ["FORBIDDEN"]


PROPOSE = """
mutation($env: String!) {
  proposeDriftFix(environment: $env) { id status contentHash replayed patch }
}
"""
REVIEW = """
mutation($id: String!, $approve: Boolean!, $hash: String!) {
  reviewDriftProposal(id: $id, approve: $approve, contentHash: $hash) { status soakUntil reason }
}
"""


async def drifted(gql, token, tenant: str, declared: list[dict], facts: dict) -> str:
    """prod runs v1 (deployed) while `declared` is declared, after one promotion."""
    await submit(gql, token, "v1", V1)
    await submit(gql, token, "next", declared)
    image = await record(gql, token, tenant, "one", facts)
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "declared": "v1"})
    await promote(gql, token, image, "p1")
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "declared": "next",
                                     "deployed": "v1"})
    return image


async def test_low_risk_drift_merges_after_review_and_soak(gql, make_token, tenant, services):
    author = await make_token(tenant)
    reviewer = await make_token(tenant, Role.REVIEWER)
    reworded = [{**rule, "message": rule["message"] + " (see the runbook)"} for rule in V1]
    await drifted(gql, author, tenant, reworded, {"signed": True, "vulns_critical": 1})
    proposed = (await gql(PROPOSE, author, env="prod"))["data"]["proposeDriftFix"]
    assert proposed["status"] == "PROPOSED" and proposed["replayed"] == 1
    assert [change["op"] for change in proposed["patch"]] == ["replace", "replace"]
    ok = {"id": proposed["id"], "approve": True, "hash": proposed["contentHash"]}
    # refused, each with its code: the author, a member, another tenant, a changed patch
    assert codes(await gql(REVIEW, author, **ok)) == ["FORBIDDEN"]
    assert codes(await gql(REVIEW, await make_token(tenant), **ok)) == ["FORBIDDEN"]
    assert codes(await gql(REVIEW, await make_token(tenant + "-x", Role.REVIEWER), **ok)) == [
        "NOT_FOUND"]
    assert codes(await gql(REVIEW, reviewer, **{**ok, "hash": "sha256:" + "0" * 64})) == [
        "BAD_USER_INPUT"]
    approved = (await gql(REVIEW, reviewer, **ok))["data"]["reviewDriftProposal"]
    assert approved["status"] == "SOAKING"

    async def environment() -> dict:
        envs = await gql("query { environments { name declared deployed drifted } }", author)
        return envs["data"]["environments"][0]

    async def merged() -> bool:
        return not (await environment())["drifted"]

    await polled(merged, bool, seconds=20.0)
    assert (await environment())["deployed"].endswith("gate@next")
    refusals = await services.repos.audit.page(tenant, "", 100, "policy.proposal.review")
    assert sorted(e.outcome for e in refusals) == ["refused"] * 3 + ["soaking"]


async def test_a_decision_that_differs_in_the_soak_rolls_back(gql, make_token, tenant,
                                                               services):
    since = iso(datetime.now(UTC) - timedelta(seconds=5))
    author = await make_token(tenant)
    reviewer = await make_token(tenant, Role.REVIEWER)
    # tighter, and the one image recorded so far still passes it: LOW risk
    tighter = [V1[0], {**V1[1], "expression": "vulns_critical <= 1"}]
    await drifted(gql, author, tenant, tighter, {"signed": True, "vulns_critical": 1})
    proposed = (await gql(PROPOSE, author, env="prod"))["data"]["proposeDriftFix"]
    await gql(REVIEW, reviewer, id=proposed["id"], approve=True, hash=proposed["contentHash"])
    # a new image with 2 criticals: v1 lets it in, the declared version does not
    image = await record(gql, author, tenant, "two", {"signed": True, "vulns_critical": 2})
    await promote(gql, author, image, "p2")
    found = await gql("query { driftProposals { status reason } }", author)
    [proposal] = found["data"]["driftProposals"]
    assert proposal["status"] == "ROLLED_BACK" and "allowed True before" in proposal["reason"]
    events = await outbox(services, since, [tenant])
    assert [e.status for e in events if e.topic == "policy.proposal"] == [
        "PROPOSED", "SOAKING", "ROLLED_BACK"]  # announced, the rollback too


async def test_high_risk_drift_is_not_proposed(gql, make_token, tenant):
    token = await make_token(tenant)
    await drifted(gql, token, tenant, V2, {"signed": True, "vulns_critical": 1})
    refused = await gql(PROPOSE, token, env="prod")
    assert codes(refused) == ["BAD_USER_INPUT"]
    assert refused["errors"][0]["extensions"]["reasons"] == ["1 of 1 recent decisions would change"]


async def test_the_demo_shows_an_explained_denial_and_a_drift(gql, make_token, services,
                                                              demo_tenant):
    await seed_demo_policies(services.policy, (demo_tenant,))
    token = await make_token(demo_tenant)
    found = await gql('query { promotion(id: "demo-fail") { allowed insight { cause '
                      "decidingRule baselinePromotion } } policyDrift { environment { name } "
                      "risk } }", token)
    assert found["data"]["promotion"] == {"allowed": False, "insight": {
        "cause": "POLICY_CHANGE", "decidingRule": "criticals", "baselinePromotion": "demo-pass"}}
    assert [d["environment"]["name"] for d in found["data"]["policyDrift"]] == ["staging"]
    # the lineage's policy versions carry the rules: they are the same nodes
    lineage = await gql('query { environments { name declared } }', token)
    assert {e["name"] for e in lineage["data"]["environments"]} == {"staging", "prod"}


def snapshot_reads() -> float:
    return REGISTRY.get_sample_value("tf_graph_query_seconds_count",
                                     {"query": "policy.snapshots"}) or 0.0


async def test_a_page_of_denied_promotions_reads_the_snapshots_for_hints_once(
        gql, make_token, tenant):
    token = await make_token(tenant)
    await submit(gql, token, "v1", [*V1, {**V1[0], "id": "signed-audit", "mode": "AUDIT"}])
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "declared": "v1"})
    image = await record(gql, token, tenant, "many", {"signed": False})
    for n in range(4):
        assert not (await promote(gql, token, image, f"again-{n}"))["allowed"]
    before = snapshot_reads()
    found = await gql("query($image: String!) { promotions(image: $image) { allowed "
                      "hints { ruleId kind } } }", token, image=image)
    assert snapshot_reads() - before == 1  # not once a promotion
    assert len(found["data"]["promotions"]) == 4
    assert all({"ruleId": "signed-audit", "kind": "AUDIT_SHADOWED"} in p["hints"]
               for p in found["data"]["promotions"])


async def test_a_denied_promotion_comes_with_coaching_hints(gql, make_token, tenant):
    token = await make_token(tenant)
    # an audit copy of an enforced rule: shadowed, whatever the facts
    await submit(gql, token, "v1", [*V1, {**V1[0], "id": "signed-audit", "mode": "AUDIT"}])
    await gql(SET_ENV, token, input={"name": "prod", "policyId": "gate", "declared": "v1"})
    image = await record(gql, token, tenant, "one", {"signed": False})
    found = await gql(PROMOTE.replace("insightMarkdown", "insightMarkdown hints { ruleId kind }"),
                      token, input={"image": image, "from": "staging", "to": "prod",
                                    "idempotencyKey": "p1"})
    assert {"ruleId": "signed-audit", "kind": "AUDIT_SHADOWED"} in found["data"]["promote"]["hints"]
