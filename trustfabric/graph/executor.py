"""The one place queries reach the database: routing, transactions, errors and timing."""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from neo4j import (
    READ_ACCESS,
    WRITE_ACCESS,
    AsyncDriver,
    AsyncGraphDatabase,
    AsyncManagedTransaction,
    AsyncResult,
    AsyncSession,
)
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConstraintError,
    DatabaseError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)
from prometheus_client import Counter, Histogram

from trustfabric.domain.origin import ORIGIN
from trustfabric.errors import AppError, Conflict, Contended, Unavailable
from trustfabric.graph.cypher import Cypher

log = logging.getLogger(__name__)
# The driver logs every statement's parameters at DEBUG, and parameters carry blinded
# selectors: its loggers never go below WARNING, whatever the root level.
for _name in ("neo4j", "neo4j.io", "neo4j.pool"):
    logging.getLogger(_name).setLevel(logging.WARNING)

Row = dict[str, Any]
T = TypeVar("T")

QUERY_SECONDS = Histogram(
    "tf_graph_query_seconds", "Time spent in one named graph query", ["query"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
QUERY_ERRORS = Counter("tf_graph_query_errors_total", "Graph queries that failed", ["query"])
# A statement refused for a concurrent change is tried again (here or by the driver): each
# refusal counted apart from errors, so contention alone does not page anyone; refused past
# the retries, it is an error under the name of the statement refused last.
_REFUSED: ContextVar[str] = ContextVar("refused", default="unknown")
QUERY_REFUSALS = Counter("tf_graph_query_refusals_total",
                         "Graph statements refused for a concurrent change, then tried again",
                         ["query"])
# Every statement sent is a round trip; tests read it to prove DataLoaders bound them.
STATEMENTS = Counter("tf_graph_statements_total", "Statements sent to the graph database",
                     ["origin"])


async def _timed(query: Cypher, run: Awaitable[AsyncResult]) -> list[Row]:
    """Counts, times and names one statement; the text and parameters are never logged."""
    STATEMENTS.labels(ORIGIN.get()).inc()
    started = time.perf_counter()
    try:
        result = await run
        keys = result.keys()
        # rows of plain values (map projections) as they were decoded: the driver's own
        # conversion (`data()`, for nodes, relationships, paths) puts every value through
        # abstract-class checks, 3 % of a lineage read's CPU (decision 0023)
        return [dict(zip(keys, record, strict=True)) if all(map(_plain, record))
                else record.data() async for record in result]
    except Neo4jError as error:
        if isinstance(error, TransientError) and error.code == DEADLOCK:
            QUERY_REFUSALS.labels(query.name).inc()
            _REFUSED.set(query.name)  # an error if its retries run out (`_attempts`)
        else:
            QUERY_ERRORS.labels(query.name).inc()
            log.warning("graph query %s failed", query.name)
        raise
    finally:
        QUERY_SECONDS.labels(query.name).observe(time.perf_counter() - started)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> bool:
    """A value `Record.data()` would return as it is: scalars, and lists and maps of them."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        return all(map(_plain, value.values()))
    if kind is list:
        return all(map(_plain, value))
    return False


class Tx:
    """A transaction handed to a unit of work: runs named queries, nothing else."""

    def __init__(self, tx: AsyncManagedTransaction) -> None:
        self._tx = tx

    async def run(self, query: Cypher, **params: Any) -> list[Row]:
        return await _timed(query, self._tx.run(query.text, params))


class GraphExecutor:
    """Wraps the async driver. Writes and multi-statement reads are managed transactions
    (the driver retries them within `retry_time_s`); a single-statement read is one
    auto-commit round trip, retried here on a stale connection or a concurrent change
    (decision 0003)."""

    def __init__(self, driver: AsyncDriver, database: str, *, retry_time_s: float = 1.0,
                 query_timeout_s: float | None = None, ping_timeout_s: float | None = None
                 ) -> None:
        self.driver = driver
        self.database = database
        self.retry_time_s = retry_time_s
        # Client-side deadlines: a database that hangs (a stopped process, a frozen VM) keeps
        # its sockets open and answers nothing, so neither the driver's connect timeout nor a
        # server-side transaction timeout ends a statement already sent. The whole call, its
        # connection, retries and reconnections included, gets this long; then UNAVAILABLE.
        self.query_timeout_s = query_timeout_s
        self.ping_timeout_s = ping_timeout_s

    @classmethod
    def connect(
        cls, uri: str, user: str, password: str, database: str, *,
        connect_timeout_s: float, retry_time_s: float, pool_size: int,
        query_timeout_s: float | None = None,
    ) -> "GraphExecutor":
        driver = AsyncGraphDatabase.driver(
            uri,
            auth=(user, password),
            connection_timeout=connect_timeout_s,
            connection_acquisition_timeout=connect_timeout_s * 5,
            max_transaction_retry_time=retry_time_s,
            # Page conflicts succeed when retried at once, not after 1 s (decision 0003).
            initial_retry_delay=0.01,
            max_connection_pool_size=pool_size,
            liveness_check_timeout=30.0,
        )
        return cls(driver, database, retry_time_s=retry_time_s,
                   query_timeout_s=query_timeout_s, ping_timeout_s=connect_timeout_s)

    def without_deadline(self) -> "GraphExecutor":
        """The same driver with no deadline on a statement: for migrations, whose data
        slices may take longer than a request's budget, run before the service serves."""
        return GraphExecutor(self.driver, self.database, retry_time_s=self.retry_time_s)

    async def close(self) -> None:
        await self.driver.close()

    async def read(self, query: Cypher, **params: Any) -> list[Row]:
        async def auto_commit(session: AsyncSession) -> list[Row]:
            # ArcadeDB refuses a statement that met a concurrent change (a multi-page record
            # rewritten while it was read) and asks for it again; refused, it committed
            # nothing. The driver retries managed transactions so; this is its schedule.
            delays = _retry_delays(self.retry_time_s)
            while True:
                try:
                    return await _timed(query, session.run(query.text, params))
                except TransientError as error:
                    delay = next(delays, None)
                    if error.code != DEADLOCK or delay is None:
                        raise
                    await asyncio.sleep(delay)

        return await self._session(auto_commit, write=False)

    async def write(self, query: Cypher, **params: Any) -> list[Row]:
        return await self.write_tx(lambda tx: tx.run(query, **params))

    async def read_tx(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._transact(work, write=False)

    async def write_tx(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Runs `work` in one transaction: everything it wrote commits, or nothing does."""
        return await self._transact(work, write=True)

    async def ping(self) -> None:
        """Answers within the connect timeout, or raises Unavailable (readiness)."""
        await self._transact(lambda tx: tx.run(_PING), write=False,
                             timeout_s=self.ping_timeout_s)

    async def _transact(self, work: Callable[[Tx], Awaitable[T]], *, write: bool,
                        timeout_s: float | None = None) -> T:
        async def unit(tx: AsyncManagedTransaction) -> T:
            return await work(Tx(tx))

        async def managed(session: AsyncSession) -> T:
            if write:
                return await session.execute_write(unit)
            return await session.execute_read(unit)

        return await self._session(managed, write=write, timeout_s=timeout_s)

    async def _session(self, use: Callable[[AsyncSession], Awaitable[T]], *, write: bool,
                       timeout_s: float | None = None) -> T:
        budget = timeout_s if timeout_s is not None else self.query_timeout_s
        try:
            async with asyncio.timeout(budget):
                return await self._attempts(use, write=write)
        except TimeoutError as error:
            # cancelled mid-statement, the driver drops that connection rather than pool it;
            # a write cut short may still commit if the database resumes
            raise Unavailable("the graph database did not answer in time; retry shortly"
                              ) from error

    async def _attempts(self, use: Callable[[AsyncSession], Awaitable[T]], *, write: bool
                        ) -> T:
        # Right after the database restarts, ArcadeDB refuses a pooled connection's first
        # transaction (AuthError, or "BEGIN not expected in state: AUTHENTICATION"); the
        # driver drops that connection, so another try on a fresh one goes through.
        mode = WRITE_ACCESS if write else READ_ACCESS
        for attempt in range(1, RECONNECT_TRIES + 1):
            try:
                async with self.driver.session(database=self.database,
                                               default_access_mode=mode) as session:
                    return await use(session)
            except AppError:
                raise
            except ConstraintError as error:  # before ClientError, of which it is a kind
                raise Conflict() from error
            except (AuthError, ClientError) as error:
                if not _stale_connection(error):
                    raise
                if attempt == RECONNECT_TRIES:
                    raise Unavailable("the graph database refused the service's credentials"
                                      ) from error
            except (ServiceUnavailable, SessionExpired, TransientError, DatabaseError,
                    DriverError, OSError) as error:
                # ArcadeDB's name for a concurrent change, still refused after the retries
                if isinstance(error, TransientError) and error.code == DEADLOCK:
                    QUERY_ERRORS.labels(_REFUSED.get()).inc()
                    log.warning("graph query %s refused past its retries", _REFUSED.get())
                    raise Contended("the graph database is busy with concurrent changes; "
                                    "retry shortly") from error
                raise Unavailable("the graph database is unavailable; retry shortly") from error
        raise AssertionError("unreachable")


RECONNECT_TRIES = 3
DEADLOCK = "Neo.TransientError.Transaction.DeadlockDetected"


def _retry_delays(budget_s: float) -> Iterator[float]:
    """Close to the driver's schedule for managed transactions as `connect` sets it: 10 ms
    first, doubling, ±20 % jitter, while the waits fit the budget (the driver counts the
    attempts' time too; a statement's deadline bounds the whole call either way)."""
    delay, spent = 0.01, 0.0
    while spent + delay <= budget_s:
        jittered = delay * random.uniform(0.8, 1.2)
        spent += jittered
        yield jittered
        delay *= 2


def _stale_connection(error: Neo4jError) -> bool:
    return isinstance(error, AuthError) or error.code == "Neo.ClientError.Request.Invalid"


_PING = Cypher("health.ping", "RETURN 1 AS ok")
