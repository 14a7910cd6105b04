"""Group commit: items submitted while a write is under way go together in the next one.

Writes cost mostly per transaction: items that arrive together share one (decision 0004).
Idle, an item waits for nobody. Lookups that arrive together are batched the same way
(one UNWIND read for all).

With `spacing_s`, a write starts no sooner than that after the one before: transactions a
second stay bounded whatever the load, and the batches grow with it instead.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Result]]],
                 max_batch: int = 64, spacing_s: float = 0.0) -> None:
        self._write = write  # one transaction for a batch; one result per item, in order
        self._max_batch = max_batch
        self._spacing_s = spacing_s
        self._last_write = float("-inf")
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            wait = self._last_write + self._spacing_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_write = loop.time()
            batch = self._pending[:self._max_batch]
            del self._pending[:self._max_batch]
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as error:  # noqa: BLE001 - every waiter gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its request may have been cancelled meanwhile
                    future.set_result(result)
