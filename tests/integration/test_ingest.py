"""Ingest: idempotent, batched in one transaction, validated before anything is written."""

from strawberry import relay

from tests.helpers import codes
from trustfabric.runtime.demo import digest

INGEST = """
mutation($input: IngestInput!, $tenant: String) {
  ingest(input: $input, tenant: $tenant) { tenant builds policyVersions jobRuns anomalies }
}
"""
COUNT = "query { anomalies(first: 100) { edges { node { anomalyId status job { jobId } } } } }"
SHA = "a" * 40


def batch(tenant: str, n: int = 1, job_image: str | None = None) -> dict:
    image = digest(tenant, "image")
    return {
        "builds": [{"imageDigest": image, "repoUrl": "https://git.example.com/x/y",
                    "commitSha": SHA, "imageRef": "registry/x:1"}],
        "policyVersions": [{"policyId": "gate", "version": "v1", "hash": digest("p")}],
        "jobRuns": [{"jobId": "job-1", "kind": "BUILD", "status": "RUNNING",
                     "imageDigest": job_image or image, "policyId": "gate", "policyVersion": "v1"}],
        "anomalies": [{"anomalyId": f"a-{i}", "jobId": "job-1", "kind": "sbom-delta",
                       "severity": "HIGH"} for i in range(n)],
    }


async def anomalies(gql, token) -> list[dict]:
    return [e["node"] for e in (await gql(COUNT, token))["data"]["anomalies"]["edges"]]


async def test_resending_a_batch_changes_nothing(gql, make_token, tenant):
    token = await make_token(tenant)
    first = await gql(INGEST, token, input=batch(tenant, 3))
    assert "errors" not in first, first
    assert first["data"]["ingest"] == {"tenant": tenant, "builds": 1, "policyVersions": 1,
                                       "jobRuns": 1, "anomalies": 3}
    before = await anomalies(gql, token)
    again = await gql(INGEST, token, input=batch(tenant, 3))
    assert "errors" not in again
    assert await anomalies(gql, token) == before
    lineage = await gql("query($id: ID!) { lineage(anomalyId: $id) { hops { relation } } }",
                        token, id=str(relay.GlobalID("Anomaly", f"{tenant}:a-0")))
    # one edge of each kind even after the second send
    assert [h["relation"] for h in lineage["data"]["lineage"]["hops"]] == [
        "START", "OBSERVED_IN", "UNDER", "RAN", "BUILT_FROM", "HAS_COMMIT"]


async def test_status_moves_on_when_resent(gql, make_token, tenant):
    token = await make_token(tenant)
    await gql(INGEST, token, input=batch(tenant))
    resolved = batch(tenant)
    resolved["anomalies"][0]["status"] = "RESOLVED"
    await gql(INGEST, token, input=resolved)
    assert [a["status"] for a in await anomalies(gql, token)] == ["RESOLVED"]
    await gql(INGEST, token, input=batch(tenant))  # the first event, delivered again late
    assert [a["status"] for a in await anomalies(gql, token)] == ["RESOLVED"]


async def test_hundreds_of_events_in_one_mutation(gql, make_token, tenant):
    token = await make_token(tenant)
    result = await gql(INGEST, token, input=batch(tenant, 500))
    assert result["data"]["ingest"]["anomalies"] == 500
    page = await gql("query { anomalies(first: 100) { pageInfo { hasNextPage } } }", token)
    assert page["data"]["anomalies"]["pageInfo"]["hasNextPage"] is True


async def test_unknown_reference_refuses_the_whole_batch(gql, make_token, tenant):
    token = await make_token(tenant)
    bad = batch(tenant, 2, job_image=digest("never-built"))
    result = await gql(INGEST, token, input=bad)
    assert codes(result) == ["BAD_USER_INPUT"]
    problems = result["errors"][0]["extensions"]["problems"]
    assert problems == [{"path": "jobRuns[0].imageDigest",
                         "message": "refers to something not recorded for this tenant"}]
    assert await anomalies(gql, token) == []  # the valid build in the batch was not written


async def test_malformed_digests_and_shas_are_listed(gql, make_token, tenant):
    token = await make_token(tenant)
    bad = batch(tenant)
    bad["builds"][0]["imageDigest"] = "sha256:XYZ"
    bad["builds"][0]["commitSha"] = "not-a-sha"
    bad["policyVersions"][0]["hash"] = "md5:abc"
    result = await gql(INGEST, token, input=bad)
    assert codes(result) == ["BAD_USER_INPUT"]
    paths = {p["path"] for p in result["errors"][0]["extensions"]["problems"]}
    assert {"builds[0].imageDigest", "builds[0].commitSha", "policyVersions[0].hash"} <= paths


async def test_oversize_and_empty_batches_are_refused(gql, make_token, tenant, settings):
    token = await make_token(tenant)
    result = await gql(INGEST, token, input=batch(tenant, settings.max_ingest_events))
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "at most" in result["errors"][0]["message"]
    assert codes(await gql(INGEST, token, input={})) == ["BAD_USER_INPUT"]
    assert await anomalies(gql, token) == []


async def test_a_conflicting_resend_is_refused(gql, make_token, tenant):
    token = await make_token(tenant)
    await gql(INGEST, token, input=batch(tenant))
    other_image = digest(tenant, "other")
    conflicting = batch(tenant)
    conflicting["builds"].append({"imageDigest": other_image})
    conflicting["jobRuns"][0]["imageDigest"] = other_image
    result = await gql(INGEST, token, input=conflicting)
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "different RAN" in result["errors"][0]["message"]


async def test_duplicate_ids_in_a_batch_are_refused(gql, make_token, tenant):
    token = await make_token(tenant)
    dup = batch(tenant)
    dup["anomalies"].append(dict(dup["anomalies"][0]))
    result = await gql(INGEST, token, input=dup)
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["extensions"]["problems"][0]["path"] == "anomalies[1].anomalyId"


REPO = "query($id: ID!) { node(id: $id) { ... on Commit { repo { url } } } }"


async def test_a_resend_naming_another_repo_is_refused(gql, make_token, tenant):
    token = await make_token(tenant)
    assert "errors" not in await gql(INGEST, token, input=batch(tenant))
    moved = batch(tenant)
    moved["builds"][0]["repoUrl"] = "https://attacker.example.com/x/y"
    result = await gql(INGEST, token, input=moved)
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "different HAS_COMMIT source" in result["errors"][0]["message"]
    # the same within one batch: a second build of the commit naming another repo
    build = {"commitSha": "b" * 40, "repoUrl": "https://git.example.com/x/y"}
    fresh = {"builds": [{**build, "imageDigest": digest(tenant, "image2")},
                        {**build, "imageDigest": digest(tenant, "image3"),
                         "repoUrl": "https://attacker.example.com/x/y"}]}
    result = await gql(INGEST, token, input=fresh)
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["extensions"]["problems"][0]["path"] == "builds[1].repoUrl"
    commit = str(relay.GlobalID("Commit", f"{tenant}:{SHA}"))
    node = (await gql(REPO, token, id=commit))["data"]["node"]
    assert node == {"repo": {"url": "https://git.example.com/x/y"}}


async def test_base_images_cannot_form_a_cycle(gql, make_token, tenant):
    token = await make_token(tenant)
    a, b, c = (digest(tenant, name) for name in ("a", "b", "c"))
    chain = {"builds": [{"imageDigest": a}, {"imageDigest": b, "baseImageDigests": [a]},
                        {"imageDigest": c, "baseImageDigests": [b]}]}
    assert "errors" not in await gql(INGEST, token, input=chain)
    for closing in (
        {"builds": [{"imageDigest": a, "baseImageDigests": [c]}]},  # against the graph
        {"builds": [{"imageDigest": a, "baseImageDigests": [b]}]},
    ):
        result = await gql(INGEST, token, input=closing)
        assert codes(result) == ["BAD_USER_INPUT"], result
        assert "cycle" in result["errors"][0]["message"]
    d, e = digest(tenant, "d"), digest(tenant, "e")  # within one batch
    result = await gql(INGEST, token, input={"builds": [
        {"imageDigest": d, "baseImageDigests": [e]}, {"imageDigest": e, "baseImageDigests": [d]}]})
    assert codes(result) == ["BAD_USER_INPUT"] and "cycle" in result["errors"][0]["message"]
    # a diamond is no cycle
    result = await gql(INGEST, token, input={"builds": [
        {"imageDigest": d, "baseImageDigests": [b, c]}]})
    assert "errors" not in result, result
