"""PSI job latency: from the requestPsi mutation's arrival to the signed bundle being
readable, for one client, against a 10,000-item partner dataset.

    python -m bench.psi_latency [--sizes 16 100] [--jobs 200] [--dataset-items 10000]

Starts its own embedded database and API (worker in the API process, as `make run` does),
registers the dataset, then for each request size sends jobs one after another: mutation,
wait for the DONE event on the graphql-ws subscription, read `proofBundle`. Client-side
blinding is done before the clock starts. Prints p50/p95/p99 and writes JSON to
bench/results/.
"""

import argparse
import asyncio
import time
from typing import Any

import aiohttp

from bench.common import (
    cleanup_on_sigterm,
    print_table,
    psi_service,
    summarize,
    write_json,
)
from trustfabric.client.psi import FINAL, PreparedRequest, PsiClient, job_events

PARTNER, TENANT = "benchpartner", "benchtenant"
REQUEST = "mutation($input: RequestPsiInput!) { requestPsi(input: $input) { id } }"
BUNDLE = "query($id: ID!) { proofBundle(jobId: $id) { id } }"


class Events:
    """One subscription for the whole run; DONE events resolve waiting futures."""

    def __init__(self) -> None:
        self.done: dict[str, asyncio.Future[None]] = {}

    def future(self, job_id: str) -> asyncio.Future[None]:
        return self.done.setdefault(job_id, asyncio.get_running_loop().create_future())

    async def listen(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        async for event in job_events(session, url, token, statuses=sorted(FINAL)):
            future = self.future(event["jobId"])
            if not future.done():
                future.set_result(None)


async def run_size(client: PsiClient, events: Events, dataset: str, setup_id: str,
                   requests: list[PreparedRequest], warmup: int) -> dict[str, Any]:
    latencies, errors = [], 0
    started = time.perf_counter()
    for n, prepared in enumerate(requests):
        t0 = time.perf_counter()
        try:
            job = await client.graphql(REQUEST, input={
                "datasetId": dataset, "mode": prepared.mode, "request": prepared.request,
                "idempotencyKey": f"bench-{time.time_ns()}", "setupId": setup_id})
            job_id = job["requestPsi"]["id"]
            await asyncio.wait_for(events.future(job_id), 30)
            bundle = await client.graphql(BUNDLE, id=job_id)
            if bundle["proofBundle"] is None:
                raise RuntimeError("no bundle after DONE")
        except Exception:  # noqa: BLE001 - counted, the run goes on
            errors += n >= warmup
            continue
        if n >= warmup:
            latencies.append(time.perf_counter() - t0)
    return summarize(latencies, errors, time.perf_counter() - started)


async def drive(url: str, token: str, dataset: str, sizes: list[int], jobs: int,
                warmup: int) -> dict[str, Any]:
    results = {}
    async with PsiClient(url, token) as client, aiohttp.ClientSession() as session:
        events = Events()
        listener = asyncio.create_task(events.listen(session, url, token))
        setup_id, _ = await client.setup(dataset)  # builds the cached setup once
        await asyncio.sleep(0.5)
        for size in sizes:
            # blinding is the client's cost, not the service's: done before the clock starts
            requests = [client.prepare([f"probe-{size}-{n}-{i}@example.com" if i % 2 else
                                        f"customer-{2 * (n * size + i) % 20000}@example.com"
                                        for i in range(size)], "PSI")
                        for n in range(jobs + warmup)]
            results[str(size)] = await run_size(client, events, dataset, setup_id, requests,
                                                warmup)
        listener.cancel()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 100])
    parser.add_argument("--jobs", type=int, default=200, help="measured jobs per size")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--dataset-items", type=int, default=10_000)
    args = parser.parse_args()
    cleanup_on_sigterm()
    with psi_service("psi-bench", PARTNER, args.dataset_items, [TENANT]) as service:
        results = asyncio.run(drive(service.url, service.tokens[TENANT], service.dataset,
                                    args.sizes, args.jobs, args.warmup))
    print(f"\nPSI mutation → readable bundle, one client, {args.dataset_items:,}-item dataset")
    print_table(["selectors", "jobs", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                [[size, r["requests"], r["errors"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
                  r["max_ms"]] for size, r in results.items()])
    path = write_json("psi-latency", {"args": vars(args), "results": results})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
