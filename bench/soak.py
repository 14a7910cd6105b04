"""PSI soak: drives PSI jobs through the public GraphQL API at a set rate for a set time,
from several tenants with skewed demand, and reports throughput, latency, errors, fairness
and CPU, as figures, JSON and a PNG.

    python -m bench.soak --rps 550 --duration 45m [--tenants 5 --skew 10 --selectors 16]
    python -m bench.soak --ramp 300:700:50 [--step 60s]    served against offered, step by step
    python -m bench.soak --url URL --tokens FILE --operator-token FILE [--rps …]

It starts its own service (database, pilot, API), or drives a running one at --url.

Requests are made by real OpenMined clients before the clock starts (blinding is the
client's cost). Arrivals are open-loop: a slow service does not slow the offered load. A
job's latency runs from sending its mutation to its DONE event, which commits with its
signed bundle. QUOTA_EXCEEDED and back-pressure refusals are counted apart from errors.
"""

import argparse
import asyncio
import base64
import contextlib
import math
import os
import re
import secrets
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench.common import (
    DB_HEAP_HELP,
    Compaction,
    Pause,
    PsiService,
    cleanup_on_sigterm,
    cpu_seconds,
    database_compactions,
    database_log,
    database_pauses,
    descendants,
    machine_ticks,
    machine_usage,
    percentile,
    print_table,
    psi_service,
    targeted_pilot,
    write_json,
)
from trustfabric.client.psi import FINAL, PsiClient, job_events
from trustfabric.domain.controls import Quota
from trustfabric.domain.fairness.shares import fairness_gini
from trustfabric.domain.psi import protocol as psi

REQUEST = "mutation($input: RequestPsiInput!) { requestPsi(input: $input) { id } }"
PARTNER = "soakpartner"
# a service that outlives a run would answer a later run's requests as replays of this one's
RUN_ID = f"soak-{secrets.token_hex(4)}"


def duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text)
    if not match:
        raise argparse.ArgumentTypeError("a duration like 600, 90s, 10m or 1h")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


@dataclass(frozen=True)
class Rates:
    """The offered load: `rates` jobs/s, one after the other, `step_s` seconds each."""

    rates: tuple[float, ...]
    step_s: float

    @classmethod
    def ramp(cls, text: str, step_s: float) -> "Rates":
        """From `START:STOP:STEP` jobs/s, both ends included."""
        try:
            first, last, by = (float(x) for x in text.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError("a ramp like 300:700:50") from None
        if not 0 < first <= last or by <= 0:
            raise argparse.ArgumentTypeError("a ramp rises: 0 < START <= STOP, STEP > 0")
        return cls(tuple(first + n * by for n in range(int((last - first) / by + 1e-9) + 1)),
                   step_s)

    @property
    def seconds(self) -> float:
        return len(self.rates) * self.step_s

    def due(self, elapsed: float) -> int:
        """Arrivals due in the first `elapsed` seconds."""
        whole = min(int(elapsed // self.step_s), len(self.rates))
        done = sum(self.rates[:whole]) * self.step_s
        if whole < len(self.rates):
            done += (elapsed - whole * self.step_s) * self.rates[whole]
        return int(done)


def demand_shares(names: list[str], skew: float) -> dict[str, float]:
    """The first tenant asks `skew` times as much as each of the others."""
    weights = {name: (skew if n == 0 else 1.0) for n, name in enumerate(names)}
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}


@dataclass(frozen=True)
class Done:
    at: float  # monotonic, when the DONE event arrived
    tenant: str
    latency: float
    job_id: str
    sent_wall: float  # wall clock, to set against the job's own timestamps


class Run:
    """Everything the load produced."""

    def __init__(self) -> None:
        self.sent: dict[str, tuple[float, float]] = {}  # job id → (monotonic, wall) sent
        self.tenant_of: dict[str, str] = {}
        self.done: list[Done] = []
        self.arrivals: list[tuple[float, str]] = []  # (monotonic, tenant) of every request
        self.offered: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)
        self.refused_at: list[float] = []  # monotonic
        self.errors: list[str] = []
        self.early: dict[str, float] = {}  # DONE before the mutation's answer came back
        self.service: list[dict[str, float]] = []  # the service's own view, per window

    def refusal(self, tenant: str, kind: str, sent: float) -> None:
        """A deliberate refusal (`kind`: QUOTA or OVERLOADED), not an error."""
        self.refused[tenant] += 1
        self.refused_at.append(sent)

    def failed(self, code: str, sent: float) -> None:
        self.errors.append(code)

    def took(self, job_id: str, tenant: str, sent: float, wall: float) -> None:
        """The service accepted the job sent at `sent` (monotonic) and `wall`."""
        self.sent[job_id] = (sent, wall)
        self.tenant_of[job_id] = tenant
        if job_id in self.early:
            self.finished(job_id, self.early.pop(job_id))

    def finished(self, job_id: str, at: float) -> None:
        if job_id not in self.sent:
            self.early[job_id] = at
            return
        sent, wall = self.sent.pop(job_id)
        self.done.append(Done(at, self.tenant_of[job_id], at - sent, job_id, wall))


async def listen(session: aiohttp.ClientSession, url: str, token: str, run: Run) -> None:
    async for event in job_events(session, url, token, statuses=sorted(FINAL)):
        run.finished(event["jobId"], time.monotonic())


async def submit(session: aiohttp.ClientSession, url: str, token: str, tenant: str,
                 dataset: str, request: str, idempotency_key: str, run: Run) -> None:
    sent, wall = time.monotonic(), time.time()
    run.offered[tenant] += 1
    run.arrivals.append((sent, tenant))
    body = {"query": REQUEST, "variables": {"input": {
        "datasetId": dataset, "mode": "PSI", "request": request,
        "idempotencyKey": idempotency_key}}}
    try:
        async with session.post(f"{url}/graphql", json=body,
                                headers={"authorization": f"Bearer {token}"}) as response:
            payload = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        run.failed(type(error).__name__, sent)
        return
    if not isinstance(payload, dict):  # an empty body decodes to None
        run.failed("NoJSONObject", sent)
        return
    if payload.get("errors"):
        extensions = payload["errors"][0].get("extensions", {})
        if extensions.get("code") == "QUOTA_EXCEEDED":
            run.refusal(tenant, "QUOTA", sent)
        elif extensions.get("reason") == "OVERLOADED":
            run.refusal(tenant, "OVERLOADED", sent)
        else:
            run.failed(extensions.get("code", "?"), sent)
        return
    run.took(payload["data"]["requestPsi"]["id"], tenant, sent, wall)


def gauge(metrics: str, name: str) -> float:
    """An unlabelled gauge's value in /metrics text (0 where it is absent)."""
    found = re.search(rf"^{name} (\S+)$", metrics, re.M)
    return float(found[1]) if found else 0.0


async def watch_service(session: aiohttp.ClientSession, url: str, start: float, window: float,
                        run: Run, db_pids: list[int]) -> None:
    """Every window, from the service's /metrics: how late its event loop wakes, the time
    its garbage collector stopped it, the jobs it sees served, its live Gini, the jobs
    queued, and the database time per query and per second in that window (to tell a
    service short of CPU from a database slowing down as the jobs pile up); and from
    /proc, the cores the database's processes used (`db_pids`, when it runs here): what it
    spends, where its time per query also counts its waits for the machine's cores."""
    async def metrics() -> str:
        async with session.get(f"{url}/metrics") as response:
            return await response.text()

    def gc_seconds(text: str) -> float:
        return sum(float(m[1]) for m in re.finditer(
            r'^tf_gc_pause_seconds_sum\{[^}]*\} (\S+)$', text, re.M))

    first = await metrics()
    before, gc_before = graph_query_totals(first), gc_seconds(first)
    db_cpu_before, read_at = cpu_seconds(db_pids), time.monotonic()
    while True:
        await asyncio.sleep(window)
        try:
            text = await metrics()
        except (aiohttp.ClientError, TimeoutError):  # a busy service: this window goes blank
            continue
        # a blank window before this one: the figures below span both
        db_cpu, now = cpu_seconds(db_pids), time.monotonic()
        elapsed = now - read_at
        # (a process that exited takes its CPU with it: never below none)
        db_cores = max(0.0, db_cpu - db_cpu_before) / elapsed
        db_cpu_before, read_at = db_cpu, now
        totals = graph_query_totals(text)
        window_queries = {q: (v.get("count", 0) - before.get(q, {}).get("count", 0),
                              v.get("sum", 0) - before.get(q, {}).get("sum", 0))
                          for q, v in totals.items()}
        time_s = sum(s for _, s in window_queries.values())
        count = sum(n for n, _ in window_queries.values())
        before = totals
        gc_now = gc_seconds(text)
        gc_pause, gc_before = gc_now - gc_before, gc_now
        run.service.append({
            "t": round(time.monotonic() - start),
            "loop_lag_ms": round(1000 * gauge(text, "tf_event_loop_lag_seconds"), 1),
            # the service's own view of what it serves, and its live Gini (last 60 s)
            "jobs_per_s": round(gauge(text, "tf_psi_service_rate"), 1),
            "gini": round(gauge(text, "tf_psi_fairness_gini"), 3),
            "queued": sum(float(m[1]) for m in re.finditer(
                r"^tf_psi_queue_depth\{[^}]*\} (\S+)$", text, re.M)),
            "db_ms_per_query": round(1000 * time_s / max(count, 1), 2),
            "db_s_per_s": round(time_s / elapsed, 3),
            **({"db_cores": round(db_cores, 3)} if db_pids else {}),
            "gc_ms_per_s": round(1000 * gc_pause / elapsed, 1),
            # which statement slows down, if the database does
            "query_mean_ms": {q: round(1000 * s / n, 2)
                              for q, (n, s) in window_queries.items() if n}})


@dataclass(frozen=True)
class Stalls:
    """A host stall, rehearsed: every `every` s the service, its crypto processes and the
    database (or the database alone) are stopped (SIGSTOP) for `length` s. Requests sent
    meanwhile wait in the sockets and arrive at once, as they do when a shared host stops
    the service."""

    every: float
    length: float
    pids: Callable[[], list[int]]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every - self.length)
            stopped = self.pids()
            try:
                self._signal(stopped, signal.SIGSTOP)
                await asyncio.sleep(self.length)
            finally:  # cancelled or not, nothing stays stopped
                self._signal(stopped, signal.SIGCONT)

    @staticmethod
    def _signal(pids: list[int], signum: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # a crypto process that ended
                os.kill(pid, signum)


async def drive(url: str, dataset: str, tokens: dict[str, str], shares: dict[str, float],
                rates: Rates, pool: list[str], phase: str, window: float = 10.0,
                stalls: Stalls | None = None, db_pids: list[int] | None = None
                ) -> tuple[Run, float]:
    run = Run()
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        listeners = [asyncio.create_task(listen(session, url, token, run))
                     for token in tokens.values()]
        await asyncio.sleep(1.0)
        tenants, cumulative = list(shares), []
        total = 0.0
        for tenant in tenants:
            total += shares[tenant]
            cumulative.append(total)
        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        watcher = asyncio.create_task(watch_service(session, url, start, window, run,
                                                    db_pids or []))
        stalling = asyncio.create_task(stalls.run()) if stalls else None
        n = 0
        while (now := time.monotonic()) - start < rates.seconds:
            due = rates.due(now - start)
            while n < due:  # open loop: every arrival due by now is sent now
                position = (n * 0.6180339887) % 1.0  # spreads tenants by their shares
                tenant = tenants[next(i for i, c in enumerate(cumulative) if position < c)]
                key = f"{RUN_ID}-{tenant}-{phase}-{n}"
                task = asyncio.create_task(submit(session, url, tokens[tenant], tenant, dataset,
                                                  pool[n % len(pool)], key, run))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.sleep(0.002)
        if stalling:
            stalling.cancel()
            await asyncio.gather(stalling, return_exceptions=True)
        await asyncio.gather(*tasks)
        drain_until = time.monotonic() + 10
        while run.sent and time.monotonic() < drain_until:
            await asyncio.sleep(0.1)
        for listener in [*listeners, watcher]:
            listener.cancel()
    return run, start


def counts(tenants: Any) -> dict[str, float]:
    tally: dict[str, float] = defaultdict(float)
    for tenant in tenants:
        tally[tenant] += 1
    return tally


def report(run: Run, start: float, seconds: float, shares: dict[str, float],
           window: float) -> dict[str, Any]:
    """Figures over the measured window. Each timeline point's Gini compares what each
    tenant was served in that window with its max-min fair share of the total, given what
    it asked for in that window (the design notes' definition)."""
    latencies = sorted(d.latency for d in run.done)
    in_time = [d for d in run.done if d.at - start <= seconds + 1]
    offered = sum(run.offered.values())
    served = counts(d.tenant for d in run.done)
    timeline = []
    # one pass over each list: filtering them again for every window took most of an hour
    # at the end of a 75-minute run
    done_in: dict[int, list[Done]] = defaultdict(list)
    for d in run.done:
        done_in[math.floor((d.at - start) / window)].append(d)
    asked_in: dict[int, list[str]] = defaultdict(list)
    for at, tenant in run.arrivals:
        asked_in[math.floor((at - start) / window)].append(tenant)
    for n, begin in enumerate(range(0, int(seconds), int(window))):
        bucket, asked = done_in[n], counts(asked_in[n])
        lat = sorted(d.latency for d in bucket)
        timeline.append({"t": begin, "jobs_per_s": len(bucket) / window,
                         "p95_ms": round(percentile(lat, 95) * 1000, 1) if lat else None,
                         "gini": round(fairness_gini(counts(d.tenant for d in bucket), asked,
                                                     {}), 4)})
    lost = len(run.sent)
    errors = len(run.errors) + lost

    def ms(p: float, ordered: list[float] = latencies) -> float | None:
        return round(percentile(ordered, p) * 1000, 1) if ordered else None

    by_tenant: dict[str, list[float]] = defaultdict(list)
    for done in run.done:
        by_tenant[done.tenant].append(done.latency)

    return {
        "offered": offered, "completed": len(run.done),
        "jobs_per_s": round(len(in_time) / seconds, 1),
        "p50_ms": ms(50), "p95_ms": ms(95), "p99_ms": ms(99),
        "errors": errors, "error_rate": round(errors / max(offered, 1), 5),
        "error_kinds": sorted(set(run.errors))[:10], "never_finished": lost,
        "refused": dict(run.refused), "served": dict(served),
        "offered_by_tenant": dict(run.offered),
        # a fair queue shares out the waiting too: whose jobs wait longest
        "p95_ms_by_tenant": {t: ms(95, sorted(lat)) for t, lat in by_tenant.items()},
        "gini": round(fairness_gini(served, {t: run.offered[t] for t in shares}, {}), 4),
        "gini_worst_window": max((p["gini"] for p in timeline), default=None),
        "timeline": timeline,
        "service_timeline": run.service,
    }


def stretches(result: dict[str, Any], seconds: float = 300.0) -> dict[str, Any]:
    """What a long run must hold: jobs/s served in each whole `seconds` stretch, and the
    database's time per query in the first and the last stretch (flat within 20 % when
    nothing a finished job leaves slows the hot paths); and, where the database runs here,
    its CPU a served job over the same stretches: what it spends, without its waits for
    the machine's cores, which its time per query counts too."""
    points = result["timeline"]
    window = points[1]["t"] - points[0]["t"] if len(points) > 1 else seconds
    served: dict[int, list[float]] = defaultdict(list)
    for point in points:
        served[int(point["t"] // seconds)].append(point["jobs_per_s"])
    whole = [round(sum(v) / len(v), 1) for _, v in sorted(served.items())
             if len(v) * window >= seconds]  # a stretch cut short by the end is left out
    service = result["service_timeline"]
    end = max((w["t"] for w in service), default=0)

    def mean(series: list[dict[str, Any]], key: str, begin: float, until: float,
             digits: int) -> float | None:
        values = [w[key] for w in series if begin <= w["t"] < until and key in w]
        return round(sum(values) / len(values), digits) if values else None

    def first_and_last(key: str, series: list[dict[str, Any]] = service, digits: int = 2
                       ) -> tuple[float | None, float | None]:
        return (mean(series, key, 0, seconds, digits),
                mean(series, key, end - seconds, end + 1, digits))

    first, last = first_and_last("db_ms_per_query")
    # the database's collector, and its full index compactions (which cost more as the
    # indexes grow), over the same stretches: whether they explain a change
    gc_first, gc_last = first_and_last("db_gc_ms_per_s")
    compaction_first, compaction_last = first_and_last("db_compaction_ms_per_s")
    cores, jobs = first_and_last("db_cores", digits=4), first_and_last("jobs_per_s", points)
    cpu_first, cpu_last = (round(1000 * c / j, 3) if c is not None and j else None
                           for c, j in zip(cores, jobs, strict=True))
    return {"served_per_stretch": whole, "least_stretch": min(whole, default=None),
            "db_ms_per_query_first": first, "db_ms_per_query_last": last,
            "db_change": round(last / first - 1, 3) if first and last else None,
            "db_cpu_ms_per_job_first": cpu_first, "db_cpu_ms_per_job_last": cpu_last,
            "db_cpu_change": round(cpu_last / cpu_first - 1, 3)
            if cpu_first and cpu_last else None,
            "db_gc_ms_per_s_first": gc_first, "db_gc_ms_per_s_last": gc_last,
            "db_compaction_ms_per_s_first": compaction_first,
            "db_compaction_ms_per_s_last": compaction_last}


def collector_figures(pauses: list[Pause], seconds: float) -> dict[str, Any]:
    """The database JVM's pauses over the run: how many, how many full, the time paused a
    second, the longest and the mean (a database that slows as its collector works harder
    shows here, and in the timeline's `db GC ms/s`)."""
    paused = sum(pause.ms for pause in pauses)
    return {"pauses": len(pauses), "full": sum(pause.kind == "Full" for pause in pauses),
            "paused_ms_per_s": round(paused / seconds, 1),
            "longest_ms": round(max((pause.ms for pause in pauses), default=0.0), 1),
            "mean_ms": round(paused / len(pauses), 1) if pauses else None}


def compaction_figures(compactions: list[Compaction], seconds: float) -> dict[str, Any]:
    """The database's full index compactions over the run: how many, the time they took a
    second of the run, the longest, the most keys one merged, and how many of each type's
    indexes (a file is named by its type, bucket and number)."""
    return {"full": len(compactions),
            "by_type": dict(Counter(c.index.split("_")[0] for c in compactions)),
            "ms_per_s": round(sum(c.ms for c in compactions) / seconds, 1),
            "longest_ms": max((c.ms for c in compactions), default=0.0),
            "most_keys": max((c.keys for c in compactions), default=0)}


def ms_per_s(spans: list[Pause] | list[Compaction], began: float, end: float,
             window: float) -> float:
    """The database's time in these spans over the window ending `end` s into the run (each
    counted where it ended), a second of the window."""
    return round(sum(span.ms for span in spans if end - window <= span.at - began < end)
                 / window, 1)


def steps(run: Run, start: float, rates: Rates) -> list[dict[str, Any]]:
    """Per step of the offered load: offered, served (DONE events in the step), refused
    per second, and the p95 of the jobs sent in it."""
    found = []
    for n, rate in enumerate(rates.rates):
        begin, end = start + n * rates.step_s, start + (n + 1) * rates.step_s
        sent = sorted(d.latency for d in run.done if begin <= d.at - d.latency < end)
        found.append({
            "rate": rate,
            "offered_per_s": round(sum(begin <= at < end for at, _ in run.arrivals)
                                   / rates.step_s, 1),
            "served_per_s": round(sum(begin <= d.at < end for d in run.done) / rates.step_s, 1),
            "refused_per_s": round(sum(begin <= at < end for at in run.refused_at)
                                   / rates.step_s, 1),
            "p95_ms": round(percentile(sent, 95) * 1000, 1) if sent else None})
    return found


def plot_ramp(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [p["offered_per_s"] for p in points]
    figure, (served, latency) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    served.plot(offered, [p["served_per_s"] for p in points], marker="o", label="served")
    served.plot(offered, offered, color="grey", linestyle="--", linewidth=0.8, label="offered")
    served.set_ylabel("jobs/s")
    served.legend()
    latency.plot(offered, [p["p95_ms"] for p in points], marker="o", color="tab:orange")
    latency.axhline(900, color="grey", linestyle="--", linewidth=0.8)
    latency.set_ylabel("p95 ms")
    latency.set_xlabel("offered jobs/s")
    figure.suptitle("PSI ramp: served against offered")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


STAGES = "query($id: ID!) { psiJob(id: $id) { createdAt startedAt completedAt } }"


async def stages(url: str, tokens: dict[str, str], run: Run, sample: int = 300
                 ) -> dict[str, dict[str, float | None]]:
    """Where the latency went, from a sample of finished jobs: reaching the service
    (`ingress`), waiting to be claimed (`queued`), crypto and sealing (`answered`), and from
    the sealed bundle to the client's DONE event (`delivered`: the commit and the push)."""
    picked = run.done[::max(1, len(run.done) // sample)][:sample]
    parts: dict[str, list[float]] = defaultdict(list)
    async with aiohttp.ClientSession() as session:
        for done in picked:
            async with session.post(
                f"{url}/graphql", json={"query": STAGES, "variables": {"id": done.job_id}},
                headers={"authorization": f"Bearer {tokens[done.tenant]}"},
            ) as response:
                job = (await response.json())["data"]["psiJob"]
            created, started, completed = (datetime.fromisoformat(job[k]).timestamp()
                                           for k in ("createdAt", "startedAt", "completedAt"))
            parts["ingress"].append(created - done.sent_wall)
            parts["queued"].append(started - created)
            parts["answered"].append(completed - started)
            parts["delivered"].append(done.sent_wall + done.latency - completed)
    return {name: {"p50_ms": round(percentile(sorted(v), 50) * 1000, 1),
                   "p95_ms": round(percentile(sorted(v), 95) * 1000, 1)}
            for name, v in parts.items()}


def raw_selectors_per_core(pool: list[str], selectors: int, seconds: float = 2.0) -> float:
    """openmined-psi's own server throughput on one core, in this process and on the same
    requests: the yardstick for the service's crypto efficiency."""
    responder = psi.Responder(psi.ServerKey.generate())
    requests = [base64.b64decode(request) for request in pool]
    n, begin = 0, time.process_time()
    while time.process_time() - begin < seconds:
        responder.respond(psi.Mode.PSI, requests[n % len(requests)])
        n += 1
    return n * selectors / (time.process_time() - begin)


def graph_query_totals(metrics: str) -> dict[str, dict[str, float]]:
    """{query name: {"sum": seconds, "count": n}} from the service's /metrics text."""
    totals: dict[str, dict[str, float]] = defaultdict(dict)
    for match in re.finditer(r'^tf_graph_query_seconds_(sum|count)\{query="([^"]+)"\} (\S+)$',
                             metrics, re.M):
        totals[match[2]][match[1]] = float(match[3])
    return totals


def query_times(url: str) -> list[dict[str, Any]]:
    """Where the database time went: the service's own per-query timings from /metrics."""
    import httpx

    totals = graph_query_totals(httpx.get(f"{url}/metrics", timeout=10).text)
    rows = [{"query": name, "count": int(v.get("count", 0)), "total_s": round(v.get("sum", 0), 2),
             "mean_ms": round(1000 * v.get("sum", 0) / max(v.get("count", 1), 1), 2)}
            for name, v in totals.items()]
    return sorted(rows, key=lambda r: -r["total_s"])


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["timeline"]
    t = [p["t"] for p in points]
    figure, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    axes[0].plot(t, [p["jobs_per_s"] for p in points])
    axes[0].set_ylabel("jobs/s")
    axes[1].plot(t, [p["p95_ms"] for p in points], color="tab:orange")
    axes[1].axhline(900, color="grey", linestyle="--", linewidth=0.8)
    axes[1].set_ylabel("p95 ms")
    axes[2].plot(t, [p["gini"] for p in points], color="tab:green")
    axes[2].axhline(0.16, color="grey", linestyle="--", linewidth=0.8)
    axes[2].set_ylabel("Gini")
    axes[2].set_xlabel("seconds")
    figure.suptitle(f"PSI soak: {result['jobs_per_s']} jobs/s, p95 {result['p95_ms']} ms, "
                    f"Gini {result['gini']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


@contextlib.contextmanager
def service_under_test(args: argparse.Namespace) -> Iterator[PsiService]:
    """The service the load drives: started here (an embedded database, the pilot and the
    app, all removed after), or the one running at --url, set up through its API."""
    quota = Quota(args.quota, 60, max(1, args.quota // 10))
    if not args.url:
        with psi_service("soak", PARTNER, args.dataset_items,
                         [f"soak{n}" for n in range(args.tenants)],
                         env={"TF_PSI_WORKER_PROCESSES": str(args.crypto_processes)},
                         db_heap=args.db_heap, db_page_cache_mb=args.db_page_cache_mb,
                         quota=quota) as service:
            yield service
        return
    # tokens are read from files: on a command line every user's `ps` shows them, and the
    # arguments are written with the results
    tokens = tenant_tokens(args.tokens)
    dataset = args.dataset or targeted_pilot(
        args.url, args.operator_token.read_text().strip(), PARTNER, args.dataset_items,
        list(tokens), quota)
    database = args.db_pid or (embedded_database_pid(args.service_pid) if args.service_pid else None)
    if args.stall_only_database and not database:
        raise SystemExit("--stall-only-database needs the database's process: --db-pid")
    yield PsiService(args.url.rstrip("/"), dataset, tokens, args.service_pid, database)


def tenant_tokens(path: Path) -> dict[str, str]:
    """{tenant: token} from lines `TENANT TOKEN` (blank lines and # comments skipped)."""
    tokens = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2:
            raise SystemExit(f"{path}:{n}: expected `TENANT TOKEN`")
        tokens[fields[0]] = fields[1]
    return tokens


def embedded_database_pid(pid: int) -> int | None:
    """The embedded database a `trustfabric serve` started, among its processes: charged to
    the database, not to the service's crypto."""
    for child in descendants(pid)[1:]:
        with contextlib.suppress(OSError):  # it ended while we looked
            if b"trustfabric.graph.embedded_server" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
    return None


def app_processes(service: PsiService) -> list[int]:
    """The API process first, then its crypto processes (none known for a service
    elsewhere). A `trustfabric serve` starts its embedded database too: that is not the
    service's."""
    if not service.app_pid:
        return []
    database = set(descendants(service.db_pid)) if service.db_pid else set()
    return [pid for pid in descendants(service.app_pid) if pid not in database]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rps", type=float, default=550)
    parser.add_argument("--duration", type=duration, default=duration("10m"))
    parser.add_argument("--ramp", metavar="START:STOP:STEP",
                        help="offer START, START+STEP, … STOP jobs/s, --step each, instead "
                             "of --rps for --duration")
    parser.add_argument("--step", type=duration, default=duration("60s"),
                        help="how long each rate of --ramp is offered")
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--skew", type=float, default=10.0,
                        help="one tenant asks this many times the others' demand")
    parser.add_argument("--selectors", type=int, default=16)
    parser.add_argument("--dataset-items", type=int, default=10_000)
    parser.add_argument("--pool", type=int, default=2000, help="precomputed client requests")
    parser.add_argument("--crypto-processes", type=int, default=2)
    parser.add_argument("--quota", type=int, default=100_000, help="requests/min per tenant")
    parser.add_argument("--db-heap", help=DB_HEAP_HELP)
    parser.add_argument("--db-page-cache-mb", type=int,
                        help="embedded database page cache (default: two thirds of the heap)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per plot point")
    parser.add_argument("--warmup", type=duration, default=duration("30s"),
                        help="unmeasured load first: a cold JVM spends several times the CPU")
    parser.add_argument("--stall-every", type=duration, default=0.0,
                        help="rehearse host stalls: stop the service and the database this "
                             "often (SIGSTOP) …")
    parser.add_argument("--stall-for", type=duration, default=duration("2s"),
                        help="… for this long")
    parser.add_argument("--stall-only-database", action="store_true",
                        help="stall the database alone: a database outage under load")
    parser.add_argument("--url", help="drive a running service instead of starting one")
    parser.add_argument("--tokens", type=Path, metavar="FILE",
                        help="with --url: the load's tenants, a line `TENANT TOKEN` each (a "
                             "member token; the first asks --skew times the others)")
    parser.add_argument("--operator-token", type=Path, metavar="FILE",
                        help="with --url: a file holding an operator's token, to register the "
                             "partner dataset and allow each tenant PSI on it alone, with "
                             "--quota (use tenants made for the load)")
    parser.add_argument("--dataset", help="with --url and no --operator-token: a dataset the "
                                          "tenants may already use")
    parser.add_argument("--service-pid", type=int,
                        help="with --url on this machine: the API process, to charge CPU to "
                             "(its crypto processes are its children) and to stall: a "
                             "`trustfabric serve` or a one-worker uvicorn")
    parser.add_argument("--db-pid", type=int, help="with --url: the database's process (found "
                                                   "under a `trustfabric serve` by itself)")
    args = parser.parse_args()
    if args.stall_every and not 0 < args.stall_for < args.stall_every:
        parser.error("--stall-for must be shorter than --stall-every")
    if args.url and (not args.tokens or not (args.operator_token or args.dataset)):
        parser.error("--url needs --tokens, and --operator-token or --dataset")
    if args.url and args.stall_every and not (args.service_pid or args.db_pid):
        parser.error("stalls need the processes to stop: --service-pid or --db-pid")
    try:
        rates = (Rates.ramp(args.ramp, args.step) if args.ramp
                 else Rates((args.rps,), args.duration))
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    args.duration = rates.seconds
    cleanup_on_sigterm()
    with service_under_test(args) as service:
        url, dataset, tokens = service.url, service.dataset, service.tokens
        shares = demand_shares(list(tokens), args.skew)
        args.tenants = len(shares)
        print(f"preparing {args.pool} client requests of {args.selectors} selectors …")
        pool = [PsiClient.prepare([f"customer-{(n * 7 + i) * 3}@example.com"
                                   for i in range(args.selectors)]).request
                for n in range(args.pool)]
        db_pids = descendants(service.db_pid) if service.db_pid else []
        raw = raw_selectors_per_core(pool, args.selectors)
        # the load runs on uvloop, as the service does: on the default loop the load
        # generator took ~0.7 ms of the two cores a job
        if args.warmup:
            print(f"warming up for {args.warmup:g} s …")
            uvloop.run(drive(url, dataset, tokens, shares,
                             Rates(rates.rates[:1], args.warmup), pool, "warmup"))
        # per process: the crypto processes start with the first batch, so with no warm-up
        # they appear during the run (and all their CPU is the run's)
        cpu_before = {pid: cpu_seconds([pid]) for pid in app_processes(service) + db_pids}
        load_before = sum(os.times()[:2])
        ticks_before = machine_ticks()
        print(f"driving {' → '.join(f'{r:g}' for r in rates.rates)} jobs/s for "
              f"{args.duration:g} s from {args.tenants} tenants (one at {args.skew:g}x) …")
        stalled = (lambda: db_pids) if args.stall_only_database else (
            lambda: app_processes(service) + db_pids)
        stalls = Stalls(args.stall_every, args.stall_for, stalled) if args.stall_every else None
        run, start = uvloop.run(drive(url, dataset, tokens, shares, rates, pool, "soak",
                                      args.window, stalls, db_pids))
        app_pids = app_processes(service)
        groups = {name: pids for name, pids in (("service", app_pids[:1]),
                                                ("crypto", app_pids[1:]), ("database", db_pids))
                  if pids}  # a service elsewhere: what is not known is not reported
        cpu = {name: sum(cpu_seconds([pid]) - cpu_before.get(pid, 0.0) for pid in pids)
               for name, pids in groups.items()}
        cpu["load generator"] = sum(os.times()[:2]) - load_before
        machine = machine_usage(ticks_before, machine_ticks(), args.duration)
        queries = query_times(url)
        latency_parts = uvloop.run(stages(url, tokens, run))
        # read before the database's directory goes with the service
        began = time.time() - (time.monotonic() - start)
        log = database_log(service.db_pid) if service.db_pid else None
        pauses = database_pauses(log, began, began + args.duration) if log else []
        compactions = database_compactions(log, began, began + args.duration) if log else []
    # measured again with the service and the database stopped: on a shared host the
    # machine's speed can change under a run, and this says whether it did
    raw_after = raw_selectors_per_core(pool, args.selectors)
    result = report(run, start, args.duration, shares, args.window)
    result["cpu_cores"] = {name: round(seconds / args.duration, 2)
                           for name, seconds in cpu.items()}
    # CPU per served job, in ms: what each part costs, whatever the rate
    result["cpu_ms_per_job"] = {name: round(1000 * seconds / max(result["completed"], 1), 2)
                                for name, seconds in cpu.items()}
    # whether the machine itself was full, and what no process is charged with
    result["machine_cores"] = machine
    result["graph_queries"] = queries
    result["database_gc"] = collector_figures(pauses, args.duration)
    result["database_compactions"] = compaction_figures(compactions, args.duration)
    for seen in result["service_timeline"]:
        seen["db_gc_ms_per_s"] = ms_per_s(pauses, began, seen["t"], args.window)
        seen["db_compaction_ms_per_s"] = ms_per_s(compactions, began, seen["t"], args.window)
    result["latency_stages"] = latency_parts
    # the service's PSI work against the library's alone: selectors answered per second
    # over raw selectors per second on one core times the cores there are (all of them
    # run the service, the database and the load) and times the crypto processes' cores
    answered = result["jobs_per_s"] * args.selectors
    result["crypto"] = {
        "raw_selectors_per_core_s": round(raw),
        "raw_selectors_per_core_s_after": round(raw_after),
        "service_selectors_s": round(answered),
        "efficiency_machine": round(answered / (raw * (os.cpu_count() or 1)), 3),
        "efficiency_crypto_cores": round(answered / (raw * max(result["cpu_cores"]["crypto"],
                                                                0.01)), 3)
        if "crypto" in result["cpu_cores"] else None,
    }
    print_table(["jobs/s", "p50 ms", "p95 ms", "p99 ms", "errors", "error %", "Gini"],
                [[result["jobs_per_s"], result["p50_ms"], result["p95_ms"], result["p99_ms"],
                  result["errors"], round(result["error_rate"] * 100, 3), result["gini"]]])
    print_table(["process", "cores", "CPU ms per job"],
                [[name, cores, result["cpu_ms_per_job"][name]]
                 for name, cores in result["cpu_cores"].items()])
    print_table(["machine cores busy", "of which softirq", "steal"], [list(machine.values())])
    print_table(["tenant", "offered", "served", "refused", "p95 ms"],
                [[t, result["offered_by_tenant"].get(t, 0), result["served"].get(t, 0),
                  result["refused"].get(t, 0), result["p95_ms_by_tenant"].get(t)]
                 for t in shares])
    print_table(["latency stage", "p50 ms", "p95 ms"],
                [[name, v["p50_ms"], v["p95_ms"]] for name, v in latency_parts.items()])
    print_table(["raw selectors/s/core", "after the run", "service selectors/s",
                 "efficiency (machine)", "efficiency (crypto cores)"],
                [list(result["crypto"].values())])
    if abs(raw_after - raw) > 0.1 * raw:
        print(f"\nthe machine's speed changed during the run (raw PSI {raw:.0f} -> "
              f"{raw_after:.0f} selectors/s/core): not comparable with other runs")
    if pauses or compactions:  # none at all: a database elsewhere, its logs not here
        print_table(["database collector: pauses", "full", "paused ms/s", "longest ms",
                     "mean ms"], [list(result["database_gc"].values())])
        print_table(["database full index compactions", "of each type", "ms/s", "longest ms",
                     "most keys"],
                    [[" ".join(f"{t}:{n}" for t, n in v.items()) if isinstance(v, dict) else v
                      for v in result["database_compactions"].values()]])
    print_table(["graph query", "count", "total s", "mean ms"],
                [[q["query"], q["count"], q["total_s"], q["mean_ms"]] for q in queries[:10]])
    windows = list(zip(result["timeline"], result["service_timeline"], strict=False))
    print_table(["t s", "jobs/s", "p95 ms", "Gini", "service: jobs/s", "live Gini",
                 "loop lag ms", "GC ms/s", "queued", "db ms/query", "db s/s", "db cores",
                 "db GC ms/s", "db compaction ms/s"],
                [[load["t"], load["jobs_per_s"], load["p95_ms"], load["gini"],
                  seen["jobs_per_s"], seen["gini"], seen["loop_lag_ms"], seen["gc_ms_per_s"],
                  seen["queued"], seen["db_ms_per_query"], seen["db_s_per_s"],
                  seen.get("db_cores"), seen["db_gc_ms_per_s"], seen["db_compaction_ms_per_s"]]
                 for load, seen in windows[::max(1, len(windows) // 12)]])
    result["cpu_ms_per_job_all_in"] = round(sum(result["cpu_ms_per_job"].values()), 2)
    if args.duration >= 600:
        result["stretches"] = stretches(result)
        print_table(["5-min stretches: jobs/s served", "least", "db ms/query first 5 min",
                     "last 5 min", "change", "db CPU ms/job first", "last", "change",
                     "db GC ms/s first", "last", "db compaction ms/s first", "last"],
                    [[" ".join(f"{v:g}" for v in result["stretches"]["served_per_stretch"]),
                      *list(result["stretches"].values())[1:]]])
    print(f"CPU per served job, all in: {result['cpu_ms_per_job_all_in']} ms")
    if args.ramp:
        result["ramp"] = steps(run, start, rates)
        print_table(["offered jobs/s", "served jobs/s", "refused/s", "p95 ms"],
                    [[p["offered_per_s"], p["served_per_s"], p["refused_per_s"], p["p95_ms"]]
                     for p in result["ramp"]])
    path = write_json("soak", {"args": vars(args), "result": result})
    png = path.with_suffix(".png")
    plot(result, png)
    if args.ramp:
        plot_ramp(result["ramp"], path.with_name(path.stem + "-ramp.png"))
    print(f"\nwritten to {path} and {png}")


if __name__ == "__main__":
    main()
