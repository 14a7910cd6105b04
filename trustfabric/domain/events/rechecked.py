"""A stream that re-checks, on a clock, that its reader may still read it."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def rechecked(source: AsyncIterator[T], every_s: float,
                    check: Callable[[], Awaitable[object]]) -> AsyncIterator[T]:
    """`source`'s items, with `check()` awaited every `every_s` whether items arrive or
    not: a subscription opened with a token that is revoked later must end even when no
    event comes (an idle socket would otherwise stay open, and hear the next job). What
    `check` raises ends the stream and closes `source`."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[T] | None = None
    deadline = loop.time() + every_s
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=max(0.0, deadline - loop.time()))
            if done:
                item, pending = pending.result(), None  # StopAsyncIteration ends it too
                yield item
            if loop.time() >= deadline:
                await check()
                deadline = loop.time() + every_s
    except StopAsyncIteration:
        return
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
