"""Fairness maths: weighted max-min fair shares, the Gini of served over entitled, and the
deficit-round-robin split of a worker's batch between backlogged tenants.

Definitions follow the design notes: over the tenants with demand in a window,
g_i = served_i / entitled_i, where entitled_i is tenant i's weighted max-min fair share of
what was served in total; the Gini of the g_i is 0 when service is perfectly fair.
"""

from collections.abc import Mapping


def max_min_shares(demand: Mapping[str, float], weights: Mapping[str, float],
                   capacity: float) -> dict[str, float]:
    """Water-filling: each tenant gets min(demand, weighted share of what is left)."""
    shares = {tenant: 0.0 for tenant in demand}
    active = {t for t, d in demand.items() if d > 0}
    left = capacity
    while active and left > 1e-12:
        total_weight = sum(weights.get(t, 1.0) for t in active)
        satisfied = set()
        for tenant in active:
            offer = left * weights.get(tenant, 1.0) / total_weight
            if demand[tenant] - shares[tenant] <= offer:
                satisfied.add(tenant)
        if not satisfied:
            for tenant in active:
                shares[tenant] += left * weights.get(tenant, 1.0) / total_weight
            break
        for tenant in satisfied:
            left -= demand[tenant] - shares[tenant]
            shares[tenant] = demand[tenant]
        active -= satisfied
    return shares


def gini(values: list[float]) -> float:
    """Gini coefficient (mean absolute difference over twice the mean)."""
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    if mean == 0:
        return 0.0
    ordered = sorted(values)
    n = len(ordered)
    weighted = sum((2 * (i + 1) - n - 1) * v for i, v in enumerate(ordered))
    return weighted / (n * n * mean)


def fairness_gini(served: Mapping[str, float], demand: Mapping[str, float],
                  weights: Mapping[str, float]) -> float:
    """The SLO figure for one window: Gini of served/entitled over tenants with demand."""
    with_demand = {t: d for t, d in demand.items() if d > 0}
    if len(with_demand) < 2:
        return 0.0
    entitled = max_min_shares(with_demand, weights, sum(served.get(t, 0) for t in with_demand))
    return gini([served.get(t, 0) / entitled[t] for t in with_demand if entitled[t] > 0])


class DeficitRoundRobin:
    """Splits each batch between backlogged tenants in proportion to their weights; unused
    credit of a tenant whose queue runs out is not carried over (classic DRR resets it)."""

    def __init__(self, quantum: float = 1.0) -> None:
        self.quantum = quantum
        self.deficit: dict[str, float] = {}
        self._last = ""  # the round resumes after the tenant served last

    def allocate(self, backlog: Mapping[str, int], weights: Mapping[str, float],
                 slots: int) -> dict[str, int]:
        allocation = {t: 0 for t in backlog if backlog[t] > 0}
        for tenant in list(self.deficit):
            if tenant not in allocation:
                del self.deficit[tenant]  # an idle tenant banks nothing
        if not allocation:
            return {}
        # Quanta in proportion to the weights, the least at least one job: a round then
        # serves at least one job, however small the weights (tiny ones took a million
        # empty rounds a job, on the event loop).
        least = min(weights.get(t, 1.0) for t in allocation)
        quantum = {t: self.quantum * weights.get(t, 1.0) / least for t in allocation}
        ordered = sorted(allocation)
        start = next((i for i, t in enumerate(ordered) if t > self._last), 0)
        ordered = ordered[start:] + ordered[:start]
        while slots > 0 and any(allocation[t] < backlog[t] for t in allocation):
            for tenant in ordered:
                if allocation[tenant] >= backlog[tenant]:
                    continue
                self.deficit[tenant] = self.deficit.get(tenant, 0.0) + quantum[tenant]
                take = min(int(self.deficit[tenant]), backlog[tenant] - allocation[tenant],
                           slots)
                allocation[tenant] += take
                self.deficit[tenant] -= take
                slots -= take
                if take:
                    self._last = tenant
                if allocation[tenant] >= backlog[tenant]:
                    self.deficit[tenant] = 0.0  # its queue ran out: no credit banked
                if slots == 0:
                    break
        return {t: n for t, n in allocation.items() if n > 0}
