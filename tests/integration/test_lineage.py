"""Lineage from an anomaly to its root, neighbours, paths, blast radius and CSV export."""

import csv
import io

from strawberry import relay

from tests.helpers import anomaly_id, codes
from trustfabric.graph.queries import ingest as ingest_queries
from trustfabric.runtime.demo import _hex, digest

LINEAGE = """
query($id: ID!) {
  lineage(anomalyId: $id) {
    complete
    root { id __typename ... on Repo { url } }
    policyVersion { version }
    hops { position relation joins direction node { id __typename } }
  }
}
"""

FIRST_ANOMALIES = """
query($first: Int!, $after: String) {
  anomalies(first: $first, after: $after) {
    edges { cursor node { id anomalyId severity observedAt job { jobId } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_lineage_walks_anomaly_to_repo_in_order(gql, make_token, demo_tenant):
    token = await make_token(demo_tenant)
    result = await gql(LINEAGE, token, id=anomaly_id(demo_tenant, 1, 3, 0))
    assert "errors" not in result, result
    lineage = result["data"]["lineage"]
    kinds = [h["node"]["__typename"] for h in lineage["hops"]]
    assert kinds == ["Anomaly", "Job", "PolicyVersion", "Image", "Image", "Commit", "Repo"]
    # each hop names the edge to the node it joins: the policy version and the image hang
    # from the job, the commit from the image (not from its base), the repo points at it
    assert [(h["relation"], h["joins"], h["direction"]) for h in lineage["hops"]] == [
        ("START", None, None), ("OBSERVED_IN", 0, "FROM_JOINED"), ("UNDER", 1, "FROM_JOINED"),
        ("RAN", 1, "FROM_JOINED"), ("BASED_ON", 3, "FROM_JOINED"),
        ("BUILT_FROM", 3, "FROM_JOINED"), ("HAS_COMMIT", 5, "TO_JOINED")]
    assert [h["position"] for h in lineage["hops"]] == list(range(7))
    assert lineage["complete"] is True
    assert lineage["root"]["url"] == f"https://git.example.com/{demo_tenant}/service-1"
    assert lineage["policyVersion"]["version"] == "v2"


async def test_root_reached_in_five_round_trips_or_fewer(gql, make_token, demo_tenant):
    """The on-call path: list anomalies → open one's lineage → open the root. 3 requests."""
    token = await make_token(demo_tenant)
    trips = 0

    async def request(query, **variables):
        nonlocal trips
        trips += 1
        result = await gql(query, token, **variables)
        assert "errors" not in result, result
        return result["data"]

    page = await request(FIRST_ANOMALIES, first=5)
    first = page["anomalies"]["edges"][0]["node"]["id"]
    lineage = await request(LINEAGE, id=first)
    root_id = lineage["lineage"]["root"]["id"]
    root = await request("query($id: ID!) { node(id: $id) { __typename ... on Repo { url "
                         "commits { sha } } } }", id=root_id)
    assert root["node"]["__typename"] == "Repo"
    assert len(root["node"]["commits"]) == 6
    assert trips <= 5


async def test_anomalies_paginate_with_cursors(gql, make_token, demo_tenant):
    token = await make_token(demo_tenant)
    seen, times, after = [], [], None
    while True:
        data = (await gql(FIRST_ANOMALIES, token, first=3, after=after))["data"]["anomalies"]
        seen += [e["node"]["anomalyId"] for e in data["edges"]]
        times += [e["node"]["observedAt"] or "" for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 8  # every demo anomaly once, none twice
    assert times == sorted(times, reverse=True)  # newest first


async def test_neighbors_and_path(gql, make_token, demo_tenant):
    token = await make_token(demo_tenant)
    image = str(relay.GlobalID("Image", f"{demo_tenant}:{digest(demo_tenant, 0, 2)}"))
    repo = str(relay.GlobalID("Repo", f"{demo_tenant}:https://git.example.com/{demo_tenant}/service-0"))
    result = await gql("query($id: ID!) { neighbors(id: $id, depth: 1) { nodes { __typename } "
                       "edges { source type target } } }", token, id=image)
    types = sorted(n["__typename"] for n in result["data"]["neighbors"]["nodes"])
    # the image, its commit, its base image, and its build and deploy jobs
    assert types == ["Commit", "Image", "Image", "Job", "Job"]
    assert {e["type"] for e in result["data"]["neighbors"]["edges"]} == {"BUILT_FROM", "BASED_ON", "RAN"}

    result = await gql("query($a: ID!, $b: ID!) { path(from: $a, to: $b, maxHops: 4) "
                       "{ nodes { __typename } edges { type } } }", token, a=image, b=repo)
    path = result["data"]["path"]
    assert [n["__typename"] for n in path["nodes"]] == ["Image", "Commit", "Repo"]
    assert [e["type"] for e in path["edges"]] == ["BUILT_FROM", "HAS_COMMIT"]

    result = await gql("query($a: ID!, $b: ID!) { path(from: $a, to: $b, maxHops: 9) { nodes { id } } }",
                       token, a=image, b=repo)
    assert codes(result) == ["BAD_USER_INPUT"]


async def test_impact_of_a_commit_reaches_later_commits_images_jobs_and_open_anomalies(
    gql, make_token, demo_tenant
):
    token = await make_token(demo_tenant)
    sha = _hex(demo_tenant, 0, 2)  # commits 3, 4, 5 of service-0 descend from it
    result = await gql("query($sha: String!) { impact(commitSha: $sha) { tenants truncated "
                       "images { digest } jobs { jobId } openAnomalies { anomalyId status } } }",
                       token, sha=sha)
    impact = result["data"]["impact"]
    assert impact["tenants"] == [demo_tenant]
    assert {i["digest"] for i in impact["images"]} == {digest(demo_tenant, 0, c) for c in (2, 3, 4, 5)}
    assert len(impact["jobs"]) == 8
    # anomalies 0-3-0 and 0-5-1 are resolved, so only one is open
    assert {a["anomalyId"] for a in impact["openAnomalies"]} == {f"{demo_tenant}-anomaly-0-2-1"}
    assert all(a["status"] == "OPEN" for a in impact["openAnomalies"])
    assert impact["truncated"] is False


async def test_lineage_csv_export(http, make_token, demo_tenant):
    token = await make_token(demo_tenant)
    response = await http.get("/export/lineage.csv", params={"anomaly": anomaly_id(demo_tenant)},
                              headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["position", "relation", "joins", "direction", "kind", "id", "detail",
                       "decision"]
    assert [r[4] for r in rows[1:]] == ["Anomaly", "Job", "PolicyVersion", "Image", "Image",
                                        "Commit", "Repo"]
    assert [r[1:4] for r in rows[1:]] == [
        ["START", "", ""], ["OBSERVED_IN", "0", "FROM_JOINED"], ["UNDER", "1", "FROM_JOINED"],
        ["RAN", "1", "FROM_JOINED"], ["BASED_ON", "3", "FROM_JOINED"],
        ["BUILT_FROM", "3", "FROM_JOINED"], ["HAS_COMMIT", "5", "TO_JOINED"]]
    assert rows[3][4:7] == ["PolicyVersion", "v1", "promotion-gate"]  # names its policy
    # the anomaly's row says whether it paged; the other hops have no decision
    assert rows[1][7] in ("PAGE", "DEDUPLICATED") and {r[7] for r in rows[2:]} == {""}


async def test_anomaly_csv_export_quotes_commas_quotes_and_formulas(gql, http, make_token, tenant):
    token = await make_token(tenant)
    image = digest(tenant, "img")
    tricky = 'a, "quoted"\nsecond line'
    result = await gql(
        "mutation($input: IngestInput!) { ingest(input: $input) { anomalies } }", token,
        input={
            "builds": [{"imageDigest": image}],
            "jobRuns": [{"jobId": "j1", "kind": "BUILD", "status": "FAILED", "imageDigest": image}],
            "anomalies": [
                {"anomalyId": "a1", "jobId": "j1", "kind": "sbom-delta", "severity": "HIGH",
                 "summary": tricky},
                {"anomalyId": "a2", "jobId": "j1", "kind": "sbom-delta", "severity": "LOW",
                 "summary": "=HYPERLINK(\"http://evil\")"},
            ],
        },
    )
    assert "errors" not in result, result
    response = await http.get("/export/anomalies.csv",
                              headers={"authorization": f"Bearer {token}"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["anomalyId"] for r in rows] == ["a1", "a2"]
    assert rows[0]["summary"] == tricky
    assert rows[1]["summary"].startswith("'=")  # not evaluated by a spreadsheet
    assert [r["decision"] for r in rows] == ["PAGE", "PAGE"]  # the paging decision too

    response = await http.get("/export/anomalies.csv", params={"severity": "HIGH"},
                              headers={"authorization": f"Bearer {token}"})
    assert [r["anomalyId"] for r in csv.DictReader(io.StringIO(response.text))] == ["a1"]


async def test_lineage_survives_a_cycle_stored_before_cycles_were_refused(
    gql, make_token, services, tenant
):
    token = await make_token(tenant)
    a, b = digest(tenant, "a"), digest(tenant, "b")
    result = await gql(
        "mutation($input: IngestInput!) { ingest(input: $input) { anomalies } }", token,
        input={
            "builds": [{"imageDigest": b}, {"imageDigest": a, "baseImageDigests": [b]}],
            "jobRuns": [{"jobId": "j1", "kind": "BUILD", "status": "FAILED", "imageDigest": a}],
            "anomalies": [{"anomalyId": "a1", "jobId": "j1", "kind": "k", "severity": "LOW"}],
        },
    )
    assert "errors" not in result, result
    # b → a, written as an older version could have: a → b → a
    await services.executor.write(ingest_queries.LINKS["BASED_ON"], rows=[
        {"source": f"Image:{tenant}:{b}", "target": f"Image:{tenant}:{a}"}])
    anomaly = str(relay.GlobalID("Anomaly", f"{tenant}:a1"))
    lineage = (await gql(LINEAGE, token, id=anomaly))["data"]["lineage"]
    images = [h["node"]["id"] for h in lineage["hops"] if h["node"]["__typename"] == "Image"]
    assert len(images) == 2 and len(set(images)) == 2
    impact = await gql("query($id: ID!) { neighbors(id: $id, depth: 3) { nodes { id } } }",
                       token, id=images[0])
    assert "errors" not in impact, impact


async def test_lineage_and_anomalies_take_the_recorded_id(gql, http, make_token, services,
                                                           demo_tenant):
    token = await make_token(demo_tenant)
    readable = f"{demo_tenant}-anomaly-0-2-1"
    by_relay = await gql(LINEAGE, token, id=anomaly_id(demo_tenant, 0, 2, 1))
    by_readable = await gql(LINEAGE, token, id=readable)
    assert "errors" not in by_readable, by_readable
    assert by_readable == by_relay
    page = (await gql(
        "query($id: String) { anomalies(anomalyId: $id) { edges { node { id anomalyId } } } }",
        token, id=readable))["data"]["anomalies"]["edges"]
    assert [e["node"]["anomalyId"] for e in page] == [readable]
    response = await http.get("/export/lineage.csv", params={"anomaly": readable},
                              headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200 and readable in response.text
    # a recorded id is read in the caller's tenant: another tenant's is not found
    other = await make_token(f"{demo_tenant}x")
    assert codes(await gql(LINEAGE, other, id=readable)) == ["NOT_FOUND"]
    assert codes(await gql(LINEAGE, token, id="not an id!")) == ["BAD_USER_INPUT"]


ORDERED = """
query($order: AnomalyOrder, $after: String) {
  anomalies(first: 1, order: $order, after: $after) {
    edges { cursor node { anomalyId } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_anomalies_are_listed_newest_first_or_by_severity(gql, make_token, tenant):
    token = await make_token(tenant)
    image = digest(tenant, "img")
    seen = {"old-high": ("HIGH", "2026-01-01T00:00:00Z"), "new-low": ("LOW", "2026-03-01T00:00:00Z"),
            "mid-critical": ("CRITICAL", "2026-02-01T00:00:00Z"), "unseen-high": ("HIGH", None),
            "new-high": ("HIGH", "2026-03-01T00:00:00Z")}
    result = await gql(
        "mutation($input: IngestInput!) { ingest(input: $input) { anomalies } }", token,
        input={
            "builds": [{"imageDigest": image}],
            "jobRuns": [{"jobId": "j1", "kind": "BUILD", "status": "FAILED", "imageDigest": image}],
            "anomalies": [{"anomalyId": name, "jobId": "j1", "kind": "k", "severity": severity,
                           "observedAt": at} for name, (severity, at) in seen.items()],
        },
    )
    assert "errors" not in result, result

    async def listed(order: str | None) -> list[str]:
        names, after = [], None
        while True:  # one row a page: every cursor resumes exactly after its row
            page = (await gql(ORDERED, token, order=order, after=after))["data"]["anomalies"]
            names += [e["node"]["anomalyId"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return names
            after = page["pageInfo"]["endCursor"]

    newest = ["new-low", "new-high", "mid-critical", "old-high", "unseen-high"]
    assert await listed(None) == await listed("NEWEST") == newest
    assert await listed("SEVERITY") == [
        "mid-critical", "new-high", "old-high", "unseen-high", "new-low"]
    cursor = (await gql(ORDERED, token, order="NEWEST"))["data"]["anomalies"]["pageInfo"]
    other_order = await gql(ORDERED, token, order="SEVERITY", after=cursor["endCursor"])
    assert codes(other_order) == ["BAD_USER_INPUT"]


async def test_empty_answers_are_told_apart_from_mistakes(gql, http, make_token, demo_tenant):
    """An unknown or short sha, a path longer than maxHops and a bogus CSV filter all
    answered as if there were nothing there."""
    token = await make_token(demo_tenant)
    impact = "query($sha: String!) { impact(commitSha: $sha) { images { digest } } }"
    assert codes(await gql(impact, token, sha="f" * 40)) == ["NOT_FOUND"]
    short = await gql(impact, token, sha=_hex(demo_tenant, 0, 2)[:7])
    assert codes(short) == ["BAD_USER_INPUT"] and "40 or 64" in short["errors"][0]["message"]
    assert (await gql(impact, token, sha=_hex(demo_tenant, 0, 2).upper()))["data"]["impact"]

    image = str(relay.GlobalID("Image", f"{demo_tenant}:{digest(demo_tenant, 0, 2)}"))
    repo = str(relay.GlobalID("Repo", f"{demo_tenant}:https://git.example.com/{demo_tenant}/service-0"))
    result = await gql("query($a: ID!, $b: ID!) { path(from: $a, to: $b, maxHops: 1) "
                       "{ nodes { id } } }", token, a=image, b=repo)
    assert codes(result) == ["NOT_FOUND"]
    assert result["errors"][0]["extensions"]["shortestHops"] == 2
    assert "maxHops: 2" in result["errors"][0]["message"]

    auth = {"authorization": f"Bearer {token}"}
    for params in ({"severity": "BOGUS"}, {"status": "high"}):
        response = await http.get("/export/anomalies.csv", params=params, headers=auth)
        assert response.status_code == 400, params
        error = response.json()["error"]
        assert error["code"] == "BAD_USER_INPUT" and next(iter(params)) in error["message"]
    response = await http.get("/export/anomalies.csv", params={"severity": "HIGH",
                                                               "status": "OPEN"}, headers=auth)
    assert response.status_code == 200
