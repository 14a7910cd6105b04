"""Worker and API processes: a job survives kill -9 and finishes once; a split
deployment measures its load where it is accepted and served."""

import asyncio
import os
import signal
import subprocess
import sys

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import done_events, free_port, polled, selectors
from trustfabric.client.psi import PsiClient


def child_env(settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "TF_NEO4J_URI": settings.neo4j_uri,
            "TF_NEO4J_PASSWORD": settings.neo4j_password.get_secret_value(),
            "TF_DATA_DIR": str(settings.data_dir), "TF_CONTROLS_CACHE_S": "0", **extra}


def api_without_worker(settings, port: int) -> subprocess.Popen[bytes]:
    """An API process whose jobs are left to worker processes."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "trustfabric.app:create_app", "--factory",
         "--port", str(port), "--log-level", "warning"],
        env=child_env(settings, TF_PSI_WORKER_IN_PROCESS="false"),
    )


async def wait_http(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(url + "/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the service did not start")


async def test_a_job_accepted_before_kill_9_completes_once_after_restart(
    settings, services, worker, make_token, psi_pair
):
    await worker.stop()  # no worker anywhere: the job waits, durable, while things die
    try:
        port = free_port()
        api = api_without_worker(settings, port)
        url = f"http://127.0.0.1:{port}"
        await wait_http(url)
        async with PsiClient(url, await make_token(psi_pair["tenant"])) as client:
            setup_id, _ = await client.setup(psi_pair["dataset"])
            jobs = [await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13)),
                                        setup_id) for _ in range(5)]
        api.send_signal(signal.SIGKILL)  # the API dies right after answering
        api.wait()

        # A worker process takes the jobs and is killed -9 mid-flight, holding their leases
        # (its crypto pool starts on first use, which leaves a window to kill it in).
        ids = [job["id"] for job in jobs]
        crashing = subprocess.Popen([sys.executable, "-m", "trustfabric.cli", "worker"],
                                    env=child_env(settings, TF_PSI_LEASE_S="2"),
                                    stdout=subprocess.DEVNULL, start_new_session=True)
        held: list[str] = []
        for _ in range(1000):
            held = [i for i in ids if (await services.repos.jobs.get(i, None)).status == "RUNNING"]
            if held:
                break
            await asyncio.sleep(0.01)
        crashing.send_signal(signal.SIGKILL)
        crashing.wait()
        # its crypto processes die with it (parent-death signal), leaving nothing behind
        for _ in range(100):
            leftovers = subprocess.run(["pgrep", "-s", str(crashing.pid)], capture_output=True)
            if not leftovers.stdout:
                break
            await asyncio.sleep(0.1)
        assert leftovers.stdout == b"", leftovers.stdout
        assert held, "the worker was killed before it held a job"
    finally:
        worker.start()  # the restart: a fresh worker finishes whatever is left

    for _ in range(200):
        states = [(await services.repos.jobs.get(i, None)).status for i in ids]
        if all(s == "DONE" for s in states):
            break
        await asyncio.sleep(0.1)
    assert states == ["DONE"] * 5
    for job_id in ids:
        assert await services.results.bundle(job_id, None) is not None
        assert await done_events(services, job_id) == 1


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_a_split_deployment_measures_the_load_where_it_is_accepted_and_served(
    settings, services, worker, make_token, psi_pair
):
    """An API process whose worker runs in a process of its own hears of the service
    through job events (a rate to hold each tenant's queue to, and its Gini's inputs),
    and the worker process exports what it served."""
    await worker.stop()  # the worker process below serves the jobs
    port, metrics_port = free_port(), free_port()
    api = api_without_worker(settings, port)
    proof = subprocess.Popen(
        [sys.executable, "-m", "trustfabric.cli", "worker", "--metrics-port", str(metrics_port)],
        env=child_env(settings), stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        url, tenant = f"http://127.0.0.1:{port}", psi_pair["tenant"]
        await wait_http(url)
        async with PsiClient(url, await make_token(tenant)) as client:
            setup_id, _ = await client.setup(psi_pair["dataset"])
            ids = [(await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13)),
                                        setup_id))["id"] for _ in range(5)]
        done = {"tenant": tenant, "outcome": "done"}
        async with httpx.AsyncClient() as http:
            async def scrape(base: str) -> dict:
                return samples((await http.get(base + "/metrics")).text)

            seen = await polled(lambda: scrape(url),
                                lambda s: s[("tf_psi_service_rate", ())] > 0)
            assert seen[("tf_psi_service_rate", ())] > 0  # 0 where nothing is heard
            served = await polled(
                lambda: scrape(f"http://127.0.0.1:{metrics_port}"),
                lambda s: s.get(("tf_psi_jobs_served_total", tuple(sorted(done.items())))) == 5)
        assert served[("tf_psi_jobs_served_total", tuple(sorted(done.items())))] == 5
        # the Gini is the API processes' figure: they see the demand
        assert not any(name == "tf_psi_fairness_gini" for name, _ in served)
        assert {(await services.repos.jobs.get(i, None)).status for i in ids} == {"DONE"}
    finally:
        for process in (api, proof):
            process.terminate()
            process.wait(30)
        worker.start()
