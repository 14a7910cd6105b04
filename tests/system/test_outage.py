"""A database process that stops answering (SIGSTOP: a hung JVM, a frozen VM) while the API
serves: requests answer UNAVAILABLE and /readyz 503 within the documented budget, and
the service is back when the database is."""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.helpers import codes, free_port, until
from trustfabric.app import create_app
from trustfabric.domain.auth import Role
from trustfabric.graph.embedded import EmbeddedServer
from trustfabric.settings import Settings
from trustfabric.web.serving import HttpProtocol

READY_BUDGET_S = 1.0  # TF_NEO4J_CONNECT_TIMEOUT_S
REQUEST_BUDGET_S = 5.0  # TF_NEO4J_QUERY_TIMEOUT_S
SLACK_S = 1.5  # two busy cores


@pytest.fixture
async def stoppable(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedServer, str, str]]:
    """An API on an embedded database of its own, which the test may stop (SIGSTOP)."""
    database = EmbeddedServer(tmp_path / "graph", "trustfabric", free_port(), free_port(),
                              heap="512m")
    await asyncio.to_thread(database.start)
    settings = Settings(neo4j_uri=database.uri, neo4j_password=database.password,
                        data_dir=tmp_path / "data", psi_worker_in_process=False,
                        token_cache_ttl_s=60.0, _env_file=None)
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                            log_level="critical", lifespan="on", http=HttpProtocol)
    api = uvicorn.Server(config)
    task = asyncio.create_task(api.serve())
    try:
        await until(lambda: api.started, seconds=30.0, what="the API")
        services = api.lifespan.state["services"]
        _, secret = await services.repos.tokens.create("acme", Role.MEMBER, "outage")
        yield database, f"http://127.0.0.1:{config.port}", secret
    finally:
        if database.pid is not None:
            os.kill(database.pid, signal.SIGCONT)  # a stopped process cannot stop cleanly
        api.should_exit = True
        await asyncio.wait_for(task, 30)
        await asyncio.to_thread(database.stop)


def stopped(pid: int) -> bool:
    return all(Path(f"/proc/{pid}/task/{task}/stat").read_text().rsplit(")", 1)[1].split()[0]
               in ("T", "t") for task in os.listdir(f"/proc/{pid}/task"))


async def test_a_stopped_database_answers_unavailable_within_the_budget(stoppable) -> None:
    database, url, secret = stoppable
    query = {"query": "{ webhooks { id } }"}
    headers = {"authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert (await http.get("/readyz")).status_code == 200
        answered = await http.post("/graphql", json=query, headers=headers)
        assert "errors" not in answered.json(), answered.text  # the token is verified, cached
        os.kill(database.pid, signal.SIGSTOP)
        try:
            # every thread stopped (state T): a thread busy as the signal came could still
            # answer one statement, and the first probe would race it
            await until(lambda: stopped(database.pid), seconds=5.0, what="the database stopped")
            for _ in range(2):  # the first, on a pooled connection; the next, on a new one
                started = time.monotonic()
                ready = await http.get("/readyz")
                took = time.monotonic() - started
                assert ready.status_code == 503 and took < READY_BUDGET_S + SLACK_S, took
            started = time.monotonic()
            answers = await asyncio.gather(*(http.post("/graphql", json=query, headers=headers)
                                              for _ in range(4)))
            took = time.monotonic() - started
            assert [codes(a.json()) for a in answers] == [["UNAVAILABLE"]] * 4
            assert took < REQUEST_BUDGET_S + SLACK_S, took
        finally:
            os.kill(database.pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after SIGCONT"
            await asyncio.sleep(0.2)
        answered = await http.post("/graphql", json=query, headers=headers)
        assert "errors" not in answered.json(), answered.text
