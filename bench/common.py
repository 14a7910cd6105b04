"""Helpers shared by benchmarks: the database and app they run against, ports, latency
statistics, CPU accounting, reporting."""

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.controls import Quota
from trustfabric.graph.embedded import EmbeddedServer, machine_memory_mb, sized
from trustfabric.migrations import migrate
from trustfabric.runtime.demo import demo_customers
from trustfabric.runtime.services import Services
from trustfabric.settings import Settings

T = TypeVar("T")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    # The OS picks a port nobody holds; the tiny race until our server binds it is accepted.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(ordered: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted input."""
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(latencies_s: Iterable[float], errors: int, window_s: float) -> dict[str, Any]:
    """Throughput counts every completed request, failed or not; latencies only successes,
    so a fast failure cannot flatter the percentiles. None where undefined (valid JSON)."""
    ordered = sorted(latencies_s)
    total = len(ordered) + errors

    def ms(p: float) -> float | None:
        return round(percentile(ordered, p) * 1000, 2) if ordered else None

    return {
        "requests": total,
        "errors": errors,
        "window_s": round(window_s, 3),
        "rps": round(total / window_s, 1) if window_s > 0 else None,
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
        "max_ms": ms(100),
        "error_rate": round(errors / total, 4) if total else None,
    }


# --- CPU accounting from /proc (psutil is not a dependency) --------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces or parentheses: fields start after the last ')'.
    return text[text.rindex(")") + 2:].split()


def ended(pid: int) -> bool:
    """Gone, or a zombie: only its exit status is left."""
    fields = _stat_fields(pid)
    return fields is None or fields[0] == "Z"


def api_workers(supervisor: int) -> list[int]:
    """The workers a `trustfabric serve --workers N` supervisor spawned: its children but
    its resource tracker (the only other one, and not spawned through `spawn_main`)."""
    workers = []
    for pid in descendants(supervisor):
        fields = _stat_fields(pid)
        with contextlib.suppress(OSError):  # it ended while we looked
            if (fields and int(fields[1]) == supervisor
                    and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()):
                workers.append(pid)
    return workers


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (uvicorn's workers are children of its supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time consumed so far by the given live processes."""
    total = 0
    for pid in pids:
        if fields := _stat_fields(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


# a pause as the embedded database's JVM logs it (graph/embedded_server.py):
# [2026-12-07T14:42:59.904+0000][0.255s] GC(0) Pause Young (Allocation Failure) 13M->3M(362M) 8.554ms
_PAUSE = re.compile(r"^\[(?P<at>[^\]]+)\]\[[\d.]+s\] GC\(\d+\) Pause (?P<kind>\w+) .* "
                    r"(?P<ms>[\d.]+)ms$", re.M)
# a full index compaction as ArcadeDB logs it, in the JVM's local time:
# 2026-12-07 20:37:06.998 INFO  [LSMTreeIndex] Index 'AuditEvent_0_42041354134715' fully
# compacted in 1735ms (keys=362361 values=362361 …) (one line)
_FULL_COMPACTION = re.compile(r"^(?P<at>\S+ \S+) INFO +\[LSMTreeIndex\] Index '(?P<index>[^']+)' "
                              r"fully compacted in (?P<ms>\d+)ms \(keys=(?P<keys>\d+)", re.M)


@dataclass(frozen=True)
class Pause:
    at: float  # wall clock, seconds since the epoch
    kind: str  # Young or Full
    ms: float


@dataclass(frozen=True)
class Compaction:
    """A full compaction rewrites a whole index: it costs more as the index grows (see
    docs/bench/soak.md, "What grows")."""
    at: float  # wall clock, seconds since the epoch, when it finished
    index: str  # the index's file: its type, bucket and number
    ms: float
    keys: int


def database_log(db_pid: int) -> Path:
    """Where the embedded database writes its logs: `log` in its working directory, the
    data directory (nothing is there for a database elsewhere)."""
    return Path(f"/proc/{db_pid}/cwd/log")


def _logged(log: Path, files: str, line: re.Pattern[str], time_format: str, since: float,
            until: float) -> Iterator[tuple[float, re.Match[str]]]:
    """Matching lines of the database's logs, with their instants. A time logged without a
    zone is read in this process's: the database runs beside it, in the same zone."""
    for path in log.glob(files):
        if path.suffix == ".lck":
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:  # rotated away since the glob: the run's figures matter more
            continue
        for found in line.finditer(text):
            at = datetime.strptime(found["at"], time_format).timestamp()
            if since <= at < until:
                yield at, found


def database_pauses(log: Path, since: float, until: float) -> list[Pause]:
    """The embedded database's collector pauses between two wall-clock instants."""
    return sorted((Pause(at, found["kind"], float(found["ms"])) for at, found in _logged(
        log, "gc.log*", _PAUSE, "%Y-%m-%dT%H:%M:%S.%f%z", since, until)),
        key=lambda pause: pause.at)


def database_compactions(log: Path, since: float, until: float) -> list[Compaction]:
    """The embedded database's full index compactions between two wall-clock instants."""
    return sorted((Compaction(at, found["index"], float(found["ms"]), int(found["keys"]))
                   for at, found in _logged(log, "arcadedb.log*", _FULL_COMPACTION,
                                            "%Y-%m-%d %H:%M:%S.%f", since, until)),
                  key=lambda compaction: compaction.at)


def machine_ticks() -> list[int]:
    """Jiffies over all cores: user nice system idle iowait irq softirq steal."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_usage(before: list[int], after: list[int], window_s: float) -> dict[str, float]:
    """Cores busy on average, and the part no process is charged with: softirq (loopback
    networking) and steal (a noisy VM neighbour) make figures drift without showing in ps."""
    d = [b - a for a, b in zip(before, after, strict=True)]

    def cores(*fields: int) -> float:
        return round(sum(d[f] for f in fields) / _TICKS / window_s, 2)

    return {"busy": cores(0, 1, 2, 5, 6, 7), "softirq": cores(5, 6), "steal": cores(7)}


# --- reporting ------------------------------------------------------------------------------

async def page_times(read: Callable[[], Awaitable[Sized]], reads: int) -> dict[str, Any]:
    """Times `reads` reads of one page: how many rows it found, p50 and p95 in ms."""
    times, found = [], 0
    for _ in range(reads):
        began = time.perf_counter()
        found = len(await read())
        times.append(time.perf_counter() - began)
    times.sort()
    return {"found": found, "p50_ms": percentile(times, 50) * 1000,
            "p95_ms": percentile(times, 95) * 1000}


def print_pages(page: str, filtered_by: str, pages: Sequence[dict[str, Any]]) -> None:
    """The table of `page_times` figures, each row with its `tenant`, `from` and filter."""
    print_table([page, "from", filtered_by, "found", "p50 ms", "p95 ms"],
                [[r["tenant"], r["from"], r[filtered_by] or "any", r["found"], r["p50_ms"],
                  r["p95_ms"]] for r in pages])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):  # two decimals where they matter, none where they are noise
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


# --- the database and the app under test ---------------------------------------------------

def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def cleanup_on_sigterm() -> None:
    """A SIGTERM (from `timeout`, a CI runner) unwinds like ^C, so the servers a benchmark
    started are stopped by its `finally` and `with` blocks instead of being orphaned."""
    signal.signal(signal.SIGTERM, _interrupt)


READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Target:
    uri: str
    user: str
    password: str
    database: str
    db_pid: int | None  # the embedded database's process, for CPU accounting

    def settings(self) -> Settings:
        return Settings(neo4j_uri=self.uri, neo4j_user=self.user, neo4j_password=self.password,
                        neo4j_database=self.database, _env_file=None)


def run_in_workdir(name: str, run: Callable[[Any, Path], Awaitable[T]], args: Any) -> T:
    """`run(args, workdir)` to its end in a temporary directory, removed after it, a
    SIGTERM included."""
    cleanup_on_sigterm()
    with tempfile.TemporaryDirectory(prefix=f"tf-{name}-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


def healthy(process: subprocess.Popen[Any], port: int | str, seconds: float) -> bool:
    """Polls a service's /healthz on loopback while `process` runs: True once it answers
    200, False when the process ends or time runs out first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def start_app(target: Target, workers: int, port: int, workdir: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`trustfabric serve` in its own process, with our environment, the target's and `env`."""
    command = [sys.executable, "-m", "trustfabric.cli", "serve", "--port", str(port),
               "--workers", str(workers)]
    environment = {**os.environ, "TF_NEO4J_URI": target.uri, "TF_NEO4J_USER": target.user,
                   "TF_NEO4J_PASSWORD": target.password, "TF_NEO4J_DATABASE": target.database,
                   **(env or {})}
    with open(workdir / "uvicorn.log", "ab") as log:
        # Own session: a ^C reaches us, and we stop the server in order rather than mid-request.
        # Our cwd, as `trustfabric serve` would have: its .env and relative paths apply.
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    if healthy(process, port, READY_TIMEOUT_S):
        return process
    stop_app(process)
    # The work dir goes away with the run, so the log's end goes into the message.
    tail = (workdir / "uvicorn.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the API did not answer /healthz:\n{tail}")


def stop_app(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the supervisor stops its workers
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def psi_pilot(target: Target, workdir: Path, partner: str, items: int,
                    tenants: list[str], **controls: Any) -> tuple[str, dict[str, str]]:
    """A migrated graph with a partner dataset of `items`, and a member token for each
    tenant, allowed PSI and PSI-CA against it (with `controls`, e.g. a quota):
    (dataset id, {tenant: token})."""
    operator = Caller(token_id="bench", tenant=f"{partner}-ops", role=Role.OPERATOR)
    services = Services.open(target.settings().model_copy(update={"data_dir": workdir}))
    try:
        await migrate(services.executor)
        await services.seed_controls()
        dataset = await services.datasets.register(operator, partner, "customers",
                                                      demo_customers(items))
        tokens = {}
        for tenant in tenants:
            await services.controls.change(
                operator, lambda c, t=tenant: c.with_tenant(
                    t, psi=True, psi_ca=True, scopes=(dataset.id,), **controls), "bench")
            tokens[tenant] = (await services.repos.tokens.create(tenant, Role.MEMBER, "bench"))[1]
        return dataset.id, tokens
    finally:
        await services.close()


@dataclass(frozen=True)
class PsiService:
    """A PSI service under test: its URL, the partner dataset, a token per tenant, and the
    processes to charge CPU to (none for a service elsewhere)."""

    url: str
    dataset: str
    tokens: dict[str, str]
    app_pid: int | None
    db_pid: int | None


REGISTER_DATASET = """mutation($name: String!, $items: [String!]!, $partner: String) {
  registerDataset(name: $name, items: $items, partner: $partner) { id } }"""
ALLOW_PSI = """mutation($tenant: String!, $input: TenantControlsInput!) {
  updateTenantControls(tenant: $tenant, input: $input) { __typename } }"""


def _operator_call(url: str, token: str, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables},
                          headers={"authorization": f"Bearer {token}"}, timeout=120)
    payload = response.json()
    if payload.get("errors"):
        raise RuntimeError(f"the service refused the operator's call: {payload['errors'][0]}")
    return payload["data"]


def targeted_pilot(url: str, operator_token: str, partner: str, items: int,
                   tenants: list[str], quota: Quota) -> str:
    """What `psi_pilot` sets up, on a running service through its public API with an
    operator's token: a partner dataset of `items`, and each tenant allowed PSI and PSI-CA
    on it alone, with `quota`. Returns the dataset's id."""
    dataset = _operator_call(url, operator_token, REGISTER_DATASET, name="soak-customers",
                             items=demo_customers(items), partner=partner)
    dataset_id = dataset["registerDataset"]["id"]
    for tenant in tenants:
        _operator_call(url, operator_token, ALLOW_PSI, tenant=tenant, input={
            "psi": True, "psiCa": True, "scopes": [dataset_id],
            "quota": {"requests": quota.requests, "perSeconds": quota.per_seconds,
                      "burst": quota.burst}})
    return dataset_id


DB_HEAP_HELP = "embedded database JVM heap (default: sized from the memory, as the service does)"


@contextmanager
def embedded_database(workdir: Path, heap: str | None = None,
                      page_cache_mb: int | None = None) -> Iterator[Target]:
    """An embedded database under `workdir`, started and stopped around the block; sized as
    `trustfabric serve` sizes it unless told (decision 0022)."""
    heap, page_cache_mb = sized(machine_memory_mb(), heap, page_cache_mb)
    server = EmbeddedServer(workdir / "graph", "trustfabric", free_port(), free_port(),
                            heap=heap, page_cache_mb=page_cache_mb)
    with server:
        yield Target(server.uri, "root", server.password, "trustfabric", server.pid)


@contextmanager
def psi_service(name: str, partner: str, items: int, tenants: list[str], *,
                env: dict[str, str] | None = None, db_heap: str | None = None,
                db_page_cache_mb: int | None = None, **controls: Any) -> Iterator[PsiService]:
    """An embedded database in a temporary directory, a PSI pilot in it (see `psi_pilot`)
    and the app serving it with `env` on top of ours; all stopped and removed on exit."""
    with tempfile.TemporaryDirectory(prefix=f"tf-{name}-") as tmp:
        workdir = Path(tmp)
        with embedded_database(workdir, db_heap, db_page_cache_mb) as target:
            dataset, tokens = asyncio.run(psi_pilot(target, workdir, partner, items, tenants,
                                                    **controls))
            port = free_port()
            # the app finds the pilot's keys under the same data directory
            app = start_app(target, 1, port, workdir,
                            {"TF_DATA_DIR": str(workdir), **(env or {})})
            try:
                yield PsiService(f"http://127.0.0.1:{port}", dataset, tokens, app.pid,
                                 target.db_pid)
            finally:
                stop_app(app)
