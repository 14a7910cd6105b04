"""Game day: a PSI soak at a set rate with faults injected on a schedule, alerts evaluated
over the service's own /metrics, the graph checked for lost and duplicated jobs after, and
a postmortem written (Markdown and a plot).

    python -m bench.gameday [--rps 20 --time-scale 1 --out DIR]

It starts everything on loopback: an embedded database, a fault-injecting TCP proxy in
front of its Bolt port (`bench.faults`), an API process without an in-process worker and
`trustfabric worker` processes, all pointed at the proxy; and stops all of it at the end.
The faults, at the default schedule (seconds of the measured run, times --time-scale):

- quota contention: one tenant floods at --flood-rps, far past its quota and fair share;
- network: latency with jitter, then reset connections, then a partition (nothing flows);
- policy drift: an environment's deployed policy changes under the service (the deployer
  reports it); the harness watches `policyDrift`, records when the drift shows, and has
  the deployer roll it back once it has been seen;
- a worker process killed with SIGKILL while it holds a batch's leases (a replacement
  starts after --restart-after).
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from neo4j import AsyncGraphDatabase

from bench.alerts import Episode, Rule, Scrapes, alert_episodes, load_rules, parse
from bench.common import (
    DB_HEAP_HELP,
    RESULTS_DIR,
    Target,
    cleanup_on_sigterm,
    embedded_database,
    free_port,
    percentile,
    start_app,
    stop_app,
)
from bench.faults import Faults, set_faults
from bench.soak import PARTNER, Run, duration, listen, submit
from trustfabric.blobs import PackStore
from trustfabric.client.psi import PsiClient
from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.controls import PilotControls, Quota
from trustfabric.domain.fairness.shares import fairness_gini
from trustfabric.domain.psi.results import bundle_hash
from trustfabric.migrations import migrate
from trustfabric.runtime.demo import demo_customers
from trustfabric.runtime.services import Services

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
RUN_ID = f"gameday-{secrets.token_hex(4)}"
FLOOD = "flood"
POLICY_TENANT = "gdpolicy"
WINDOW_S = 5.0  # timeline resolution
SCRAPE_S = 5.0  # scrape and alert evaluation interval
DRIFT_POLL_S = 2.0
P95_SLO_MS = 900.0
GINI_SLO = 0.16
ERROR_SLO = 0.0025
MTTA_GOAL_S = 60.0

SUBMIT_POLICY = """mutation($input: SubmitPolicyVersionInput!) {
  submitPolicyVersion(input: $input) { definition { id } } }"""
SET_ENV = """mutation($input: SetEnvironmentInput!) {
  setEnvironment(input: $input) { name drifted } }"""
DRIFT = "query { policyDrift { environment { name } risk reasons } }"
PROPOSE = """mutation($env: String!) { proposeDriftFix(environment: $env) { id status } }"""
GATE_V1 = [{"id": "signed", "expression": "signed", "severity": "HIGH",
            "message": "sign the image"},
           {"id": "criticals", "expression": "vulns_critical <= 2", "severity": "CRITICAL",
            "message": "no critical vulnerabilities"}]
GATE_V2 = GATE_V1[:1]  # an enforced rule removed: HIGH-risk drift
# Not alert rules: what the service's metrics said during each fault, evaluated like a rule
# with no `for:`, to show which signal an alert could be written on.
SIGNALS = {
    "graph query errors": "sum(increase(tf_graph_query_errors_total[1m])) > 0",
    "GraphQL errors": 'sum(rate(tf_graphql_requests_total{outcome="error"}[1m])) > 0',
    "refusals": "max(sum by (tenant) (rate(tf_psi_requests_refused_total[1m]))) > 1",
    "a process not answering /metrics": "up == 0",
    "event loop late > 100 ms": "max(tf_event_loop_lag_seconds) > 0.1",
    "queue > 100": "sum(max by (tenant) (tf_psi_queue_depth)) > 100",
}


@dataclass
class Fault:
    name: str
    kind: str  # quota | network | drift | worker
    start: float
    end: float
    notes: list[str] = field(default_factory=list)
    detected: float | None = None  # drift: when policyDrift first showed it
    held_jobs: list[str] = field(default_factory=list)  # worker: the killed worker's leases


def schedule(scale: float) -> list[Fault]:
    """The default schedule, in seconds of the measured run."""
    def fault(name: str, kind: str, start: float, end: float) -> Fault:
        return Fault(name, kind, round(start * scale, 1), round(end * scale, 1))

    return [fault("quota flood", "quota", 60, 120),
            fault("latency 40±30 ms", "network", 150, 195),
            fault("connection resets", "network", 195, 225),
            fault("partition", "network", 225, 240),
            fault("policy drift", "drift", 270, 330),
            fault("worker SIGKILL", "worker", 360, 375)]


NETWORK_FAULTS = {"latency 40±30 ms": Faults(latency_ms=40, jitter_ms=30),
                  "connection resets": Faults(latency_ms=5, jitter_ms=5, reset_per_s=0.1,
                                              refuse=0.2),
                  "partition": Faults(partition=True)}


class GameRun(Run):
    """What the load saw, with times: refusals by kind and errors."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.refusals: list[tuple[float, str, str]] = []  # (t, tenant, QUOTA | OVERLOADED)
        self.error_at: list[tuple[float, str]] = []

    def t(self) -> float:
        return time.monotonic() - self.t0

    def refusal(self, tenant: str, kind: str, sent: float) -> None:
        super().refusal(tenant, kind, sent)
        self.refusals.append((sent - self.t0, tenant, kind))

    def failed(self, code: str, sent: float) -> None:
        super().failed(code, sent)
        self.error_at.append((sent - self.t0, code))


async def keep_listening(session: aiohttp.ClientSession, url: str, token: str, run: GameRun,
                         notes: list[tuple[float, str]]) -> None:
    """The DONE events of a tenant's jobs; the subscription is opened again if it drops
    (events meanwhile are missed here: the graph check after the run is what counts)."""
    while True:
        try:
            await listen(session, url, token, run)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure: note it, open it again
            notes.append((run.t(), f"subscription dropped: {type(error).__name__}"))
        await asyncio.sleep(1.0)


# --- the deployment -------------------------------------------------------------------------

@dataclass
class Deployment:
    target: Target  # the database itself, for the checks
    proxied: Target  # what the service is pointed at
    workdir: Path
    control_port: int
    url: str = ""
    dataset: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_metrics: dict[str, int] = field(default_factory=dict)
    network_fault: str = ""  # the network fault in force at the proxy

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "TF_NEO4J_URI": self.proxied.uri,
                "TF_NEO4J_USER": self.proxied.user, "TF_NEO4J_PASSWORD": self.proxied.password,
                "TF_NEO4J_DATABASE": self.proxied.database, "TF_DATA_DIR": str(self.workdir),
                **extra}

    def start_worker(self, name: str, crypto_processes: int) -> None:
        port = self.worker_metrics.setdefault(name, free_port())
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "trustfabric.cli", "worker", "--metrics-port", str(port)],
                env=self.env(TF_PSI_WORKER_PROCESSES=str(crypto_processes)), stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        """Every process this deployment started: its process group, TERM then KILL."""
        for name, process in list(self.processes.items()):
            if name == "api":
                stop_app(process)
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            with contextlib.suppress(ProcessLookupError):  # crypto processes left behind
                os.killpg(process.pid, signal.SIGKILL)


async def pilot(target: Target, workdir: Path, items: int, tenants: list[str],
                flood_quota: Quota) -> tuple[str, dict[str, str]]:
    """The partner dataset; the load's tenants with a quota they never reach, the flood
    tenant with a small one; a member token each, and one for the policy tenant."""
    operator = Caller(token_id="gameday", tenant=f"{PARTNER}-ops", role=Role.OPERATOR)
    services = Services.open(target.settings().model_copy(update={"data_dir": workdir}))
    try:
        await migrate(services.executor)
        await services.seed_controls()
        dataset = await services.datasets.register(operator, PARTNER, "customers",
                                                      demo_customers(items))
        tokens = {}
        for tenant in [*tenants, FLOOD]:
            quota = flood_quota if tenant == FLOOD else Quota(100_000, 60, 10_000)
            def allow(c: PilotControls, t: str = tenant, q: Quota = quota) -> PilotControls:
                return c.with_tenant(t, psi=True, psi_ca=True, scopes=(dataset.id,), quota=q)

            await services.controls.change(operator, allow, "gameday")
            tokens[tenant] = (await services.repos.tokens.create(tenant, Role.MEMBER,
                                                                 "gameday"))[1]
        tokens[POLICY_TENANT] = (await services.repos.tokens.create(
            POLICY_TENANT, Role.MEMBER, "gameday"))[1]
        return dataset.id, tokens
    finally:
        await services.close()


def start_proxy(upstream_port: int, workdir: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    listen_port, control_port = free_port(), free_port()
    with open(workdir / "proxy.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.faults", "--listen", str(listen_port),
             "--upstream", f"127.0.0.1:{upstream_port}", "--control", str(control_port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            asyncio.run(set_faults(control_port, None, timeout=1))
            return process, listen_port, control_port
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the fault proxy did not start")


# --- the run --------------------------------------------------------------------------------

@dataclass
class Observed:
    scrapes: Scrapes = field(default_factory=Scrapes)
    service: list[dict[str, float]] = field(default_factory=list)  # API's view per scrape
    drift_polls: list[tuple[float, list[str] | None]] = field(default_factory=list)
    notes: list[tuple[float, str]] = field(default_factory=list)
    load_average: list[tuple[float, tuple[float, float, float]]] = field(default_factory=list)


async def gql(session: aiohttp.ClientSession, url: str, token: str, query: str,
              **variables: Any) -> dict[str, Any]:
    async with session.post(f"{url}/graphql", json={"query": query, "variables": variables},
                            headers={"authorization": f"Bearer {token}"}) as response:
        payload: dict[str, Any] = await response.json(content_type=None)
        return payload


async def scrape_loop(session: aiohttp.ClientSession, dep: Deployment, run: GameRun,
                      seen: Observed) -> None:
    targets = {"api": f"{dep.url}/metrics"}
    while True:
        t = run.t()
        targets.update({name: f"http://127.0.0.1:{port}/metrics"
                        for name, port in dep.worker_metrics.items()})

        async def one(address: str) -> str | None:
            try:
                async with session.get(address, timeout=aiohttp.ClientTimeout(total=3)) as r:
                    return await r.text() if r.status == 200 else None
            except (aiohttp.ClientError, TimeoutError):
                return None

        texts = await asyncio.gather(*(one(a) for a in targets.values()))
        for name, text in zip(targets, texts, strict=True):
            seen.scrapes.add(name, t, text)
        api = seen.scrapes.by_instance["api"][-1][1]

        def value(name: str, api: dict[Any, float] = api) -> float:
            return sum(v for labels, v in api.items() if dict(labels)["__name__"] == name)

        seen.service.append({"t": t, "gini": value("tf_psi_fairness_gini"),
                             "queued": value("tf_psi_queue_depth"),
                             "rate": value("tf_psi_service_rate"),
                             "up": value("up")})
        seen.load_average.append((t, os.getloadavg()))
        await asyncio.sleep(max(0.0, SCRAPE_S - (run.t() - t)))


async def drift_loop(session: aiohttp.ClientSession, dep: Deployment, run: GameRun,
                     seen: Observed) -> None:
    """An operator's check of `policyDrift`, every DRIFT_POLL_S."""
    while True:
        t = run.t()
        try:
            payload = await gql(session, dep.url, dep.tokens[POLICY_TENANT], DRIFT)
            drifted = [f"{d['environment']['name']} ({d['risk']})"
                       for d in payload["data"]["policyDrift"]]
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError):
            drifted = None  # unanswered
        seen.drift_polls.append((t, drifted))
        await asyncio.sleep(DRIFT_POLL_S)


async def leases(target: Target) -> dict[int, list[str]]:
    """Jobs leased now, by the worker process (pid) holding them."""
    driver = AsyncGraphDatabase.driver(target.uri, auth=(target.user, target.password))
    try:
        records, _, _ = await driver.execute_query(
            "MATCH (q:PsiQueueEntry) WHERE q.leaseOwner IS NOT NULL "
            "RETURN q.leaseOwner AS owner, q.jobId AS job", database_=target.database)
    finally:
        await driver.close()
    held: dict[int, list[str]] = defaultdict(list)
    for record in records:
        held[int(str(record["owner"]).split(":")[1])].append(record["job"])
    return held


async def inject(fault: Fault, dep: Deployment, run: GameRun, seen: Observed,
                 session: aiohttp.ClientSession, args: argparse.Namespace,
                 flood: Callable[[float], Awaitable[None]]) -> None:
    """One fault, from its start to its end (the drift: until it has been handled)."""
    await asyncio.sleep(max(0.0, fault.start - run.t()))
    fault.start = round(run.t(), 1)
    if fault.kind == "quota":
        await flood(fault.end - fault.start)
    elif fault.kind == "network":
        dep.network_fault = fault.name
        answer = await set_faults(dep.control_port, NETWORK_FAULTS[fault.name])
        await asyncio.sleep(max(0.0, fault.end - run.t()))
        # the next fault may have begun as this one ends: it is not switched off here
        mine = dep.network_fault == fault.name
        answer = await set_faults(dep.control_port, Faults() if mine else None)
        fault.notes.append("proxy counters so far: " + ", ".join(
            f"{k} {v}" for k, v in answer["stats"].items() if k != "live"))
    elif fault.kind == "drift":
        token = dep.tokens[POLICY_TENANT]
        changed = await gql(session, dep.url, token, SET_ENV, input={
            "name": "prod", "policyId": "gate", "deployed": "v2"})
        fault.notes.append(f"deployer reported v2 deployed, v1 declared: {changed.get('data')}")
        since = len(seen.drift_polls)
        while fault.detected is None and run.t() < fault.end + 120:
            if any(d for _, d in seen.drift_polls[since:]):
                fault.detected = next(t for t, d in seen.drift_polls[since:] if d)
                break
            await asyncio.sleep(0.2)
        proposal = await gql(session, dep.url, token, PROPOSE, env="prod")
        refused = [e.get("extensions", {}).get("code") for e in proposal.get("errors", [])]
        fault.notes.append(f"proposeDriftFix: {'refused ' + str(refused) if refused else proposal}")
        await asyncio.sleep(max(0.0, fault.end - run.t()))
        await gql(session, dep.url, token, SET_ENV, input={
            "name": "prod", "policyId": "gate", "deployed": "v1"})
        fault.notes.append("deployer rolled the deployment back to v1")
    elif fault.kind == "worker":
        pids = {dep.processes[n].pid: n for n in dep.processes if n.startswith("worker")}
        victim, held = None, []
        deadline = time.monotonic() + 20
        while victim is None and time.monotonic() < deadline:
            for pid, jobs in (await leases(dep.target)).items():
                if pid in pids:
                    victim, held = pids[pid], jobs
                    break
            else:
                await asyncio.sleep(0.05)
        victim = victim or min(pids.values())
        fault.start = round(run.t(), 1)
        os.kill(dep.processes[victim].pid, signal.SIGKILL)
        dep.processes[victim].wait()
        fault.held_jobs = held
        fault.notes.append(f"SIGKILL to {victim} holding {len(held)} leased jobs")
        await asyncio.sleep(max(0.0, fault.end - run.t()))
        with contextlib.suppress(ProcessLookupError):  # crypto processes it left, if any
            os.killpg(dep.processes[victim].pid, signal.SIGKILL)
        dep.start_worker(victim, args.crypto_processes)
        fault.notes.append(f"replacement {victim} started")
    fault.end = round(run.t(), 1)


async def drive(dep: Deployment, args: argparse.Namespace, faults: list[Fault], pool: list[str]
                ) -> tuple[GameRun, Observed]:
    tenants = [t for t in dep.tokens if t not in (FLOOD, POLICY_TENANT)]
    weights = {t: (args.skew if n == 0 else 1.0) for n, t in enumerate(tenants)}
    cumulative, total = [], 0.0
    for tenant in tenants:
        total += weights[tenant] / sum(weights.values())
        cumulative.append(total)
    run = GameRun(time.monotonic() + args.warmup)
    seen = Observed()
    tasks: set[asyncio.Task[None]] = set()

    def send(tenant: str, key: str, request: str) -> None:
        task = asyncio.create_task(submit(session, dep.url, dep.tokens[tenant], tenant,
                                          dep.dataset, request, f"{RUN_ID}-{key}", run))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def flood(seconds: float) -> None:
        begin, n = time.monotonic(), 0
        while (now := time.monotonic()) - begin < seconds:
            while n < int((now - begin) * args.flood_rps):
                send(FLOOD, f"{FLOOD}-{n}", pool[n % len(pool)])
                n += 1
            await asyncio.sleep(0.005)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                     timeout=timeout) as session:
        background = [asyncio.create_task(keep_listening(session, dep.url, dep.tokens[t], run,
                                                         seen.notes))
                      for t in [*tenants, FLOOD]]
        await asyncio.sleep(1.0)
        start = time.monotonic()
        run.t0 = start + args.warmup
        background += [asyncio.create_task(scrape_loop(session, dep, run, seen)),
                       asyncio.create_task(drift_loop(session, dep, run, seen))]
        injections = [asyncio.create_task(inject(f, dep, run, seen, session, args, flood))
                      for f in faults]
        n, seconds = 0, args.warmup + args.duration
        while (now := time.monotonic()) - start < seconds:
            while n < int((now - start) * args.rps):
                position = (n * 0.6180339887) % 1.0
                tenant = tenants[next(i for i, c in enumerate(cumulative) if position < c)]
                send(tenant, f"{tenant}-{n}", pool[n % len(pool)])
                n += 1
            await asyncio.sleep(0.005)
        for outcome in await asyncio.gather(*injections, return_exceptions=True):
            if isinstance(outcome, BaseException):
                seen.notes.append((run.t(), f"a fault's injection failed: {outcome!r}"))
        await asyncio.gather(*tasks)
        drain_until = time.monotonic() + args.drain
        while run.sent and time.monotonic() < drain_until:
            await asyncio.sleep(0.5)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    return run, seen


async def graph_check(target: Target, run: GameRun, settle_s: float,
                      packs: PackStore) -> dict[str, Any]:
    """Against the database and the packs themselves: every job accepted is DONE or FAILED
    exactly once (one job per idempotency key, one final event per job; a DONE job's bundle
    readable and matching the hash the job keeps), and no job is left queued or leased."""
    driver = AsyncGraphDatabase.driver(target.uri, auth=(target.user, target.password))

    async def rows(query: str) -> list[dict[str, Any]]:
        records, _, _ = await driver.execute_query(query, database_=target.database)
        return [dict(r) for r in records]

    try:
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            left = (await rows("MATCH (q:PsiQueueEntry) RETURN count(q) AS n"))[0]["n"]
            if not left:
                break
            await asyncio.sleep(2)
        jobs = await rows("MATCH (j:PsiJob) RETURN j.id AS id, j.status AS status, "
                          "j.idemKey AS key, j.bundleRef AS ref, j.bundleHash AS hash")
        batches = await rows("MATCH (b:JobEventBatch) RETURN b.jobIds AS ids, "
                             "b.statuses AS statuses")
        queued = (await rows("MATCH (q:PsiQueueEntry) RETURN count(q) AS n"))[0]["n"]
    finally:
        await driver.close()
    status = {j["id"]: j["status"] for j in jobs}
    per_key: dict[str, int] = defaultdict(int)
    for job in jobs:
        per_key[job["key"]] += 1

    def readable(job: dict[str, Any]) -> bool:
        try:
            return bool(job["ref"]) and bundle_hash(packs.get(job["ref"])) == job["hash"]
        except LookupError:
            return False

    finals: dict[str, int] = defaultdict(int)
    for batch in batches:
        for job_id, state in zip(batch["ids"] or [], batch["statuses"] or [], strict=False):
            if state in ("DONE", "FAILED"):
                finals[job_id] += 1
    accepted = set(run.tenant_of)
    return {
        "jobs_in_graph": len(jobs),
        "accepted_by_clients": len(accepted),
        "lost": sorted(i for i in accepted if i not in status)[:20],
        "lost_count": sum(1 for i in accepted if i not in status),
        "unfinished": sum(1 for s in status.values() if s not in ("DONE", "FAILED")),
        "done": sum(1 for s in status.values() if s == "DONE"),
        "failed": sum(1 for s in status.values() if s == "FAILED"),
        "duplicate_keys": sum(1 for n in per_key.values() if n > 1),
        "done_without_bundle": sum(1 for j in jobs if j["status"] == "DONE"
                                   and not readable(j)),
        "duplicate_final_events": sum(1 for n in finals.values() if n > 1),
        "finished_without_event": sum(1 for i, s in status.items()
                                      if s in ("DONE", "FAILED") and not finals.get(i)),
        "left_in_queue": queued,
        "not_heard_by_clients": len(run.sent),
    }


# --- figures --------------------------------------------------------------------------------

def timeline(run: GameRun, seconds: float, base: list[str]) -> list[dict[str, Any]]:
    """Per WINDOW_S: offered and served (the load's tenants, and all), p95, errors and
    their rate, and the Gini over the trailing 30 s of what each tenant was served against
    what it was owed (its requests less its refusals for its own quota)."""
    n_windows = int(math.ceil(seconds / WINDOW_S))

    def slot(t: float) -> int:
        return math.floor(t / WINDOW_S)

    offered: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for at, tenant in run.arrivals:
        offered[slot(at - run.t0)][tenant] += 1
    for t, tenant, kind in run.refusals:
        if kind == "QUOTA":
            offered[slot(t)][tenant] -= 1  # not owed
    done: dict[int, list[Any]] = defaultdict(list)
    for d in run.done:
        done[slot(d.at - run.t0)].append(d)
    errors: dict[int, int] = defaultdict(int)
    for t, _ in run.error_at:
        errors[slot(t)] += 1
    requests: dict[int, int] = defaultdict(int)
    base_offered: dict[int, int] = defaultdict(int)
    for at, tenant in run.arrivals:
        requests[slot(at - run.t0)] += 1
        if tenant in base:
            base_offered[slot(at - run.t0)] += 1
    points = []
    trailing = int(30 / WINDOW_S)
    for w in range(n_windows):
        latencies = sorted(d.latency for d in done[w])
        served: dict[str, float] = defaultdict(float)
        owed: dict[str, float] = defaultdict(float)
        for back in range(max(0, w - trailing + 1), w + 1):
            for d in done[back]:
                served[d.tenant] += 1
            for tenant, count in offered[back].items():
                owed[tenant] += max(count, 0)
        points.append({
            "t": w * WINDOW_S,
            "offered_base": base_offered[w] / WINDOW_S,
            "served_base": sum(1 for d in done[w] if d.tenant in base) / WINDOW_S,
            "jobs_per_s": len(done[w]) / WINDOW_S,
            "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
            "errors": errors[w],
            "error_rate": errors[w] / requests[w] if requests[w] else 0.0,
            "gini": round(fairness_gini(served, owed, {}), 4)})
    return points


def healthy(point: dict[str, Any]) -> bool:
    return (point["served_base"] >= 0.8 * point["offered_base"] and point["errors"] == 0
            and (point["p95_ms"] is None or point["p95_ms"] < P95_SLO_MS))


def recoveries(faults: list[Fault], points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per fault: whether the load was hurt during it, and the time from its end to the
    first of two healthy windows in a row (served ≥ 80 % of offered for the load's
    tenants, no errors, p95 under the objective)."""
    found = {}
    for n, fault in enumerate(faults):
        # the next fault began as this one ended: what follows is not this one's recovery
        followed = n + 1 < len(faults) and faults[n + 1].start - fault.end < WINDOW_S
        during = [p for p in points if fault.start <= p["t"] + WINDOW_S and p["t"] < fault.end]
        after = [p for p in points if p["t"] + WINDOW_S > fault.end]
        recovered = next((a["t"] for a, b in zip(after, after[1:], strict=False)
                          if healthy(a) and healthy(b)), None)
        found[fault.name] = {
            "hurt": any(not healthy(p) for p in during),
            "recovered_s": None if recovered is None or followed
            else round(max(0.0, recovered - fault.end), 1),
            "followed": followed}
    return found


def attribute(faults: list[Fault], episodes: list[Episode],
              end: float) -> dict[str, dict[str, Any]]:
    """Per fault, the first alert whose condition started holding from its start until the
    next fault's start (or the end of the run): when it held and when it fired."""
    found = {}
    for n, fault in enumerate(faults):
        until = faults[n + 1].start if n + 1 < len(faults) else end
        mine = [e for e in episodes if fault.start <= e.pending < until]
        fired = [e for e in mine if e.firing is not None]
        first = fired[0] if fired else (mine[0] if mine else None)
        # one that began before and still held: not this fault's, but not silent either
        ongoing = sorted({e.alert for e in episodes if e.pending < fault.start
                          and (e.resolved is None or e.resolved > fault.start)})
        found[fault.name] = {
            "alert": first.alert if first else None,
            "pending_s": round(first.pending - fault.start, 1) if first else None,
            "firing_s": round(first.firing - fault.start, 1)
            if first and first.firing is not None else None,
            "ongoing": ongoing}
    return found


def slo_breaches(points: list[dict[str, Any]], run: GameRun) -> dict[str, Any]:
    """Minutes whose p95 or error rate breaks the objective, and 5-minute windows (stepped
    by a minute) whose Gini of served against owed does."""
    minutes: dict[int, list[float]] = defaultdict(list)
    for d in run.done:
        if d.at >= run.t0:
            minutes[int((d.at - run.t0) // 60)].append(d.latency)
    requests: dict[int, int] = defaultdict(int)
    for at, _ in run.arrivals:
        if at >= run.t0:
            requests[int((at - run.t0) // 60)] += 1
    errors: dict[int, int] = defaultdict(int)
    for t, _ in run.error_at:
        if t >= 0:
            errors[int(t // 60)] += 1
    p95 = {m: percentile(sorted(v), 95) * 1000 for m, v in minutes.items()}
    gini_windows = []
    last = int(points[-1]["t"] // 60) if points else 0
    for m in range(0, max(1, last - 3)):
        served: dict[str, float] = defaultdict(float)
        for d in run.done:
            if m * 60 <= d.at - run.t0 < (m + 5) * 60:
                served[d.tenant] += 1
        owed: dict[str, float] = defaultdict(float)
        for at, tenant in run.arrivals:
            if m * 60 <= at - run.t0 < (m + 5) * 60:
                owed[tenant] += 1
        for t, tenant, kind in run.refusals:
            if kind == "QUOTA" and m * 60 <= t < (m + 5) * 60:
                owed[tenant] -= 1
        gini_windows.append(fairness_gini(served, owed, {}))
    return {
        "p95_minutes": sorted(m for m, v in p95.items() if v >= P95_SLO_MS),
        "error_minutes": sorted(m for m in requests
                                if errors[m] / max(requests[m], 1) >= ERROR_SLO),
        "gini_5min_max": round(max(gini_windows, default=0.0), 4),
        "gini_5min_breaches": sum(1 for g in gini_windows if g > GINI_SLO),
        "p95_by_minute_ms": {m: round(v, 1) for m, v in sorted(p95.items())},
    }


def plot(points: list[dict[str, Any]], service: list[dict[str, float]], faults: list[Fault],
         path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [p["t"] for p in points]
    figure, axes = plt.subplots(4, 1, figsize=(9, 8), sharex=True)
    axes[0].plot(t, [p["jobs_per_s"] for p in points], label="served, all")
    axes[0].plot(t, [p["offered_base"] for p in points], color="grey", linewidth=0.8,
                 label="offered, load tenants")
    axes[0].set_ylabel("jobs/s")
    axes[0].legend(loc="upper right", fontsize=7)
    axes[1].plot(t, [p["p95_ms"] if p["p95_ms"] is not None else math.nan for p in points],
                 color="tab:orange")
    axes[1].axhline(P95_SLO_MS, color="grey", linestyle="--", linewidth=0.8)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("p95 ms")
    axes[2].plot(t, [p["gini"] for p in points], color="tab:green", label="clients, 30 s")
    service = [s for s in service if s["t"] >= 0]
    axes[2].plot([s["t"] for s in service], [s["gini"] for s in service], color="tab:olive",
                 linewidth=0.8, label="service, live")
    axes[2].axhline(GINI_SLO, color="grey", linestyle="--", linewidth=0.8)
    axes[2].set_ylabel("Gini")
    axes[2].legend(loc="upper right", fontsize=7)
    axes[3].plot(t, [100 * p["error_rate"] for p in points], color="tab:red")
    axes[3].set_ylabel("errors %")
    axes[3].set_xlabel("seconds")
    colours = {"quota": "tab:purple", "network": "tab:blue", "drift": "tab:brown",
               "worker": "tab:red"}
    for axis in axes:
        for fault in faults:
            axis.axvspan(fault.start, fault.end, color=colours[fault.kind], alpha=0.15)
    for fault in faults:
        axes[0].annotate(fault.name, (fault.start, 1.0), xycoords=("data", "axes fraction"),
                         fontsize=6, rotation=90, va="top")
    figure.suptitle("Game day: PSI soak with faults (shaded)")
    figure.tight_layout()
    figure.savefig(path, dpi=72)
    plt.close(figure)


# --- the postmortem -------------------------------------------------------------------------

def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:g} s"


def _ongoing(credited: dict[str, Any]) -> str:
    return (f"; already holding: {', '.join(credited['ongoing'])}"
            if credited.get("ongoing") else "")


def _merged(notes: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """Notes of the same text within 10 s of each other, as one line with a count."""
    merged: list[tuple[float, str, float, int]] = []
    for t, text in sorted(notes):
        if merged and merged[-1][1] == text and t - merged[-1][2] <= 10:
            first, _, _, count = merged[-1]
            merged[-1] = (first, text, t, count + 1)
        else:
            merged.append((t, text, t, 1))
    return [(first, text if count == 1 else f"{text} ×{count} (to {last:.0f} s)")
            for first, text, last, count in merged]


def postmortem(result: dict[str, Any], faults: list[Fault], episodes: list[Episode],
               png: str) -> str:
    figures, check, slo = result["figures"], result["graph"], result["slo"]
    attributed, recovered = result["time_to_alert"], result["recovery"]
    lines = [f"# Game day: PSI under faults — {result['date']}", "",
             f"Command: `{result['command']}`  ",
             f"Load average (1/5/15 min) before {result['load_before']}, highest during "
             f"{result['load_peak']}, after {result['load_after']} "
             f"({os.cpu_count()} cores, shared with other work).", "",
             "Everything ran on loopback: an embedded database, a fault-injecting TCP proxy "
             "in front of its Bolt port, one API process without an in-process worker and "
             f"{result['workers']} `trustfabric worker` processes, all on the proxy. The load's "
             f"{len(result['tenants'])} tenants asked {result['rps']:g} jobs/s (one "
             f"{result['skew']:g}× the others), the flood tenant {result['flood_rps']:g}/s "
             f"during its fault against a quota of {result['flood_quota']}.", "",
             f"![throughput, p95, Gini and errors with the faults shaded]({png})", "",
             "## Faults", "",
             "| fault | from–to | alert (condition held → fired) | first signal in the "
             "metrics | detected | load hurt | recovered after the end |",
             "|---|---|---|---|---|---|---|"]
    for fault in faults:
        a, r = attributed[fault.name], recovered[fault.name]
        alert = (f"{a['alert']} ({_s(a['pending_s'])} → {_s(a['firing_s'])})"
                 if a["alert"] else "none") + _ongoing(a)
        detected = _s(round(fault.detected - fault.start, 1)) if fault.detected else "—"
        sig = result["time_to_signal"][fault.name]
        signal_text = (f"{sig['alert']} ({_s(sig['firing_s'])})" if sig["alert"]
                       else "none") + _ongoing(sig)
        lines.append(f"| {fault.name} | {fault.start:g}–{fault.end:g} s | {alert} | "
                     f"{signal_text} | {detected} | {'yes' if r['hurt'] else 'no'} | "
                     f"{'— (the next fault began)' if r['followed'] else _s(r['recovered_s'])} |")
    lines += ["", "Alert rules evaluated (`ops/prometheus/alerts.yml`, by `bench/alerts.py` "
              f"over the scrapes every {SCRAPE_S:g} s of the API and each worker): "
              + ", ".join(f"`{r}`" for r in result["rules_evaluated"]) + "."
              + (" Not evaluated: " + ", ".join(result["rules_skipped"]) + "."
                 if result["rules_skipped"] else ""), "",
              "Signals are not alert rules: expressions over the same scrapes, evaluated with "
              "no `for:`, to show what the metrics said during each fault (the first to hold "
              "after the fault began, before the next one began): "
              + "; ".join(f"{name} `{expr}`" for name, expr in result["signals"].items()) + ".",
              ""]
    lines += ["## Timeline", "", "| t (s) | event |", "|---|---|"]
    events: list[tuple[float, str]] = []
    for fault in faults:
        events.append((fault.start, f"**{fault.name}** starts"))
        events.append((fault.end, f"**{fault.name}** ends. " + "; ".join(fault.notes)))
        if fault.detected is not None:
            events.append((fault.detected, "policyDrift shows the drift"))
        if (r := recovered[fault.name]["recovered_s"]) is not None:
            events.append((fault.end + r, f"load healthy again after {fault.name}"))
    for e in episodes:
        events.append((e.pending, f"{e.alert} condition holds"))
        if e.firing is not None:
            events.append((e.firing, f"{e.alert} **fires** ({e.severity})"))
        if e.resolved is not None:
            events.append((e.resolved, f"{e.alert} resolved"))
    events += _merged(result["notes"])
    lines += [f"| {t:.0f} | {text} |" for t, text in sorted(events, key=lambda e: e[0])]
    lines += ["", "## Figures", "", "| figure | value | goal |", "|---|---|---|",
              f"| jobs offered / served (measured run, all tenants) | {figures['offered']} / "
              f"{figures['completed']} | |",
              f"| p50 / p95 / p99 ms | {figures['p50_ms']} / {figures['p95_ms']} / "
              f"{figures['p99_ms']} | p95 < {P95_SLO_MS:g} |",
              f"| errors (kinds) | {figures['errors']} ({figures['error_kinds']}) | |",
              f"| errors outside the fault windows | {figures['errors_outside_faults']} | 0 |",
              f"| refused for quota / shed for load | {figures['refused_quota']} / "
              f"{figures['refused_overload']} | |",
              f"| Gini over the run (served against owed) | {figures['gini']} | ≤ {GINI_SLO} |",
              f"| SLO breaches: minutes with p95 ≥ {P95_SLO_MS:g} ms | "
              f"{len(slo['p95_minutes'])} {slo['p95_minutes']} | 0 |",
              f"| SLO breaches: minutes with error rate ≥ {100 * ERROR_SLO:g} % | "
              f"{len(slo['error_minutes'])} {slo['error_minutes']} | 0 |",
              f"| SLO breaches: 5-min windows with Gini > {GINI_SLO} (max) | "
              f"{slo['gini_5min_breaches']} ({slo['gini_5min_max']}) | 0 |",
              f"| jobs accepted (clients) / in the graph | {check['accepted_by_clients']} / "
              f"{check['jobs_in_graph']} | |",
              f"| lost (accepted, not in the graph) | {check['lost_count']} | 0 |",
              f"| left unfinished / in the queue | {check['unfinished']} / "
              f"{check['left_in_queue']} | 0 |",
              f"| duplicated: jobs per key, final events | {check['duplicate_keys']}, "
              f"{check['duplicate_final_events']} | 0 |",
              f"| DONE without a readable bundle matching its hash | "
              f"{check['done_without_bundle']} | 0 |",
              f"| DONE / FAILED | {check['done']} / {check['failed']} | |",
              f"| DONE events the clients never heard (subscription drops) | "
              f"{check['not_heard_by_clients']} | |", ""]
    lines += ["## What held and what did not", ""]
    lines += [f"- {item}" for item in result["verdict"]]
    lines.append("")
    return "\n".join(lines)


def verdict(result: dict[str, Any], faults: list[Fault]) -> list[str]:
    said = []
    check, slo = result["graph"], result["slo"]
    lost_or_dup = (check["lost_count"] + check["unfinished"] + check["duplicate_keys"]
                   + check["done_without_bundle"] + check["duplicate_final_events"]
                   + check["left_in_queue"])
    said.append(("Held" if not lost_or_dup else "Did not hold") + ": every accepted job "
                f"finished exactly once ({check['done']} DONE, {check['failed']} FAILED; lost "
                f"{check['lost_count']}, unfinished {check['unfinished']}, duplicated "
                f"{check['duplicate_keys'] + check['duplicate_final_events']}, DONE without "
                f"a readable bundle {check['done_without_bundle']}).")
    for fault in faults:
        a, r = result["time_to_alert"][fault.name], result["recovery"][fault.name]
        if fault.kind == "drift":
            # the API answers at once; the alert is what pages (or opens the ticket)
            seen = round(fault.detected - fault.start, 1) if fault.detected else None
            mtta = a["firing_s"]
            how = (f"policyDrift (read every {DRIFT_POLL_S:g} s) showed it after {_s(seen)}; "
                   + (f"{a['alert']} fired after {_s(mtta)}" if mtta is not None
                      else "no alert fired"))
        elif a["firing_s"] is not None:
            mtta, how = a["firing_s"], f"{a['alert']} fired after {_s(a['firing_s'])}"
        else:
            mtta = None
            how = ("no alert fired" + (f" ({a['alert']}'s condition held after "
                                       f"{_s(a['pending_s'])} but not for its `for:`)"
                                       if a["alert"] else ""))
        met = mtta is not None and mtta < MTTA_GOAL_S
        impact = ("the load was hurt" if r["hurt"] else "the load was not hurt")
        back = ("the next fault began as it ended" if r["followed"]
                else f"healthy {_s(r['recovered_s'])} after it ended"
                if r["recovered_s"] is not None else "not healthy again before the run ended")
        held = result["held_jobs"].get(fault.name)
        if held is not None:
            back += (f"; the {held['jobs']} jobs it held finished (heard by clients "
                     f"{held['heard']}) "
                     f"{', '.join(f'{x:g}' for x in held['latency_s']) or '—'} s after they were sent"
                     if held["jobs"] else "; it held no leased job when killed")
        said.append(f"{'Held' if met else 'Did not hold'}: {fault.name} — {how} (goal "
                    f"< {MTTA_GOAL_S:g} s); {impact}; {back}.")
    breaches = len(slo["p95_minutes"]) + len(slo["error_minutes"]) + slo["gini_5min_breaches"]
    def during(minute: int) -> str:
        names = [f.name for f in faults  # or ended in the half minute before it
                 if f.start < (minute + 1) * 60 and f.end + 30 > minute * 60]
        return f"minute {minute} ({', '.join(names) or 'no fault'})"

    # The proposed budget: a minute that overlaps a fault of the network to the database,
    # or the minute after it, is charged to that fault; requests waiting on an unreachable
    # database cannot meet the p95 objective, whatever the service does.
    def budgeted(minute: int) -> bool:
        return any(f.kind == "network" and f.start < (minute + 1) * 60
                   and f.end + 60 > minute * 60 for f in faults)

    outside = slo["gini_5min_breaches"] + sum(
        not budgeted(m) for m in (*slo["p95_minutes"], *slo["error_minutes"]))
    said.append(("Held" if not outside else "Did not hold") + f": SLO breaches outside the "
                f"network faults' budget (their minutes and the minute after) {outside}; "
                f"inside it {breaches - outside}.")

    said.append(("Held" if not breaches else "Did not hold") + f": SLO breaches {breaches} "
                f"at {result['rps']:g} jobs/s — p95 ≥ {P95_SLO_MS:g} ms in "
                f"{', '.join(during(m) for m in slo['p95_minutes']) or 'no minute'}; error rate "
                f"≥ {100 * ERROR_SLO:g} % in "
                f"{', '.join(during(m) for m in slo['error_minutes']) or 'no minute'}; "
                f"{slo['gini_5min_breaches']} five-minute windows with Gini > {GINI_SLO}.")
    return said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rps", type=float, default=20, help="the load's jobs/s")
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--skew", type=float, default=3.0)
    parser.add_argument("--flood-rps", type=float, default=60)
    parser.add_argument("--flood-quota", type=int, default=300, help="requests/min")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="the schedule's times (and the run's length) times this")
    parser.add_argument("--duration", type=duration, default=None,
                        help="the measured run (default 540 s times --time-scale)")
    parser.add_argument("--warmup", type=duration, default=duration("20s"))
    parser.add_argument("--drain", type=duration, default=duration("40s"),
                        help="after the load: how long to wait for jobs still running")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--crypto-processes", type=int, default=1, help="per worker")
    parser.add_argument("--selectors", type=int, default=16)
    parser.add_argument("--dataset-items", type=int, default=10_000)
    parser.add_argument("--pool", type=int, default=400, help="precomputed client requests")
    parser.add_argument("--db-heap", help=DB_HEAP_HELP)
    parser.add_argument("--rules", type=Path, default=RULES)
    parser.add_argument("--out", type=Path, help="directory for the postmortem, plot, JSON")
    parser.add_argument("--render", type=Path, metavar="DIR",
                        help="only write the postmortem and plot again from DIR/gameday.json")
    args = parser.parse_args()
    if args.render:
        render(args.render)
        return
    args.duration = args.duration or round(540 * args.time_scale)
    faults = [f for f in schedule(args.time_scale) if f.end <= args.duration]
    rules = load_rules(args.rules)
    out = args.out or RESULTS_DIR / f"gameday-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    cleanup_on_sigterm()
    load_before = os.getloadavg()
    tenants = [f"gd{n}" for n in range(args.tenants)]
    print(f"preparing {args.pool} client requests …", flush=True)
    pool = [PsiClient.prepare([f"customer-{(n * 7 + i) * 3}@example.com"
                               for i in range(args.selectors)]).request
            for n in range(args.pool)]
    with tempfile.TemporaryDirectory(prefix="tf-gameday-") as tmp:
        workdir = Path(tmp)
        with embedded_database(workdir, args.db_heap) as target:
            dataset, tokens = asyncio.run(pilot(target, workdir, args.dataset_items, tenants,
                                                Quota(args.flood_quota, 60,
                                                      max(1, args.flood_quota // 60 * 2))))
            proxy, proxy_port, control = start_proxy(
                int(target.uri.rsplit(":", 1)[1]), workdir)
            proxied = Target(f"bolt://127.0.0.1:{proxy_port}", target.user, target.password,
                             target.database, None)
            dep = Deployment(target, proxied, workdir, control, dataset=dataset,
                             tokens=tokens)
            dep.processes["proxy"] = proxy
            try:
                for n in range(args.workers):
                    dep.start_worker(f"worker{n}", args.crypto_processes)
                port = free_port()
                dep.processes["api"] = start_app(proxied, 1, port, workdir, {
                    "TF_DATA_DIR": str(workdir), "TF_PSI_WORKER_IN_PROCESS": "false"})
                dep.url = f"http://127.0.0.1:{port}"
                asyncio.run(policy_setup(dep))
                print(f"driving {args.rps:g} jobs/s for {args.warmup:g} s warm-up and "
                      f"{args.duration:g} s with {len(faults)} faults …", flush=True)
                run, seen = uvloop.run(drive(dep, args, faults, pool))
                check = asyncio.run(graph_check(target, run, settle_s=90,
                                                packs=PackStore(workdir / "results")))
            finally:
                dep.stop()
    measured_times = [t for t in seen.scrapes.times() if t >= 0]
    episodes = alert_episodes(rules, seen.scrapes, measured_times)
    signals = alert_episodes([Rule(name, expr, 0.0, "signal", parse(expr))
                              for name, expr in SIGNALS.items()], seen.scrapes, measured_times)
    points = timeline(run, args.duration, tenants)
    measured = [d for d in run.done if d.at >= run.t0]
    latencies = sorted(d.latency for d in measured)
    errors_outside = sum(1 for t, _ in run.error_at if t >= 0 and not any(
        f.start <= t < f.end + 30 for f in faults))
    offered_measured = [a for a in run.arrivals if a[0] >= run.t0]
    served: dict[str, float] = defaultdict(float)
    for d in measured:
        served[d.tenant] += 1
    owed: dict[str, float] = defaultdict(float)
    for _, tenant in offered_measured:
        owed[tenant] += 1
    for t, tenant, kind in run.refusals:
        if kind == "QUOTA" and t >= 0:
            owed[tenant] -= 1

    def ms(p: float) -> float | None:
        return round(percentile(latencies, p) * 1000, 1) if latencies else None

    result: dict[str, Any] = {
        "date": f"{datetime.now():%Y-%m-%d %H:%M}",
        "command": "python -m bench.gameday " + " ".join(sys.argv[1:]),
        "load_before": [round(v, 2) for v in load_before],
        "load_peak": [round(max(v[i] for _, v in seen.load_average), 2) for i in range(3)]
        if seen.load_average else None,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "rps": args.rps, "skew": args.skew, "flood_rps": args.flood_rps,
        "flood_quota": f"{args.flood_quota}/min", "tenants": tenants, "workers": args.workers,
        "figures": {
            "offered": len(offered_measured), "completed": len(measured),
            "p50_ms": ms(50), "p95_ms": ms(95), "p99_ms": ms(99),
            "errors": sum(1 for t, _ in run.error_at if t >= 0),
            "error_kinds": dict(sorted(
                {k: sum(1 for t, e in run.error_at if e == k and t >= 0)
                 for _, k in run.error_at}.items())),
            "errors_outside_faults": errors_outside,
            "refused_quota": sum(1 for t, _, k in run.refusals if k == "QUOTA" and t >= 0),
            "refused_overload": sum(1 for t, _, k in run.refusals if k == "OVERLOADED" and t >= 0),
            "gini": round(fairness_gini(served, owed, {}), 4),
        },
        "graph": check,
        "slo": slo_breaches(points, run),
        "duration": args.duration,
        "signals": SIGNALS,
        "signal_episodes": [asdict(e) for e in signals],
        "rules_evaluated": [r.name for r in rules if r.tree is not None],
        "rules_skipped": [f"{r.name} ({r.problem})" for r in rules if r.tree is None],
        "notes": sorted(seen.notes),
        "faults": [asdict(f) for f in faults],
        "episodes": [asdict(e) for e in episodes],
        "timeline": points,
        "service_timeline": seen.service,
        "drift_polls_with_drift": [(t, d) for t, d in seen.drift_polls if d],
    }
    latency_of = {d.job_id: d.latency for d in run.done}
    result["held_jobs"] = {f.name: {
        "jobs": len(f.held_jobs), "heard": sum(1 for j in f.held_jobs if j in latency_of),
        "latency_s": [round(latency_of[j], 1) for j in f.held_jobs if j in latency_of]}
        for f in faults if f.kind == "worker"}
    finish(result, faults, episodes, signals, out)


def finish(result: dict[str, Any], faults: list[Fault], episodes: list[Episode],
           signals: list[Episode], out: Path) -> None:
    """Credits the faults with alerts, signals and recoveries, and writes it all."""
    result["time_to_alert"] = attribute(faults, episodes, result["duration"])
    result["time_to_signal"] = attribute(faults, signals, result["duration"])
    result["recovery"] = recoveries(faults, result["timeline"])
    result["verdict"] = verdict(result, faults)
    plot(result["timeline"], result["service_timeline"], faults, out / "gameday.png")
    (out / "gameday.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (out / "postmortem.md").write_text(postmortem(result, faults, episodes, "gameday.png"))
    print("\n".join(result["verdict"]))
    print(f"\nwritten to {out}/ (postmortem.md, gameday.png, gameday.json)")


def render(out: Path) -> None:
    """The postmortem and the plot again, from a run's gameday.json in `out`."""
    result = json.loads((out / "gameday.json").read_text())
    result.setdefault("duration", result["timeline"][-1]["t"] + WINDOW_S)
    faults = [Fault(**f) for f in result["faults"]]
    finish(result, faults, [Episode(**e) for e in result["episodes"]],
           [Episode(**e) for e in result["signal_episodes"]], out)


async def policy_setup(dep: Deployment) -> None:
    """The policy tenant's gate: v1 declared and deployed in prod, v2 (an enforced rule
    removed) submitted, to be reported deployed by the drift fault."""
    token = dep.tokens[POLICY_TENANT]
    async with aiohttp.ClientSession() as session:
        for version, rules in (("v1", GATE_V1), ("v2", GATE_V2)):
            answer = await gql(session, dep.url, token, SUBMIT_POLICY, input={
                "policyId": "gate", "version": version, "rules": rules})
            if answer.get("errors"):
                raise RuntimeError(f"policy {version} refused: {answer['errors']}")
        answer = await gql(session, dep.url, token, SET_ENV, input={
            "name": "prod", "policyId": "gate", "declared": "v1", "deployed": "v1"})
        if answer.get("errors"):
            raise RuntimeError(f"environment refused: {answer['errors']}")


if __name__ == "__main__":
    main()
