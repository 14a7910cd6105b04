"""What a process knows of the PSI load: queue depth, service rate, a fairness window.

Feeds back-pressure (refuse early when the queue is deeper than the workers can serve
within the latency objective) and the metrics the fairness SLO is measured on.
"""

import time
from collections import defaultdict, deque

from prometheus_client import Counter, Gauge

from trustfabric.errors import Unavailable
from trustfabric.fairness import fairness_gini

QUEUE_DEPTH = Gauge("tf_psi_queue_depth", "Queued PSI jobs", ["tenant"])
SERVED = Counter("tf_psi_jobs_served_total", "PSI jobs finished", ["tenant", "outcome"])
ACCEPTED = Counter("tf_psi_requests_accepted_total", "PSI requests accepted", ["tenant"])
REFUSED = Counter("tf_psi_requests_refused_total", "PSI requests refused on purpose",
                  ["tenant", "code"])
GINI = Gauge("tf_psi_fairness_gini", "Gini of served/entitled over the last window")
SERVICE_RATE = Gauge("tf_psi_service_rate", "PSI jobs finished per second (smoothed)")


class LoadState:
    def __init__(self, queue_wait_s: float, window_s: float = 60.0,
                 min_rate: float = 50.0) -> None:
        self.queue_wait_s = queue_wait_s
        self.window_s = window_s
        self.min_rate = min_rate  # assumed capacity before any job has been measured
        self.depth: dict[str, int] = {}  # queued jobs per tenant
        self.running: dict[str, int] = {}  # claimed by this process's worker, not finished
        self.rate = 0.0
        self._last_served = time.monotonic()
        # (time, tenant) within the window, with running counts per tenant: the Gini is
        # updated every batch, so it must not walk the whole window each time
        self._demand = Window()
        self._served = Window()

    # -- observations ----------------------------------------------------------------------
    def observe_depth(self, depth: dict[str, int]) -> None:
        for tenant in set(self.depth) - set(depth):
            QUEUE_DEPTH.labels(tenant).set(0)
        for tenant, queued in depth.items():
            QUEUE_DEPTH.labels(tenant).set(queued)
        self.depth = dict(depth)

    def accepted(self, tenant: str) -> None:
        ACCEPTED.labels(tenant).inc()
        self._demand.add(time.monotonic(), tenant)

    def refused(self, tenant: str, code: str) -> None:
        REFUSED.labels(tenant, code).inc()
        self._demand.add(time.monotonic(), tenant)  # demand, even if not served

    def served(self, tenants: list[str], outcome: str = "done") -> None:
        now = time.monotonic()
        for tenant in tenants:
            SERVED.labels(tenant, outcome).inc()
            self._served.add(now, tenant)
        # exponentially smoothed jobs/s, from batch sizes and the time between batches
        elapsed = max(now - self._last_served, 1e-3)
        self.rate = 0.8 * self.rate + 0.2 * (len(tenants) / elapsed)
        self._last_served = now
        SERVICE_RATE.set(self.rate)
        GINI.set(self.gini())

    # -- decisions -------------------------------------------------------------------------
    def admit(self, tenant: str) -> None:
        """Refuses a new job when more jobs are outstanding than the workers can serve
        within the queue wait, and this tenant holds at least its even part of them: better
        a clear refusal now than a timeout later, and the flooding tenant first."""
        outstanding = {t: self.depth.get(t, 0) + self.running.get(t, 0)
                       for t in self.depth.keys() | self.running.keys()}
        capacity = max(self.rate, self.min_rate) * self.queue_wait_s
        if sum(outstanding.values()) <= capacity:
            return
        backlogged = {t for t, n in outstanding.items() if n > 0} | {tenant}
        if outstanding.get(tenant, 0) >= capacity / len(backlogged):
            raise Unavailable("the PSI queue is full; retry shortly",
                              reason="OVERLOADED", retryAfterSeconds=1)

    def gini(self) -> float:
        horizon = time.monotonic() - self.window_s
        return fairness_gini(self._served.since(horizon), self._demand.since(horizon), {})


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
