"""Lineage read benchmark: `lineage(anomalyId)` through the real GraphQL app, then the same
read straight over Bolt, on a graph of ~200k nodes seeded through the real ingest path.

    python -m bench.lineage                          # embedded database in a temp dir
    python -m bench.lineage --data-dir .data/bench --reuse   # seed once, rerun quickly
    python -m bench.lineage --neo4j-uri bolt://… --neo4j-password …

Processes: this one (orchestrator, seeding), the database (the embedded server's child),
the API (`trustfabric serve`: a supervisor and its workers) and the load generators, each
its own process so no load generator shares an event loop, or a GIL, with what it measures.
"""

import argparse
import asyncio
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from strawberry import relay

from bench.common import (
    READY_TIMEOUT_S,
    Target,
    api_workers,
    cleanup_on_sigterm,
    cpu_seconds,
    descendants,
    free_port,
    machine_ticks,
    machine_usage,
    print_table,
    start_app,
    stop_app,
    summarize,
    write_json,
)
from trustfabric.domain.auth import Role
from trustfabric.domain.provenance.ingest import Plan, plan_batch
from trustfabric.graph.embedded import EmbeddedServer
from trustfabric.migrations import migrate
from trustfabric.runtime.demo import _hex, digest
from trustfabric.runtime.services import Services
from trustfabric.schema.ingest import (
    AnomalyEventInput,
    BuildEventInput,
    IngestInput,
    JobRunEventInput,
    PolicyVersionEventInput,
)
from trustfabric.schema.provenance import AnomalyStatus, JobKind, JobStatus, Severity

QUERY = """query Lineage($id: ID!) {
  lineage(anomalyId: $id) {
    hops { position relation node { id __typename } }
    root { id }
    complete
  }
}"""
EXPECTED_RELATIONS = ["START", "OBSERVED_IN", "UNDER", "RAN", "BASED_ON", "BUILT_FROM",
                      "HAS_COMMIT"]
MANIFEST = "bench-lineage.json"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


# --- the graph's shape ----------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """Per tenant: one base image, policies with versions, and repos whose commits each
    yield an image (based on the base image), a build and a deploy job, and one anomaly."""

    tenants: tuple[str, ...]
    repos_per_tenant: int
    commits_per_repo: int
    policies: int = 3
    versions_per_policy: int = 4
    jobs: tuple[JobKind, ...] = (JobKind.BUILD, JobKind.DEPLOY)

    @classmethod
    def for_nodes(cls, nodes: int, tenants: int, commits_per_repo: int) -> "Shape":
        probe = cls(tuple(f"bench{n}" for n in range(tenants)), 1, commits_per_repo)
        per_tenant = max(nodes / tenants - probe.fixed_nodes, 1)
        return cls(probe.tenants, math.ceil(per_tenant / probe.repo_nodes), commits_per_repo)

    @property
    def fixed_nodes(self) -> int:  # base image, policies, policy versions
        return 1 + self.policies * (1 + self.versions_per_policy)

    @property
    def repo_nodes(self) -> int:  # the repo, and per commit: commit, image, jobs, anomaly
        return 1 + self.commits_per_repo * (3 + len(self.jobs))

    @property
    def repo_events(self) -> int:  # per commit: a build, its job runs, an anomaly
        return self.commits_per_repo * (2 + len(self.jobs))

    @property
    def nodes(self) -> int:
        return len(self.tenants) * (self.fixed_nodes + self.repos_per_tenant * self.repo_nodes)

    def anomalies(self) -> list[tuple[str, str]]:
        """(tenant, anomalyId) of every anomaly seeded; deterministic, so never stored."""
        return [(t, _anomaly_id(t, r, c)) for t in self.tenants
                for r in range(self.repos_per_tenant) for c in range(self.commits_per_repo)]


def _anomaly_id(tenant: str, repo: int, commit: int) -> str:
    return f"{tenant}-anomaly-{repo}-{commit}"


def _tenant_header(shape: Shape, tenant: str) -> IngestInput:
    """What the tenant's repos refer to, so it goes in the tenant's first batch."""
    return IngestInput(
        builds=[BuildEventInput(image_digest=digest(tenant, "base"), image_ref="debian:12-slim",
                                built_at=START)],
        policy_versions=[
            PolicyVersionEventInput(policy_id=f"policy-{p}", version=f"v{v}",
                                    hash=digest(tenant, "policy", p, v), created_at=START)
            for p in range(shape.policies) for v in range(shape.versions_per_policy)
        ],
    )


def _add_repo(batch: IngestInput, shape: Shape, tenant: str, r: int) -> None:
    url = f"https://git.example.com/{tenant}/service-{r}"
    base = digest(tenant, "base")
    parent = None
    for c in range(shape.commits_per_repo):
        sha, image = _hex(tenant, r, c), digest(tenant, r, c)
        at = START + timedelta(minutes=r * shape.commits_per_repo + c)
        # Parent first: a commit seen first as a parent would be a placeholder without props.
        batch.builds.append(BuildEventInput(
            image_digest=image, image_ref=f"registry.example.com/{tenant}/service-{r}:{c}",
            repo_url=url, commit_sha=sha, commit_message=f"service-{r}: change {c}",
            author=f"dev{c % 5}@{tenant}.example.com", committed_at=at,
            parent_shas=[parent] if parent else [], base_image_digests=[base], built_at=at,
        ))
        parent = sha
        policy = (r + c) % shape.policies
        for stage, kind in enumerate(shape.jobs):
            batch.job_runs.append(JobRunEventInput(
                job_id=f"{tenant}-job-{r}-{c}-{kind.value.lower()}", kind=kind,
                status=JobStatus.FAILED if (c + stage) % 4 == 3 else JobStatus.SUCCEEDED,
                image_digest=image, policy_id=f"policy-{policy}",
                policy_version=f"v{c % shape.versions_per_policy}", pipeline=f"service-{r}",
                started_at=at, finished_at=at + timedelta(minutes=7),
            ))
        kind = shape.jobs[c % len(shape.jobs)]
        batch.anomalies.append(AnomalyEventInput(
            anomaly_id=_anomaly_id(tenant, r, c),
            job_id=f"{tenant}-job-{r}-{c}-{kind.value.lower()}",
            kind="sbom-delta", severity=list(Severity)[(r + c) % 4],
            status=AnomalyStatus.OPEN if c % 3 else AnomalyStatus.RESOLVED,
            summary=f"sbom delta in service-{r} change {c}", observed_at=at,
        ))


def _events(batch: IngestInput) -> int:
    return (len(batch.builds) + len(batch.policy_versions) + len(batch.job_runs)
            + len(batch.anomalies))


def _tenant_batches(shape: Shape, tenant: str, max_events: int) -> Iterator[IngestInput]:
    # Whole repos per batch, so every commit chain is written in parent-first order.
    batch = _tenant_header(shape, tenant)
    for r in range(shape.repos_per_tenant):
        if _events(batch) + shape.repo_events > max_events:
            yield batch
            batch = IngestInput()
        _add_repo(batch, shape, tenant, r)
    if _events(batch):
        yield batch


def _batches(shape: Shape, max_events: int) -> Iterator[tuple[str, IngestInput]]:
    """Tenants interleaved, as several integrations would send them."""
    streams = [zip(itertools.repeat(t), _tenant_batches(shape, t, max_events))
               for t in shape.tenants]
    for group in itertools.zip_longest(*streams):
        yield from (item for item in group if item is not None)


@dataclass
class Tally:
    """Nodes the plans create, counted from the plans themselves (keys, deduplicated)."""

    keys: dict[str, set[str]] = field(default_factory=dict)

    def add(self, plan: Plan) -> None:
        for kind, nodes in plan.nodes.items():
            self.keys.setdefault(kind, set()).update(nodes)

    def by_kind(self) -> dict[str, int]:
        return {kind: len(keys) for kind, keys in sorted(self.keys.items())}


async def seed(services: Services, shape: Shape, max_events: int) -> dict[str, Any]:
    tally, events, batches = Tally(), 0, 0
    expected_batches = len(shape.tenants) * math.ceil(
        shape.repos_per_tenant / (max_events // shape.repo_events))
    started = mark = time.monotonic()
    marked_events = 0
    for tenant, batch in _batches(shape, max_events):
        plan = plan_batch(batch, tenant, max_events)
        await services.repos.ingest.apply(plan)
        tally.add(plan)
        events += _events(batch)
        batches += 1
        if batches % 20 == 0:
            # The recent rate, not the average: ingest slows down as the graph grows.
            now = time.monotonic()
            print(f"  {now - started:,.0f} s: {batches}/~{expected_batches} batches, "
                  f"{events:,} events, lately {(events - marked_events) / (now - mark):,.0f} "
                  "events/s", flush=True)
            mark, marked_events = now, events
    seconds = time.monotonic() - started
    by_kind = tally.by_kind()
    nodes = sum(by_kind.values())
    if nodes != shape.nodes:  # the shape's arithmetic is what --reuse trusts later
        raise RuntimeError(f"seeded {nodes} nodes, the shape promised {shape.nodes}")
    return {"nodes": nodes, "by_kind": by_kind, "events": events, "batches": batches,
            "seconds": round(seconds, 1), "events_per_s": round(events / seconds)}


# --- database, app and tokens ---------------------------------------------------------------

async def prepare(target: Target, shape: Shape, args: argparse.Namespace,
                  manifest: Path | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Migrates, seeds unless reusable, and issues a member token per tenant."""
    services = Services.open(target.settings())
    try:
        applied = await migrate(services.executor)
        if applied:
            print(f"applied migrations {', '.join(applied)}")
        graph = await _reusable(services, shape, args, manifest)
        if graph is None:
            print(f"seeding {shape.nodes:,} nodes: {len(shape.tenants)} tenants x "
                  f"{shape.repos_per_tenant} repos x {shape.commits_per_repo} commits, "
                  f"batches of <= {args.batch_events} events", flush=True)
            graph = await seed(services, shape, args.batch_events)
            graph["reused"] = False
            if manifest is not None:
                manifest.write_text(json.dumps({"shape": _shape_json(shape), "graph": graph}))
        tokens = {}
        for tenant in shape.tenants:
            _, tokens[tenant] = await services.repos.tokens.create(tenant, Role.MEMBER, "bench")
        return graph, tokens
    finally:
        await services.close()


def _shape_json(shape: Shape) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(shape), default=lambda v: v.value))


async def _reusable(services: Services, shape: Shape, args: argparse.Namespace,
                    manifest: Path | None) -> dict[str, Any] | None:
    if not args.reuse:
        return None
    if manifest is not None:
        if not manifest.exists():
            return None
        recorded = json.loads(manifest.read_text())
        if recorded["shape"] != _shape_json(shape):
            raise SystemExit(f"{manifest.parent} holds a graph of another shape; use another "
                             "--data-dir or drop --reuse")
        return {**recorded["graph"], "reused": True}
    # An external database keeps no manifest: trust the tenants being there.
    if set(shape.tenants) <= set(await services.repos.tokens.tenants()):
        return {"nodes": shape.nodes, "reused": True}
    return None


def check_lineage(base_url: str, tenant: str, token: str, anomaly: str) -> None:
    """One request before the load: the seeded graph must give the full 7-hop lineage."""
    response = httpx.post(f"{base_url}/graphql", timeout=30,
                          json={"query": QUERY, "variables": {"id": _global_id(tenant, anomaly)}},
                          headers={"authorization": f"Bearer {token}"})
    body = response.json() if response.status_code == 200 else {}
    lineage = (body.get("data") or {}).get("lineage") or {}
    relations = [hop["relation"] for hop in lineage.get("hops", [])]
    if relations != EXPECTED_RELATIONS or not lineage.get("complete"):
        raise RuntimeError(f"unexpected lineage: {response.status_code} {response.text[:500]}")


def _global_id(tenant: str, anomaly: str) -> str:
    return str(relay.GlobalID("Anomaly", f"{tenant}:{anomaly}"))


# --- load generation ------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadSpec:
    mode: str  # "graphql" or "bolt"
    clients: int
    shape: Shape
    seed: int
    base_url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    target: Target | None = None


def _load_main(spec: LoadSpec, conn: Connection) -> None:
    """Entry point of a load-generator process (spawned: nothing inherited from us)."""
    try:
        runner = asyncio.Runner(loop_factory=_loop_factory())
        with runner:
            conn.send(runner.run(_drive(spec, conn)))
    except KeyboardInterrupt:  # ^C reaches the whole foreground group; the parent reports
        pass


def _loop_factory() -> Any:
    if find_spec("uvloop"):
        import uvloop

        return uvloop.new_event_loop
    return None


async def _drive(spec: LoadSpec, conn: Connection) -> dict[str, Any]:
    anomalies = spec.shape.anomalies()
    latencies, errors, samples = array("d"), 0, []
    if spec.mode == "graphql":
        # aiohttp, not httpx: at ~1/4 of the CPU per request it leaves the shared cores to
        # the server (httpx used more CPU than the server it was measuring).
        session = aiohttp.ClientSession(
            base_url=spec.base_url, timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(limit=spec.clients),
        )
        headers = {t: {"authorization": f"Bearer {s}", "content-type": "application/json"}
                   for t, s in spec.tokens.items()}

        async def request(tenant: str, anomaly: str) -> str | None:
            body = json.dumps({"query": QUERY, "variables": {"id": _global_id(tenant, anomaly)}})
            async with session.post("/graphql", data=body, headers=headers[tenant]) as response:
                content = await response.read()
            # A byte search, not a JSON parse: the generator's CPU is shared with the server,
            # and a lineage's data (ids, type names, relations) never holds this key.
            if response.status != 200 or b'"errors"' in content:
                return f"{response.status} {content[:300].decode(errors='replace')}"
            return None

        close = session.close
    else:
        assert spec.target is not None
        services = Services.open(spec.target.settings())
        lineage = services.repos.lineage

        async def request(tenant: str, anomaly: str) -> str | None:
            record = await lineage.by_anomaly(f"Anomaly:{tenant}:{anomaly}", tenant)
            return None if record is not None and record.repo is not None else "no lineage"

        close = services.close

    conn.send("ready")
    begin, measure_from, end = conn.recv()

    async def client_loop(n: int) -> None:
        nonlocal errors
        rng = random.Random(spec.seed * 10_007 + n)
        while (started := time.monotonic()) < end:
            tenant, anomaly = rng.choice(anomalies)
            try:
                problem = await request(tenant, anomaly)
            except Exception as error:  # noqa: BLE001 - any failure is an error to count
                problem = f"{type(error).__name__}: {error}"
            finished = time.monotonic()
            # Completions inside the window count, whenever they started: unbiased req/s.
            if measure_from <= finished <= end:
                if problem is None:
                    latencies.append(finished - started)
                else:
                    errors += 1
                    if len(samples) < 3:
                        samples.append(problem)

    await asyncio.sleep(max(0.0, begin - time.monotonic()))
    try:
        await asyncio.gather(*(client_loop(n) for n in range(spec.clients)))
    finally:
        await close()
    return {"latencies": latencies.tobytes(), "errors": errors, "samples": samples}


@dataclass
class CpuWatch:
    """CPU seconds of process groups between two instants, read from /proc."""

    groups: dict[str, list[int]]
    # processes also reported one by one (the API's workers: how evenly they share the load)
    apart: list[int] = field(default_factory=list)
    before: dict[str, float] = field(default_factory=dict)
    machine_before: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.before = {name: cpu_seconds(pids) for name, pids in self._measured().items()}
        self.machine_before = machine_ticks()

    def stop(self, window_s: float) -> dict[str, Any]:
        used = {name: round(cpu_seconds(pids) - self.before[name], 2)
                for name, pids in self._measured().items()}
        each = [used.pop(str(pid)) for pid in self.apart]
        machine = machine_usage(self.machine_before, machine_ticks(), window_s)
        # Busy cores no group accounts for: other people's processes, softirq, steal.
        machine["other"] = round(machine["busy"] - sum(used.values()) / window_s, 2)
        return {"cpu_s": used, "cores": {k: round(v / window_s, 2) for k, v in used.items()},
                "machine_cores": machine,
                "cores_apart": [round(v / window_s, 2) for v in each]}

    def _measured(self) -> dict[str, list[int]]:
        return {**self.groups, **{str(pid): [pid] for pid in self.apart}}


def run_load(spec: LoadSpec, procs: int, warmup_s: float, duration_s: float,
             watch: dict[str, list[int]], apart: list[int] | None = None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    workers: list[tuple[Any, Connection]] = []
    try:
        for n in range(procs):
            share = spec.clients // procs + (n < spec.clients % procs)
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_load_main, daemon=True,
                args=(replace(spec, clients=share, seed=spec.seed + n), child),
            )
            process.start()
            workers.append((process, parent))
        for _, conn in workers:
            if not conn.poll(READY_TIMEOUT_S) or conn.recv() != "ready":
                raise RuntimeError("a load generator did not start")
        begin = time.monotonic() + 0.2
        measure_from, end = begin + warmup_s, begin + warmup_s + duration_s
        for _, conn in workers:
            conn.send((begin, measure_from, end))
        cpu = CpuWatch({**watch, "load generator": [p.pid for p, _ in workers]}, apart or [])
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu.start()
        time.sleep(max(0.0, end - time.monotonic()))
        usage = cpu.stop(duration_s)
        latencies, errors, samples = array("d"), 0, []
        for process, conn in workers:
            if not conn.poll(60):
                raise RuntimeError("a load generator did not report")
            part = conn.recv()
            latencies.frombytes(part["latencies"])
            errors += part["errors"]
            samples += part["samples"]
            process.join(10)
        return {**summarize(latencies, errors, duration_s), **usage, "error_samples": samples[:5]}
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.terminate()
                process.join(5)


# --- the run --------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lineage",
        description="Benchmark lineage(anomalyId) over GraphQL and over raw Bolt, on a graph "
                    "seeded through the ingest path. Results go to bench/results/.",
    )
    graph = parser.add_argument_group("graph")
    graph.add_argument("--nodes", type=int, default=200_000,
                       help="seed at least this many nodes (%(default)s)")
    graph.add_argument("--tenants", type=int, default=4, help="tenants (%(default)s)")
    graph.add_argument("--commits-per-repo", type=int, default=10,
                       help="commit chain length (%(default)s)")
    graph.add_argument("--batch-events", type=int, default=1000,
                       help="events per ingest batch (%(default)s)")
    graph.add_argument("--data-dir", type=Path,
                       help="embedded database directory (default: a temp dir, removed after)")
    graph.add_argument("--reuse", action="store_true",
                       help="skip seeding when --data-dir (or --neo4j-uri) already holds the "
                            "same graph")
    graph.add_argument("--heap", default="2g", help="embedded database JVM heap (%(default)s)")
    graph.add_argument("--neo4j-uri", help="use this database instead of an embedded one")
    graph.add_argument("--neo4j-user", default="root", help="(%(default)s)")
    graph.add_argument("--neo4j-password")
    graph.add_argument("--neo4j-database", default="trustfabric", help="(%(default)s)")
    load = parser.add_argument_group("load")
    load.add_argument("--workers", type=int, default=2,
                      help="worker processes of `trustfabric serve` (%(default)s)")
    load.add_argument("--clients", type=int, default=32,
                      help="concurrent clients, GraphQL and Bolt alike (%(default)s)")
    load.add_argument("--duration", type=float, default=30.0,
                      help="GraphQL measurement, seconds (%(default)s)")
    load.add_argument("--warmup", type=float, default=5.0,
                      help="unmeasured warm-up before each measurement, seconds (%(default)s)")
    load.add_argument("--bolt-duration", type=float, default=10.0,
                      help="raw Bolt measurement, seconds (%(default)s)")
    load.add_argument("--db-warmup", type=float, default=15.0,
                      help="unmeasured raw Bolt load first, to warm the database's JIT; "
                           "0 skips it (%(default)s)")
    load.add_argument("--load-procs", type=int, default=1,
                      help="GraphQL load-generator processes (%(default)s)")
    load.add_argument("--bolt-procs", type=int, default=1,
                      help="raw Bolt load-generator processes (%(default)s)")
    load.add_argument("--seed", type=int, default=1,
                      help="random seed of the anomaly picks (%(default)s)")
    args = parser.parse_args(argv)
    if (args.neo4j_uri is None) != (args.neo4j_password is None):
        parser.error("--neo4j-uri and --neo4j-password go together")
    if args.reuse and args.data_dir is None and args.neo4j_uri is None:
        parser.error("--reuse needs --data-dir (or --neo4j-uri)")
    if min(args.nodes, args.tenants, args.commits_per_repo, args.clients, args.workers,
           args.load_procs, args.bolt_procs) < 1 or min(args.duration, args.bolt_duration) <= 0 \
            or min(args.warmup, args.db_warmup) < 0:
        parser.error("counts and durations must be positive")
    if args.load_procs > args.clients or args.bolt_procs > args.clients:
        parser.error("more load processes than clients")
    if args.commits_per_repo * 4 + 13 > args.batch_events:
        parser.error("--batch-events must hold a tenant's first repo and its header")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cleanup_on_sigterm()
    shape = Shape.for_nodes(args.nodes, args.tenants, args.commits_per_repo)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="tf-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if args.neo4j_uri:
            target = Target(args.neo4j_uri, args.neo4j_user, args.neo4j_password,
                            args.neo4j_database, None)
            manifest = None
        else:
            server = EmbeddedServer(args.data_dir or workdir / "graph", args.neo4j_database,
                                    free_port(), free_port(), heap=args.heap)
            stack.callback(server.stop)
            print(f"starting the embedded database under {server.data_dir} …", flush=True)
            started = time.monotonic()
            server.start()
            print(f"  ready in {time.monotonic() - started:.1f} s")
            db_pid = server.pid  # the process hosting the database's JVM
            assert db_pid is not None
            target = Target(server.uri, "root", server.password, args.neo4j_database, db_pid)
            manifest = server.data_dir / MANIFEST

        graph, tokens = asyncio.run(prepare(target, shape, args, manifest))
        how = "reused" if graph["reused"] else f"seeded in {graph['seconds']:.1f} s " \
              f"({graph['events']:,} events in {graph['batches']} batches, " \
              f"{graph['events_per_s']:,} events/s)"
        print(f"graph: {graph['nodes']:,} nodes, {how}")

        bolt_spec = LoadSpec("bolt", args.clients, shape, args.seed, target=target)
        if args.db_warmup > 0:
            # A cold JVM spends several times the CPU per query until its JIT has compiled
            # the hot paths (thousands of queries); warm it before the first measurement.
            print(f"warming the database up over Bolt for {args.db_warmup:g} s …", flush=True)
            warm = run_load(bolt_spec, args.bolt_procs, 0, args.db_warmup, {})
            print(f"  {warm['rps']:,.0f} req/s, {warm['errors']} errors")

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        app = start_app(target, args.workers, port, workdir)
        stack.callback(stop_app, app)
        tenant = shape.tenants[0]
        check_lineage(base_url, tenant, tokens[tenant], _anomaly_id(tenant, 0, 0))

        watch = {"server": descendants(app.pid)}
        if target.db_pid is not None:
            watch["database"] = descendants(target.db_pid)
        print(f"GraphQL: {args.clients} clients in {args.load_procs} process(es) against "
              f"{args.workers} API worker(s), {args.warmup:g} s warm-up + "
              f"{args.duration:g} s …", flush=True)
        graphql = run_load(LoadSpec("graphql", args.clients, shape, args.seed, base_url, tokens),
                           args.load_procs, args.warmup, args.duration, watch,
                           api_workers(app.pid))
        stop_app(app)  # idle, but off the machine while Bolt is measured
        print(f"raw Bolt: {args.clients} clients in {args.bolt_procs} process(es), "
              f"{args.warmup:g} s warm-up + {args.bolt_duration:g} s …", flush=True)
        bolt = run_load(bolt_spec, args.bolt_procs, args.warmup, args.bolt_duration,
                        {k: v for k, v in watch.items() if k != "server"})

    report(args, shape, graph, graphql, bolt)


def report(args: argparse.Namespace, shape: Shape, graph: dict[str, Any],
           graphql: dict[str, Any], bolt: dict[str, Any]) -> None:
    print()
    print(f"lineage(anomalyId), {graph['nodes']:,} nodes, {len(shape.tenants)} tenants, "
          f"{args.clients} clients, {os.cpu_count()} CPUs")
    runs = [(f"GraphQL ({args.workers} workers)", graphql), ("raw Bolt", bolt)]
    print_table(
        ["", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "requests", "errors", "error %"],
        [[name, r["rps"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"], r["requests"],
          r["errors"], 100 * (r["error_rate"] or 0)] for name, r in runs],
    )
    print()
    print("CPU during each measured window (cores busy on average; ms CPU per request):")
    groups = ["server", "database", "load generator"]
    rows = []
    for name, r in runs:
        cells: list[Any] = [name]
        for group in groups:
            cores, used = r["cores"].get(group), r["cpu_s"].get(group)
            if cores is None or not r["requests"]:
                cells.append(None)
            else:
                cells.append(f"{cores:.2f} ({1000 * used / r['requests']:.2f} ms)")
        machine = r["machine_cores"]
        cells += [f"{machine['busy']:.2f} / {os.cpu_count()}", f"{machine['other']:.2f}",
                  f"{machine['softirq']:.2f}", f"{machine['steal']:.2f}"]
        rows.append(cells)
    print_table(["", *groups, "machine", "other", "softirq", "steal"], rows)
    print("(other: busy cores no group above accounts for; softirq and steal are part of it)")
    # uneven shares mean the connections are: one worker's core is the limit then
    print("the server's cores, each worker: "
          + ", ".join(f"{cores:.2f}" for cores in graphql["cores_apart"]))
    for name, r in runs:
        for sample in r["error_samples"]:
            print(f"{name} error: {sample}")
    path = write_json("lineage", {
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                 if k != "neo4j_password"},
        "shape": _shape_json(shape),
        "graph": graph,
        "graphql": graphql,
        "bolt": bolt,
    })
    print(f"\nresults written to {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
