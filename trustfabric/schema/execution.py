"""graphql-core's executor, without what it kept alive that it did not need.

- The executor keeps its own bound methods in `async_helpers`, so it refers to itself: each
  operation's executor, with the request, the context and the result it holds, outlived
  the request until the cyclic garbage collector found it. Under load those collections
  took 80-140 ms of every second of the service's time (`tf_gc_pause_seconds`).
- A subscription's per-event executors share one memo of collected sub-fields, keyed by
  the identity of each event's own field lists: it grew by every event for the life of the
  subscription. With five subscribers at 440 events a second it held 1.6 million objects
  after five minutes, the process grew 28 MB a minute, and the collector's full pass over
  them stopped the process for 2.2-2.4 s.
"""

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any, Self

from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the same helpers, reaching the executor weakly: resolvers only use them while
        # it runs, and then it is alive
        gather, track = (weakref.WeakMethod(self.gather_async_work),
                         weakref.WeakMethod(self.track_async_work))

        def gather_async_work(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
            return gather()(values)  # type: ignore[misc]

        def track_async_work(values: Sequence[Any]) -> None:
            track()(values)  # type: ignore[misc]

        self.async_helpers = GraphQLResolveInfoHelpers(gather=gather_async_work,
                                                       track=track_async_work)

    def build_per_event_executor(self, payload: Any) -> Self:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}  # the event's own memo, gone with the event
        return executor
