"""Weighted fair queuing between tenants, and back-pressure that refuses early and drops
no accepted job."""

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from graphql import specified_rules

from tests.helpers import OPERATOR, codes, selectors
from trustfabric.app import GraphQLApp, create_app
from trustfabric.client.psi import PsiClient
from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.controls import Quota
from trustfabric.domain.fairness.load import LoadState
from trustfabric.domain.psi.backlog import Backlog
from trustfabric.domain.psi.protocol import Mode
from trustfabric.domain.psi.requests import MAX_SHED_RECORDS, OTHER_DATASETS
from trustfabric.errors import Unavailable
from trustfabric.schema import build_schema, validation_rules
from trustfabric.schema.extensions.metrics import REQUESTS
from trustfabric.web.middleware import ShedOverload

REQUEST = "mutation($input: RequestPsiInput!) { requestPsi(input: $input) { id } }"


async def allow(services, tenant: str, dataset: str, **changes) -> None:
    await services.controls.change(
        OPERATOR, lambda c: c.with_tenant(tenant, psi=True, psi_ca=True, scopes=(dataset,),
                                          **changes), f"tenant:{tenant}")


@contextmanager
def without_back_pressure(services) -> Iterator[None]:
    """Queues as deep as a test needs (back-pressure has its own tests)."""
    floor, services.load.min_queued = services.load.min_queued, 10_000
    try:
        yield
    finally:
        services.load.min_queued = floor


async def shed_records(services, tenant: str) -> list:
    """The tenant's audit records of shed requests, once the per-second count is written."""
    for _ in range(30):
        shed = [e for e in await services.repos.audit.page(tenant, "", 1000, "psi.request")
                if e.outcome == "refused"]
        if shed:
            return shed
        await asyncio.sleep(0.1)
    return []


async def wait_all_done(services, tenants: list[str]) -> list:
    for _ in range(600):
        jobs = [j for t in tenants for j in (await services.repos.jobs.page(t, None, 1000)).jobs]
        if all(j.status == "DONE" for j in jobs):
            return jobs
        await asyncio.sleep(0.1)
    raise AssertionError("jobs did not finish")


@pytest.mark.parametrize("handed_over", [False, True], ids=["from-graph", "handed-over"])
async def test_a_flooding_tenant_does_not_delay_light_tenants(services, worker, psi_pair,
                                                             settings, handed_over):
    """Whether the worker finds the jobs in the graph (accepted by another process) or is
    handed them in memory by its own process, the queue is shared fairly."""
    flood, dataset = psi_pair["tenant"], psi_pair["dataset"]
    lights = [f"{flood}-light{n}" for n in range(2)]
    await allow(services, flood, dataset, quota=Quota(100_000, 60, 100_000))
    for light in lights:
        await allow(services, light, dataset)
    request = PsiClient.prepare(selectors(4, 12), "PSI_CA").request

    async def submit(tenant: str, n: int) -> None:
        caller = Caller(token_id="t", tenant=tenant, role=Role.MEMBER)
        await services.psi.request(caller, dataset, Mode.PSI_CA, request, f"k{n}", None)

    await worker.stop()
    # the API process's hand-over to its own worker, put in place for this test
    services.psi._backlog = worker.worker._backlog = Backlog() if handed_over else None
    with without_back_pressure(services):
        try:
            for n in range(240):  # the flood is queued first ...
                await submit(flood, n)
            for light in lights:  # ... and the light tenants' jobs after all of it
                for n in range(5):
                    await submit(light, n)
        finally:
            worker.start()
        try:
            jobs = await wait_all_done(services, [flood, *lights])
        finally:
            services.psi._backlog = worker.worker._backlog = None
    assert {j.attempts for j in jobs} == {1}  # each claimed once, by id or from the graph
    # FIFO would claim them last, after 240 flood jobs; fair shares put them all in the
    # first batch claimed, beside the flood's part of it, while most of the flood waits
    first = min(j.started_at for j in jobs)
    first_batch = [j for j in jobs if j.started_at == first]
    assert {j.tenant for j in jobs if j.tenant != flood} == set(lights)
    assert all(j.started_at == first for j in jobs if j.tenant != flood)
    assert len(first_batch) <= settings.psi_batch_size


async def test_back_pressure_refuses_early_and_loses_no_accepted_job(
    base_url, gql, make_token, services, worker, psi_pair, settings
):
    tenant, dataset = psi_pair["tenant"], psi_pair["dataset"]
    await allow(services, tenant, dataset, quota=Quota(100_000, 60, 100_000))
    token = await make_token(tenant)
    request = PsiClient.prepare(selectors(4, 12), "PSI_CA").request
    await worker.stop()
    accepted, refused = [], []
    try:
        for n in range(400):
            result = await gql(REQUEST, token, input={
                "datasetId": dataset, "mode": "PSI_CA", "request": request,
                "idempotencyKey": f"bp{n}"})
            if codes(result) == ["UNAVAILABLE"]:
                refused.append(result["errors"][0]["extensions"])
                break
            assert "errors" not in result, result
            accepted.append(result["data"]["requestPsi"]["id"])
            if n % 20 == 0:
                await asyncio.sleep(0.6)  # the API looks at the queue twice a second
    finally:
        worker.start()
    assert refused and refused[0]["reason"] == "OVERLOADED" and refused[0]["retryAfterSeconds"]
    jobs = await wait_all_done(services, [tenant])
    # shed requests are audited as a count per second, not one record each
    shed = await shed_records(services, tenant)
    assert [e.details for e in shed] == [{"reason": "OVERLOADED", "mode": "PSI_CA",
                                          "count": len(refused)}]
    assert sorted(j.id for j in jobs) == sorted(accepted)  # every accepted job was served
    for n in range(100):  # and once the queue has drained, requests are admitted again
        result = await gql(REQUEST, token, input={
            "datasetId": dataset, "mode": "PSI_CA", "request": request,
            "idempotencyKey": f"after{n}"})
        if "errors" not in result:
            break
        await asyncio.sleep(0.1)
    assert "errors" not in result, result
    await wait_all_done(services, [tenant])


async def test_batches_of_large_requests_hold_fewer_jobs(services, worker, psi_pair, settings):
    """A batch holds at most `psi_batch_selectors` selectors, after the sizes of the requests
    claimed lately: a batch holds a sixth as many 100-selector requests as 16-selector ones
    (or it took six times as long to answer), and the queue's floor shrinks with it."""
    tenant, dataset = psi_pair["tenant"], psi_pair["dataset"]
    await allow(services, tenant, dataset, quota=Quota(100_000, 60, 100_000))
    request = PsiClient.prepare(selectors(50, 50)).request
    caller = Caller(token_id="t", tenant=tenant, role=Role.MEMBER)
    await worker.stop()
    sized = services.worker()
    try:
        with without_back_pressure(services):
            for n in range(settings.psi_batch_size + 2 * settings.psi_batch_selectors // 100):
                await services.psi.request(caller, dataset, Mode.PSI, request, f"big{n}", None)
            running = asyncio.create_task(sized.run(services.events.wake))
            try:
                jobs = await wait_all_done(services, [tenant])
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
            assert services.load.min_queued == settings.psi_batch_selectors // 100
    finally:
        await asyncio.to_thread(sized.close)
        worker.start()
    batches = Counter(job.started_at for job in jobs)
    sizes = [batches[started] for started in sorted(batches)]
    assert sizes[0] == settings.psi_batch_size  # before any request was measured
    assert max(sizes[1:]) == settings.psi_batch_selectors // 100


@contextmanager
def overloaded_by(services, flood: str) -> Iterator[None]:
    """A queue over budget (the event loop runs late) after `flood` took every admission."""
    # a view of the load of its own, for the middleware and the requests alike
    queue = services.load
    services.load = services.psi._load = LoadState(0.25, max_loop_lag_s=0.05)
    services.load.accepted(flood)
    services.load.loop_lag_s = 1.0
    try:
        yield
    finally:
        services.load = services.psi._load = queue


def with_state(app, services):
    """The app as uvicorn runs it after start-up: the lifespan's services in the scope."""
    async def asgi(scope, receive, send):
        await app({**scope, "state": {"services": services}}, receive, send)
    return asgi


def shedder(settings, app) -> ShedOverload:
    return ShedOverload(app, build_schema(settings)._schema,
                        [*specified_rules, *validation_rules(settings)], settings.max_tokens)


async def test_overload_sheds_psi_requests_before_graphql_with_the_same_answer(
    services, settings, worker, psi_pair, make_token, tenant
):
    """Under overload the middleware answers the flooding tenant's request as GraphQL would
    have (same status and body, and a Retry-After), without GraphQL running; another
    tenant's request reaches GraphQL, body and all, and is accepted; whatever GraphQL or
    the resolver would answer otherwise (no token, read-only, a bad key, invalid
    variables, too many aliases, a directive, another operation, an inline input, not
    JSON) goes on to them."""
    graphql, reached = GraphQLApp(build_schema(settings)), []

    async def behind(scope, receive, send):
        reached.append(scope["path"])
        await graphql(scope, receive, send)

    def client(app) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=with_state(app, services)),
                                 base_url="http://api")

    shedding, plain = client(shedder(settings, behind)), client(graphql)
    served = client(create_app(settings))  # the middleware where the app declares it
    flood, light = f"{tenant}-flood", psi_pair["tenant"]
    flood_token, light_token = await make_token(flood), await make_token(light)
    request = PsiClient.prepare(selectors(4, 12)).request

    def body(key: str, query: str = REQUEST, **given) -> dict:
        return {"query": query, "variables": {"input": {
            "datasetId": psi_pair["dataset"], "mode": "PSI", "request": request,
            "idempotencyKey": key, **given}}}

    async def post(http, token, payload, **headers) -> httpx.Response:
        if token:
            headers["authorization"] = f"Bearer {token}"
        if isinstance(payload, dict):
            return await http.post("/graphql", json=payload, headers=headers)
        return await http.post("/graphql", content=payload, headers=headers)

    def answered(outcome: str) -> float:
        return REQUESTS.labels("requestPsi", outcome)._value.get()

    with overloaded_by(services, flood):
        errors, refusals = answered("error"), answered("refused")
        early = await post(shedding, flood_token, body("k1"))
        assert reached == [] and early.headers["retry-after"] == "1"
        late = await post(plain, flood_token, body("k1"))
        # shed on purpose by either, so refused, not an error, in the request metrics
        assert (answered("error"), answered("refused")) == (errors, refusals + 2)
        assert early.status_code == late.status_code == 200
        assert early.json() == late.json()
        assert codes(early.json()) == ["UNAVAILABLE"]
        assert early.json()["errors"][0]["extensions"]["reason"] == "OVERLOADED"
        wired = await post(served, flood_token, body("k1"))
        assert wired.json() == late.json() and wired.headers["retry-after"] == "1"
        assert "retry-after" not in late.headers  # only the middleware answered `wired`

        accepted = await post(shedding, light_token, body("k2"))
        assert reached == ["/graphql"] and "errors" not in accepted.json(), accepted.json()

        auditor = await make_token(flood, Role.AUDITOR)
        literal = f'{{datasetId: "{psi_pair["dataset"]}", mode: PSI, request: "{request}", ' \
            'idempotencyKey: "k3"}'
        inline = f"mutation {{ requestPsi(input: {literal}) {{ id }} }}"
        aliased = REQUEST.replace("{ id }", "{ " + " ".join(f"a{n}: id" for n in range(40)) + " }")
        skipped = REQUEST.replace("(input: $input)", "(input: $input) @skip(if: true)")
        as_json = json.dumps(body("k3")).encode()
        for token, payload, headers, status, code in [
            (None, body("k3"), {}, 200, "UNAUTHENTICATED"),
            (auditor, body("k3"), {}, 200, "FORBIDDEN"),
            (flood_token, body("bad key!"), {}, 200, "BAD_USER_INPUT"),
            (flood_token, body("k3", mode="PSI_ALL"), {}, 200, "BAD_USER_INPUT"),
            (flood_token, body("k3", query=aliased), {}, 200, "GRAPHQL_VALIDATION_FAILED"),
            (flood_token, body("k3", query=skipped), {}, 200, None),
            (flood_token, body("k3", query="{ datasets { id } }"), {}, 200, None),
            (flood_token, {"query": inline}, {}, 200, "UNAVAILABLE"),
            (flood_token, {"query": "mutation {"}, {}, 200, "GRAPHQL_PARSE_FAILED"),
            (flood_token, {"query": REQUEST, "variables": [1]}, {}, 400, None),
            (flood_token, as_json, {"content-type": "text/plain"}, 400, None),
        ]:
            reached.clear()
            answer = await post(shedding, token, payload, **headers)
            assert reached == ["/graphql"], payload
            assert answer.status_code == status, answer.text
            if status == 200:
                assert codes(answer.json()) == ([code] if code else []), answer.json()
    await wait_all_done(services, [light])
    for http in (shedding, plain, served):
        await http.aclose()


async def test_a_request_whose_client_left_is_not_run(services, settings, make_token, tenant):
    """The middleware reads the body to decide; a client gone before its end is not
    answered, and the app behind never sees a request cut short as if it were whole."""
    reached = []

    async def behind(scope, receive, send):
        reached.append(scope["path"])

    token = await make_token(f"{tenant}-flood")
    app = with_state(shedder(settings, behind), services)
    messages = [{"type": "http.request", "body": b'{"query": "mutation { requestPsi',
                 "more_body": True}, {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": [
        (b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode())]}
    with overloaded_by(services, f"{tenant}-flood"):
        await app(scope, receive, send)
    assert reached == [] and sent == [] and messages == []


async def test_shed_requests_are_audited_in_few_records_whatever_datasets_they_name(
    services, tenant
):
    """Shedding is audited as counts a second; a caller varying the dataset id it names
    (checked only for its form) does not make it a record a request again."""
    flood = f"{tenant}-flood"
    caller = Caller(token_id="t1", tenant=flood, role=Role.MEMBER)
    with overloaded_by(services, flood):
        for n in range(MAX_SHED_RECORDS + 50):
            with pytest.raises(Unavailable):
                services.psi.shed(caller, f"p/d{n}", Mode.PSI)
    shed = await shed_records(services, flood)
    assert len(shed) <= MAX_SHED_RECORDS  # other tenants may hold some of the records
    assert sum(e.details["count"] for e in shed) == MAX_SHED_RECORDS + 50
    assert sorted(e.subject for e in shed if e.details["count"] > 1) == [OTHER_DATASETS]


