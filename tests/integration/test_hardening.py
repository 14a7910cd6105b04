"""Limits, error codes, probes, and a database outage that the service rides out."""

import asyncio
import gc
import logging
import time

import pytest
from graphql import GraphQLError

from tests.helpers import codes
from trustfabric.context import Context
from trustfabric.schema.extensions.execution import ExecutionContext


def nested(depth: int) -> str:
    inner = "id"
    for _ in range(depth):
        inner = f"job {{ image {{ jobs {{ {inner} }} }} }}"
    return "query { anomalies(first: 1) { edges { node { " + inner + " } } } }"


async def test_depth_alias_token_and_cost_limits(gql, make_token, tenant, settings):
    token = await make_token(tenant)
    assert "errors" not in await gql(nested(1), token)
    too_deep = await gql(nested(5), token)
    assert set(codes(too_deep)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert any("depth" in e["message"] for e in too_deep["errors"])

    aliases = " ".join(f"a{i}: anomalies {{ pageInfo {{ hasNextPage }} }}"
                       for i in range(settings.max_aliases + 1))
    assert "GRAPHQL_VALIDATION_FAILED" in codes(await gql("query { " + aliases + " }", token))

    long_query = "query { " + " ".join("__typename" for _ in range(settings.max_tokens)) + " }"
    assert codes(await gql(long_query, token))[0] in {"GRAPHQL_PARSE_FAILED",
                                                      "GRAPHQL_VALIDATION_FAILED"}

    costly = ("query { anomalies(first: 100) { edges { node { job { anomalies { job { anomalies"
              " { job { jobId } } } } } } } } }")
    result = await gql(costly, token)
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["extensions"]["cost"] > settings.max_query_cost


async def test_client_mistakes_get_codes(gql, make_token, tenant):
    token = await make_token(tenant)
    assert codes(await gql("query { anomalies {", token)) == ["GRAPHQL_PARSE_FAILED"]
    assert codes(await gql("query { nope }", token)) == ["GRAPHQL_VALIDATION_FAILED"]
    result = await gql("query($n: Int!) { anomalies(first: $n) { pageInfo { hasNextPage } } }",
                       token, n="many")
    assert codes(result) == ["BAD_USER_INPUT"]
    result = await gql("query { anomalies(first: 1000) { pageInfo { hasNextPage } } }", token)
    assert codes(result) == ["BAD_USER_INPUT"]


async def test_probes(http, gql, make_token, tenant):
    await gql("query { anomalies { pageInfo { hasNextPage } } }", await make_token(tenant))
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).json() == {"status": "ready"}
    metrics = (await http.get("/metrics")).text
    assert "tf_graph_statements_total" in metrics
    assert 'tf_graphql_requests_total{field="anomalies",outcome="ok"}' in metrics


@pytest.mark.timeout(180)
async def test_outage_fails_fast_with_unavailable_then_recovers(gql, http, make_token, embedded,
                                                               demo_tenant):
    token = await make_token(demo_tenant)
    query = "query { anomalies(first: 3) { edges { node { anomalyId } } } }"
    before = await gql(query, token)
    assert "errors" not in before

    await asyncio.to_thread(embedded.stop)
    try:
        started = time.monotonic()
        result = await gql(query, token)
        elapsed = time.monotonic() - started
        assert codes(result) == ["UNAVAILABLE"]
        assert "Traceback" not in str(result)
        # fails fast: bounded by the driver's connect and retry budget, not a hang
        assert elapsed < 10, elapsed
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert (await http.get("/healthz")).status_code == 200
    finally:
        await asyncio.to_thread(embedded.start)

    deadline = time.monotonic() + 60
    while True:  # recovers by itself: no restart of the API
        result = await gql(query, token)
        if "errors" not in result or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert result == before  # and nothing written before the outage was lost
    assert (await http.get("/readyz")).status_code == 200


async def test_rejected_variable_values_are_not_echoed(gql, make_token, tenant):
    token = await make_token(tenant)
    result = await gql("query($n: Int!) { anomalies(first: $n) { pageInfo { hasNextPage } } }",
                       token, n="secret-value-42")
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "secret-value-42" not in str(result)
    result = await gql("mutation($i: IngestInput!) { ingest(input: $i) { tenant } }", token,
                       i={"anomalies": [{"anomalyId": "a", "jobId": "j", "kind": "k",
                                         "severity": "secret-value-43"}]})
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "secret-value-43" not in str(result)
    assert "anomalies[0].severity" in result["errors"][0]["message"]


async def test_oversized_bodies_are_refused_before_they_are_read(http, settings, make_token,
                                                                 tenant):
    headers = {"content-type": "application/json",
               "authorization": f"Bearer {await make_token(tenant)}"}
    body = b'{"query": "' + b"x" * (settings.max_body_bytes + 1) + b'"}'
    response = await http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"

    async def chunks():  # no content-length: counted as it arrives
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    response = await http.post("/graphql", content=chunks(), headers=headers)
    assert response.status_code == 413


def blown_up(levels: int) -> str:
    """Under 1.2 KB; each fragment spreads the next twice: 2^levels selections expanded."""
    return "query Q { ...F0 } " + " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    ) + f" fragment F{levels} on Query {{ __typename }}"


@pytest.mark.timeout(20)
async def test_nested_fragment_spreads_are_refused_before_any_rule(http):
    """Each rule walked every spread again: 2.3 s at 18 levels, doubling per level, with
    the event loop held, so /healthz waited too. Now refused in milliseconds, no token."""
    await http.get("/healthz")  # the connection is open: only the requests are timed

    async def timed(request):
        started = time.perf_counter()
        response = await request
        return response, time.perf_counter() - started

    (refused, refused_s), (health, health_s) = await asyncio.gather(
        timed(http.post("/graphql", json={"query": blown_up(30)})),
        timed(http.get("/healthz")))
    assert refused.status_code == 200
    assert codes(refused.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "fragments" in refused.json()["errors"][0]["message"]
    assert health.json() == {"status": "ok"}
    assert refused_s < 0.1 and health_s < 0.1, (refused_s, health_s)


async def test_large_bodies_need_a_token_before_they_are_lexed(http, settings, make_token,
                                                              tenant):
    """A 15 MB string literal held the loop for 3 s, with no token: a body over the
    anonymous bound is refused unread unless its token verifies."""
    literal = b'{"query": "{ proofPublicKey(x: \\"' + b"x" * (
        settings.max_anonymous_body_bytes + 1) + b'\\") }"}'
    for authorization in ({}, {"authorization": "Bearer tf_not-a-token"}):
        response = await http.post("/graphql", content=literal, headers={
            "content-type": "application/json", **authorization})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"

    async def chunks():  # no content-length: refused once the bound is passed
        for _ in range(settings.max_anonymous_body_bytes // 4096 + 2):
            yield b" " * 4096

    response = await http.post("/graphql", content=chunks(),
                               headers={"content-type": "application/json"})
    assert response.status_code == 401

    token = await make_token(tenant)
    response = await http.post("/graphql", content=literal, headers={
        "content-type": "application/json", "authorization": f"Bearer {token}"})
    assert response.status_code == 200  # read and parsed: GraphQL answers it
    assert codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    small = await http.post("/graphql", json={"query": "{ proofPublicKey }"})
    assert "BEGIN PUBLIC KEY" in small.json()["data"]["proofPublicKey"]


async def test_malformed_global_ids_are_bad_user_input_and_not_logged(gql, make_token,
                                                                      tenant, caplog):
    """They were INTERNAL_SERVER_ERROR, logged with a traceback quoting the id: a newline
    in it forged a log line of its own."""
    token = await make_token(tenant)
    ids = ["abc", "a\x00b\nINFO forged line", "acme-anomaly-0-2-1"]
    with caplog.at_level(logging.DEBUG):
        for bad in ids:
            for query in ("query($id: ID!) { node(id: $id) { id } }",
                          "query($id: ID!) { neighbors(id: $id) { nodes { id } } }",
                          "query($id: ID!) { path(from: $id, to: $id) { nodes { id } } }"):
                result = await gql(query, token, id=bad)
                assert codes(result) == ["BAD_USER_INPUT"], (query, bad, result)
                assert bad not in result["errors"][0]["message"]
    logged = "".join(r.getMessage() + str(r.exc_info) for r in caplog.records
                     if r.name.startswith("trustfabric"))
    assert not any(bad in logged for bad in ids)


async def test_a_deeply_nested_json_body_is_a_coded_400(http, make_token, tenant):
    headers = {"content-type": "application/json",
               "authorization": f"Bearer {await make_token(tenant)}"}
    for body in (b'{"query": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", b'{"query": '):
        response = await http.post("/graphql", content=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BAD_USER_INPUT"


async def test_requests_leave_no_reference_cycles(gql, make_token, tenant):
    """What a request held is freed as it ends, answered or refused, and not left for the
    cyclic garbage collector: under load its collections took 8-14 % of the service's time."""
    token = await make_token(tenant)
    answered, refused = "{ datasets { id } }", '{ psiJob(id: "psi_none") { id } }'
    await gql(answered, token)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage to look at
    try:
        assert "errors" not in await gql(answered, token)
        assert codes(await gql(refused, token)) == ["NOT_FOUND"]
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage
                if isinstance(o, ExecutionContext | Context | GraphQLError)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


