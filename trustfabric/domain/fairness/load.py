"""What a process knows of the PSI load: queue depth, service rate, a fairness window.

Feeds back-pressure (refuse early when a tenant has more jobs queued than it is served
within the queue-wait budget) and the metrics the fairness SLO is measured on.
"""

import gc
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge, Histogram

from trustfabric.domain.audit import iso
from trustfabric.domain.events.records import PSI_JOB, JobEvent
from trustfabric.domain.fairness.shares import fairness_gini
from trustfabric.errors import Unavailable

QUEUE_DEPTH = Gauge("tf_psi_queue_depth", "Queued PSI jobs", ["tenant"])
SERVED = Counter("tf_psi_jobs_served_total", "PSI jobs finished", ["tenant", "outcome"])
ACCEPTED = Counter("tf_psi_requests_accepted_total", "PSI requests accepted", ["tenant"])
REFUSED = Counter("tf_psi_requests_refused_total", "PSI requests refused on purpose",
                  ["tenant", "code"])
GINI = Gauge("tf_psi_fairness_gini", "Gini of served/entitled over the last window")
SERVICE_RATE = Gauge("tf_psi_service_rate", "PSI jobs finished per second (last 5 s)")
LOOP_LAG = Gauge("tf_event_loop_lag_seconds",
                 "How late the event loop wakes up (smoothed): the process is short of CPU")
GC_PAUSE = Histogram("tf_gc_pause_seconds", "Python garbage collections: how long each stopped "
                     "the process", ["generation"], buckets=(0.001, 0.005, 0.02, 0.05, 0.1,
                                                             0.25, 0.5, 1.0))
# The service rate is what was served over this many seconds: batches that finish together
# (they share a commit) must not look like an instant rate of thousands a second.
RATE_WINDOW_S = 5.0
# How often the event loop's lateness is probed (`LoadState.tick`)
LAG_PROBE_S = 0.05
# The worker's capacity and the pipeline's time are measured over this many seconds, and
# the p95 of the pipeline over at most this many batches and this many job writes
CAPACITY_WINDOW_S = 10.0
PIPELINE_SAMPLES = 256


class LoadState:
    def __init__(self, queue_wait_s: float, window_s: float = 60.0,
                 min_queued: int = 128, max_loop_lag_s: float = 0.05,
                 objective_s: float = 0.9,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # The queue's budget until the rest of the pipeline is measured (and, in a process
        # that runs no worker, while none of its batches are): then the objective less it.
        self.queue_wait_s = queue_wait_s
        self.objective_s = objective_s
        self._clock = clock
        # Recent batches of this process's worker (when it finished, jobs, seconds from claim
        # to commit, batches it answers at once) and writes of new jobs (seconds): the
        # measured rest of the pipeline, and the worker's capacity (decision 0021)
        self._batches: deque[tuple[float, int, float, int]] = deque()
        self._writes: deque[float] = deque(maxlen=PIPELINE_SAMPLES)
        self._budget_s: float | None = None  # objective less the rest, when measured
        self._measured_from: float | None = None  # when the first measured batch was claimed
        # Beyond this the process itself is short of CPU: every request, even a refusal,
        # makes it worse, and the queue measures only what got in.
        self.max_loop_lag_s = max_loop_lag_s
        self.loop_lag_s = 0.0
        self.window_s = window_s
        # The queue is never held shorter than one batch, which a worker takes at once:
        # before any job is measured, a burst must not be refused by a rate of zero (and an
        # API process whose workers run elsewhere measures none).
        self.min_queued = min_queued
        self.depth: dict[str, int] = {}  # queued jobs per tenant
        # admitted and not yet handed to a worker (waiting for their write, or in it): not
        # in what a worker or the graph reports, and queued all the same
        self._arriving: dict[str, int] = defaultdict(int)
        # (time, tenant) within the window, with running counts per tenant: the Gini is
        # updated every batch, so it must not walk the whole window each time
        self._demand = Window()
        self._served = Window()
        self._recent = Window()  # the last RATE_WINDOW_S of it, for the service rate
        self._admitted = Window()  # jobs accepted over the last RATE_WINDOW_S
        # tenants' weights (pilot controls), as the worker last split a batch by them: the
        # Gini measures service against the weighted fair share
        self.weights: dict[str, float] = {}
        self._ticked: float | None = None  # when `tick` last ran
        self._reported_at = clock()  # when the Gini was last reported

    # -- observations ----------------------------------------------------------------------
    def queued(self, tenant: str) -> None:
        """One more job admitted: queued from now on, until `handed_over`, whatever the
        worker's or the graph's count says meanwhile."""
        self._arriving[tenant] += 1
        self.depth[tenant] = self.depth.get(tenant, 0) + 1
        QUEUE_DEPTH.labels(tenant).set(self.depth[tenant])

    def handed_over(self, tenant: str, created: bool = True,
                    took_s: float | None = None) -> None:
        """The job's write returned: the worker's or the graph's count has it now. If it
        created no job (a replay of an earlier request, or a failed write), none is queued.
        `took_s`: how long the write took, a part of the pipeline outside the queue."""
        if created and took_s is not None:
            self._writes.append(took_s)
        self._arriving[tenant] -= 1
        if not self._arriving[tenant]:
            del self._arriving[tenant]
        if not created and self.depth.get(tenant, 0) > 0:
            self.depth[tenant] -= 1
            QUEUE_DEPTH.labels(tenant).set(self.depth[tenant])

    def observe_depth(self, depth: dict[str, int]) -> None:
        """The queue as a worker or the graph sees it, plus the jobs still arriving."""
        depth = {t: depth.get(t, 0) + self._arriving.get(t, 0)
                 for t in depth.keys() | self._arriving.keys()}
        for tenant in set(self.depth) - set(depth):
            QUEUE_DEPTH.labels(tenant).set(0)
        for tenant, queued in depth.items():
            QUEUE_DEPTH.labels(tenant).set(queued)
        self.depth = depth

    def accepted(self, tenant: str) -> None:
        ACCEPTED.labels(tenant).inc()
        self._demand.add(self._clock(), tenant)
        self._admitted.add(self._clock(), tenant)

    def refused(self, tenant: str, code: str) -> None:
        REFUSED.labels(tenant, code).inc()
        if code == "UNAVAILABLE":
            # shed for load: demand the service owes and did not serve. A refusal for the
            # tenant's own quota, permissions or input is not owed.
            self._demand.add(self._clock(), tenant)

    def served(self, tenants: list[str], outcome: str = "done") -> None:
        for tenant in tenants:
            SERVED.labels(tenant, outcome).inc()
        self._finished(tenants)

    def processed(self, jobs: int, seconds: float, slots: int) -> None:
        """A batch of this process's worker committed: `jobs` answered and written in
        `seconds` from its claim, by a worker answering up to `slots` batches at once. Moves
        the queue's budget: the objective less the p95 of the rest of the pipeline (waiting
        for a slot, the batch, the job's own write), so slower batches leave less to wait."""
        now = self._clock()
        if self._measured_from is None:
            self._measured_from = now - seconds
        self._batches.append((now, jobs, seconds, slots))
        self._forget_batches(now)
        # a job at the head of the queue still waits for a slot (half a batch's time over
        # the slots, on average), then its own batch's time (decision 0021)
        batch = _p95([b[2] for b in self._batches][-PIPELINE_SAMPLES:])
        rest = batch * (1 + 0.5 / slots) + _p95(list(self._writes))
        # never less than `queue_wait_s`: on a busy host the rest's p95s add up to most of
        # the objective, and a budget near nothing refused half the flood while the fixed
        # budget before served it (decision 0021, its soak)
        self._budget_s = max(self.objective_s - rest, self.queue_wait_s)

    def _forget_batches(self, now: float) -> None:
        while self._batches and self._batches[0][0] < now - CAPACITY_WINDOW_S:
            self._batches.popleft()

    def _finished(self, tenants: list[str]) -> None:
        now = self._clock()
        for tenant in tenants:
            self._served.add(now, tenant)
            self._recent.add(now, tenant)
        self._report()

    def _report(self) -> None:
        """The figures whose windows move on: on every service, and at least once a second."""
        SERVICE_RATE.set(self.rate())
        GINI.set(self.gini())

    def heard(self, events: list[JobEvent]) -> None:
        """Job events other processes committed: the jobs they accepted are demand, and the
        jobs their workers finished are service, in this process's view of the load (their
        counters are theirs to export, and are not counted here again). Without them an
        API process whose workers run elsewhere saw no service: it held every tenant to
        the same part of one batch, and its Gini was not measured.
        They count from when they are heard, and only if they were written within the
        window they would count in: a poller catching up on a backlog (after a stall, or an
        outage of reads) would otherwise make the rate, and with it every tenant's budget,
        several times what is served. (Within the window a catch-up still counts at once:
        at most one window's worth.) Their time is their batch's, when the statement that
        wrote them was sent, not the event's own: a job's DONE is stamped when its bundle
        is sealed, which may be long before a held-up worker commits it."""
        now, wall, done = self._clock(), datetime.now(UTC), []
        # written after these, as text (timestamps are compared as text throughout)
        demand_from = iso(wall - timedelta(seconds=self.window_s))
        served_from = iso(wall - timedelta(seconds=RATE_WINDOW_S))
        for event in events:
            if event.written is None or event.topic != PSI_JOB:  # this process's own, or
                continue  # not a PSI job's
            if event.status == "QUEUED" and event.written > demand_from:
                self._demand.add(now, event.tenant)
            elif event.status == "DONE" and event.written > served_from:
                done.append(event.tenant)
        if done:
            self._finished(done)

    def demanding(self) -> set[str]:
        """The tenants with demand within the fairness window."""
        return set(self._demand.since(self._clock() - self.window_s))

    def rate(self) -> float:
        """Jobs served per second, by this process's worker and those it hears of, over the
        last few seconds."""
        recent = self._recent.since(self._clock() - RATE_WINDOW_S)
        return sum(recent.values()) / RATE_WINDOW_S

    def queue_budget_s(self) -> float:
        """How long a job may wait in the queue: the objective less the measured rest of the
        pipeline, or `queue_wait_s` until this process's worker has measured it."""
        return self.queue_wait_s if self._budget_s is None else self._budget_s

    def capacity(self, served: dict[str, int] | None = None) -> float:
        """Jobs a second the service could serve: what it serves (`served` over the last
        RATE_WINDOW_S), plus what this process's worker left unused. By Little's law its
        batches' jobs over the time they took, times the batches it answers at once, is
        its rate were every slot kept busy; the busy part of that is being served."""
        now = self._clock()
        if served is None:
            served = self._recent.since(now - RATE_WINDOW_S)
        total = sum(served.values()) / RATE_WINDOW_S
        self._forget_batches(now)
        if not self._batches or self._measured_from is None:
            return total
        jobs = sum(b[1] for b in self._batches)
        busy = sum(b[2] for b in self._batches)
        slots = self._batches[-1][3]
        span = min(CAPACITY_WINDOW_S, now - self._measured_from)
        idle = max(1.0 - busy / (slots * span), 0.0) if span > 0 else 0.0
        return total + slots * jobs / busy * idle if busy > 0 else total

    def _budget(self, tenant: str, served: dict[str, int], capacity: float,
                backlogged: int) -> float:
        """How many of a tenant's jobs may wait: as many as the service would start within
        the queue's budget at the rate it can serve this tenant — what it was served lately
        plus the capacity nobody used (work-conserving: the fair queue gives spare capacity
        to whoever has work), at least its even part of the capacity — and at least its
        even part of one batch, so a tenant not served lately (a newcomer, or one whose
        worker runs elsewhere) is not held to nothing."""
        total = sum(served.values()) / RATE_WINDOW_S
        rate = max(served.get(tenant, 0) / RATE_WINDOW_S + capacity - total,
                   capacity / backlogged)
        return max(rate * self.queue_budget_s(), self.min_queued / backlogged)

    def _light(self, tenant: str, now: float) -> bool:
        """Over the fairness window, it asked for less than an even part of what was
        served: within its max-min fair share, whoever else asks for more."""
        horizon = now - self.window_s
        demand, served = self._demand.since(horizon), self._served.since(horizon)
        return demand.get(tenant, 0) < sum(served.values()) / max(len(demand), 1)

    def _late(self) -> bool:
        return self.loop_lag_s > self.max_loop_lag_s

    def overloaded(self) -> bool:
        """Some tenant holds more jobs than fit its budget, or the event loop runs late:
        from here on `admit` sheds some tenants' requests."""
        if self._late():
            return True
        served = self._recent.since(self._clock() - RATE_WINDOW_S)
        capacity = self.capacity(served)
        backlogged = sum(1 for n in self.depth.values() if n > 0)
        return any(n > self._budget(t, served, capacity, backlogged)
                   for t, n in self.depth.items() if n > 0)

    def admit(self, tenant: str) -> None:
        """Refuses a new job when the tenant's queued jobs would wait longer than the queue's
        budget at the rate the fair queue can serve it (never while capacity is idle:
        decision 0021): each tenant's wait is bounded, the
        flooding tenant's too (a bound on the whole queue let it hold five times its
        share of it, and its jobs waited five times as long). Or, while the event loop runs
        late, when this tenant took the most, or at least its even part, of what was
        admitted lately: better a clear refusal now than a timeout later. A tenant asking
        less than its share is held to twice its budget, and not refused while the event
        loop is late and others ask more.
        Jobs being answered do not count: they are past the queue, and counting them made
        the pipeline alone (the two batches in flight) look like a full queue."""
        now = self._clock()
        admitted = self._admitted.since(now - RATE_WINDOW_S)
        if self._late() and admitted:
            taken = admitted.get(tenant, 0)
            shed = (taken >= sum(admitted.values()) / len(admitted.keys() | {tenant})
                    or 0 < taken == max(admitted.values()))
        else:
            served = self._recent.since(now - RATE_WINDOW_S)
            backlogged = len({t for t, n in self.depth.items() if n > 0} | {tenant})
            # a tenant asking less than an even part of what is served is held to twice its
            # budget: its queue grows only when the service stalls, and the stall is not
            # its doing (a light tenant refused while the flood asks more is unfair)
            budget = self._budget(tenant, served, self.capacity(served), backlogged)
            queued = self.depth.get(tenant, 0)
            shed = queued > budget and (queued > 2 * budget or not self._light(tenant, now))
        if shed:
            raise Unavailable("the PSI queue is full; retry shortly",
                              reason="OVERLOADED", retryAfterSeconds=1)

    async def tick(self, gini_every_s: float = 1.0) -> float:
        """Run every LAG_PROBE_S: measures how late the event loop woke for it; and moves
        the Gini and the service rate on with their windows when nothing is served (they
        would stay at their last values: a dead worker's rate for ever)."""
        now = self._clock()
        if self._ticked is not None:
            late = max(now - self._ticked - LAG_PROBE_S, 0.0)
            self.loop_lag_s = 0.8 * self.loop_lag_s + 0.2 * late
            LOOP_LAG.set(self.loop_lag_s)
        self._ticked = now
        if now - self._reported_at >= gini_every_s:
            self._reported_at = now
            self._report()
        return LAG_PROBE_S

    def gini(self) -> float:
        horizon = self._clock() - self.window_s
        return fairness_gini(self._served.since(horizon), self._demand.since(horizon),
                             self.weights)


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    values.sort()
    return values[math.ceil(0.95 * len(values)) - 1]


class Window:
    def __init__(self) -> None:
        self._events: deque[tuple[float, str]] = deque()
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, at: float, tenant: str) -> None:
        self._events.append((at, tenant))
        self._counts[tenant] += 1

    def since(self, horizon: float) -> dict[str, int]:
        """Counts per tenant from `horizon` on (older events are dropped)."""
        while self._events and self._events[0][0] < horizon:
            _, tenant = self._events.popleft()
            self._counts[tenant] -= 1
            if not self._counts[tenant]:
                del self._counts[tenant]
        return self._counts


# Frequent young collections promoted live requests into full ones (decision 0014).
YOUNG_COLLECTION_EVERY = 50_000
_gc_started = [0.0]


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - _gc_started[0])


def settle_collector() -> None:
    """Once started: what start-up built (schema, modules, pools) is frozen out of the
    collector's scans, the young generation is collected less often, and every collection
    is timed into GC_PAUSE (a late loop with no work to show for it may be the collector)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
