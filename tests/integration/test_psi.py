"""PSI and PSI-CA end to end, with real OpenMined clients, a real worker pool and real
signatures; refusals that leave no partial records; idempotency."""

import asyncio
import base64

import pytest

from tests.helpers import OPERATOR, codes, raw_job, selectors
from trustfabric.client.psi import PsiClient, PsiError
from trustfabric.domain.auth import Role
from trustfabric.domain.psi.worker import lease_until
from trustfabric.errors import NotFound
from trustfabric.resolvers import psi as psi_resolvers

JOBS = "query { psiJobs(first: 100) { edges { node { id status } } } }"


async def jobs_of(gql, token) -> list[dict]:
    return [e["node"] for e in (await gql(JOBS, token))["data"]["psiJobs"]["edges"]]


@pytest.mark.parametrize(("shared", "own"), [(0, 16), (5, 11), (16, 0), (60, 40)])
async def test_intersection_and_cardinality_equal_the_true_ones(client, psi_pair, shared, own):
    mine = selectors(shared, own)
    truth = sorted(set(mine) & set(psi_pair["items"]))
    assert sorted(await client.intersect(psi_pair["dataset"], mine)) == truth
    assert await client.cardinality(psi_pair["dataset"], mine) == len(truth)


async def test_same_idempotency_key_same_job_different_payload_refused(client, gql, make_token,
                                                                       psi_pair):
    setup_id, _ = await client.setup(psi_pair["dataset"])
    prepared = client.prepare(selectors(3, 13))
    first = await client.submit(psi_pair["dataset"], prepared, setup_id, "order-42")
    again = await client.submit(psi_pair["dataset"], prepared, setup_id, "order-42")
    assert again["id"] == first["id"]
    other = client.prepare(selectors(4, 12))
    with pytest.raises(PsiError) as refused:
        await client.submit(psi_pair["dataset"], other, setup_id, "order-42")
    assert refused.value.code == "BAD_USER_INPUT"
    await client.wait(first["id"])
    token = await make_token(psi_pair["tenant"])
    assert [j["id"] for j in await jobs_of(gql, token)] == [first["id"]]


async def test_same_idempotency_key_twice_in_one_write_is_one_job(services, tenant):
    """Two requests under one key in the same batch: the first creates the job, the second
    is told it found it (so its payload is compared, as a later retry's would be)."""
    first, second = (raw_job(tenant, "order-43", id=f"psi_order43_{n}_{tenant}")
                     for n in (1, 2))
    results = await services.repos.jobs.create_many([first, second])
    assert [created for _, created in results] == [True, False]
    assert {job.id for job, _ in results} == {first.props["id"]}
    assert results[0][0].status == "QUEUED" and results[0][0].request is None
    assert (await services.repos.jobs.get(first.props["id"], tenant)).id == first.props["id"]
    with pytest.raises(NotFound):
        await services.repos.jobs.get(second.props["id"], tenant)


def corrupt(request: str, how: str) -> str:
    raw = base64.b64decode(request)
    if how == "truncated":
        return base64.b64encode(raw[: len(raw) // 2]).decode()
    if how == "garbage":
        return base64.b64encode(b"\x0a\x05hello" + raw[7:]).decode()
    return "not base64 !!"


@pytest.mark.parametrize("how", ["truncated", "garbage", "not-base64"])
async def test_malformed_requests_are_refused(client, gql, make_token, psi_pair, how):
    prepared = client.prepare(selectors(2, 14))
    bad = type(prepared)(prepared.mode, prepared.client, corrupt(prepared.request, how))
    with pytest.raises(PsiError) as refused:
        await client.submit(psi_pair["dataset"], bad)
    assert refused.value.code == "BAD_USER_INPUT"
    assert await jobs_of(gql, await make_token(psi_pair["tenant"])) == []  # no partial record


async def test_size_and_mode_bounds(client, gql, make_token, psi_pair):
    with pytest.raises(PsiError) as refused:  # probing with a tiny request
        await client.submit(psi_pair["dataset"], client.prepare(selectors(1, 2)))
    assert refused.value.code == "BAD_USER_INPUT" and "at least" in str(refused.value)
    with pytest.raises(PsiError) as refused:
        await client.submit(psi_pair["dataset"], client.prepare(selectors(600, 500)))
    assert refused.value.code == "BAD_USER_INPUT" and "at most" in str(refused.value)
    prepared = client.prepare(selectors(4, 12), "PSI")
    with pytest.raises(PsiError) as refused:  # a PSI client's request sent as PSI-CA
        await client.submit(psi_pair["dataset"], type(prepared)("PSI_CA", prepared.client,
                                                                prepared.request))
    assert refused.value.code == "BAD_USER_INPUT"
    assert await jobs_of(gql, await make_token(psi_pair["tenant"])) == []


async def test_stale_setup_is_refused_after_a_new_version(client, services, psi_pair):
    setup_id, _ = await client.setup(psi_pair["dataset"])
    await services.datasets.upload_version(OPERATOR, psi_pair["dataset"], psi_pair["items"][:-1])
    with pytest.raises(PsiError) as refused:
        await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13)), setup_id)
    assert "stale" in str(refused.value)
    fresh_id, _ = await client.setup(psi_pair["dataset"])
    assert fresh_id != setup_id


async def test_controls_refuse_with_their_reason(client, gql, make_token, services, psi_pair):
    tenant, dataset = psi_pair["tenant"], psi_pair["dataset"]
    request = client.prepare(selectors(4, 12))
    other = await services.datasets.register(OPERATOR, psi_pair["partner"], "other",
                                                ["a", "b", "c"])
    with pytest.raises(PsiError, match="outside") as refused:
        await client.submit(other.id, request)
    assert refused.value.code == "FORBIDDEN"

    await services.controls.change(OPERATOR, lambda c: c.with_tenant(tenant, psi=False),
                                       "test")
    with pytest.raises(PsiError, match="not enabled") as refused:
        await client.submit(dataset, request)
    assert refused.value.code == "FORBIDDEN"
    await client.cardinality(dataset, selectors(4, 12))  # PSI-CA is still on

    await services.controls.set_opt_out(OPERATOR, psi_pair["partner"], True)
    with pytest.raises(PsiError, match="opted out") as refused:
        await client.submit(dataset, client.prepare(selectors(4, 12), "PSI_CA"))
    assert refused.value.code == "FORBIDDEN"
    await services.controls.set_opt_out(OPERATOR, psi_pair["partner"], False)
    # only the PSI-CA run left a job: the three refusals wrote none
    assert [j["status"] for j in await jobs_of(gql, await make_token(tenant))] == ["DONE"]

    auditor = await make_token(tenant, role=Role.AUDITOR)
    page = await gql("query { auditEvents(first: 100) { events { action outcome details } } }",
                     auditor)
    events = page["data"]["auditEvents"]["events"]
    refusals = [e for e in events if e["outcome"] == "refused"]
    assert {e["details"]["reason"] for e in refusals} == {"FORBIDDEN"}
    assert len(refusals) == 3
    # the one run is audited with its commitments, once
    [run] = [e for e in events if e["action"] == "psi.run"]
    assert run["outcome"] == "done" and run["details"]["responseCommitment"]
    assert not any("request" in k and k != "requestSize" and k != "requestCommitment"
                   for e in events for k in e["details"])


async def test_opting_out_cancels_pending_jobs(services, worker, psi_pair, make_token, gql):
    tenant = psi_pair["tenant"]
    prepared = PsiClient.prepare(selectors(4, 12))
    jobs = []
    await worker.stop()  # this process's worker leaves the jobs alone
    try:
        for n in range(2):
            [(job, _)] = await services.repos.jobs.create_many([raw_job(
                tenant, f"optout{n}", partner=psi_pair["partner"],
                datasetId=psi_pair["dataset"], request=prepared.request)])
            jobs.append(job)
        # one stays queued, the other runs on a worker elsewhere
        await services.repos.jobs.claim("elsewhere", {}, lease_until(600), ids=[jobs[1].id])
        await services.controls.set_opt_out(OPERATOR, tenant, True)
        await services.controls.set_opt_out(OPERATOR, tenant, False)
    finally:
        worker.start()
    token = await make_token(tenant)
    for job in jobs:
        result = await gql("query($id: ID!) { psiJob(id: $id) { status error { code } } }",
                           token, id=job.id)
        assert result["data"]["psiJob"] == {"status": "CANCELLED",
                                            "error": {"code": "FORBIDDEN"}}
    # nothing of theirs is left to claim
    assert await services.repos.jobs.claim("elsewhere", {tenant: 10}, lease_until(600)) == []


async def test_a_job_carries_the_setup_of_its_own_version(client, gql, make_token, services,
                                                         psi_pair):
    import private_set_intersection.python as psi

    mine = selectors(5, 11)
    setup_id, _ = await client.setup(psi_pair["dataset"])
    prepared = client.prepare(mine)
    job = await client.submit(psi_pair["dataset"], prepared, setup_id)
    await client.wait(job["id"])
    # the partner moves on: a new version, without the first shared selector
    await services.datasets.upload_version(OPERATOR, psi_pair["dataset"], psi_pair["items"][1:])

    token = await make_token(psi_pair["tenant"])
    read = (await gql("query($id: ID!) { psiJob(id: $id) { setupId response "
                      "setup { setupId setup } } }", token, id=job["id"]))["data"]["psiJob"]
    assert read["setupId"] == read["setup"]["setupId"] == setup_id
    setup, response = psi.ServerSetup(), psi.Response()
    setup.ParseFromString(base64.b64decode(read["setup"]["setup"]))
    response.ParseFromString(base64.b64decode(read["response"]))
    found = sorted(mine[i] for i in prepared.client.GetIntersection(setup, response))
    assert found == sorted(set(mine) & set(psi_pair["items"]))  # as of the job's version
    auditor = await make_token(psi_pair["tenant"], Role.AUDITOR)
    seen = (await gql("query($id: ID!) { psiJob(id: $id) { response setup { setupId } } }",
                      auditor, id=job["id"]))["data"]["psiJob"]
    assert seen == {"response": None, "setup": None}


async def test_registration_is_whole_or_nothing(gql, make_token, tenant):
    token = await make_token(tenant)
    register = ("mutation($items: [String!]!) { registerDataset(name: \"list\", items: $items) "
                "{ id version hash size } }")
    assert codes(await gql(register, token, items=[])) == ["BAD_USER_INPUT"]
    listed = await gql("query { datasets { id } }", token)
    assert listed["data"]["datasets"] == []  # the refused registration left nothing
    created = (await gql(register, token, items=["a", "b", "a"]))["data"]["registerDataset"]
    assert created["id"] == f"{tenant}/list" and created["version"] == 1
    assert created["size"] == 2 and created["hash"].startswith("sha256:")
    assert codes(await gql(register, token, items=["c"])) == ["BAD_USER_INPUT"]  # taken


async def test_a_retry_gets_its_job_even_when_a_new_request_would_be_refused(
    client, services, psi_pair
):
    from trustfabric.domain.controls import Quota

    prepared = client.prepare(selectors(3, 13), "PSI_CA")
    first = await client.submit(psi_pair["dataset"], prepared, idempotency_key="retry-me")
    await services.controls.change(  # the quota is now spent, and PSI-CA switched off
        OPERATOR, lambda c: c.with_tenant(psi_pair["tenant"], psi_ca=False,
                                          quota=Quota(1, 60, 1)), "test")
    again = await client.submit(psi_pair["dataset"], prepared, idempotency_key="retry-me")
    assert again["id"] == first["id"]
    with pytest.raises(PsiError) as refused:  # same key, same bytes, other dataset
        await client.submit(psi_pair["dataset"] + "x", prepared, idempotency_key="retry-me")
    assert refused.value.code == "BAD_USER_INPUT"


async def test_concurrent_requests_share_transactions_and_each_gets_its_own_job(
    services, psi_pair
):
    from prometheus_client import REGISTRY

    from trustfabric.domain.auth import Caller, Role
    from trustfabric.domain.psi.protocol import Mode

    caller = Caller(token_id="t", tenant=psi_pair["tenant"], role=Role.MEMBER)
    request = PsiClient.prepare(selectors(3, 13), "PSI_CA").request

    def writes() -> float:
        return REGISTRY.get_sample_value("tf_graph_query_seconds_count",
                                         {"query": "psi.create_jobs"}) or 0.0

    before = writes()
    jobs = await asyncio.gather(*(
        services.psi.request(caller, psi_pair["dataset"], Mode.PSI_CA, request, f"g{n}", None)
        for n in range(30)))
    again = await services.psi.request(caller, psi_pair["dataset"], Mode.PSI_CA, request,
                                       "g7", None)
    assert len({job.id for job in jobs}) == 30 and again.id == jobs[7].id
    assert writes() - before < 30  # group commit: fewer transactions than jobs


PAGED_JOBS = """
query($after: String) {
  psiJobs(first: 2, after: $after) {
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
    jobs { id } endCursor hasNextPage
  }
}
"""


async def test_psi_jobs_is_a_connection_newest_first(gql, make_token, services, tenant):
    created = [f"2026-01-0{n}T00:00:00+00:00" for n in (1, 2, 3)]
    for n, at in enumerate(created):
        await services.repos.jobs.create_many([raw_job(tenant, f"page{n}", createdAt=at)])
    token = await make_token(tenant)
    first = (await gql(PAGED_JOBS, token))["data"]["psiJobs"]
    assert [e["node"]["id"] for e in first["edges"]] == [
        f"psi_page{n}_{tenant}" for n in (2, 1)]
    assert first["pageInfo"] == {"hasNextPage": True, "endCursor": first["edges"][-1]["cursor"]}
    # the shape before connections, kept one release
    assert first["jobs"] == [e["node"] for e in first["edges"]]
    assert (first["endCursor"], first["hasNextPage"]) == (first["pageInfo"]["endCursor"], True)
    rest = (await gql(PAGED_JOBS, token, after=first["pageInfo"]["endCursor"]))["data"]["psiJobs"]
    assert [e["node"]["id"] for e in rest["edges"]] == [f"psi_page0_{tenant}"]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_jobs_created_in_one_microsecond_are_each_paged_once(gql, make_token, services,
                                                                    tenant):
    """Pages go on from their last job, not its creation time, so jobs created at once are
    neither skipped nor repeated; a cursor of an earlier version (a bare creation time)
    passes every job created then, as it did."""
    at = "2026-01-02T00:00:00.000001+00:00"
    keys = [("a", "2026-01-03T00:00:00.000000+00:00"), *((f"t{n}", at) for n in range(5)),
            ("z", "2026-01-01T00:00:00.000000+00:00")]
    for key, created in keys:
        await services.repos.jobs.create_many([raw_job(tenant, key, createdAt=created)])
    await services.repos.jobs.create_many([raw_job(tenant + "x", "a", createdAt=at)])
    token = await make_token(tenant)
    seen, after = [], None
    while True:
        page = (await gql(PAGED_JOBS, token, after=after))["data"]["psiJobs"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    tied = sorted(f"psi_t{n}_{tenant}" for n in range(5))
    assert seen == [f"psi_a_{tenant}", *tied, f"psi_z_{tenant}"]
    legacy = base64.urlsafe_b64encode(at.encode()).decode()
    rest = (await gql(PAGED_JOBS, token, after=legacy))["data"]["psiJobs"]
    assert [e["node"]["id"] for e in rest["edges"]] == [f"psi_z_{tenant}"]


FILTERED_JOBS = """
query($after: String) {
  psiJobs(first: 2, after: $after, status: CANCELLED) {
    edges { node { id } } pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_a_page_filtered_by_status_looks_at_a_bounded_number_of_jobs(
        gql, make_token, services, tenant, monkeypatch):
    """A status few jobs have is not looked for through the tenant's whole history: a page
    looks at so many jobs, shows those it found, and goes on after the last it looked at."""
    monkeypatch.setattr(psi_resolvers, "MAX_EXAMINED", 3)
    for n, status in enumerate(["DONE", "CANCELLED", "DONE", "DONE", "DONE", "CANCELLED",
                                "DONE"]):
        await services.repos.jobs.create_many([raw_job(
            tenant, f"j{n}", createdAt=f"2026-01-01T00:00:0{n}.000000+00:00", status=status)])
    token = await make_token(tenant)
    pages, after = [], None
    while True:
        page = (await gql(FILTERED_JOBS, token, after=after))["data"]["psiJobs"]
        pages.append([e["node"]["id"].split("_")[1] for e in page["edges"]])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == [["j5"], ["j1"], []]  # looked at j6-j4, j3-j1, then j0


async def test_a_filtered_page_looks_at_its_own_tenants_jobs_only(services, tenant):
    """A tenant named before names were checked may hold "|", and its jobs' keys then sort
    inside another tenant's range: the bound counts and names only the tenant's own."""
    neighbour = f"{tenant}|-x"  # "-" sorts before digits: its keys before the tenant's
    for who in (neighbour, tenant):
        for n in range(3):
            await services.repos.jobs.create_many([raw_job(
                who, f"f{n}", createdAt=f"2026-01-01T00:00:0{n}.000000+00:00",
                status="CANCELLED" if n == 0 else "DONE")])
    page = await services.repos.jobs.page(tenant, None, 2, "CANCELLED", 2)
    assert page.jobs == [] and page.resume is not None  # looked at f2, f1: its own
    rest = await services.repos.jobs.page(tenant, page.resume, 2, "CANCELLED", 2)
    assert [job.id for job in rest.jobs] == [f"psi_f0_{tenant}"] and rest.resume is None
    theirs = await services.repos.jobs.page(neighbour, None, 5, "CANCELLED", 2)
    assert [job.id for job in theirs.jobs] == []
