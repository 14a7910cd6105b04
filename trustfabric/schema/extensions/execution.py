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
from collections.abc import Sequence
from typing import Any

from graphql.execution import Executor
from graphql.pyutils import gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        track = weakref.WeakMethod(self.track_async_work)

        def track_async_work(values: Sequence[Any]) -> None:
            executor_track = track()
            if executor_track is not None:
                executor_track(values)
            # else the operation has ended and was freed: no one is left to settle it for

        # the same helpers without the executor in them (gathering never needed it)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: gather_with_cancel(*values), track=track_async_work)

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}  # the event's own memo, gone with the event
        return executor
