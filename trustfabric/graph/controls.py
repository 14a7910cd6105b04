"""The pilot-controls document, read with a short cache and changed optimistically."""

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from async_lru import alru_cache

from trustfabric.domain.audit import now_iso
from trustfabric.domain.controls import PilotControls
from trustfabric.errors import BadUserInput
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import controls as q


class ControlsRepository:
    def __init__(self, executor: GraphExecutor, cache_s: float = 1.0) -> None:
        self._executor = executor
        # Every request reads the controls: however many arrive when the copy expires,
        # one read refreshes it for all of them.
        self._cached = alru_cache(maxsize=1, ttl=cache_s)(self._read)

    async def init(self, seed: PilotControls) -> None:
        await self._executor.write(q.INIT, document=json.dumps(seed.to_document()), now=now_iso())

    async def current(self, fresh: bool = False) -> tuple[PilotControls, int]:
        """The controls and their revision; cached for a second unless `fresh`."""
        return await (self._read() if fresh else self._cached())

    async def _read(self) -> tuple[PilotControls, int]:
        rows = await self._executor.read(q.GET)
        controls = (PilotControls.from_document(json.loads(rows[0]["document"]))
                    if rows else PilotControls())
        return controls, rows[0]["revision"] if rows else 0

    @staticmethod
    async def _write(tx: Tx, *, revision: int, after: PilotControls,
                     events: list[dict[str, Any]]) -> bool:
        rows = await tx.run(q.UPDATE, revision=revision,
                            document=json.dumps(after.to_document()), now=now_iso())
        if rows:
            await AuditRepository.record_in(tx, *events)
        return bool(rows)

    async def change(
        self,
        edit: Callable[[PilotControls], PilotControls],
        audit: Callable[[PilotControls, PilotControls], list[dict[str, Any]]],
    ) -> tuple[PilotControls, PilotControls]:
        """Applies `edit` to the current document and records `audit`'s events in the same
        transaction; returns (before, after)."""
        for _ in range(5):
            before, revision = await self.current(fresh=True)
            after = edit(before)
            work = partial(self._write, revision=revision, after=after,
                           events=audit(before, after))
            if await self._executor.write_tx(work):
                self._cached.cache_clear()
                return before, after
        raise BadUserInput("the controls changed concurrently; retry")
