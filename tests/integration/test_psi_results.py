"""What a finished PSI job leaves: its response and signed bundle in packs outside the
graph, read back checked against the hashes the graph keeps, retired after the window;
results earlier versions kept in the graph moved out on start."""

import base64
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.helpers import codes, raw_job, selectors
from trustfabric.domain.audit import iso
from trustfabric.domain.psi.bundles import load_public_key, verify_file
from trustfabric.domain.psi.results import PACK_GRACE_S
from trustfabric.graph.cypher import Cypher

JOB_NODE = Cypher("test.job_node", "MATCH (j:PsiJob {id: $id}) RETURN j {.*} AS job")
BUNDLE_NODES = Cypher("test.bundle_nodes",
                      "MATCH (b:ProofBundle {jobId: $id}) RETURN count(b) AS n")
# A finished job as versions before 0017 wrote it: the response on the job, the signed
# envelope on a ProofBundle node.
LEGACY_RESULT = Cypher("test.legacy_result", """
    MATCH (j:PsiJob {id: $id})
    SET j.status = 'DONE', j.response = $response, j.responseCommitment = $commitment,
        j.bundleId = $bundleId
    CREATE (:ProofBundle {jobId: j.id, id: $bundleId, tenant: j.tenant, envelope: $envelope})
""")
ORPHAN_BUNDLE = Cypher("test.orphan_bundle",
                       "CREATE (:ProofBundle {jobId: $id, id: 'x', envelope: $envelope})")
RESULT = ("query($id: ID!) { psiJob(id: $id) { status response } "
          "proofBundle(jobId: $id) { id envelope } }")


def pack_of(settings, ref: str) -> Path:
    return settings.data_dir / "results" / ref.split(":")[0]


async def finished_job(client, gql, make_token, psi_pair) -> tuple[str, str]:
    setup_id, _ = await client.setup(psi_pair["dataset"])
    job = await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 5)), setup_id)
    await client.wait(job["id"])
    return job["id"], await make_token(psi_pair["tenant"])


async def test_a_finished_jobs_results_live_outside_the_graph(
        services, settings, client, gql, make_token, psi_pair):
    job_id, token = await finished_job(client, gql, make_token, psi_pair)
    [row] = await services.executor.read(JOB_NODE, id=job_id)
    stored = row["job"]
    assert "response" not in stored and "envelope" not in stored
    assert [row["n"] for row in await services.executor.read(BUNDLE_NODES, id=job_id)] == [0]
    assert pack_of(settings, stored["responseRef"]) == pack_of(settings, stored["bundleRef"])
    assert pack_of(settings, stored["responseRef"]).is_file()

    read = (await gql(RESULT, token, id=job_id))["data"]
    assert read["psiJob"]["response"]  # the intersection itself: tests/integration/test_psi.py
    public = load_public_key((await gql("{ proofPublicKey }", token))["data"]["proofPublicKey"])
    body, bundle_id = verify_file(read["proofBundle"]["envelope"].encode(), public)
    assert bundle_id == read["proofBundle"]["id"] == stored["bundleId"]
    assert body["commitments"]["response"] == stored["responseCommitment"]


async def test_a_changed_pack_is_refused_not_served(
        services, settings, client, gql, make_token, psi_pair):
    intact, _ = await finished_job(client, gql, make_token, psi_pair)
    job_id, token = await finished_job(client, gql, make_token, psi_pair)
    [row] = await services.executor.read(JOB_NODE, id=job_id)
    pack = pack_of(settings, row["job"]["responseRef"])
    data = bytearray(pack.read_bytes())
    for ref in (row["job"]["responseRef"], row["job"]["bundleRef"]):
        _, offset, _ = ref.split(":")
        data[int(offset) + 3] ^= 1
    pack.write_bytes(bytes(data))
    for query in ("query($id: ID!) { psiJob(id: $id) { response } }",
                  "query($id: ID!) { proofBundle(jobId: $id) { envelope } }"):
        result = await gql(query, token, id=job_id)
        assert codes(result) == ["INTERNAL_SERVER_ERROR"]
        assert "does not match its hash" in result["errors"][0]["message"]
    # on a page, the changed job's response fails alone
    page = await gql("{ psiJobs(first: 10) { edges { node { id response } } } }", token)
    responses = {e["node"]["id"]: e["node"]["response"] for e in page["data"]["psiJobs"]["edges"]}
    assert responses[job_id] is None and responses[intact]
    assert codes(page) == ["INTERNAL_SERVER_ERROR"] and job_id in page["errors"][0]["message"]


async def test_finished_jobs_and_their_packs_are_retired_after_the_window(
        services, settings, client, gql, make_token, psi_pair):
    job_id, token = await finished_job(client, gql, make_token, psi_pair)
    [row] = await services.executor.read(JOB_NODE, id=job_id)
    pack = pack_of(settings, row["job"]["responseRef"])
    # a job still running: no queue entry, so no worker takes it meanwhile
    running = raw_job(psi_pair["tenant"], f"retention-{time.time_ns()}", status="RUNNING")
    await services.repos.jobs.create_many([running])

    results = services.results
    await results.retire()
    assert await services.executor.read(JOB_NODE, id=job_id)  # far from its window
    assert pack.is_file()
    later = time.time() + results.retention_s + 1
    assert await results.retire(now=later) >= 1
    assert await services.executor.read(JOB_NODE, id=job_id) == []
    assert await services.executor.read(JOB_NODE, id=running.props["id"])  # not finished
    assert pack.is_file()  # its grace: a job is stamped before its pack is written
    await results.retire(now=later + PACK_GRACE_S + 3600)  # the pack's hour has ended
    assert not pack.exists()
    assert codes(await gql(RESULT, token, id=job_id)) == ["NOT_FOUND"]


async def test_results_earlier_versions_kept_in_the_graph_are_moved_out(
        services, client, gql, make_token, psi_pair):
    job_id, token = await finished_job(client, gql, make_token, psi_pair)
    current = (await gql(RESULT, token, id=job_id))["data"]
    [stored] = await services.executor.read(JOB_NODE, id=job_id)
    legacy = raw_job(psi_pair["tenant"], f"legacy-{time.time_ns()}", status="DONE")
    await services.repos.jobs.create_many([legacy])
    envelope = current["proofBundle"]["envelope"]
    await services.executor.write(LEGACY_RESULT, id=legacy.props["id"],
                                  response=current["psiJob"]["response"],
                                  commitment=stored["job"]["responseCommitment"],
                                  bundleId=current["proofBundle"]["id"], envelope=envelope)

    # a job past its retention, and a bundle whose job was deleted by hand
    expired = raw_job(psi_pair["tenant"], f"expired-{time.time_ns()}", status="DONE",
                      createdAt=iso(datetime.now(UTC) - timedelta(days=400)))
    await services.repos.jobs.create_many([expired])
    for job_id_ in (expired.props["id"], "psi_deleted_by_hand"):
        await services.executor.write(ORPHAN_BUNDLE, id=job_id_, envelope=envelope)

    assert await services.results.adopt_inline() >= 1
    assert await services.executor.read(JOB_NODE, id=expired.props["id"]) == []
    for gone in (expired.props["id"], "psi_deleted_by_hand"):
        assert [r["n"] for r in await services.executor.read(BUNDLE_NODES, id=gone)] == [0]
    [row] = await services.executor.read(JOB_NODE, id=legacy.props["id"])
    assert "response" not in row["job"] and row["job"]["responseRef"]
    assert [r["n"] for r in await services.executor.read(BUNDLE_NODES,
                                                          id=legacy.props["id"])] == [0]
    moved = (await gql(RESULT, token, id=legacy.props["id"]))["data"]
    assert moved["proofBundle"]["envelope"] == envelope
    assert base64.b64decode(moved["psiJob"]["response"]) == base64.b64decode(
        current["psiJob"]["response"])
    assert await services.results.adopt_inline() == 0
