"""Shedding cost: the API process's CPU for one PSI request refused under overload, answered
before GraphQL runs against answered by the resolver.

    python -m bench.shedding [--requests 3000] [--concurrency 16] [--rounds 3]

Starts its own embedded database and API with the event loop's lateness limit below zero,
so the queue always counts as over budget and the one tenant, having taken every admission
lately, is shed. Each round sends the same `requestPsi` mutation both ways: with its input
alone (shed by the middleware) and beside a `__typename` field (a document the middleware
leaves to GraphQL, where the resolver sheds it). Prints the API's CPU ms a request and the
requests/s of each, and writes JSON to bench/results/.
"""

import argparse
import asyncio
import time
from typing import Any

import aiohttp

from bench.common import (
    cleanup_on_sigterm,
    cpu_seconds,
    print_table,
    psi_service,
    write_json,
)
from trustfabric.client.psi import PsiClient

PARTNER, TENANT = "shedpartner", "shedtenant"
SHED_EARLY = "mutation($input: RequestPsiInput!) { requestPsi(input: $input) { id } }"
# a second root field: the middleware leaves the document to GraphQL
SHED_IN_RESOLVER = ("mutation($input: RequestPsiInput!) { requestPsi(input: $input) { id } "
                    "__typename }")


async def flood(url: str, token: str, payloads: list[dict[str, Any]], concurrency: int,
                pid: int) -> dict[str, Any]:
    codes: dict[str, int] = {}
    pending = iter(payloads)

    async def sender(session: aiohttp.ClientSession) -> None:
        for payload in pending:
            async with session.post(f"{url}/graphql", json=payload,
                                    headers={"authorization": f"Bearer {token}"}) as response:
                errors = (await response.json()).get("errors") or [{}]
                code = errors[0].get("extensions", {}).get("code", "OK")
                codes[code] = codes.get(code, 0) + 1

    cpu, began = cpu_seconds([pid]), time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
    seconds = time.perf_counter() - began
    return {"requests": len(payloads), "codes": codes,
            "api_cpu_ms_per_request": round((cpu_seconds([pid]) - cpu) * 1000 / len(payloads), 3),
            "requests_per_s": round(len(payloads) / seconds, 1)}


async def drive(url: str, token: str, dataset: str, pid: int, requests: int, concurrency: int,
                rounds: int) -> dict[str, list[dict[str, Any]]]:
    request = PsiClient.prepare([f"customer-{2 * i}@example.com" for i in range(16)]).request
    results: dict[str, list[dict[str, Any]]] = {"before GraphQL": [], "in the resolver": []}
    for r in range(rounds):
        for way, query in (("before GraphQL", SHED_EARLY), ("in the resolver", SHED_IN_RESOLVER)):
            payloads = [{"query": query, "variables": {"input": {
                "datasetId": dataset, "mode": "PSI", "request": request,
                "idempotencyKey": f"{r}-{len(way)}-{n}"}}} for n in range(requests)]
            results[way].append(await flood(url, token, payloads, concurrency, pid))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per way, per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cleanup_on_sigterm()
    with psi_service("shed-bench", PARTNER, 1000, [TENANT],
                     env={"TF_PSI_MAX_LOOP_LAG_S": "-1"}) as service:
        results = asyncio.run(drive(service.url, service.tokens[TENANT], service.dataset,
                                    service.app_pid, args.requests, args.concurrency,
                                    args.rounds))
    print(f"\nPSI requests shed under overload, {args.concurrency} at a time")
    print_table(["shed", "round", "requests", "answers", "API CPU ms a request", "requests/s"],
                [[way, n + 1, r["requests"], r["codes"], r["api_cpu_ms_per_request"],
                  r["requests_per_s"]]
                 for way, rounds in results.items() for n, r in enumerate(rounds)])
    path = write_json("shedding", {"args": vars(args), "results": results})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
