"""The pilot-controls document, read with a short cache and changed optimistically."""

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from trustfabric.audit import now_iso
from trustfabric.controls import PilotControls
from trustfabric.errors import BadUserInput
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import controls as q


class ControlsRepository:
    def __init__(self, executor: GraphExecutor, cache_s: float = 1.0) -> None:
        self._executor = executor
        self._cache_s = cache_s
        self._cached: tuple[float, PilotControls, int] | None = None

    async def init(self, seed: PilotControls) -> None:
        await self._executor.write(q.INIT, document=json.dumps(seed.to_document()), now=now_iso())

    async def current(self, fresh: bool = False) -> tuple[PilotControls, int]:
        """The controls and their revision; cached for a second unless `fresh`."""
        if not fresh and self._cached and time.monotonic() - self._cached[0] < self._cache_s:
            return self._cached[1], self._cached[2]
        rows = await self._executor.read(q.GET)
        controls = (PilotControls.from_document(json.loads(rows[0]["document"]))
                    if rows else PilotControls())
        revision = rows[0]["revision"] if rows else 0
        self._cached = (time.monotonic(), controls, revision)
        return controls, revision

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
                self._cached = None
                return before, after
        raise BadUserInput("the controls changed concurrently; retry")
