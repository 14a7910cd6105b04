"""A small Python client for Trust Fabric's PSI API, built on OpenMined PSI.

    async with PsiClient("http://127.0.0.1:8000", token) as client:
        matches = await client.intersect("globex/customers", ["alice@example.com", ...])
        count = await client.cardinality("globex/customers", [...])

Selectors never leave this process in clear: the request holds them blinded under a fresh
client key, and the intersection is finished here from the server's setup and response.
Any other OpenMined client (JS, Go, Rust, C++) can do the same against the same API.
"""

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import private_set_intersection.python as psi

SETUP_ID = """query($id: String!) { datasetSetup(datasetId: $id) { setupId } }"""
SETUP = """query($id: String!) { datasetSetup(datasetId: $id) { setupId setup } }"""
REQUEST = """mutation($input: RequestPsiInput!) { requestPsi(input: $input) { id status } }"""
JOB = """query($id: ID!) { psiJob(id: $id) { id status response error { code message } } }"""
EVENTS = """subscription($id: ID, $statuses: [PsiJobStatus!]) {
  psiJobEvents(jobId: $id, statuses: $statuses) { jobId status } }"""
FINAL = {"DONE", "FAILED", "CANCELLED"}


async def job_events(session: aiohttp.ClientSession, base_url: str, token: str,
                     job_id: str | None = None, statuses: list[str] | None = None,
                     ) -> AsyncIterator[dict[str, Any]]:
    """State changes of a tenant's jobs, or of one job, as they happen (all, or only
    `statuses`): one graphql-ws subscription, however many jobs (load generators use it)."""
    async with session.ws_connect(base_url.replace("http", "ws", 1) + "/graphql",
                                  protocols=["graphql-transport-ws"], heartbeat=20) as ws:
        await ws.send_json({"type": "connection_init",
                            "payload": {"Authorization": f"Bearer {token}"}})
        await ws.send_json({"id": "1", "type": "subscribe",
                            "payload": {"query": EVENTS, "variables": {
                                "id": job_id, "statuses": statuses}}})
        async for message in ws:
            data = message.json()
            if data["type"] == "ping":
                await ws.send_json({"type": "pong"})
            elif data["type"] == "error":
                raise PsiError("SUBSCRIPTION", json.dumps(data["payload"]))
            elif data["type"] == "next":
                payload = data["payload"]
                if payload.get("errors"):  # e.g. a revoked token's, or an outage's
                    error = payload["errors"][0]
                    raise PsiError(error.get("extensions", {}).get("code", "SUBSCRIPTION"),
                                   error.get("message", ""))
                yield payload["data"]["psiJobEvents"]


class PsiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class PreparedRequest:
    """A request made before it is sent (load generators make many ahead of time)."""

    mode: str
    client: psi.client
    request: str  # base64 OpenMined Request


class PsiClient:
    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._setups: dict[str, tuple[str, psi.ServerSetup]] = {}

    async def __aenter__(self) -> "PsiClient":
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]
                        ) -> None:
        if self._session:
            await self._session.close()

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        assert self._session, "use `async with PsiClient(...)`"
        async with self._session.post(f"{self.base_url}/graphql",
                                      json={"query": query, "variables": variables}) as response:
            body = await response.json()
        if body.get("errors"):
            error = body["errors"][0]
            raise PsiError(error.get("extensions", {}).get("code", "UNKNOWN"), error["message"])
        return dict(body["data"])

    async def setup(self, dataset_id: str) -> tuple[str, psi.ServerSetup]:
        """The dataset's setup (tens of KB), downloaded only when its setupId changes."""
        setup_id = (await self.graphql(SETUP_ID, id=dataset_id))["datasetSetup"]["setupId"]
        if setup_id not in self._setups:
            data = (await self.graphql(SETUP, id=dataset_id))["datasetSetup"]
            message = psi.ServerSetup()
            message.ParseFromString(base64.b64decode(data["setup"]))
            self._setups[data["setupId"]] = (data["setupId"], message)
        return self._setups[setup_id]

    @staticmethod
    def prepare(selectors: list[str], mode: str = "PSI") -> PreparedRequest:
        client = psi.client.CreateWithNewKey(mode == "PSI")
        raw = client.CreateRequest(selectors).SerializeToString()
        return PreparedRequest(mode, client, base64.b64encode(raw).decode())

    async def submit(self, dataset_id: str, prepared: PreparedRequest,
                     setup_id: str | None = None, idempotency_key: str | None = None
                     ) -> dict[str, Any]:
        job = await self.graphql(REQUEST, input={
            "datasetId": dataset_id, "mode": prepared.mode, "request": prepared.request,
            "idempotencyKey": idempotency_key or secrets.token_hex(16), "setupId": setup_id,
        })
        return dict(job["requestPsi"])

    async def wait(self, job_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """Waits for the job's final state on the event subscription, then reads it once."""
        assert self._session
        ws_url = self.base_url.replace("http", "ws", 1) + "/graphql"
        async with self._session.ws_connect(ws_url, protocols=["graphql-transport-ws"]) as ws:
            await ws.send_json({"type": "connection_init", "payload": self._headers})
            await ws.send_json({"id": "1", "type": "subscribe",
                                "payload": {"query": EVENTS, "variables": {
                                    "id": job_id, "statuses": sorted(FINAL)}}})
            job = (await self.graphql(JOB, id=job_id))["psiJob"]  # it may be done already
            async with asyncio.timeout(timeout_s):
                while job["status"] not in FINAL:
                    message = json.loads((await ws.receive()).data)
                    if message["type"] == "ping":
                        await ws.send_json({"type": "pong"})
                    elif message["type"] == "next":  # only final states are sent
                        job = (await self.graphql(JOB, id=job_id))["psiJob"]
                    elif message["type"] == "error":
                        raise PsiError("SUBSCRIPTION", json.dumps(message["payload"]))
        if job["status"] != "DONE":
            error = job.get("error") or {}
            raise PsiError(error.get("code", job["status"]), error.get("message", ""))
        return dict(job)

    async def run(self, dataset_id: str, selectors: list[str], mode: str) -> tuple[
            PreparedRequest, psi.ServerSetup, psi.Response]:
        setup_id, setup = await self.setup(dataset_id)
        prepared = self.prepare(selectors, mode)
        job = await self.submit(dataset_id, prepared, setup_id)
        done = await self.wait(job["id"])
        response = psi.Response()
        response.ParseFromString(base64.b64decode(done["response"]))
        return prepared, setup, response

    async def intersect(self, dataset_id: str, selectors: list[str]) -> list[str]:
        """The selectors the partner's dataset also holds."""
        prepared, setup, response = await self.run(dataset_id, selectors, "PSI")
        return [selectors[i] for i in sorted(prepared.client.GetIntersection(setup, response))]

    async def cardinality(self, dataset_id: str, selectors: list[str]) -> int:
        """How many of the selectors the partner's dataset holds, and nothing else."""
        prepared, setup, response = await self.run(dataset_id, selectors, "PSI_CA")
        return int(prepared.client.GetIntersectionSize(setup, response))
