"""Jobs this process accepted, handed to its own proof worker in memory.

A job is durable in the graph before it is put here, so this is only a shortcut: the worker
claims these by id (an index lookup) instead of searching the queue for them. Whatever a
crash loses here is still QUEUED in the graph, and is claimed from there.
"""

from collections import defaultdict, deque


class Backlog:
    def __init__(self) -> None:
        self._queues: dict[str, deque[str]] = defaultdict(deque)

    def put(self, tenant: str, job_id: str) -> None:
        self._queues[tenant].append(job_id)

    def depth(self) -> dict[str, int]:
        return {tenant: len(queue) for tenant, queue in self._queues.items() if queue}

    def give_back(self, tenant: str, job_ids: list[str]) -> None:
        """Returns ids taken for a claim that failed, to the front."""
        self._queues[tenant].extendleft(reversed(job_ids))

    def take(self, tenant: str, n: int) -> list[str]:
        """Up to `n` of the tenant's job ids, oldest first."""
        queue = self._queues[tenant]
        return [queue.popleft() for _ in range(min(n, len(queue)))]
