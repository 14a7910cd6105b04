"""Job events fanned out to subscribers in this process.

Every state change writes its event in the statement that makes it, so workers in
other processes are covered too: one poller per process reads new events and hands each
to the subscribers of its tenant, and every event other processes wrote to the observer
(the process's view of the PSI load). Waiting clients never poll the database themselves.
"""

import asyncio
import logging
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Protocol

from trustfabric.domain.events.cursor import EventCursor, EventPage
from trustfabric.domain.events.records import JobEvent

log = logging.getLogger(__name__)

SEEN_LIMIT = 50_000
PAGE = 100  # batches of events: each holds the events one statement wrote
# Idle polls back off to this; own events reach subscribers at commit (decision 0008).
MAX_IDLE_INTERVAL_S = 1.0


Wanted = Callable[[JobEvent], bool]
Observer = Callable[[list[JobEvent]], None]


class EventSource(Protocol):
    """Where job events are read from (`graph.job_events.JobEventRepository`)."""

    async def events_after(self, after: str, limit: int = 100, *, foreign: bool = False,
                           tenants: list[str] | None = None) -> EventPage: ...


class EventBus:
    def __init__(self, jobs: EventSource, interval_s: float,
                 observer: Observer | None = None) -> None:
        self._jobs = jobs
        # told of every event other processes write, whoever subscribes: with it, the poller
        # always runs
        self._observer = observer
        self._base_interval_s = self._interval_s = interval_s
        self._subscribers: dict[str, dict[asyncio.Queue[JobEvent], Wanted]] = defaultdict(dict)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cursor = EventCursor.at(datetime.now(UTC))
        self.wake = asyncio.Event()

    async def subscribe(self, tenant: str, wanted: Wanted) -> AsyncIterator[JobEvent]:
        """The tenant's events that `wanted` accepts. Filtered as they are published: a
        subscriber to finished jobs is not woken for every job that starts. `wanted` runs
        in the writer's step after its commit, so it must not raise or wait."""
        queue: asyncio.Queue[JobEvent] = asyncio.Queue(maxsize=1000)
        if not self._listened():  # a bus with no observer (the load's view has one)
            # nobody listened, and nobody polled: what happened meanwhile is owed to nobody
            # (the first subscriber would otherwise hear it all before what happens now)
            self._cursor = EventCursor.at(datetime.now(UTC))
        self._subscribers[tenant][queue] = wanted
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[tenant].pop(queue, None)

    def subscriptions(self, tenant: str) -> int:
        """How many subscriptions of the tenant are open (a test waits on it, not a sleep)."""
        return len(self._subscribers.get(tenant, ()))

    def _listened(self) -> bool:
        return self._observer is not None or any(self._subscribers.values())

    def publish(self, event: JobEvent) -> bool:
        """Hands the event to its subscribers: False if it was published before."""
        if event.id in self._seen:
            return False
        self._seen[event.id] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        for queue, wanted in list(self._subscribers.get(event.tenant, {}).items()):
            # a subscriber that stopped reading loses events, not memory
            if wanted(event) and not queue.full():
                queue.put_nowait(event)
        return True

    def publish_many(self, events: list[JobEvent]) -> None:
        for event in events:
            self.publish(event)

    async def poll_once(self) -> int:
        # this one: a subscriber arriving meanwhile may start a new cursor, not to be undone
        cursor, started = self._cursor, datetime.now(UTC)
        # this process's own events were published as they committed
        page = await self._jobs.events_after(cursor.after, PAGE, foreign=True)
        fresh = [event for event in page.events if self.publish(event)]
        cursor.advance(started, page)  # first: an observer that fails must not stop the reads
        if self._observer is not None and fresh:
            self._observer(fresh)
        return len(page.events)

    async def tick(self) -> float:
        """One poll, when anyone listens; returns the seconds until the next. Polls that
        find nothing, or fail, come less often, so an outage is not logged ten times a
        second by every process (`runtime.background` logs a failure and backs off)."""
        if self._listened():
            self._interval_s = min(self._interval_s * 2, MAX_IDLE_INTERVAL_S)
            if await self.poll_once():
                self._interval_s = self._base_interval_s
        return self._interval_s
