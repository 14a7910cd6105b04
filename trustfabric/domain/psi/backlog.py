"""Jobs this process accepted, handed to its own proof worker in memory.

A job is durable in the graph before it is put here, so this is only a shortcut: the worker
claims these by id (an index lookup) instead of searching the queue for them. Whatever a
crash loses here is still QUEUED in the graph, and is claimed from there.
"""

from collections import Counter, defaultdict
from itertools import islice


class Backlog:
    def __init__(self) -> None:
        # job ids per tenant, oldest first (dicts keep insertion order and drop in O(1))
        self._queues: dict[str, dict[str, None]] = defaultdict(dict)
        # jobs in a write under way: committed, maybe, so counted in the graph's queue, and
        # not yet here (the worker must not take them for jobs queued elsewhere)
        self.writing: Counter[str] = Counter()

    def put(self, tenant: str, job_id: str) -> None:
        self._queues[tenant][job_id] = None

    def depth(self) -> dict[str, int]:
        return {tenant: len(queue) for tenant, queue in self._queues.items() if queue}

    def take(self, tenant: str, n: int) -> list[str]:
        """Up to `n` of the tenant's job ids, oldest first."""
        queue = self._queues[tenant]
        taken = list(islice(queue, n))
        for job_id in taken:
            del queue[job_id]
        return taken

    def give_back(self, tenant: str, job_ids: list[str]) -> None:
        """Returns ids taken for a claim that failed, to the front."""
        self._queues[tenant] = dict.fromkeys(job_ids) | self._queues[tenant]

    def discard(self, tenant: str, job_id: str) -> None:
        """A job claimed some other way (found in the graph): no longer waiting here."""
        self._queues[tenant].pop(job_id, None)
